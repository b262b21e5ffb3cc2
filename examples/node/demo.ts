/**
 * The edgelock demo: several workers contend for one key. Each takes the lock, does some work
 * while the lease is auto-extended, and hands the lock over on release; every grant carries a
 * larger fencing token. Runs on the embedded in-memory backend, or on Redis when REDIS_URL is set.
 *
 *   npm run demo
 *   REDIS_URL=redis://127.0.0.1:6379 npm run demo
 *
 * When Redis cannot be reached, it prints one line saying why and exits with status 1.
 */

import { createLocker, type LockAdapter, LockError, type Locker } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { memoryAdapter } from "edgelock/memory";
import { Redis } from "ioredis";

const WORKERS = 4;
const JOBS_PER_WORKER = 2;
const TTL = 300; // ms: shorter than a job, so auto-extension has to keep the lease alive

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const started = performance.now();
const log = (who: string, what: string) =>
  console.log(
    `${(performance.now() - started).toFixed(0).padStart(5)} ms  ${who.padEnd(9)} ${what}`,
  );

/** The backend: Redis when REDIS_URL is set, the in-memory store otherwise. */
function backend(): { adapter: LockAdapter; name: string; close: () => void } {
  const url = process.env.REDIS_URL;
  if (!url) return { adapter: memoryAdapter(), name: "in-memory backend", close: () => {} };
  const client = new Redis(url, { maxRetriesPerRequest: 2 });
  // Every failure to reach Redis reaches the demo as a LockUnavailableError naming its cause:
  // ioredis's own report of each reconnection attempt would only repeat it.
  client.on("error", () => {});
  return {
    adapter: ioredisAdapter(client),
    name: `Redis at ${url.replace(/\/\/[^@]*@/, "//***@")}`,
    // Not quit(): it would wait for a Redis that may never answer, reconnecting all the while.
    close: () => client.disconnect(),
  };
}

async function main(): Promise<void> {
  const { adapter, name, close } = backend();
  console.log(`edgelock demo: ${WORKERS} workers, one key, ${name}\n`);
  try {
    await contend(createLocker({ adapter, prefix: `demo-${Date.now()}` }));
  } finally {
    close();
  }
}

/** The workers take turns on the key; each grant's fence is checked by a fenced resource. */
async function contend(locker: Locker): Promise<void> {
  // A resource that rejects writes carrying a stale fence: what makes the lock safe.
  let highestFence = 0;
  const writes: number[] = [];
  const write = (fence: number) => {
    if (fence <= highestFence) throw new Error(`stale fence ${fence} rejected`);
    highestFence = fence;
    writes.push(fence);
  };

  const worker = async (id: number) => {
    const who = `worker ${id}`;
    for (let job = 1; job <= JOBS_PER_WORKER; job++) {
      const asked = performance.now();
      await locker.using(
        "report",
        TTL,
        async (lease) => {
          const waited = (performance.now() - asked).toFixed(0);
          log(who, `acquired  fence ${lease.fence} after waiting ${waited} ms`);
          await sleep(TTL + 150); // longer than the ttl: only auto-extension keeps the lock
          write(lease.fence);
          log(who, `done      job ${job}, lease never lapsed: ${!lease.signal.aborted}; releasing`);
        },
        { timeout: 10_000 },
      );
    }
  };

  const observer = await locker.tryAcquire("report", TTL);
  log("main", `tryAcquire before the workers start: ${observer ? "got it" : "held"}`);
  await observer?.release();

  await Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i + 1)));

  const busy = await locker.tryAcquire("report", TTL);
  log("main", `lock free again: ${busy !== null}`);
  await busy?.release();
  const increasing = writes.every((fence, i) => i === 0 || fence > (writes[i - 1] ?? 0));
  console.log(
    `\n${writes.length} jobs ran one at a time; fences strictly increasing: ${increasing}`,
  );
}

main().catch((error: unknown) => {
  // edgelock's errors say what happened in their message (the cause included): that line is
  // enough. Anything else is a bug of the demo's, worth its stack.
  console.error(error instanceof LockError ? `edgelock demo failed: ${error.message}` : error);
  process.exitCode = 1;
});
