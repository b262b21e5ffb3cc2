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
 * or the announcement (a string) if it also handed it to a waiter (so a waiter in the releaser's own
 * process can be told without waiting for the message); 0 if the token did not hold it (it
 * expired, someone else holds it now, or the token was only waiting — it is then out of the
 * line, so a waiter that gives up calls this too).
 */
const lua = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  redis.call('HDEL', KEYS[4], ARGV[1])
  return 0
end
local entry = redis.call('LPOP', KEYS[3])
if entry then
${mintLua}${handOffLua}  local waiter, fence, ttl, announcement = handoff(entry)
  if waiter then return announcement end
end
redis.call('DEL', KEYS[1])
return 1
`;

/** Releases a lock held by a token, or takes a waiting token out of line; see the Lua above. */
export const releaseScript: LockScript = {
  name: "release",
  lua,
  sha1: "d44a9c0b4ed24850e78fcb3c00ece9bcdd0ae0d7",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateRelease: ScriptEmulation = (host, keys, args) => {
  const [lock = "", , , waiters = ""] = keys;
  const [token = ""] = args;
  if (host.get(lock) !== token) {
    host.hdel(waiters, token);
    return 0;
  }
  const handed = emulateHandOff(host, keys, args);
  if (handed) return handed[3];
  host.del(lock);
  return 1;
};
