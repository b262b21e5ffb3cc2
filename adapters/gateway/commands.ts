/**
 * Which commands the gateway refuses, before anything reaches Redis.
 *
 * Every request shares one Redis connection, so a command that changes the state of that
 * connection (`SELECT`, `MULTI`, `SUBSCRIBE`, `CLIENT REPLY`, ...) would leak into every other
 * request, and a blocking command (`BLPOP`, `XREAD ... BLOCK`, `WAIT`, ...) would stall all of
 * them. Both are refused. Upstash does not serve blocking commands or `WATCH` over REST either.
 * `/multi-exec` is the way to run a transaction.
 *
 * A read-only token may run only the commands listed in {@link READ_ONLY_COMMANDS}.
 *
 * @module
 */

/** A command as the gateway runs it: the name first, then the arguments, all strings. */
export type Command = readonly [name: string, ...args: string[]];

/** What a token may do. */
export type Access = "read-write" | "read-only";

/** Commands that change the state of the shared connection, with the reason shown to callers. */
const CONNECTION_STATE = new Map<string, string>([
  ["select", "use another Redis database or a second gateway instead"],
  ["multi", "use the /multi-exec endpoint"],
  ["exec", "use the /multi-exec endpoint"],
  ["discard", "use the /multi-exec endpoint"],
  ["watch", "WATCH is not supported over REST; use a Lua script"],
  ["unwatch", "WATCH is not supported over REST; use a Lua script"],
  ["subscribe", "pub/sub is not supported by this gateway"],
  ["psubscribe", "pub/sub is not supported by this gateway"],
  ["ssubscribe", "pub/sub is not supported by this gateway"],
  ["unsubscribe", "pub/sub is not supported by this gateway"],
  ["punsubscribe", "pub/sub is not supported by this gateway"],
  ["sunsubscribe", "pub/sub is not supported by this gateway"],
  ["monitor", "MONITOR is not supported by this gateway"],
  ["hello", "the gateway speaks RESP2 to Redis"],
  ["auth", "authenticate to the gateway with a token; it authenticates to Redis itself"],
  ["reset", "it would reset the shared connection"],
  ["quit", "it would close the shared connection"],
  ["shutdown", "it would stop Redis for every caller"],
  ["sync", "replication commands are not supported"],
  ["psync", "replication commands are not supported"],
  ["replconf", "replication commands are not supported"],
  ["readonly", "cluster connection modes are not supported"],
  ["readwrite", "cluster connection modes are not supported"],
  ["asking", "cluster connection modes are not supported"],
]);

/** `CLIENT` subcommands that only read; every other one changes or ends a connection. */
const CLIENT_READS = new Set(["id", "info", "list", "getname", "getredir", "trackinginfo", "help"]);

/** Commands that wait for data or for replicas, stalling the shared connection. */
const BLOCKING = new Set([
  "blpop",
  "brpop",
  "brpoplpush",
  "blmove",
  "blmpop",
  "bzpopmin",
  "bzpopmax",
  "bzmpop",
  "wait",
  "waitaof",
]);

/**
 * The commands a read-only token may run (lower case; `"name subcommand"` for container
 * commands). Anything not listed counts as a write, including `EVAL` and `EVALSHA`: use
 * `EVAL_RO` / `EVALSHA_RO`, which Redis itself keeps from writing.
 */
export const READ_ONLY_COMMANDS: ReadonlySet<string> = new Set([
  // strings and bits
  "get",
  "getrange",
  "substr",
  "mget",
  "strlen",
  "getbit",
  "bitcount",
  "bitpos",
  "bitfield_ro",
  "lcs",
  // keys
  "exists",
  "type",
  "ttl",
  "pttl",
  "expiretime",
  "pexpiretime",
  "dump",
  "keys",
  "scan",
  "randomkey",
  "dbsize",
  "touch",
  "object encoding",
  "object freq",
  "object idletime",
  "object refcount",
  "memory usage",
  // hashes
  "hget",
  "hmget",
  "hgetall",
  "hkeys",
  "hvals",
  "hlen",
  "hexists",
  "hstrlen",
  "hrandfield",
  "hscan",
  // lists
  "lrange",
  "lindex",
  "llen",
  "lpos",
  // sets
  "scard",
  "smembers",
  "sismember",
  "smismember",
  "srandmember",
  "sscan",
  "sinter",
  "sintercard",
  "sunion",
  "sdiff",
  // sorted sets
  "zcard",
  "zcount",
  "zlexcount",
  "zrange",
  "zrangebyscore",
  "zrangebylex",
  "zrevrange",
  "zrevrangebyscore",
  "zrevrangebylex",
  "zrank",
  "zrevrank",
  "zscore",
  "zmscore",
  "zrandmember",
  "zscan",
  "zdiff",
  "zinter",
  "zunion",
  "zintercard",
  // streams, geo, hyperloglog
  "xrange",
  "xrevrange",
  "xlen",
  "xread",
  "xpending",
  "xinfo stream",
  "xinfo groups",
  "xinfo consumers",
  "geopos",
  "geodist",
  "geohash",
  "georadius_ro",
  "georadiusbymember_ro",
  "geosearch",
  "pfcount",
  "sort_ro",
  // scripts that Redis keeps read-only
  "eval_ro",
  "evalsha_ro",
  "fcall_ro",
  "script exists",
  // server
  "ping",
  "echo",
  "time",
]);

/**
 * `text` with ASCII letters lower-cased and every other character kept, which is how Redis folds
 * the case of command names and options. `String.prototype.toLowerCase` folds more: `"ſ"` (long
 * s) upper-cases to `"S"`, so a Unicode-folded check would see `"ſelect"` while Redis ran
 * `SELECT`.
 *
 * @example
 * ```ts
 * asciiLowerCase("SeLeCt"); // "select"
 * asciiLowerCase("ſelect"); // "ſelect" (Redis: unknown command)
 * ```
 */
function asciiLowerCase(text: string): string {
  return text.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/** `text` with ASCII letters upper-cased and every other character kept; see {@link asciiLowerCase}. */
export function asciiUpperCase(text: string): string {
  return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}

/** True when an `XREAD`/`XREADGROUP` has a `BLOCK` option before `STREAMS`. */
function hasBlockOption(args: readonly string[], from: number): boolean {
  for (let i = from; i < args.length; i++) {
    const word = asciiLowerCase(args[i] ?? "");
    if (word === "streams") return false;
    if (word === "block") return true;
  }
  return false;
}

/** Why `command` must not run on the shared connection, or `undefined` if it may. */
function blockedReason(name: string, command: Command): string | undefined {
  const stateReason = CONNECTION_STATE.get(name);
  if (stateReason !== undefined) return stateReason;
  if (name === "client") {
    const sub = asciiLowerCase(command[1] ?? "");
    return CLIENT_READS.has(sub) ? undefined : "it would change a Redis connection";
  }
  if (BLOCKING.has(name)) return "blocking commands are not supported over REST";
  const blockingRead =
    (name === "xread" && hasBlockOption(command, 1)) ||
    (name === "xreadgroup" && hasBlockOption(command, 4));
  return blockingRead ? "blocking commands are not supported over REST" : undefined;
}

/** True when a read-only token may run `command`. */
function isReadOnly(name: string, command: Command): boolean {
  if (READ_ONLY_COMMANDS.has(name)) return true;
  const sub = command[1];
  return sub !== undefined && READ_ONLY_COMMANDS.has(`${name} ${asciiLowerCase(sub)}`);
}

/**
 * Why the gateway refuses `command` for a token with `access`, as the error text to answer with
 * (status 400), or `undefined` when the command may run.
 *
 * @example
 * ```ts
 * commandRejection(["blpop", "queue", "0"], "read-write");
 * // "ERR 'blpop' is not allowed through this gateway: blocking commands are not supported over REST"
 * commandRejection(["set", "k", "v"], "read-only");
 * // "NOPERM this token is read-only and has no permissions to run the 'set' command"
 * commandRejection(["get", "k"], "read-only"); // undefined
 * ```
 */
export function commandRejection(command: Command, access: Access): string | undefined {
  const name = asciiLowerCase(command[0]);
  const reason = blockedReason(name, command);
  if (reason !== undefined) {
    return `ERR '${name}' is not allowed through this gateway: ${reason}`;
  }
  if (access === "read-only" && !isReadOnly(name, command)) {
    return `NOPERM this token is read-only and has no permissions to run the '${name}' command`;
  }
  return undefined;
}
