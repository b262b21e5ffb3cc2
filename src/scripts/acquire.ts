/**
 * The acquire script: take a free lock, confirm a lock this token already holds, or join the
 * line of waiters — minting the fencing token in the same atomic step.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../adapter.js";
import { emulateHandOff, emulateMint, handOffLua, lineEntry, mintLua } from "./hand-off.js";

/**
 * KEYS and ARGV[1..2] as in the hand-off (see `hand-off.ts`); ARGV[3] the lease in ms, ARGV[4]
 * how long the caller will wait in ms ('0': it will not, so it does not join the line), and (when
 * it will) ARGV[5] the inbox its client listens on for the hand-off, ARGV[6] how this Redis sees
 * that inbox: '1' counted, 's' sharded, '0' (the default) neither (see `lineEntry`).
 *
 * Returns, for the three outcomes:
 * - acquired: `fence`, a bare integer, when the caller took the lock with the lease it asked for
 *   (the common case, answered without a table: it is cheaper for Redis to build and for the
 *   client to read), or `{1, fence, ttl}` when it was handed the lock from the line with the
 *   lease it asked for on joining; either way `fence` is greater than every fence minted before
 *   for this key;
 * - `{2, fence, ttl}`: this token already held it (a retried request, or a waiter claiming the
 *   lock it was handed): lease renewed, same fence;
 * - `{0, 0, pttl}`: another token holds it for `pttl` more ms (-1: the key has no expiry); a
 *   caller that will wait is now in line (once: a retry keeps its place and its first entry).
 *
 * A free lock goes first to the oldest waiter still waiting and listening, so a newcomer never
 * overtakes the line; with nobody waiting (or only waiters whose process is gone), the caller
 * takes it. The lock is taken with `SET NX` first, so a free lock costs no read of its own. A
 * caller that will wait writes its entry in the line and, under its token, in the hash of
 * waiters, where leaving the line finds it to take it out of the line.
 */
const lua = `${mintLua}if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then
  local entry = redis.call('LPOP', KEYS[3])
  if not entry then return mint(clock()) end
${handOffLua}  local token, fence, ttl = handoff(entry)
  if not token then return mint(clock()) end
  if token == ARGV[1] then return {1, fence, ttl} end
elseif redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {2, tonumber(redis.call('GET', KEYS[2])) or 0, tonumber(ARGV[3])}
end
if ARGV[4] ~= '0' then
  local ends = string.format('%d', clock() + tonumber(ARGV[4]) * 1000)
  local entry = ARGV[1] .. ' ' .. ARGV[3] .. ' ' .. ends .. ' ' .. (ARGV[6] or '0') .. ' ' .. ARGV[5]
  if redis.call('HSETNX', KEYS[4], ARGV[1], entry) == 1 then
    redis.call('RPUSH', KEYS[3], entry)
  end
  if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[4]) then
    redis.call('PEXPIRE', KEYS[3], ARGV[4])
    redis.call('PEXPIRE', KEYS[4], ARGV[4])
  end
end
return {0, 0, redis.call('PTTL', KEYS[1])}
`;

/** Acquires a lock, renews this token's hold on it, or queues for it; see the Lua above. */
export const acquireScript: LockScript = {
  name: "acquire",
  lua,
  sha1: "fd34dd3f506c1f8401b0641152d343c6ae8537fe",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateAcquire: ScriptEmulation = (host, keys, args) => {
  const [lock = "", fence = "", queue = "", waiters = ""] = keys;
  const [token = "", retention = "", ttl = "", wait = "", inbox = "", mode = "0"] = args;
  const holder = host.get(lock);
  if (holder === token) {
    host.pexpire(lock, Number(ttl));
    host.pexpire(fence, Number(retention));
    return [2, Number(host.get(fence) ?? 0), Number(ttl)];
  }
  if (holder === null) {
    const handed = emulateHandOff(host, keys, args);
    if (!handed) {
      const minted = emulateMint(host, fence, retention);
      host.set(lock, token, Number(ttl));
      return minted;
    }
    if (handed[0] === token) return [1, handed[1], handed[2]];
  }
  if (wait !== "0") {
    if (host.hget(waiters, token) === null) {
      const ends = host.timeMicros() + Number(wait) * 1000;
      const entry = lineEntry(token, ttl, ends, mode, inbox);
      host.hset(waiters, { [token]: entry });
      host.rpush(queue, entry);
    }
    if (host.pttl(queue) < Number(wait)) {
      host.pexpire(queue, Number(wait));
      host.pexpire(waiters, Number(wait));
    }
  }
  return [0, 0, host.pttl(lock)];
};
