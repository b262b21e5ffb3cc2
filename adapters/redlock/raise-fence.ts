/**
 * The script that makes a quorum's fence stick: after a quorum granted the lock, each granting
 * instance's fencing counter is raised to the largest fence any of them minted.
 *
 * Why: every instance mints `max(counter + 1, now in µs)` on its own, and the lease's fence is the
 * largest of the quorum's. The next quorum shares at least one instance with this one, but that
 * instance may have minted (and kept) a smaller fence than the largest, so the next fence could
 * come out smaller. Once a quorum holds a counter ≥ the fence handed out, any later quorum
 * includes one of them, and mints above it.
 *
 * @module
 */

import type { LockScript } from "edgelock";

/**
 * KEYS[1] the lock, KEYS[2] its fencing counter. ARGV[1] the token, ARGV[2] the fence (a decimal
 * integer), ARGV[3] how long to keep a counter that has no expiry, in ms.
 *
 * Returns 1 if this token still holds the lock and the counter is now at least the fence (it
 * keeps its expiry), 0 if the token no longer holds the lock (nothing is changed).
 */
const lua = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local counter = tonumber(redis.call('GET', KEYS[2])) or 0
if counter < tonumber(ARGV[2]) then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl < 0 then ttl = ARGV[3] end
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
end
return 1
`;

/** Raises a held lock's fencing counter to a fence; see the Lua above for the reply. */
export const raiseFenceScript: LockScript = {
  name: "redlock-raise-fence",
  lua,
  sha1: "6734521a238cc02f58d82b424d0b4e1dc44c4467",
};
