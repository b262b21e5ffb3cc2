/**
 * The begin script: claim an idempotency record for a request, or learn what became of the
 * request that claimed it first.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../../adapter.js";

/**
 * KEYS[1] the record (a hash). ARGV[1] the token, ARGV[2] the request's fingerprint ('' when
 * not checked), ARGV[3] the lease in ms.
 *
 * Returns, checking the fingerprint before anything else (a mismatch is final):
 * - `{1, fence}`: claimed (a new record; or this token's own record in progress, so a retried
 *   begin is idempotent); the fence is the server clock in µs;
 * - `{2}`: the key was used for a different request (fingerprints differ);
 * - `{3, status, headers, body, encoding, truncated, state}`: finished: replay this;
 * - `{4, pttl, running}`: another request holds it in progress for `pttl` more ms, and has held
 *   it for `running` ms (on the server clock).
 */
const lua = `local state = redis.call('HGET', KEYS[1], 'st')
if not state then
  local now = redis.call('TIME')
  local fence = tonumber(now[1]) * 1000000 + tonumber(now[2])
  redis.call('HSET', KEYS[1], 'v', '1', 'st', 'P', 'fp', ARGV[2], 'own', ARGV[1],
    'n', string.format('%d', fence))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, fence}
end
local fp = redis.call('HGET', KEYS[1], 'fp')
if ARGV[2] ~= '' and fp and fp ~= '' and fp ~= ARGV[2] then return {2} end
if state == 'P' then
  if redis.call('HGET', KEYS[1], 'own') == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {1, tonumber(redis.call('HGET', KEYS[1], 'n'))}
  end
  local now = redis.call('TIME')
  local started = tonumber(redis.call('HGET', KEYS[1], 'n'))
  local running = math.floor((tonumber(now[1]) * 1000000 + tonumber(now[2]) - started) / 1000)
  return {4, redis.call('PTTL', KEYS[1]), running}
end
local r = redis.call('HMGET', KEYS[1], 'rs', 'rh', 'rb', 're', 'rt')
return {3, r[1], r[2], r[3], r[4], r[5], state}
`;

/** Claims an idempotency record; see the Lua above for the reply. */
export const beginScript: LockScript = {
  name: "idempotency-begin",
  lua,
  sha1: "86cc94cf0b9df83d6902e26fc63fe5785d6d56ad",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateBegin: ScriptEmulation = (
  host,
  [key = ""],
  [token = "", fingerprint = "", lease = ""],
) => {
  const state = host.hget(key, "st");
  if (state === null) {
    const fence = host.timeMicros();
    host.hset(key, { v: "1", st: "P", fp: fingerprint, own: token, n: String(fence) });
    host.pexpire(key, Number(lease));
    return [1, fence];
  }
  const stored = host.hget(key, "fp");
  if (fingerprint !== "" && stored && stored !== fingerprint) return [2];
  if (state === "P") {
    if (host.hget(key, "own") !== token) {
      const running = Math.floor((host.timeMicros() - Number(host.hget(key, "n"))) / 1000);
      return [4, host.pttl(key), running];
    }
    host.pexpire(key, Number(lease));
    return [1, Number(host.hget(key, "n"))];
  }
  const fields = ["rs", "rh", "rb", "re", "rt"].map((field) => host.hget(key, field));
  return [3, ...fields, state];
};
