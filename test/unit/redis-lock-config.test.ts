/**
 * RedisLock configuration: pip-services `ConfigParams`, plain nested objects and plain flat dotted
 * objects; every key spelling; defaults; every malformed value. The resolved connection target is
 * observed through a capturing transport, so no Redis is needed.
 */

import {
  type LockAdapter,
  LockConfigError,
  type LockError,
  type LockTransport,
  RedisLock,
  type RedisTarget,
} from "edgelock";
import { memoryAdapter } from "edgelock/memory";
import { ConfigParams } from "pip-services3-commons-node";
import { describe, expect, it } from "vitest";
import { record } from "./helpers.js";

const PASSWORD = "s3cr3t-Pa55word";

type Tuples = readonly (readonly [key: string, value: unknown])[];

/** The same configuration in the three accepted shapes. */
function shapes(tuples: Tuples): [shape: string, config: unknown][] {
  const flat: Record<string, unknown> = {};
  const nested: Record<string, unknown> = {};
  for (const [key, value] of tuples) {
    flat[key] = value;
    const parts = key.split(".");
    let node = nested;
    for (const part of parts.slice(0, -1)) {
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1] as string] = value;
  }
  return [
    ["ConfigParams", ConfigParams.fromTuples(...tuples.flat())],
    ["flat dotted object", flat],
    ["nested object", nested],
  ];
}

/** A transport for every scheme that records the targets it is asked to connect to. */
function capturing(): { transport: LockTransport; targets: RedisTarget[] } {
  const targets: RedisTarget[] = [];
  const transport: LockTransport = {
    protocols: ["redis:", "rediss:", "http:", "https:", "memory:"],
    connect: async (target) => {
      targets.push(target);
      return { adapter: memoryAdapter(), ping: async () => {}, close: async () => {} };
    },
  };
  return { transport, targets };
}

/** A `redis://` transport that connects every lock to `adapter`. */
function over(adapter: LockAdapter): LockTransport {
  return {
    protocols: ["redis:"],
    connect: async () => ({ adapter, ping: async () => {}, close: async () => {} }),
  };
}

/** Configures a lock, opens it on a capturing transport and returns the resolved target. */
async function targetOf(config: unknown): Promise<RedisTarget> {
  const { transport, targets } = capturing();
  const lock = new RedisLock({ transports: [transport] });
  lock.configure(config);
  await lock.open("trace-config");
  await lock.close("trace-config");
  expect(targets).toHaveLength(1);
  return targets[0] as RedisTarget;
}

/** The configuration error of `config`, thrown by `configure` or, at the latest, by `open`. */
async function configErrorOf(config: unknown): Promise<LockConfigError> {
  const { transport, targets } = capturing();
  const lock = new RedisLock({ transports: [transport] });
  let error: unknown;
  try {
    lock.configure(config);
    await lock.open("trace-config");
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(LockConfigError);
  expect(targets).toEqual([]);
  expect(lock.isOpen()).toBe(false);
  return error as LockConfigError;
}

describe("key spellings", () => {
  const connectionPrefixes = ["connection.", "connections.", ""];
  const credentialPrefixes = ["credential.", "credentials."];

  for (const [shape] of shapes([])) {
    describe(shape, () => {
      const build = (tuples: Tuples) =>
        shapes(tuples).find(([name]) => name === shape)?.[1] as unknown;

      for (const prefix of connectionPrefixes) {
        it(`reads ${prefix || "root-level "}host and port`, async () => {
          const target = await targetOf(
            build([
              [`${prefix}host`, "redis.example"],
              [`${prefix}port`, 6380],
            ]),
          );
          expect(target).toEqual({
            protocol: "redis:",
            host: "redis.example",
            port: 6380,
            path: "",
            username: undefined,
            password: undefined,
            db: 0,
          });
        });

        it(`reads ${prefix || "root-level "}uri`, async () => {
          const target = await targetOf(build([[`${prefix}uri`, "rediss://uri.example:6390/4"]]));
          expect(target).toMatchObject({
            protocol: "rediss:",
            host: "uri.example",
            port: 6390,
            db: 4,
          });
        });
      }

      for (const prefix of credentialPrefixes) {
        it(`reads ${prefix}username and ${prefix}password`, async () => {
          const target = await targetOf(
            build([
              ["connection.host", "localhost"],
              [`${prefix}username`, "alice"],
              [`${prefix}password`, PASSWORD],
            ]),
          );
          expect(target.username).toBe("alice");
          expect(target.password).toBe(PASSWORD);
        });
      }

      it("reads options.db_num", async () => {
        const target = await targetOf(
          build([
            ["connection.host", "localhost"],
            ["options.db_num", 7],
          ]),
        );
        expect(target.db).toBe(7);
      });
    });
  }

  it("reads the seed's example: root-level host and port through ConfigParams.fromTuples", async () => {
    const target = await targetOf(ConfigParams.fromTuples("host", "localhost", "port", 6379));
    expect(target).toMatchObject({ protocol: "redis:", host: "localhost", port: 6379, db: 0 });
  });

  it("reads keys case-insensitively in plain objects", async () => {
    const target = await targetOf({ Connection: { Host: "upper.example", PORT: "6381" } });
    expect(target).toMatchObject({ host: "upper.example", port: 6381 });
  });
});

describe("resolved target", () => {
  it("defaults to port 6379 and database 0 with only a host", async () => {
    const target = await targetOf({ connection: { host: "only-host" } });
    expect(target).toMatchObject({ protocol: "redis:", host: "only-host", port: 6379, db: 0 });
  });

  it("takes username, password, port and database from a redis:// uri", async () => {
    const target = await targetOf({
      connection: { uri: "redis://bob:pw%40x@host.example:7000/2" },
    });
    expect(target).toEqual({
      protocol: "redis:",
      host: "host.example",
      port: 7000,
      path: "/2",
      username: "bob",
      password: "pw@x",
      db: 2,
    });
  });

  it("selects the database from the path of redis://host/2", async () => {
    expect((await targetOf({ connection: { uri: "redis://host/2" } })).db).toBe(2);
    expect((await targetOf({ connection: { uri: "redis://host" } })).db).toBe(0);
    expect((await targetOf({ connection: { uri: "redis://host/" } })).db).toBe(0);
  });

  it("leaves the port to the scheme when the uri has none", async () => {
    const target = await targetOf({ connection: { uri: "rediss://tls.example" } });
    expect(target).toMatchObject({ protocol: "rediss:", host: "tls.example", port: undefined });
  });

  it("lets options.db_num override the database of the uri path", async () => {
    const target = await targetOf({
      connection: { uri: "redis://host.example/2" },
      options: { db_num: 5 },
    });
    expect(target.db).toBe(5);
  });

  it("lets configured credentials override the uri's userinfo", async () => {
    const target = await targetOf({
      connection: { uri: "redis://uri-user:uri-pass@host.example:6379" },
      credential: { username: "cred-user", password: PASSWORD },
    });
    expect(target.username).toBe("cred-user");
    expect(target.password).toBe(PASSWORD);
  });

  it("keeps the uri's username when only a password is configured", async () => {
    const target = await targetOf({
      connection: { uri: "redis://uri-user:uri-pass@host.example" },
      credential: { password: PASSWORD },
    });
    expect(target.username).toBe("uri-user");
    expect(target.password).toBe(PASSWORD);
  });

  it("prefers the uri over host and port", async () => {
    const target = await targetOf({
      connection: { uri: "redis://from-uri:7001", host: "from-host", port: 7002 },
    });
    expect(target).toMatchObject({ host: "from-uri", port: 7001 });
  });

  it("passes an https uri with its base path, database 0 and the password as the token", async () => {
    const target = await targetOf({
      connection: { uri: "https://rest.example:8443/base/path" },
      credential: { password: "rest-token" },
    });
    expect(target).toEqual({
      protocol: "https:",
      host: "rest.example",
      port: 8443,
      path: "/base/path",
      username: undefined,
      password: "rest-token",
      db: 0,
    });
  });

  it("accepts db_num 0 with an http uri", async () => {
    const target = await targetOf({
      connection: { uri: "http://rest.example" },
      options: { db_num: 0 },
    });
    expect(target).toMatchObject({ protocol: "http:", port: undefined, db: 0 });
  });

  it("chooses the transport by the uri's scheme", async () => {
    const seen: string[] = [];
    const transportFor = (protocol: string): LockTransport => ({
      protocols: [protocol],
      connect: async (target) => {
        seen.push(`${protocol}${target.protocol}`);
        return { adapter: memoryAdapter(), ping: async () => {}, close: async () => {} };
      },
    });
    const transports = ["redis:", "rediss:", "http:", "https:"].map(transportFor);
    for (const uri of ["https://a", "redis://b", "http://c", "rediss://d"]) {
      const lock = new RedisLock({ transports });
      lock.configure({ connection: { uri } });
      await lock.open(undefined);
      await lock.close(undefined);
    }
    expect(seen).toEqual(["https:https:", "redis:redis:", "http:http:", "rediss:rediss:"]);
  });

  it("keeps the last configuration when configure is called again", async () => {
    const { transport, targets } = capturing();
    const lock = new RedisLock({ transports: [transport] });
    lock.configure({ connection: { host: "first" } });
    lock.configure({ connection: { host: "second" } });
    await lock.open("t");
    await lock.close("t");
    expect(targets.map((target) => target.host)).toEqual(["second"]);
  });
});

describe("defaults", () => {
  /** A lock held elsewhere on a shared adapter, and a RedisLock counting its acquire attempts. */
  async function attemptsOf(options: Record<string, unknown> | undefined, timeout: number) {
    const inner = memoryAdapter();
    const holder = new RedisLock({ transports: [over(inner)] });
    holder.configure({ connection: { host: "holder" } });
    await holder.open("holder");
    expect(await holder.tryAcquireLock("holder", "busy", 10_000)).toBe(true);

    const recording = record(inner);
    const lock = new RedisLock({ transports: [over(recording.adapter)] });
    lock.configure({ connection: { host: "waiter" }, ...(options && { options }) });
    await lock.open("waiter");
    const error = await lock.acquireLock("waiter", "busy", 1_000, timeout).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    await lock.close("waiter");
    await holder.close("holder");
    expect((error as LockError | undefined)?.code).toBe("LOCK_TIMEOUT");
    return recording.of("acquire").length;
  }

  it("retries acquisition every 100 ms by default", async () => {
    // One attempt, then one every 100 ms until 300 ms have passed: 3 (or 4 at the boundary).
    const attempts = await attemptsOf(undefined, 300);
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(attempts).toBeLessThanOrEqual(4);
  });

  it("retries a failing request 3 times by default (counting acquire attempts)", async () => {
    const inner = memoryAdapter();
    let calls = 0;
    const failing = (failures: number): LockTransport => ({
      protocols: ["redis:"],
      connect: async () => ({
        adapter: {
          name: "flaky",
          evalScript: async (script, keys, args) => {
            if (script.name !== "acquire") return inner.evalScript(script, keys, args);
            calls++;
            if (calls <= failures) throw new Error("transient");
            return inner.evalScript(script, keys, args);
          },
        },
        ping: async () => {},
        close: async () => {},
      }),
    });

    const ok = new RedisLock({ transports: [failing(3)] });
    ok.configure({ connection: { host: "h" } });
    await ok.open("t");
    expect(await ok.tryAcquireLock("t", "default-retries", 1_000)).toBe(true);
    expect(calls).toBe(4);
    await ok.close("t");

    calls = 0;
    const failed = new RedisLock({ transports: [failing(4)] });
    failed.configure({ connection: { host: "h" } });
    await failed.open("t");
    await expect(failed.tryAcquireLock("t", "default-retries-2", 1_000)).rejects.toMatchObject({
      code: "LOCK_UNAVAILABLE",
    });
    expect(calls).toBe(4);
    await failed.close("t");
  });

  it("keeps fencing counters options.fence_retention ms, 24 h by default", async () => {
    const kept = async (options?: Record<string, unknown>) => {
      const recording = record(memoryAdapter());
      const lock = new RedisLock({ transports: [over(recording.adapter)] });
      lock.configure({ connection: { host: "h" }, ...(options && { options }) });
      await lock.open("t");
      expect(await lock.tryAcquireLock("t", "fence-retention", 1_000)).toBe(true);
      await lock.close("t");
      return recording.of("acquire")[0]?.args[1];
    };
    expect(await kept()).toBe("86400000");
    expect(await kept({ fence_retention: 60_000 })).toBe("60000");
    expect(await kept({ fence_retention: "3600000" })).toBe("3600000");
  });

  it("uses database 0 by default", async () => {
    expect((await targetOf({ connection: { host: "h" } })).db).toBe(0);
    expect((await targetOf({ connection: { uri: "https://h" } })).db).toBe(0);
  });
});

describe("malformed values", () => {
  /** [key as spelled, malformed value]. */
  const malformed: [key: string, value: unknown][] = [];
  for (const prefix of ["connection.", "connections.", ""]) {
    for (const port of ["abc", "0", "70000", "1.5", "-1", "65536", "6379x"]) {
      malformed.push([`${prefix}port`, port]);
    }
    for (const uri of [
      "not a uri",
      "localhost:6379:",
      `redis://:${PASSWORD}@host:notaport`,
      `ftp://user:${PASSWORD}@host.example`,
      "mongodb://host.example",
      "redis://host.example:99999",
      `redis://:${PASSWORD}@host.example/not-a-db`,
      `redis://us%zzer:${PASSWORD}@host.example`,
      // Parseable, but would connect to a default host or port the configuration never named.
      "redis://host.example:0",
      "rediss://host.example:00/1",
      "https://rest.example:0/base",
      "memory://name:0",
      "redis:///",
      "redis://",
      "rediss:///2",
      `redis:///?password=${PASSWORD}`,
    ]) {
      malformed.push([`${prefix}uri`, uri]);
    }
  }
  for (const value of ["-1", "abc", "0", "1.5", "-100"]) {
    malformed.push(["options.retry_timeout", value]);
  }
  for (const value of ["-1", "11", "x", "2.5"]) malformed.push(["options.retries", value]);
  for (const value of ["-1", "x", "1.5"]) malformed.push(["options.db_num", value]);
  for (const value of ["0", "999", "x", "1.5", "-1", "2147483648"]) {
    malformed.push(["options.fence_retention", value]);
  }

  for (const [key, value] of malformed) {
    for (const [shape, config] of shapes([
      ...(key.endsWith("port") ? [[key.replace("port", "host"), "localhost"] as const] : []),
      ...(key.startsWith("options.") ? [["connection.host", "localhost"] as const] : []),
      ["credential.password", PASSWORD],
      [key, value],
    ])) {
      it(`rejects ${key} = ${JSON.stringify(value)} (${shape})`, async () => {
        const error = await configErrorOf(config);
        expect(error.code).toBe("INVALID_CONFIG");
        expect(error.configKey).toBe(key);
        expect(error.message).toContain(key);
        expect(error.message).not.toContain(PASSWORD);
        expect(JSON.stringify(error.details)).not.toContain(PASSWORD);
      });
    }
  }

  for (const uri of ["http://rest.example", "https://rest.example/base"]) {
    for (const db of [1, "2", 15]) {
      it(`rejects options.db_num = ${JSON.stringify(db)} with ${uri}`, async () => {
        const error = await configErrorOf({
          connection: { uri },
          credential: { password: PASSWORD },
          options: { db_num: db },
        });
        expect(error.code).toBe("INVALID_CONFIG");
        expect(error.configKey).toBe("options.db_num");
        expect(error.message).not.toContain(PASSWORD);
      });
    }
  }

  it("rejects a non-zero db_num over http at configure, before open", () => {
    const lock = new RedisLock({ transports: [capturing().transport] });
    expect(() =>
      lock.configure(
        ConfigParams.fromTuples("connection.uri", "https://rest.example", "options.db_num", 3),
      ),
    ).toThrow(LockConfigError);
  });

  it("rejects a malformed port at configure, before open", () => {
    const lock = new RedisLock({ transports: [capturing().transport] });
    expect(() => lock.configure(ConfigParams.fromTuples("connection.port", "abc"))).toThrow(
      expect.objectContaining({ code: "INVALID_CONFIG", configKey: "connection.port" }),
    );
  });

  it("keeps the previous configuration when configure throws", async () => {
    const { transport, targets } = capturing();
    const lock = new RedisLock({ transports: [transport] });
    lock.configure({ connection: { host: "good", port: 6400 } });
    expect(() => lock.configure({ connection: { host: "bad", port: "abc" } })).toThrow();
    await lock.open("t");
    await lock.close("t");
    expect(targets[0]).toMatchObject({ host: "good", port: 6400 });
  });

  it("names what is wrong with a uri's host or port", async () => {
    const noHost = await configErrorOf({ connection: { uri: "redis:///" } });
    expect(noHost.message).toBe("connection.uri: has no host (redis://<host>:<port>)");
    const portZero = await configErrorOf({ connection: { uri: "redis://h.example:0" } });
    expect(portZero.message).toBe("connection.uri: must have a port from 1 to 65535, got 0");
    // memory://<name> names an in-process store, and no name is one shared store.
    expect(await targetOf({ connection: { uri: "memory://" } })).toMatchObject({ host: "" });
  });

  it("rejects a discovered uri with port 0 or no host, as a configured one", async () => {
    for (const uri of ["redis://found.example:0", "redis:///"]) {
      const discovery = {
        resolveOne: async () => ({ uri }),
      };
      const { transport, targets } = capturing();
      const lock = new RedisLock({ transports: [transport] });
      lock.configure({ connection: { discovery_key: "main" } });
      lock.setReferences({
        getAllLocators: () => ["*:discovery:memory:default:1.0"],
        getOneOptional: () => discovery,
      });
      const error = await lock.open("t").then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toMatchObject({ code: "INVALID_CONFIG" });
      expect(targets).toEqual([]);
    }
  });

  it("rejects a configuration that is not an object", async () => {
    const error = await configErrorOf("host=localhost");
    expect(error.code).toBe("INVALID_CONFIG");
  });

  describe("missing connection", () => {
    const missing: [name: string, config: unknown][] = [
      ["nothing configured", undefined],
      ["an empty ConfigParams", new ConfigParams()],
      ["only a port", { connection: { port: 6379 } }],
      ["only credentials and options", { credential: { password: PASSWORD }, options: {} }],
      ["an empty host", { connection: { host: "" } }],
    ];
    for (const [name, config] of missing) {
      it(`fails at open with INVALID_CONFIG given ${name}`, async () => {
        const { transport, targets } = capturing();
        const lock = new RedisLock({ transports: [transport] });
        if (config !== undefined) lock.configure(config);
        const error = await lock.open("trace-missing").then(
          () => undefined,
          (caught: unknown) => caught as LockError,
        );
        expect(error).toBeInstanceOf(LockConfigError);
        expect(error?.code).toBe("INVALID_CONFIG");
        expect((error as LockConfigError).configKey).toMatch(/^connection\./);
        expect(error?.traceId).toBe("trace-missing");
        expect(error?.message).not.toContain(PASSWORD);
        expect(targets).toEqual([]);
        expect(lock.isOpen()).toBe(false);
      });
    }
  });
});
