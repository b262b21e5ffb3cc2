/**
 * The abandon script: give up a record this token is still processing, so a retry runs afresh.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../../adapter.js";

/**
 * KEYS[1] the record. ARGV[1] the token. Returns 1 if this token's in-progress record was
 * deleted, 0 otherwise (a rejected duplicate can never delete the owner's record).
 */
const lua = `if redis.call('HGET', KEYS[1], 'st') ~= 'P' then return 0 end
if redis.call('HGET', KEYS[1], 'own') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

/** Abandons an idempotency record in progress; see the Lua above for the reply. */
export const abandonScript: LockScript = {
  name: "idempotency-abandon",
  lua,
  sha1: "51b098491003948a0d0491e3d598b2833e02c71b",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateAbandon: ScriptEmulation = (host, [key = ""], [token = ""]) => {
  if (host.hget(key, "st") !== "P" || host.hget(key, "own") !== token) return 0;
  host.del(key);
  return 1;
};
