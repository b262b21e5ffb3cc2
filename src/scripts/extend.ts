/**
 * The extend script: renew the lease of a lock this token holds. It never recreates a lock that
 * has expired: a lapsed lease stays lost.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../adapter.js";

/**
 * KEYS[1] the lock, KEYS[2] its fencing counter. ARGV[1] the token, ARGV[2] the new lease in ms
 * (counted from now), ARGV[3] how long to keep the counter, in ms. Returns 1 if renewed, 0 if the
 * token does not hold the lock.
 */
const lua = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

/** Renews a lease held by a token; see the Lua above for the reply. */
export const extendScript: LockScript = {
  name: "extend",
  lua,
  sha1: "c3d2ed957bed2d9f9f7a25a7526bd28bc3cb8b8d",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateExtend: ScriptEmulation = (
  host,
  [lock = "", fence = ""],
  [token = "", ttl = "", retention = ""],
) => {
  if (host.get(lock) !== token) return 0;
  host.pexpire(lock, Number(ttl));
  host.pexpire(fence, Number(retention));
  return 1;
};
