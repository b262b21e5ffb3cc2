/**
 * The finish script: store a request's outcome for replay, if this token still owns the record.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../../adapter.js";

/**
 * KEYS[1] the record. ARGV[1] the token, ARGV[2] the new state ('C' completed, 'F' a stored
 * failure), ARGV[3] status, ARGV[4] headers (JSON), ARGV[5] body, ARGV[6] the body's encoding,
 * ARGV[7] '1' if the body was too large to keep, ARGV[8] how long to keep the record, in ms.
 *
 * Returns 1 if stored (or already stored by this token: a retried finish is idempotent), 0 if
 * the lease was lost, in which case nothing is overwritten.
 */
const lua = `if redis.call('HGET', KEYS[1], 'own') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'st') ~= 'P' then return 1 end
redis.call('HSET', KEYS[1], 'st', ARGV[2], 'rs', ARGV[3], 'rh', ARGV[4], 'rb', ARGV[5],
  're', ARGV[6], 'rt', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return 1
`;

/** Stores an outcome; see the Lua above for the reply. */
export const finishScript: LockScript = {
  name: "idempotency-finish",
  lua,
  sha1: "2af0c0ba5dc04ece4013f35b5e2a0aa29ce17f40",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateFinish: ScriptEmulation = (host, [key = ""], args) => {
  const [token, state = "", status = "", headers = "", body = "", encoding = ""] = args;
  const [truncated = "", retention = ""] = args.slice(6);
  if (host.hget(key, "own") !== token) return 0;
  if (host.hget(key, "st") !== "P") return 1;
  host.hset(key, { st: state, rs: status, rh: headers, rb: body, re: encoding, rt: truncated });
  host.pexpire(key, Number(retention));
  return 1;
};
