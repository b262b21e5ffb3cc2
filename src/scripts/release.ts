/**
 * The release script: delete the lock only if this token holds it, and wake the waiters.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../adapter.js";

/**
 * KEYS[1] the lock. ARGV[1] the token, ARGV[2] the channel to announce the release on ('' for
 * none). Returns 1 if this call released the lock, 0 if the token did not hold it (it expired or
 * someone else holds it now).
 */
const lua = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], '1') end
return 1
`;

/** Releases a lock held by a token; see the Lua above for the reply. */
export const releaseScript: LockScript = {
  name: "release",
  lua,
  sha1: "3d20644120d57f075c0e2adf85999c267037abbe",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateRelease: ScriptEmulation = (host, [lock = ""], [token = "", channel = ""]) => {
  if (host.get(lock) !== token) return 0;
  host.del(lock);
  if (channel !== "") host.publish(channel, "1");
  return 1;
};
