/**
 * The hand-off: the Lua shared by the acquire and release scripts that gives a free lock to the
 * oldest waiter still waiting, mints its fence and tells it, all inside the script that freed
 * or found the lock free. Waiters thus get the lock in arrival order, and a release costs the
 * next holder no round trip at all.
 *
 * Both scripts take KEYS[1] the lock, KEYS[2] its fencing counter, KEYS[3] the line (a list of
 * entries `"<token> <ttl ms> <end of wait, µs> <inbox>"`, the inbox being the channel the
 * waiter's client listens on), KEYS[4] the set of tokens still in line (a hash, token → 1; a
 * waiter that gives up is taken out of it, and its entry is skipped when reached), and ARGV[1]
 * the caller's token, ARGV[2] how long to keep the counter, in ms.
 *
 * The hand-off runs in every release that finds a waiter, so it is kept to the fewest Redis
 * calls: one LPOP reads a whole entry, one HDEL both checks and ends its place, the server clock
 * is read once, and the lock's key is overwritten for the next holder rather than deleted and
 * set again.
 *
 * @module
 */

import type { ScriptHost } from "../adapter.js";
import { waiterId } from "../token.js";

/**
 * `clock()` is the server time in µs. `mint(now)` returns a fence above every earlier one —
 * `max(counter + 1, now)`, so a counter lost with a restart, or restored from an old snapshot,
 * cannot send fences backwards — and records it in the counter, kept ARGV[2] ms.
 */
export const mintLua = `local function clock()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000000 + tonumber(now[2])
end
local function mint(now)
  local fence = (tonumber(redis.call('GET', KEYS[2])) or 0) + 1
  if now > fence then fence = now end
  redis.call('SET', KEYS[2], string.format('%d', fence), 'PX', ARGV[2])
  return fence
end
`;

/**
 * `handoff(entry)` (which needs {@link mintLua} before it) takes the entry its caller popped from
 * the line, and pops more until one is still in line and its wait has not ended; it gives that
 * waiter the lock with its own lease and a fresh fence, and publishes
 * `"<waiter id> <fence>"` on the waiter's inbox (the id is the token's first 72 bits; the rest
 * stays secret), unless the waiter is the caller. Only the waiter's own client hears it, however
 * many clients wait for the same lock. It returns that waiter's token, fence, lease and
 * announcement, or nil when nobody is waiting.
 *
 * The scripts pop the first entry themselves (a `LPOP` that finds no line costs what an `EXISTS`
 * would, and saves one call when it does find one) and define `handoff` only then, so a lock
 * nobody waits for costs no more than it must: Lua makes a closure each time a function
 * definition runs.
 */
export const handOffLua = `local function handoff(entry)
  local now = clock()
  while entry do
    local token, ttl, ends, inbox = string.match(entry, '^(%S+) (%d+) (%d+) (.*)')
    if redis.call('HDEL', KEYS[4], token) == 1 and tonumber(ends) > now then
      local fence = mint(now)
      redis.call('SET', KEYS[1], token, 'PX', ttl)
      local announcement = string.sub(token, 5, 16) .. ' ' .. string.format('%d', fence)
      if token ~= ARGV[1] then redis.call('PUBLISH', inbox, announcement) end
      return token, fence, tonumber(ttl), announcement
    end
    entry = redis.call('LPOP', KEYS[3])
  end
end
`;

/** What {@link emulateHandOff} granted: the waiter's token, fence, lease and announcement. */
export type HandOff = [token: string, fence: number, ttl: number, announcement: string];

/** `mint(clock())` over the in-memory store: the fence, recorded in the counter for `retention` ms. */
export function emulateMint(host: ScriptHost, fenceKey: string, retention: string): number {
  const fence = Math.max(Number(host.get(fenceKey) ?? 0) + 1, host.timeMicros());
  host.set(fenceKey, String(fence), Number(retention));
  return fence;
}

/** `handoff()` over the in-memory store, with the same keys and arguments as the Lua. */
export function emulateHandOff(
  host: ScriptHost,
  [lock = "", fence = "", queue = "", waiters = ""]: readonly string[],
  [caller = "", retention = ""]: readonly string[],
): HandOff | undefined {
  for (let entry = host.lpop(queue); entry !== null; entry = host.lpop(queue)) {
    const [token, ttl, ends, inbox] = splitEntry(entry);
    if (host.hget(waiters, token) === null) continue;
    host.hdel(waiters, token);
    if (Number(ends) <= host.timeMicros()) continue;
    const minted = emulateMint(host, fence, retention);
    host.set(lock, token, Number(ttl));
    const announcement = `${waiterId(token)} ${minted}`;
    if (token !== caller) host.publish(inbox, announcement);
    return [token, minted, Number(ttl), announcement];
  }
  return undefined;
}

/** An entry `"<token> <ttl> <end of wait> <inbox>"` as its four parts (the inbox may hold spaces). */
function splitEntry(entry: string): [token: string, ttl: string, ends: string, inbox: string] {
  const [token = "", ttl = "0", ends = "0"] = entry.split(" ", 3);
  const inbox = entry.slice(token.length + ttl.length + ends.length + 3);
  return [token, ttl, ends, inbox];
}

/** The line entry of a waiter (see the module comment), as the acquire script writes it. */
export function lineEntry(token: string, ttl: string, ends: number, inbox: string): string {
  return `${token} ${ttl} ${ends} ${inbox}`;
}
