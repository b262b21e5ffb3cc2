/**
 * The hand-off: the Lua shared by the acquire and release scripts that gives a free lock to the
 * oldest waiter still waiting and still listening, mints its fence and tells it, all inside the
 * script that freed or found the lock free. Waiters thus get the lock in arrival order, and a
 * release costs the next holder no round trip at all.
 *
 * Both scripts take KEYS[1] the lock, KEYS[2] its fencing counter, KEYS[3] the line (a list of
 * entries, see {@link lineEntry}), KEYS[4] the waiters still in line (a hash, token → its entry;
 * a waiter that gives up takes its entry out of both), and ARGV[1] the caller's token, ARGV[2]
 * how long to keep the counter, in ms.
 *
 * A waiter whose process died leaves its entry behind. The hand-off passes over it instead of
 * granting it the lock for a whole lease: before granting a waiter whose entry says this Redis
 * can count its client's subscription, it asks how many subscribers its inbox has, and a waiter
 * nobody listens for is dropped. On one server that is `PUBSUB NUMSUB` of the client's inbox; on
 * Redis Cluster, where a plain subscription may live on another node, the client listens with
 * `SSUBSCRIBE` on an inbox in the lock's own slot, which this node counts (`PUBSUB SHARDNUMSUB`)
 * and publishes to (`SPUBLISH`). One call passes over at most {@link HAND_OFF_BUDGET} entries, so
 * its work stays bounded however long the line grew; the caller is told to call again when
 * entries are left.
 *
 * The hand-off runs in every release that finds a waiter, so it is kept to the fewest Redis
 * calls: one LPOP reads a whole entry, one HDEL both checks and ends its place, the server clock
 * is read once, an inbox is counted once per call, and the lock's key is overwritten for the next
 * holder rather than deleted and set again.
 *
 * @module
 */

import type { ScriptHost } from "../adapter.js";
import { waiterId } from "../token.js";

/**
 * The most line entries one hand-off looks at before it stops and asks to be called again (the
 * Lua spells it out: script sources are plain literals).
 */
export const HAND_OFF_BUDGET = 256;

/**
 * `clock()` is the server time in µs. `mint(now, keep)` returns a fence above every earlier one —
 * `max(counter + 1, now)`, so a counter lost with a restart, or restored from an old snapshot,
 * cannot send fences backwards — and records it in the counter, kept `keep` ms (ARGV[2] when
 * omitted; see `fence-retention.ts`).
 */
export const mintLua = `local function clock()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000000 + tonumber(now[2])
end
local function mint(now, keep)
  local fence = (tonumber(redis.call('GET', KEYS[2])) or 0) + 1
  if now > fence then fence = now end
  redis.call('SET', KEYS[2], string.format('%d', fence), 'PX', keep or ARGV[2])
  return fence
end
`;

/**
 * `handoff(entry)` (which needs {@link mintLua} before it) takes the entry its caller popped from
 * the line, and pops more until one is still in line, its wait has not ended and it is listened
 * for (or is the caller itself); it gives that waiter the lock with its own lease and a fresh
 * fence (its counter kept for the retention, or that lease if longer, which the caller's ARGV[2]
 * does not know of), and publishes `"<waiter id> <fence>"` on the waiter's inbox (the id is the token's
 * first 72 bits; the rest stays secret), unless the waiter is the caller. Only the waiter's own
 * client hears it, however many clients wait for the same lock. It returns that waiter's token,
 * fence, lease and announcement; nil when nobody is waiting; false when it looked at
 * {@link HAND_OFF_BUDGET} entries without finding a waiter and entries are left.
 *
 * The scripts pop the first entry themselves (a `LPOP` that finds no line costs what an `EXISTS`
 * would, and saves one call when it does find one) and define `handoff` only then, so a lock
 * nobody waits for costs no more than it must: Lua makes a closure each time a function
 * definition runs.
 */
export const handOffLua = `local function handoff(entry)
  local now = clock()
  local gone = {}
  for _ = 1, 256 do
    local token, ttl, ends, mode, inbox = string.match(entry, '^(%S+) (%d+) (%d+) ([01s]) (.*)')
    if token and redis.call('HDEL', KEYS[4], token) == 1 and tonumber(ends) > now then
      local caller = token == ARGV[1]
      local sharded = mode == 's'
      if not caller and mode ~= '0' and gone[inbox] == nil then
        local count
        if sharded then
          count = redis.call('PUBSUB', 'SHARDNUMSUB', inbox)
        else
          count = redis.call('PUBSUB', 'NUMSUB', inbox)
        end
        gone[inbox] = count[2] == 0
      end
      if caller or not gone[inbox] then
        local fence = mint(now, math.max(tonumber(ARGV[2]), tonumber(ttl)))
        redis.call('SET', KEYS[1], token, 'PX', ttl)
        local announcement = string.sub(token, 5, 16) .. ' ' .. string.format('%d', fence)
        if not caller and sharded then
          redis.call('SPUBLISH', inbox, announcement)
        elseif not caller then
          redis.call('PUBLISH', inbox, announcement)
        end
        return token, fence, tonumber(ttl), announcement
      end
    end
    entry = redis.call('LPOP', KEYS[3])
    if not entry then return nil end
  end
  redis.call('LPUSH', KEYS[3], entry)
  return false
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

/**
 * `handoff()` over the in-memory store, with the same keys and arguments as the Lua, from the
 * line's first entry (popped here): undefined when nobody is waiting, false when the budget ran
 * out with entries left.
 */
export function emulateHandOff(
  host: ScriptHost,
  [lock = "", fence = "", queue = "", waiters = ""]: readonly string[],
  [caller = "", retention = ""]: readonly string[],
): HandOff | false | undefined {
  const now = host.timeMicros();
  const gone = new Map<string, boolean>();
  let entry = host.lpop(queue);
  for (let looked = 0; entry !== null; looked++) {
    if (looked === HAND_OFF_BUDGET) {
      host.lpush(queue, entry);
      return false;
    }
    const parts = splitEntry(entry);
    if (parts && host.hdel(waiters, parts.token) && parts.ends > now) {
      const { token, ttl, mode, inbox } = parts;
      const isCaller = token === caller;
      if (!isCaller && mode !== "0" && !gone.has(inbox)) {
        gone.set(inbox, host.subscribers(inbox) === 0); // one store: sharded or not, one count
      }
      if (isCaller || !gone.get(inbox)) {
        const minted = emulateMint(host, fence, String(Math.max(Number(retention), ttl)));
        host.set(lock, token, ttl);
        const announcement = `${waiterId(token)} ${minted}`;
        if (!isCaller) host.publish(inbox, announcement);
        return [token, minted, ttl, announcement];
      }
    }
    entry = host.lpop(queue);
  }
  return undefined;
}

/** A line entry's parts (see {@link lineEntry}); undefined for one of another format. */
function splitEntry(entry: string) {
  const match = /^(\S+) (\d+) (\d+) ([01s]) (.*)$/s.exec(entry);
  if (!match) return undefined;
  const [, token = "", ttl = "", ends = "", mode = "", inbox = ""] = match;
  return { token, ttl: Number(ttl), ends: Number(ends), mode, inbox };
}

/**
 * A waiter's line entry, as the acquire script writes it (in the line and, as the value of its
 * token, in the hash of waiters): `"<token> <ttl> <end of wait, µs> <mode> <inbox>"`, where
 * `inbox` is the channel its client listens on and `mode` says how this Redis sees it: `1` a
 * channel it counts with `PUBSUB NUMSUB` (one server), `s` a sharded channel in the lock's slot,
 * counted with `PUBSUB SHARDNUMSUB` and published to with `SPUBLISH` (Redis Cluster), `0` one it
 * cannot count (the waiter is granted the lock without asking).
 */
export function lineEntry(
  token: string,
  ttl: string,
  ends: number,
  mode: string,
  inbox: string,
): string {
  return `${token} ${ttl} ${ends} ${mode} ${inbox}`;
}
