/**
 * The acquire script: take a free lock, or confirm a lock this token already holds, minting the
 * fencing token in the same atomic step.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../adapter.js";

/**
 * KEYS[1] the lock, KEYS[2] its fencing counter (same hash slot).
 * ARGV[1] the token, ARGV[2] the lease in ms, ARGV[3] how long to keep the counter, in ms.
 *
 * Returns `{status, fence, pttl}`:
 * - `{1, fence, ttl}`: acquired; `fence` is greater than every fence minted before for this key;
 * - `{2, fence, ttl}`: this token already held it (a retried request): lease renewed, same fence;
 * - `{0, 0, pttl}`: another token holds it for `pttl` more ms (-1: the key has no expiry).
 *
 * The fence is `max(counter + 1, now in µs)`: if Redis loses the counter (a restart without
 * persistence, a failover), the server clock still keeps fences increasing.
 */
const lua = `local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {2, tonumber(redis.call('GET', KEYS[2])) or 0, tonumber(ARGV[2])}
end
if holder then
  return {0, 0, redis.call('PTTL', KEYS[1])}
end
local now = redis.call('TIME')
local fence = (tonumber(redis.call('GET', KEYS[2])) or 0) + 1
local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
if clock > fence then fence = clock end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], string.format('%d', fence), 'PX', ARGV[3])
return {1, fence, tonumber(ARGV[2])}
`;

/** Acquires a lock or renews this token's hold on it; see the Lua above for the reply. */
export const acquireScript: LockScript = {
  name: "acquire",
  lua,
  sha1: "17496e6f3316f6e3500e473d8309ca6225b9bc8d",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateAcquire: ScriptEmulation = (
  host,
  [lock = "", fence = ""],
  [token = "", ttl = "", retention = ""],
) => {
  const holder = host.get(lock);
  if (holder === token) {
    host.pexpire(lock, Number(ttl));
    host.pexpire(fence, Number(retention));
    return [2, Number(host.get(fence) ?? 0), Number(ttl)];
  }
  if (holder !== null) return [0, 0, host.pttl(lock)];
  const minted = Math.max(Number(host.get(fence) ?? 0) + 1, host.timeMicros());
  host.set(lock, token, Number(ttl));
  host.set(fence, String(minted), Number(retention));
  return [1, minted, Number(ttl)];
};
