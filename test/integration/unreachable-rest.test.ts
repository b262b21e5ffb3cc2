/**
 * A Redis that cannot be reached over REST fails fast and says why. With `@upstash/redis`'s own
 * defaults (`new Redis({ url, token })`, which retries a failed fetch five times with backoff,
 * wrapped by `upstashAdapter`) and with `RedisLock`'s own client, taking a lock fails with
 * LOCK_UNAVAILABLE within a second, retries included, when the connection is refused, the host
 * is unknown, TLS fails, or the gateway's own Redis is down; the message and the cause chain
 * name the reason (what `fetch failed` hides in its cause), and the token never shows. An
 * endpoint that never answers fails within about one request deadline, with a `TimeoutError`.
 */

import { Redis as Upstash } from "@upstash/redis";
import { createLocker, RedisLock } from "edgelock";
import { gatewayRedis, type RunningGateway, startGateway } from "edgelock/gateway";
import { upstashAdapter } from "edgelock/upstash";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectUnavailable, TAKES, timedFailure } from "../support/fast-failure.js";
import { type HttpFaultProxy, startHttpFaultProxy } from "../support/http-fault-proxy.js";
import { freePort, type RedisProcess, startRedisServer } from "../support/redis-server.js";
import { makeTlsFixtures, type TlsFixtures } from "../support/tls.js";

const TOKEN = "rest-token-Hc83p-never-shown";

let server: RedisProcess;
let gateway: RunningGateway;
let tlsGateway: RunningGateway;
let fixtures: TlsFixtures;
let proxy: HttpFaultProxy;
let deadPort: number;

beforeAll(async () => {
  [server, fixtures] = await Promise.all([startRedisServer(), makeTlsFixtures()]);
  [gateway, tlsGateway] = await Promise.all([
    startGateway({ redis: server.url, tokens: [TOKEN], port: 0 }),
    startGateway({
      redis: server.url,
      tokens: [TOKEN],
      port: 0,
      tls: { cert: fixtures.cert, key: fixtures.key },
    }),
  ]);
  proxy = await startHttpFaultProxy(gateway.url);
  deadPort = await freePort();
});
afterAll(async () => {
  await proxy?.close();
  await Promise.all([gateway?.close(), tlsGateway?.close()]);
  await server?.stop();
  await fixtures?.remove();
});

/** A locker over a client with `@upstash/redis`'s defaults, as a user makes it. */
const lockerAt = (url: string) =>
  createLocker({ adapter: upstashAdapter(new Upstash({ url, token: TOKEN })) });

/** Each way an endpoint can be out of reach: its URL, and what the error must name. */
const refusals: [name: string, url: () => string, reason: RegExp, code?: string][] = [
  [
    "a refused connection",
    () => `http://127.0.0.1:${deadPort}`,
    /fetch failed: connect ECONNREFUSED 127\.0\.0\.1:\d+/,
    "ECONNREFUSED",
  ],
  [
    "an unknown host",
    () => "http://nonexistent.invalid:8079",
    /fetch failed: getaddrinfo ENOTFOUND nonexistent\.invalid/,
    "ENOTFOUND",
  ],
  [
    "a certificate nobody trusts",
    () => tlsGateway.url,
    /fetch failed: unable to verify the first certificate/,
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  ],
  [
    "HTTPS to a plain HTTP endpoint",
    () => gateway.url.replace("http:", "https:"),
    /fetch failed: .*wrong version number/,
    "ERR_SSL_WRONG_VERSION_NUMBER",
  ],
];

describe("upstash adapter, with the client's defaults, when the endpoint cannot be reached", () => {
  it.each(refusals)("fails every way of taking a lock within a second with %s", async (...row) => {
    const [, url, reason, code] = row;
    for (const [name, take] of TAKES) {
      const { error, elapsed } = await timedFailure(() => take(lockerAt(url())));
      expect(elapsed, name).toBeLessThan(1_000);
      expectUnavailable(error, {
        operation: "acquire",
        key: "job",
        reason,
        code,
        secrets: [TOKEN],
      });
    }
  });

  it("fails within a second, saying why, when the gateway's Redis is down", async () => {
    const behind = await startRedisServer();
    const redis: Redis = await gatewayRedis(behind.url);
    const front = await startGateway({ redis, tokens: [TOKEN], port: 0 });
    try {
      const refused = new Promise<void>((resolve) => {
        redis.on("error", (error: Error & { code?: string }) => {
          if (error.code === "ECONNREFUSED") resolve();
        });
      });
      await behind.kill();
      await refused; // the gateway's client tried to connect again, and was refused
      for (const [name, take] of TAKES) {
        const { error, elapsed } = await timedFailure(() => take(lockerAt(front.url)));
        expect(elapsed, name).toBeLessThan(1_000);
        expectUnavailable(error, {
          operation: "acquire",
          key: "job",
          reason: /redis is unavailable: connect ECONNREFUSED 127\.0\.0\.1:\d+/,
          secrets: [TOKEN],
        });
      }
    } finally {
      await front.close();
      redis.disconnect();
      await behind.stop();
    }
  });

  it("fails within about one request deadline, as a TimeoutError, when nothing answers", async () => {
    const locker = createLocker({
      adapter: upstashAdapter(new Upstash({ url: proxy.url, token: TOKEN }), {
        requestTimeout: 400,
      }),
    });
    proxy.inject({ kind: "hang" }, 2); // the acquire, and the release that follows its failure
    const { error, elapsed } = await timedFailure(() => locker.tryAcquire("job", 5_000));
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(800); // one deadline, not one per attempt
    expectUnavailable(error, { operation: "acquire", key: "job", reason: /timeout/i });
    expect((error as Error).cause).toMatchObject({ name: "TimeoutError" });
    expect(proxy.requests.length).toBeLessThanOrEqual(2); // the acquire was not sent again
  });
});

describe("RedisLock over REST, when the endpoint cannot be reached", () => {
  // Plain http:// is for loopback hosts only, so the unknown host is reached over https://.
  const cases = refusals.map(([name, url, reason, code]) =>
    name === "an unknown host"
      ? ([name, () => url().replace("http:", "https:"), reason, code] as const)
      : ([name, url, reason, code] as const),
  );

  it.each(cases)("fails to open within a second with %s", async (_, url, reason, code) => {
    const lock = new RedisLock();
    lock.configure({ connection: { uri: url() }, credential: { password: TOKEN } });
    const { error, elapsed } = await timedFailure(() => lock.open("trace"));
    expect(elapsed).toBeLessThan(1_000);
    expectUnavailable(error, { operation: "open", reason, code, secrets: [TOKEN] });
  });
});
