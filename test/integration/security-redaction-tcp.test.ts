/**
 * No secret in anything edgelock reports over TCP: every failure path of the ioredis adapter, of
 * `RedisLock` over `redis://`, and of the Lambda wrappers and `withIdempotency` on top of them is
 * provoked against real redis-servers (wrong password, unreachable host, a Redis that echoes the
 * command, NOSCRIPT then a refused EVAL, a paused server, wrong key types under a held lease),
 * and every error, hook argument and console line is searched for the lock tokens and passwords,
 * through the whole cause chain (`util.inspect` with hidden properties, JSON, stack).
 */

import {
  createLocker,
  type LockAdapter,
  LockError,
  type Locker,
  RedisLock,
  withIdempotency,
} from "edgelock";
import { ioredisAdapter, ioredisTransport } from "edgelock/ioredis";
import { lambdaWithIdempotency, lambdaWithLock } from "edgelock/lambda";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect } from "vitest";
import { freePort, type RedisProcess, startRedisServer } from "../support/redis-server.js";
import {
  captureOutput,
  describeNoSecret,
  exposure,
  freshKey,
  type RedactionScenario,
  TokenRecorder,
} from "../support/secrets.js";

const PASSWORD = "pw-Zq81c-never-shown";
const WRONG_PASSWORD = "pw-wrong-4Tx9m-never-shown";

const recorder = new TokenRecorder();
const secrets = () => [PASSWORD, WRONG_PASSWORD, ...recorder.tokens];
const output = captureOutput();

/** A Redis with ACL users `locker` (everything) and `noeval` (no EVAL), both with PASSWORD. */
let main: RedisProcess;
/** A Redis with EVALSHA disabled: it answers "unknown command ... with args beginning with: ...". */
let echoing: RedisProcess;
let admin: Redis;
const clients: Redis[] = [];

async function addUsers(port: number): Promise<void> {
  const client = new Redis({ port, maxRetriesPerRequest: 0 });
  await client.call("ACL", "SETUSER", "locker", "on", `>${PASSWORD}`, "~*", "&*", "+@all");
  await client.call("ACL", "SETUSER", "noeval", "on", `>${PASSWORD}`, "~*", "&*", "+@all", "-eval");
  client.disconnect();
}

beforeAll(async () => {
  [main, echoing] = await Promise.all([
    startRedisServer(),
    startRedisServer({ args: ["--rename-command", "EVALSHA", ""] }),
  ]);
  await Promise.all([addUsers(main.port), addUsers(echoing.port)]);
  admin = new Redis({ port: main.port, maxRetriesPerRequest: 0 });
});

afterAll(async () => {
  output.restore();
  for (const client of [admin, ...clients]) client?.disconnect();
  await Promise.all([main?.stop(), echoing?.stop()]);
});

/** An ioredis client that gives up at once when it cannot connect (no reconnect loop). */
function client(port: number, user: string, password: string): Redis {
  const created = new Redis({
    port,
    username: user,
    password,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  created.on("error", () => {}); // ioredis's own events are not edgelock's to redact
  clients.push(created);
  return created;
}

/** A locker over `redis`, recording its tokens, with no retries and short deadlines. */
function lockerOver(redis: Redis, commandTimeout = 500): { locker: Locker; adapter: LockAdapter } {
  const adapter = recorder.adapter(ioredisAdapter(redis, { commandTimeout }));
  return { locker: createLocker({ adapter, retries: 0 }), adapter };
}

/** The rejection of `promise`, which must reject with a LockError of `code`. */
async function failure(promise: Promise<unknown>, code = "LOCK_UNAVAILABLE"): Promise<unknown> {
  const error = await promise.then(
    () => expect.unreachable("expected a rejection"),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(LockError);
  expect(error).toMatchObject({ code });
  return error;
}

const key = freshKey;

const scenarios: RedactionScenario[] = [
  [
    "ioredis: wrong password",
    true,
    async () => {
      const { locker } = lockerOver(client(main.port, "locker", WRONG_PASSWORD));
      return [await failure(locker.tryAcquire(key(), 5_000))];
    },
  ],
  [
    "ioredis: unreachable host",
    true,
    async () => {
      const { locker } = lockerOver(client(await freePort(), "locker", PASSWORD));
      return [await failure(locker.acquire(key(), 5_000, { timeout: 1_000 }))];
    },
  ],
  [
    "ioredis: Redis echoes the command (EVALSHA disabled)",
    true,
    async () => {
      const redis = client(echoing.port, "locker", PASSWORD);
      // The control: what Redis and ioredis do with the token when nothing redacts it.
      const raw = await redis
        .evalsha("0".repeat(40), 1, "k", "el1.raw-token-echoed")
        .catch((e) => e);
      expect(exposure(raw)).toContain("el1.raw-token-echoed");
      const { locker } = lockerOver(redis);
      const error = await failure(locker.tryAcquire(key(), 5_000));
      expect((error as Error).message).toMatch(/unknown command 'evalsha'/);
      return [error];
    },
  ],
  [
    "ioredis: NOSCRIPT, then EVAL refused by ACL",
    true,
    async () => {
      await admin.script("FLUSH");
      const { locker } = lockerOver(client(main.port, "noeval", PASSWORD));
      const error = await failure(locker.tryAcquire(key(), 5_000));
      expect((error as Error).message).toMatch(/NOPERM/);
      return [error];
    },
  ],
  [
    "ioredis: command timeout (server paused)",
    true,
    async () => {
      const redis = client(echoing.port, "locker", PASSWORD);
      await redis.ping();
      const { locker } = lockerOver(redis, 200);
      echoing.pause();
      try {
        const error = await failure(locker.tryAcquire(key(), 5_000));
        expect((error as Error).message).toMatch(/did not answer within 200 ms/);
        return [error];
      } finally {
        echoing.resume();
      }
    },
  ],
  [
    "ioredis: WRONGTYPE at acquire",
    true,
    async () => {
      const name = key();
      await admin.hset(`edgelock:{${name}}`, "f", "v");
      const { locker } = lockerOver(client(main.port, "locker", PASSWORD));
      return [await failure(locker.tryAcquire(name, 5_000))];
    },
  ],
  [
    "ioredis: extend, release, keep-alive and inspect failing under a held lease",
    true,
    async () => {
      const { locker } = lockerOver(client(main.port, "locker", PASSWORD));
      const spoil = async (name: string) => {
        await admin.del(`edgelock:{${name}}`);
        await admin.hset(`edgelock:{${name}}`, "f", "v");
      };
      const held = key();
      const lease = await locker.tryAcquire(held, 5_000);
      if (!lease) throw new Error("the lock should have been free");
      await spoil(held);
      const reported: unknown[] = [
        await failure(lease.extend()),
        await failure(lease.release()),
        await failure(locker.inspect(held, lease.token)),
      ];
      const kept = key();
      const releaseErrors: unknown[] = [];
      let signal: AbortSignal | undefined;
      const outcome = await locker
        .using(
          kept,
          60,
          async (using) => {
            signal = using.signal;
            await spoil(kept); // every extension from now on fails
            await new Promise((resolve) => setTimeout(resolve, 150));
          },
          { onReleaseError: (error) => releaseErrors.push(error) },
        )
        .catch((error: unknown) => error);
      expect(outcome).toMatchObject({ code: "LOCK_LOST" });
      expect(releaseErrors).toEqual([expect.objectContaining({ code: "LOCK_UNAVAILABLE" })]);
      return [...reported, outcome, signal?.reason, ...releaseErrors];
    },
  ],
  [
    "RedisLock: redis:// with a wrong password, in the URI and as credential.password",
    false,
    async () => {
      const reported: unknown[] = [];
      for (const config of [
        { connection: { uri: `redis://locker:${WRONG_PASSWORD}@127.0.0.1:${main.port}` } },
        {
          connection: { uri: `redis://127.0.0.1:${main.port}` },
          credential: { username: "locker", password: WRONG_PASSWORD },
        },
      ]) {
        const lock = new RedisLock({ transports: [recorder.transport(ioredisTransport)] });
        lock.configure(config);
        reported.push(await failure(lock.open("trace-1")));
        const viaCallback = await new Promise((resolve) => lock.open("trace-2", resolve));
        reported.push(viaCallback);
      }
      return reported;
    },
  ],
  [
    "RedisLock: redis:// to an unreachable host, with a password",
    false,
    async () => {
      const lock = new RedisLock({ transports: [recorder.transport(ioredisTransport)] });
      lock.configure({ connection: { uri: `redis://:${PASSWORD}@127.0.0.1:${await freePort()}` } });
      return [await failure(lock.open("trace"))];
    },
  ],
  [
    "RedisLock: redis:// to a Redis that echoes the command",
    true,
    async () => {
      const lock = new RedisLock({ transports: [recorder.transport(ioredisTransport)] });
      lock.configure({
        connection: { uri: `redis://locker:${PASSWORD}@127.0.0.1:${echoing.port}` },
        options: { retries: 0 },
      });
      await lock.open("trace");
      try {
        const error = await failure(lock.tryAcquireLock("trace", key(), 5_000));
        const viaCallback = await new Promise((resolve) =>
          lock.acquireLock("trace", key(), 5_000, 100, resolve),
        );
        expect(viaCallback).toMatchObject({ code: "LOCK_UNAVAILABLE", traceId: "trace" });
        return [error, viaCallback];
      } finally {
        await lock.close("trace");
      }
    },
  ],
  [
    "lambdaWithLock and lambdaWithIdempotency: store echoing the command",
    true,
    async () => {
      const { locker, adapter } = lockerOver(client(echoing.port, "locker", PASSWORD));
      const context = { getRemainingTimeInMillis: () => 10_000, functionName: "fn" };
      const locked = lambdaWithLock(
        locker,
        () => key(),
        async () => "ran",
      );
      const idempotent = lambdaWithIdempotency(async () => "ran", {
        adapter,
        key: () => key(),
        scope: "redaction",
      });
      return [await failure(locked({}, context)), await failure(idempotent({}, context))];
    },
  ],
  [
    "withIdempotency: store echoing the command",
    true,
    async () => {
      const { adapter } = lockerOver(client(echoing.port, "locker", PASSWORD));
      const run = withIdempotency(async () => "ran", {
        adapter,
        key: () => key(),
        scope: "redaction",
      });
      return [await failure(run())];
    },
  ],
];

describeNoSecret("no secret in what edgelock reports over TCP", scenarios, {
  recorder,
  output,
  secrets,
});
