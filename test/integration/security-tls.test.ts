/**
 * `rediss://` and `https://` with certificate verification on, against throwaway certificates
 * made with openssl: a redis-server serving TLS, and the gateway serving HTTPS (`startGateway`'s
 * `tls`, and the CLI's `--tls-cert` / `--tls-key`).
 *
 * - ioredis over `rediss://` locks when it trusts the CA (`tls: { ca }`), and fails with
 *   LOCK_UNAVAILABLE, taking no lock, when it trusts another CA;
 * - the real `@upstash/redis` client over `https://` and `RedisLock` over `https://` and
 *   `rediss://` lock when Node trusts the CA (`NODE_EXTRA_CA_CERTS`, in a child process), and
 *   fail, taking no lock, when it trusts another.
 */
import { execFile } from "node:child_process";
import { request } from "node:https";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createLocker, LockError } from "edgelock";
import { type RunningGateway, startGateway } from "edgelock/gateway";
import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGatewayCli } from "../support/gateway-cli.js";
import {
  makeTlsFixtures,
  startTlsRedisServer,
  type TlsFixtures,
  type TlsRedis,
} from "../support/tls.js";

const TOKEN = "tls-token-Xw93";
const root = fileURLToPath(new URL("../..", import.meta.url));

let fixtures: TlsFixtures;
let redis: TlsRedis;
/** A plain connection to the TLS server's plain port, to see what the clients left behind. */
let direct: Redis;
let gateway: RunningGateway;
const clients: Redis[] = [];

beforeAll(async () => {
  fixtures = await makeTlsFixtures();
  redis = await startTlsRedisServer(fixtures);
  direct = new Redis(redis.server.url, { maxRetriesPerRequest: 0 });
  gateway = await startGateway({
    redis: redis.server.url,
    tokens: [TOKEN],
    port: 0,
    tls: { cert: fixtures.cert, key: fixtures.key },
  });
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  direct?.disconnect();
  await gateway?.close();
  await redis?.server.stop();
  await fixtures?.remove();
});

/** An ioredis client over `url` that trusts `ca` and gives up at the first failure. */
function tlsClient(url: string, ca: Buffer): Redis {
  const client = new Redis(url, {
    tls: { ca },
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  clients.push(client);
  return client;
}

describe("ioredis over rediss://", () => {
  it("locks with certificate verification on, when it trusts the CA", async () => {
    const client = tlsClient(redis.tlsUrl, fixtures.ca);
    const locker = createLocker({ adapter: ioredisAdapter(client) });
    const lease = await locker.tryAcquire("tls:ioredis", 5_000);
    expect(lease?.fence).toBeGreaterThan(0);
    expect(await direct.get("edgelock:{tls:ioredis}")).toBe(lease?.token);
    expect(await lease?.release()).toBe(true);
    const socket = (client as unknown as { stream: { authorized?: boolean; encrypted?: boolean } })
      .stream;
    expect(socket.encrypted).toBe(true);
    expect(socket.authorized).toBe(true);
  });

  it.each([
    ["another CA", () => tlsClient(redis.tlsUrl, fixtures.wrongCa)],
    ["no CA (the system's)", () => tlsClient(redis.tlsUrl, undefined as unknown as Buffer)],
    [
      "plain TCP to the TLS port",
      () => {
        const client = new Redis(redis.tlsUrl.replace("rediss:", "redis:"), {
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        client.on("error", () => {});
        clients.push(client);
        return client;
      },
    ],
  ])("fails with LOCK_UNAVAILABLE and takes no lock with %s", async (_, make) => {
    const client = make();
    const locker = createLocker({
      adapter: ioredisAdapter(client, { commandTimeout: 1_000 }),
      retries: 0,
    });
    const error = await locker.tryAcquire("tls:refused", 5_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockError);
    expect(error).toMatchObject({ code: "LOCK_UNAVAILABLE" });
    expect(await direct.exists("edgelock:{tls:refused}")).toBe(0);
  });
});

/** Runs the TLS client child trusting `caFile`; resolves what it printed. */
async function childWithCa(
  caFile: string,
): Promise<Record<string, { ok: boolean; code?: unknown; message?: string }>> {
  const job = { restUrl: gateway.url, restToken: TOKEN, redissUrl: redis.tlsUrl };
  const { stdout } = await promisify(execFile)(
    `${root}node_modules/.bin/tsx`,
    [`${root}test/support/tls-client.ts`],
    {
      cwd: root,
      timeout: 20_000,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        NODE_EXTRA_CA_CERTS: caFile,
        EDGELOCK_TLS_JOB: JSON.stringify(job),
      },
    },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
}

describe("https:// and RedisLock", () => {
  it("the gateway serves HTTPS only, with a certificate clients must verify", async () => {
    expect(gateway.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const untrusted = await fetch(gateway.url, { method: "POST", body: "[]" }).catch(
      (e: Error) => e,
    );
    expect(String((untrusted as Error).cause)).toMatch(/certificate|UNABLE_TO_VERIFY/i);
    const plain = await fetch(gateway.url.replace("https:", "http:"), {
      method: "POST",
      body: "[]",
    })
      .then((response) => response.status)
      .catch(() => "refused");
    expect(plain).not.toBe(200);
  });

  it("locks through @upstash/redis over https://, and RedisLock over https:// and rediss://, when Node trusts the CA", async () => {
    const results = await childWithCa(fixtures.caFile);
    expect(results).toEqual({
      upstash: { ok: true, fence: expect.any(Number) },
      redisLockHttps: { ok: true, fence: 1 },
      redisLockRediss: { ok: true, fence: 1 },
    });
  });

  it("fails each of them with LOCK_UNAVAILABLE, taking no lock, when Node trusts another CA", async () => {
    const left = await direct.keys("edgelock:{tls:*");
    if (left.length > 0) await direct.del(...left); // the fences of the runs before
    const results = await childWithCa(fixtures.wrongCaFile);
    for (const way of ["upstash", "redisLockHttps", "redisLockRediss"]) {
      expect(results[way], way).toMatchObject({ ok: false, code: "LOCK_UNAVAILABLE" });
    }
    expect(await direct.keys("edgelock:{tls:*")).toEqual([]);
  });
});

describe("edgelock gateway --tls-cert --tls-key", () => {
  it("serves HTTPS with the given files", async () => {
    const cli = await startGatewayCli(
      ["--redis", redis.server.url, "--tls-cert", fixtures.certFile, "--tls-key", fixtures.keyFile],
      { EDGELOCK_GATEWAY_TOKENS: TOKEN },
    );
    try {
      expect(cli.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const reply = await new Promise<string>((resolve, reject) => {
        const call = request(
          cli.url,
          { method: "POST", ca: fixtures.ca, headers: { authorization: `Bearer ${TOKEN}` } },
          (response) => {
            let text = "";
            response.on("data", (chunk: Buffer) => {
              text += chunk.toString();
            });
            response.on("end", () => resolve(text));
          },
        );
        call.on("error", reject);
        call.end('["ping"]');
      });
      expect(JSON.parse(reply)).toEqual({ result: "PONG" });
    } finally {
      expect(await cli.stop()).toBe(0);
    }
  });
});
