/**
 * Reference: the least pub/sub hand-off lock, the cheapest lock that hands over inside Redis as
 * edgelock does: waiters join a FIFO line, and a release pops the next one, gives it the lock,
 * mints its fence and announces it on the waiter's channel, all in one script. It has nothing
 * else: no clock floor under the fence, no check that a waiter is still waiting, no expiry on the
 * line or the counter. Its waiters run the same client code as edgelock's scripts sent raw (see
 * `line-lock.ts`).
 *
 * So a lock that hands over through pub/sub with a fence minted atomically can reach, at best,
 * the critical sections per second this one reaches in the same run: a bound measured, not
 * modelled. Its release is also the hand-off the latency scenario times.
 */

import { type LineProtocol, lineLock } from "./line-lock.js";
import { benchScript, type Library } from "./peers.js";

/**
 * KEYS[1] the lock, KEYS[2] its fence counter, KEYS[3] the line of `"<token> <ttl> <channel>"`
 * entries; ARGV[1] the token, ARGV[2] the lease in ms, ARGV[3] '0' for a single attempt (else it
 * joins the line, once), ARGV[4] its channel. Returns the fence, `{2, 0, ttl}` to a waiter that
 * was handed the lock, or `{0, 0, pttl}`.
 */
const ACQUIRE_LUA = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then return {2, 0, tonumber(ARGV[2])} end
if ARGV[3] ~= '0' then
  local entry = ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[4]
  if not redis.call('LPOS', KEYS[3], entry) then redis.call('RPUSH', KEYS[3], entry) end
end
return {0, 0, redis.call('PTTL', KEYS[1])}`;

/**
 * The least atomic hand-off. KEYS as the acquire's; ARGV[1] the holder's token. Returns 0 if the
 * token does not hold the lock, 1 when it freed it, 2 when it handed it on and published
 * `"<waiter id> <fence>"` (the id: characters 5–16 of the waiter's token).
 */
const RELEASE_LUA = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local entry = redis.call('LPOP', KEYS[3])
if not entry then redis.call('DEL', KEYS[1]) return 1 end
local token, ttl, channel = string.match(entry, '^(%S+) (%d+) (.*)')
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ttl)
redis.call('PUBLISH', channel, string.sub(token, 5, 16) .. ' ' .. fence)
return 2`;

/** The least atomic hand-off, as a script (the latency scenario times it too). */
export const LEAST_HAND_OFF = benchScript("least hand-off", RELEASE_LUA);

/** The script keys of lock `key`: the lock, its fence counter and its line, in one slot. */
export function leastKeys(key: string): [lock: string, fence: string, line: string] {
  return [`least:{${key}}`, `least:{${key}}:fence`, `least:{${key}}:line`];
}

/** Its scripts, keys and arguments. */
const protocol: LineProtocol = {
  acquire: benchScript("least acquire", ACQUIRE_LUA),
  release: LEAST_HAND_OFF,
  keys: leastKeys,
  acquireArgs: (token, ttl, channel) =>
    channel === undefined ? [token, String(ttl), "0", ""] : [token, String(ttl), "1", channel],
  releaseArgs: (token) => [token],
};

export const leastHandOff: Library = {
  id: "least-handoff",
  pkg: undefined,
  label: "reference: the least pub/sub hand-off lock (one script: GET, LPOP, INCR, SET, PUBLISH)",
  waits: "FIFO line in Redis, handed the lock by the release (pub/sub)",
  delayConfigurable: false,
  connect: (redis) => lineLock(redis, protocol),
};
