/**
 * A Redis that cannot be reached over TCP fails fast and says why. With ioredis's own defaults
 * (`new Redis(url)`, wrapped by `ioredisAdapter`) and with `RedisLock`'s own client, taking a
 * lock fails with LOCK_UNAVAILABLE within a second, retries included, when the connection is
 * refused, the host is unknown, the password is wrong or missing, or TLS fails; the message and
 * the cause chain name the reason, and no password shows. A server that accepts connections but
 * never answers fails within about one command deadline, not once per retry, and the error says
 * the client never got connected.
 */

import { createLocker, RedisLock } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { expectUnavailable, TAKES, timedFailure } from "../support/fast-failure.js";
import { freePort, type RedisProcess, startRedisServer } from "../support/redis-server.js";
import { startTcpFaultProxy } from "../support/tcp-fault-proxy.js";
import {
  makeTlsFixtures,
  startTlsRedisServer,
  type TlsFixtures,
  type TlsRedis,
} from "../support/tls.js";

const PASSWORD = "pw-unreachable-Vq47k";
const WRONG_PASSWORD = "pw-wrong-Lm20x";
const SECRETS = [PASSWORD, WRONG_PASSWORD];

/** A Redis that requires PASSWORD (set once it is up: the harness pings without one). */
let secured: RedisProcess;
let plain: RedisProcess;
let fixtures: TlsFixtures;
let tls: TlsRedis;
/** A port nothing listens on. */
let deadPort: number;
const clients: Redis[] = [];
const locks: RedisLock[] = [];

/** A client with ioredis's defaults, as a user makes it (no `error` listener). */
function defaultClient(url: string): Redis {
  const client = new Redis(url);
  clients.push(client);
  return client;
}

beforeAll(async () => {
  [secured, plain, fixtures] = await Promise.all([
    startRedisServer(),
    startRedisServer(),
    makeTlsFixtures(),
  ]);
  tls = await startTlsRedisServer(fixtures);
  const admin = new Redis(secured.url);
  await admin.config("SET", "requirepass", PASSWORD);
  admin.disconnect();
  deadPort = await freePort();
});
beforeEach(() => {
  // Clients with no `error` listener of their own: ioredis prints every failed attempt.
  vi.spyOn(console, "error").mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
  plain.resume();
  for (const client of clients.splice(0)) client.disconnect();
});
afterAll(async () => {
  await Promise.all(locks.map((lock) => lock.close().catch(() => {})));
  await Promise.all([secured?.stop(), plain?.stop(), tls?.server.stop()]);
  await fixtures?.remove();
});

/** A way Redis can refuse a client: its URL, and what the error must name. */
type Refusal = [name: string, url: () => string, reason: RegExp, code?: string];

/** The refusals that say the server cannot be used as configured. */
const refusals: Refusal[] = [
  [
    "a refused connection",
    () => `redis://127.0.0.1:${deadPort}`,
    /connect ECONNREFUSED 127\.0\.0\.1:\d+/,
    "ECONNREFUSED",
  ],
  [
    "an unknown host",
    () => "redis://nonexistent.invalid:6379",
    /ENOTFOUND nonexistent\.invalid/,
    "ENOTFOUND",
  ],
  ["a wrong password", () => `redis://:${WRONG_PASSWORD}@127.0.0.1:${secured.port}`, /WRONGPASS/],
  ["a missing password", () => secured.url, /NOAUTH/],
  [
    "a certificate nobody trusts",
    () => tls.tlsUrl,
    /self-signed certificate in certificate chain/,
    "SELF_SIGNED_CERT_IN_CHAIN",
  ],
];

/**
 * A server that resets the connection: the next attempt might connect (a flaky network resets
 * connections too), so the adapter waits for it up to the deadline; `open` fails at the first.
 */
const plainToTls = () => `redis://127.0.0.1:${tls.tlsPort}`;

describe("ioredis adapter, with the client's defaults, when Redis cannot be reached", () => {
  it.each(refusals)("fails every way of taking a lock within a second with %s", async (...row) => {
    const [, url, reason, code] = row;
    for (const [name, take] of TAKES) {
      const locker = createLocker({ adapter: ioredisAdapter(defaultClient(url())) });
      // First while the client makes its first attempt, then once it knows it cannot connect.
      for (const round of ["connecting", "known down"]) {
        const { error, elapsed } = await timedFailure(() => take(locker));
        expect(elapsed, `${name}, ${round}`).toBeLessThan(1_000);
        expectUnavailable(error, {
          operation: "acquire",
          key: "job",
          reason,
          code,
          secrets: SECRETS,
        });
      }
    }
  });

  it("listens to each client once, however many adapters share it, and keeps ioredis's report", async () => {
    const client = defaultClient(`redis://127.0.0.1:${deadPort}`);
    const ready = client.listenerCount("ready"); // ioredis's own, while it connects
    const lockers = [1, 2, 3].map(() => createLocker({ adapter: ioredisAdapter(client) }));
    expect(client.listenerCount("error")).toBe(1);
    expect(client.listenerCount("ready")).toBe(ready + 1);
    for (const locker of lockers) await timedFailure(() => locker.tryAcquire("job", 5_000));
    // With no listener of their own, users still see what ioredis prints for one.
    const printed = vi.mocked(console.error).mock.calls.map((call) => call.join(" "));
    expect(printed.join("\n")).toMatch(
      /\[ioredis\] Unhandled error event: Error: connect ECONNREFUSED/,
    );
  });

  it("leaves nothing held when the failed commands are sent after all, once it reconnects", async () => {
    const server = await startRedisServer();
    const direct = defaultClient(server.url);
    try {
      const client = defaultClient(server.url);
      const locker = createLocker({ adapter: ioredisAdapter(client) });
      await (await locker.tryAcquire("warm-up", 1_000))?.release(); // the scripts are cached
      // The server now wants a password the client does not have, and drops its connection.
      await direct.config("SET", "requirepass", PASSWORD);
      await direct.client("KILL", "ID", String(await client.client("ID")));
      const { error, elapsed } = await timedFailure(() => locker.tryAcquire("queued", 60_000));
      expect(elapsed).toBeLessThan(1_000);
      expectUnavailable(error, { operation: "acquire", key: "queued", reason: /NOAUTH/ });
      await direct.config("SET", "requirepass", "");
      await client.ping(); // answered once reconnected, after the commands ioredis kept queued
      expect(Number(await direct.get("edgelock:{queued}:fence"))).toBeGreaterThan(0); // ran...
      expect(await direct.exists("edgelock:{queued}")).toBe(0); // ...and was released after
    } finally {
      await server.stop();
    }
  });

  it("rides out a reset connection to a live server", async () => {
    const proxy = await startTcpFaultProxy(plain.port);
    try {
      const locker = createLocker({ adapter: ioredisAdapter(defaultClient(proxy.url)) });
      await locker.inspect("warm-up");
      proxy.reset();
      const lease = await locker.tryAcquire("blip", 5_000);
      expect(lease).not.toBeNull();
      expect(await lease?.release()).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it("fails within about one deadline, saying it never got connected, when no attempt fails outright", async () => {
    const cases: [string, () => string, RegExp][] = [
      ["a paused server", () => plain.url, /\(ioredis status "connect"\)/],
      [
        "TLS to a plain server",
        () => `rediss://127.0.0.1:${plain.port}`,
        /status "connecting"; the TLS handshake never completed: does the server speak TLS\?\)/,
      ],
      ["plain TCP to the TLS port", plainToTls, /; last error: (read|write) ECONNRESET\)/],
    ];
    for (const [name, url, state] of cases) {
      if (name === "a paused server") plain.pause();
      const client = defaultClient(url());
      const locker = createLocker({ adapter: ioredisAdapter(client, { commandTimeout: 400 }) });
      const { error, elapsed } = await timedFailure(() => locker.tryAcquire("job", 5_000));
      plain.resume();
      expect(elapsed, name).toBeGreaterThanOrEqual(390);
      expect(elapsed, name).toBeLessThan(800); // one deadline, not one per attempt
      const reason = /Redis did not answer within 400 ms: not connected \(ioredis status "\w+"/;
      expectUnavailable(error, { operation: "acquire", key: "job", reason });
      expect((error as Error).message, name).toMatch(state);
    }
  });
});

describe("RedisLock over redis://, when Redis cannot be reached", () => {
  /** A RedisLock configured for `uri`, closed after the tests. */
  const lockFor = (uri: string) => {
    const lock = new RedisLock();
    lock.configure({ connection: { uri } });
    locks.push(lock);
    return lock;
  };

  const refusalsToOpen: Refusal[] = [
    ...refusals,
    ["plain TCP to the TLS port", plainToTls, /(read|write) ECONNRESET/, "ECONNRESET"],
  ];

  it.each(refusalsToOpen)("fails to open within a second with %s", async (_, url, reason, code) => {
    const { error, elapsed } = await timedFailure(() => lockFor(url()).open("trace"));
    expect(elapsed).toBeLessThan(1_000);
    expectUnavailable(error, { operation: "open", reason, code, secrets: SECRETS });
  });

  it("fails to open within about one deadline when the server never answers", async () => {
    plain.pause();
    const opening = timedFailure(() => lockFor(plain.url).open("trace"));
    const { error, elapsed } = await Promise.race([
      opening,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("still opening")), 5_000),
      ),
    ]);
    plain.resume();
    expect(elapsed).toBeLessThan(3_000);
    expectUnavailable(error, { operation: "open", reason: /did not answer within 2000 ms/ });
  });

  it("fails at once, saying why, when Redis goes away after opening", async () => {
    const server = await startRedisServer();
    try {
      const lock = lockFor(server.url);
      await lock.open("trace");
      expect(await lock.tryAcquireLock("trace", "before", 5_000)).toBe(true);
      await server.kill();
      const { error, elapsed } = await timedFailure(() =>
        lock.tryAcquireLock("trace", "job", 5_000),
      );
      expect(elapsed).toBeLessThan(1_000);
      expectUnavailable(error, {
        operation: "acquire",
        key: "job",
        reason: /connect ECONNREFUSED 127\.0\.0\.1:\d+/,
        code: "ECONNREFUSED",
      });
    } finally {
      await server.stop();
    }
  });
});
