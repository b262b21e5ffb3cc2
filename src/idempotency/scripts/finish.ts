/**
 * The finish script: store a request's outcome for replay, if this token still owns the record.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "../../adapter.js";

/**
 * KEYS[1] the record. ARGV[1] the token, ARGV[2] the new state ('C' completed, 'F' a stored
 * failure), ARGV[3] status, ARGV[4] headers (JSON), ARGV[5] the body (or its last part),
 * ARGV[6] the body's encoding, ARGV[7] '1' if the body was too large to keep, ARGV[8] how long to
 * keep the record, in ms, ARGV[9] how many parts of the body the append script stored before
 * (they come first, in order; they are joined to ARGV[5] and removed).
 *
 * Returns 1 if stored (or already stored by this token: a retried finish is idempotent), 0 if
 * the lease was lost, in which case nothing is overwritten. Fails if a part is missing.
 */
const lua = `if redis.call('HGET', KEYS[1], 'own') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'st') ~= 'P' then return 1 end
local count = tonumber(ARGV[9] or '0')
local pieces = {}
for i = 1, count do
  pieces[i] = redis.call('HGET', KEYS[1], 'p' .. i)
  if not pieces[i] then return redis.error_reply('ERR a part of the stored body is missing') end
end
for i = 1, count do redis.call('HDEL', KEYS[1], 'p' .. i) end
pieces[count + 1] = ARGV[5]
redis.call('HSET', KEYS[1], 'st', ARGV[2], 'rs', ARGV[3], 'rh', ARGV[4],
  'rb', table.concat(pieces), 're', ARGV[6], 'rt', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return 1
`;

/** Stores an outcome; see the Lua above for the reply. */
export const finishScript: LockScript = {
  name: "idempotency-finish",
  lua,
  sha1: "424e313f4425e1cac7ad237ed790a579971bbb1a",
};

/** The same semantics over the in-memory store (see `edgelock/memory`). */
export const emulateFinish: ScriptEmulation = (host, [key = ""], args) => {
  const [token, state = "", status = "", headers = "", last = "", encoding = ""] = args;
  const [truncated = "", retention = "", count = "0"] = args.slice(6);
  if (host.hget(key, "own") !== token) return 0;
  if (host.hget(key, "st") !== "P") return 1;
  const pieces: string[] = [];
  for (let i = 1; i <= Number(count); i++) {
    const piece = host.hget(key, `p${i}`);
    if (piece === null) throw new Error("ERR a part of the stored body is missing");
    pieces.push(piece);
  }
  for (let i = 1; i <= Number(count); i++) host.hdel(key, `p${i}`);
  const body = pieces.join("") + last;
  host.hset(key, { st: state, rs: status, rh: headers, rb: body, re: encoding, rt: truncated });
  host.pexpire(key, Number(retention));
  return 1;
};
