/**
 * The release script: delete the lock only if this token holds it, and hand it to the oldest
 * waiter; for a token that does not hold it, leave the line instead.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../adapter.js";
import { emulateHandOff, handOffLua, mintLua } from "./hand-off.js";

/**
 * KEYS and ARGV as in the hand-off (see `hand-off.ts`). Returns 1 if this call released the lock,
 * or the announcement (a string) if it also handed it to a waiter (so a waiter in the releaser's
 * own process can be told without waiting for the message); -1 if it passed over as many gone
 * waiters as one call may and entries are left: the lock is still held by this token, and the
 * caller calls again to go on; 0 if the token did not hold it (it expired, someone else holds it
 * now, or the token was only waiting — it is then out of the line, its entry removed, so a waiter
 * that gives up calls this too and leaves nothing behind).
 */
const lua = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  local entry = redis.call('HGET', KEYS[4], ARGV[1])
  if entry then
    redis.call('HDEL', KEYS[4], ARGV[1])
    redis.call('LREM', KEYS[3], 1, entry)
  end
  return 0
end
local entry = redis.call('LPOP', KEYS[3])
if entry then
${mintLua}${handOffLua}  local waiter, fence, ttl, announcement = handoff(entry)
  if waiter then return announcement end
  if waiter == false then return -1 end
end
redis.call('DEL', KEYS[1])
return 1
`;

/** Releases a lock held by a token, or takes a waiting token out of line; see the Lua above. */
export const releaseScript: LockScript = {
  name: "release",
  lua,
  sha1: "175e3a1ed7fdd045756fdd70872f843c00145c3e",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateRelease: ScriptEmulation = (host, keys, args) => {
  const [lock = "", , queue = "", waiters = ""] = keys;
  const [token = ""] = args;
  if (host.get(lock) !== token) {
    const entry = host.hget(waiters, token);
    if (entry !== null) {
      host.hdel(waiters, token);
      host.lrem(queue, entry);
    }
    return 0;
  }
  const handed = emulateHandOff(host, keys, args);
  if (handed) return handed[3];
  if (handed === false) return -1;
  host.del(lock);
  return 1;
};
