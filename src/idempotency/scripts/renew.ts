/**
 * The renew script: extend the lease of a record this token is still processing.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../../adapter.js";

/**
 * KEYS[1] the record. ARGV[1] the token, ARGV[2] the new lease in ms. Returns 1 if renewed, 0 if
 * the lease was lost (expired, taken over, or the record is finished).
 */
const lua = `if redis.call('HGET', KEYS[1], 'st') ~= 'P' then return 0 end
if redis.call('HGET', KEYS[1], 'own') ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/** Renews an idempotency lease; see the Lua above for the reply. */
export const renewScript: LockScript = {
  name: "idempotency-renew",
  lua,
  sha1: "440adf4c8c39a7ac38212c243d68a528234e5b23",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateRenew: ScriptEmulation = (host, [key = ""], [token = "", lease = ""]) => {
  if (host.hget(key, "st") !== "P" || host.hget(key, "own") !== token) return 0;
  host.pexpire(key, Number(lease));
  return 1;
};
