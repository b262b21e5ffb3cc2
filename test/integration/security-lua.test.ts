/**
 * What the scripts really touch, seen by Redis itself: every lock and idempotency script runs on
 * a real redis-server (through EVALSHA and, after a script flush, EVAL) with keys chosen to
 * confuse, while a MONITOR connection records each command the scripts run. Every key they touch
 * must be one of the KEYS of the EVAL that ran them, and the only channels they publish on are
 * the inboxes waiters named when they joined the line, with nothing secret in the message. (test/unit/security-lua.test.ts checks the same on the Lua text.)
 */
import { createLocker, IdempotencyStore, lockNames } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KEY_ARGUMENTS } from "../support/lua-keys.js";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

/** Keys that try to reach other names; ASCII only, which MONITOR prints unescaped. */
const TRICKY_KEYS = ["a{b}", "}x{", "%7B", "x:fence", "{}", "k}:free", "p:x:{k}"];

let server: RedisProcess;
let client: Redis;
let watcher: Redis;
/** What MONITOR saw: the source ("lua" for a script's commands) and the command. */
const seen: { source: string; args: string[] }[] = [];

beforeAll(async () => {
  server = await startRedisServer();
  client = new Redis(server.url, { maxRetriesPerRequest: 0 });
  watcher = new Redis(server.url);
  const monitor = await watcher.monitor();
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    seen.push({ source, args });
  });
});

afterAll(async () => {
  client?.disconnect();
  watcher?.disconnect();
  await server?.stop();
});

/** Runs every script on `key` (`round` keeps the idempotency records of two rounds apart). */
async function exercise(key: string, round: number): Promise<void> {
  const locker = createLocker({ adapter: ioredisAdapter(client), prefix: "p:x" });
  const lease = await locker.tryAcquire(key, 5_000);
  if (!lease) throw new Error(`${key} should have been free`);
  expect(await locker.tryAcquire(key, 5_000)).toBeNull();
  const waiting = locker.acquire(key, 5_000, { timeout: 5_000 }); // joins the line
  await new Promise((resolve) => setTimeout(resolve, 30));
  await lease.extend(5_000);
  await locker.inspect(key, lease.token);
  await lease.release(); // hands the lock to the waiter and announces it
  await (await waiting).release();
  const store = new IdempotencyStore(ioredisAdapter(client), { prefix: "i:x" });
  const record = await store.recordKey([key, String(round)]);
  const begun = await store.begin(record, "fp", 5_000);
  if (begun.kind !== "claimed") throw new Error(`${record} should have been new`);
  await store.renew(record, begun.token, 5_000);
  const outcome = { status: 200, headers: "", body: key, encoding: "utf8" };
  await store.finish(record, begun.token, { ...outcome, truncated: false, failed: false }, 5_000);
  const again = await store.begin(`${record}:2`, "fp", 5_000);
  if (again.kind === "claimed") await store.abandon(`${record}:2`, again.token);
}

describe("the keys the scripts touch, as Redis saw them", () => {
  it("are always among the KEYS of the EVAL that ran them", async () => {
    for (const key of TRICKY_KEYS) await exercise(key, 1); // through EVALSHA (and EVAL once)
    await client.script("FLUSH");
    for (const key of TRICKY_KEYS) await exercise(key, 2); // through EVAL after NOSCRIPT
    await new Promise((resolve) => setTimeout(resolve, 100)); // MONITOR trails the replies

    let declared: string[] | undefined;
    const inboxes = new Set<string>(); // named by acquires that joined the line (ARGV[5])
    const ran = new Set<string>();
    const problems: string[] = [];
    for (const { source, args } of seen) {
      const [name = "", ...rest] = args;
      if (source !== "lua") {
        const isScript = /^eval(sha)?$/i.test(name);
        declared = isScript ? rest.slice(2, 2 + Number(rest[1])) : undefined;
        const inbox = isScript && rest[1] === "4" ? rest[2 + 4 + 4] : undefined;
        if (inbox !== undefined) inboxes.add(inbox);
        continue;
      }
      const command = name.toUpperCase();
      ran.add(command);
      const keys = KEY_ARGUMENTS[command];
      if (declared === undefined || keys === undefined) {
        problems.push(`${args.join(" ")}: ${keys ? "no EVAL before it" : "unexpected command"}`);
        continue;
      }
      const touched = keys === "all" ? rest : keys === "first" ? rest.slice(0, 1) : [];
      for (const touchedKey of touched) {
        if (!declared.includes(touchedKey)) problems.push(`${args.join(" ")}: ${touchedKey}`);
      }
      if (command === "PUBLISH" && !inboxes.has(rest[0] ?? "")) {
        problems.push(`${args.join(" ")}: not an inbox a waiter named`);
      }
      if (command === "PUBLISH" && !/^[\w-]{12} \d+$/.test(rest[1] ?? "")) {
        problems.push(`${args.join(" ")}: more than a waiter id and a fence`);
      }
    }
    expect(problems).toEqual([]);
    // Every kind of access happened, so the check above had something to check.
    const kinds = [
      "GET",
      "SET",
      "DEL",
      "PEXPIRE",
      "PTTL",
      "HGET",
      "HSET",
      "HSETNX",
      "HDEL",
      "LPOP",
      "RPUSH",
    ];
    for (const command of [...kinds, "PUBLISH"]) {
      expect(ran, command).toContain(command);
    }
    const scripts = seen.filter(
      ({ source, args }) => source !== "lua" && /^eval$/i.test(args[0] ?? ""),
    );
    expect(scripts.length, "EVAL ran after the flush").toBeGreaterThanOrEqual(8);
  });

  it("named each lock by its own escaped key, so no tricky key reached another's names", () => {
    const lockKeys = new Set(
      seen
        .filter(({ source, args }) => source === "lua" && !/^publish$/i.test(args[0] ?? ""))
        .map(({ args }) => args[1] ?? ""),
    );
    const expected = TRICKY_KEYS.flatMap((key) => Object.values(lockNames("p:x", key)));
    for (const name of expected) expect(lockKeys).toContain(name);
    const lockLike = [...lockKeys].filter((name) => name.startsWith("p:x:"));
    expect(lockLike.filter((name) => !expected.includes(name))).toEqual([]);
  });
});
