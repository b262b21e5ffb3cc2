/**
 * Which arguments of each Redis command the lock and idempotency scripts may use are key names:
 * shared by the static check of the scripts' Lua and the MONITOR check of what they touched.
 */
export const KEY_ARGUMENTS: Readonly<Record<string, "first" | "all" | "none">> = {
  GET: "first",
  SET: "first",
  DEL: "all",
  EXISTS: "all",
  PEXPIRE: "first",
  PTTL: "first",
  HGET: "first",
  HSET: "first",
  HSETNX: "first",
  HMGET: "first",
  HDEL: "first",
  LPOP: "first",
  LPUSH: "first",
  LREM: "first",
  RPUSH: "first",
  TIME: "none",
  // A channel, not a key: PUBLISH is not routed by slot, so its name may come from ARGV.
  PUBLISH: "none",
  // A sharded channel: routed by slot like a key, but the scripts name it in the lock's own slot
  // (the inbox `<prefix>:{<key>}:inbox:<id>`), so it never leaves the slot of the declared keys.
  SPUBLISH: "none",
  // `PUBSUB NUMSUB|SHARDNUMSUB <channel>`: a count of a channel's subscribers, no key.
  PUBSUB: "none",
};
