/**
 * The append script: store one part of a large outcome's body ahead of its finish, so no request
 * carries more than a transport takes (a REST endpoint's request size limit, say).
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../../adapter.js";

/**
 * KEYS[1] the record. ARGV[1] the token, ARGV[2] the part's number (from 1), ARGV[3] the part.
 * Returns 1 if stored (a retried append stores the same part again), 0 if the lease was lost.
 */
const lua = `if redis.call('HGET', KEYS[1], 'st') ~= 'P' then return 0 end
if redis.call('HGET', KEYS[1], 'own') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'p' .. ARGV[2], ARGV[3])
return 1
`;

/** Stores a part of an outcome's body; see the Lua above for the reply. */
export const appendScript: LockScript = {
  name: "idempotency-append",
  lua,
  sha1: "2cd1d1d4896e2d86918e4fc9d57f546fe94b854a",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateAppend: ScriptEmulation = (
  host,
  [key = ""],
  [token = "", number = "", part = ""],
) => {
  if (host.hget(key, "st") !== "P" || host.hget(key, "own") !== token) return 0;
  host.hset(key, { [`p${number}`]: part });
  return 1;
};
