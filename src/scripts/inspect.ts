/**
 * The inspect script: read a lock's state without changing it and without revealing its token.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../adapter.js";

/**
 * KEYS[1] the lock, KEYS[2] its fencing counter. ARGV[1] a token to compare with ('' for none).
 * Returns `{held, pttl, fence, mine}`: `held` 1 if anyone holds the lock, `pttl` its remaining ms
 * (-2 when free, -1 without expiry), `fence` the last fence minted for the key (0 if none is
 * known), `mine` 1 if the given token is the holder.
 */
const lua = `local holder = redis.call('GET', KEYS[1])
local fence = tonumber(redis.call('GET', KEYS[2])) or 0
if not holder then return {0, -2, fence, 0} end
local mine = 0
if holder == ARGV[1] then mine = 1 end
return {1, redis.call('PTTL', KEYS[1]), fence, mine}
`;

/** Reads a lock's state; see the Lua above for the reply. */
export const inspectScript: LockScript = {
  name: "inspect",
  lua,
  sha1: "62d9530fc65d16a0373a4a70ad6db0dde88fa61b",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateInspect: ScriptEmulation = (host, [lock = "", fence = ""], [token = ""]) => {
  const holder = host.get(lock);
  const minted = Number(host.get(fence) ?? 0);
  if (holder === null) return [0, -2, minted, 0];
  return [1, host.pttl(lock), minted, holder === token ? 1 : 0];
};
