/// <reference types="node" />
/**
 * A child process that locks over TLS with the CA the environment trusts: run it with
 * `NODE_EXTRA_CA_CERTS=<ca file>` (the way to trust a private CA in Node, whose `fetch` takes no
 * agent) and `EDGELOCK_TLS_JOB` = JSON `{ restUrl, restToken, redissUrl }`. It tries three
 * ways in, and prints one JSON line: per way, `{ ok: true, fence }` or `{ ok: false, code, message }`.
 *
 * - `@upstash/redis` over `https://` with `edgelock/upstash`;
 * - `RedisLock` over `https://` (the REST transport);
 * - `RedisLock` over `rediss://` (the ioredis transport).
 */
import { Redis } from "@upstash/redis";
import { createLocker, type Lease, RedisLock } from "edgelock";
import { upstashAdapter } from "edgelock/upstash";

interface Job {
  restUrl: string;
  restToken: string;
  redissUrl: string;
}

type Outcome = { ok: true; fence: number } | { ok: false; code: unknown; message: string };

const job = JSON.parse(process.env.EDGELOCK_TLS_JOB ?? "{}") as Job;

/** The outcome of `attempt`, as JSON-friendly data. */
async function outcomeOf(attempt: () => Promise<number>): Promise<Outcome> {
  try {
    return { ok: true, fence: await attempt() };
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: string };
    return { ok: false, code, message: message ?? String(error) };
  }
}

/** Takes and releases `key` with a RedisLock over `uri`; resolves 1 (RedisLock shows no fence). */
async function viaRedisLock(uri: string, password: string | undefined, key: string) {
  const lock = new RedisLock();
  lock.configure({ connection: { uri }, credential: { password }, options: { retries: 0 } });
  try {
    await lock.open("tls");
    if (!(await lock.tryAcquireLock("tls", key, 5_000))) throw new Error(`${key} was held`);
    await lock.releaseLock("tls", key);
    return 1;
  } finally {
    await lock.close("tls");
  }
}

const results = {
  upstash: await outcomeOf(async () => {
    const client = new Redis({
      url: job.restUrl,
      token: job.restToken,
      retry: { retries: 0 },
      enableTelemetry: false,
    });
    const locker = createLocker({ adapter: upstashAdapter(client), retries: 0 });
    const lease: Lease | null = await locker.tryAcquire("tls:upstash", 5_000);
    if (!lease) throw new Error("tls:upstash was held");
    await lease.release();
    return lease.fence;
  }),
  redisLockHttps: await outcomeOf(() => viaRedisLock(job.restUrl, job.restToken, "tls:https")),
  redisLockRediss: await outcomeOf(() => viaRedisLock(job.redissUrl, undefined, "tls:rediss")),
};
process.stdout.write(`${JSON.stringify(results)}\n`);
// After a failed connect, ioredis waits its disconnectTimeout (2 s) before letting go of the
// socket; nothing is left to do here.
process.exit(0);
