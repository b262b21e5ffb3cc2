/**
 * RedisLock references: the connection resolved through an IDiscovery (`resolveOne`) and the
 * credentials through an ICredentialStore (`lookup`), with the real pip-services 3 classes and
 * with pip-services-4-style components that answer through promises.
 */

import {
  LockConfigError,
  type LockError,
  type LockTransport,
  RedisLock,
  type RedisTarget,
} from "edgelock";
import { memoryAdapter } from "edgelock/memory";
import { ConfigParams, Descriptor, References } from "pip-services3-commons-node";
import { MemoryCredentialStore, MemoryDiscovery } from "pip-services3-components-node";
import { describe, expect, it } from "vitest";

const PASSWORD = "st0re-Pa55word";

const DISCOVERY = new Descriptor("pip-services", "discovery", "memory", "default", "1.0");
const STORE = new Descriptor("pip-services", "credential-store", "memory", "default", "1.0");

function discovery(...tuples: unknown[]): MemoryDiscovery {
  return new MemoryDiscovery(ConfigParams.fromTuples(...tuples));
}

function store(...tuples: unknown[]): MemoryCredentialStore {
  return new MemoryCredentialStore(ConfigParams.fromTuples(...tuples));
}

/** A transport for every scheme that records the targets it is asked to connect to. */
function capturing(): { transport: LockTransport; targets: RedisTarget[] } {
  const targets: RedisTarget[] = [];
  const transport: LockTransport = {
    protocols: ["redis:", "rediss:", "http:", "https:"],
    connect: async (target) => {
      targets.push(target);
      return { adapter: memoryAdapter(), ping: async () => {}, close: async () => {} };
    },
  };
  return { transport, targets };
}

/** Opens a lock with `config` and `references` and returns the target it connected to. */
async function targetOf(
  config: unknown,
  references: unknown,
  context: unknown = "trace-refs",
): Promise<RedisTarget> {
  const { transport, targets } = capturing();
  const lock = new RedisLock({ transports: [transport] });
  lock.configure(config);
  lock.setReferences(references);
  await lock.open(context as string);
  expect(lock.isOpen()).toBe(true);
  await lock.close(context as string);
  expect(targets).toHaveLength(1);
  return targets[0] as RedisTarget;
}

/** What `open` rejects with, checking that nothing was connected. */
async function openError(config: unknown, references: unknown): Promise<unknown> {
  const { transport, targets } = capturing();
  const lock = new RedisLock({ transports: [transport] });
  lock.configure(config);
  lock.setReferences(references);
  const error = await lock.open("trace-refs").then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeDefined();
  expect(targets).toEqual([]);
  expect(lock.isOpen()).toBe(false);
  return error;
}

/** A pip-services-4-style component: methods take (context, key) and return promises. */
interface Calls {
  resolveOne: unknown[][];
  lookup: unknown[][];
}

function promiseDiscovery(
  connections: Record<string, unknown>,
  calls: Calls = { resolveOne: [], lookup: [] },
) {
  return {
    resolveOne(context: unknown, key: string): Promise<unknown> {
      calls.resolveOne.push([context, key]);
      return Promise.resolve(connections[key] ?? null);
    },
  };
}

function promiseStore(
  credentials: Record<string, unknown>,
  calls: Calls = { resolveOne: [], lookup: [] },
) {
  return {
    lookup(context: unknown, key: string): Promise<unknown> {
      calls.lookup.push([context, key]);
      return Promise.resolve(credentials[key] ?? null);
    },
  };
}

describe("with pip-services 3 MemoryDiscovery", () => {
  it("resolves host and port through connection.discovery_key", async () => {
    const refs = References.fromTuples(DISCOVERY, discovery("key1", "host=disc.example;port=6390"));
    const target = await targetOf(
      ConfigParams.fromTuples("connection.discovery_key", "key1"),
      refs,
    );
    expect(target).toMatchObject({ protocol: "redis:", host: "disc.example", port: 6390, db: 0 });
  });

  it("resolves a uri through connections.discovery_key", async () => {
    const refs = References.fromTuples(
      DISCOVERY,
      discovery("key2", "uri=rediss://u1:p1@disc-uri.example:6391/3"),
    );
    const target = await targetOf({ connections: { discovery_key: "key2" } }, refs);
    expect(target).toMatchObject({
      protocol: "rediss:",
      host: "disc-uri.example",
      port: 6391,
      username: "u1",
      password: "p1",
      db: 3,
    });
  });

  it("resolves through a root-level discovery_key, as the seed's flat keys allow", async () => {
    const refs = References.fromTuples(DISCOVERY, discovery("key3", "host=root.example"));
    const target = await targetOf(ConfigParams.fromTuples("discovery_key", "key3"), refs);
    expect(target).toMatchObject({ host: "root.example", port: 6379 });
  });

  it("prefers the discovered connection over configured host and port", async () => {
    const refs = References.fromTuples(DISCOVERY, discovery("key1", "host=disc.example;port=6390"));
    const target = await targetOf(
      { connection: { discovery_key: "key1", host: "configured.example", port: 7000 } },
      refs,
    );
    expect(target).toMatchObject({ host: "disc.example", port: 6390 });
  });

  it("prefers the discovered connection over a configured uri", async () => {
    const refs = References.fromTuples(DISCOVERY, discovery("key1", "host=disc.example;port=6390"));
    const target = await targetOf(
      { connection: { discovery_key: "key1", uri: "redis://configured.example:7000" } },
      refs,
    );
    expect(target).toMatchObject({ host: "disc.example", port: 6390 });
  });

  it("uses the configured connection when discovery knows no such key", async () => {
    const refs = References.fromTuples(DISCOVERY, discovery("other", "host=other.example"));
    const target = await targetOf(
      { connection: { discovery_key: "missing", host: "fallback.example", port: 6399 } },
      refs,
    );
    expect(target).toMatchObject({ host: "fallback.example", port: 6399 });
  });

  it("uses the configured uri when no discovery service is referenced", async () => {
    const target = await targetOf(
      { connection: { discovery_key: "key1", uri: "redis://fallback-uri.example:6398" } },
      References.fromTuples(),
    );
    expect(target).toMatchObject({ host: "fallback-uri.example", port: 6398 });
  });

  it("fails with INVALID_CONFIG naming connection.discovery_key when no discovery is referenced", async () => {
    for (const references of [References.fromTuples(), undefined, null]) {
      const error = (await openError(
        { connection: { discovery_key: "key1" } },
        references,
      )) as LockConfigError;
      expect(error).toBeInstanceOf(LockConfigError);
      expect(error.code).toBe("INVALID_CONFIG");
      expect(error.configKey).toBe("connection.discovery_key");
      expect(error.traceId).toBe("trace-refs");
    }
  });

  it("fails with INVALID_CONFIG naming connection.discovery_key for an unknown key", async () => {
    const refs = References.fromTuples(DISCOVERY, discovery("key1", "host=disc.example"));
    const error = (await openError(
      ConfigParams.fromTuples("connection.discovery_key", "nope"),
      refs,
    )) as LockConfigError;
    expect(error).toBeInstanceOf(LockConfigError);
    expect(error.code).toBe("INVALID_CONFIG");
    expect(error.configKey).toBe("connection.discovery_key");
  });

  it("ignores a discovery service registered under another version than 1.0", async () => {
    const refs = References.fromTuples(
      new Descriptor("pip-services", "discovery", "memory", "default", "2.0"),
      discovery("key1", "host=v2.example"),
    );
    const error = (await openError({ connection: { discovery_key: "key1" } }, refs)) as LockError;
    expect(error.code).toBe("INVALID_CONFIG");
  });

  it("checks discovered values like configured ones", async () => {
    const refs = References.fromTuples(DISCOVERY, discovery("key1", "host=disc.example;port=abc"));
    const error = (await openError({ connection: { discovery_key: "key1" } }, refs)) as LockError;
    expect(error).toBeInstanceOf(LockConfigError);
    expect(error.code).toBe("INVALID_CONFIG");
  });

  it("rejects a discovered http uri when db_num is not 0", async () => {
    const refs = References.fromTuples(DISCOVERY, discovery("rest", "uri=https://rest.example"));
    const error = (await openError(
      { connection: { discovery_key: "rest" }, options: { db_num: 2 } },
      refs,
    )) as LockConfigError;
    expect(error.code).toBe("INVALID_CONFIG");
    expect(error.configKey).toBe("options.db_num");
  });

  it("rejects with the error a discovery reports through its callback", async () => {
    const failure = new Error("discovery is down");
    const failing = {
      resolveOne(
        _context: unknown,
        _key: string,
        callback: (err: unknown, result?: unknown) => void,
      ) {
        setTimeout(() => callback(failure, null), 1);
      },
    };
    const refs = References.fromTuples(DISCOVERY, failing);
    expect(await openError({ connection: { discovery_key: "key1" } }, refs)).toBe(failure);
  });

  it("resolves through a callback-style discovery that answers asynchronously", async () => {
    const delayed = {
      resolveOne(
        _context: unknown,
        _key: string,
        callback: (err: unknown, result?: unknown) => void,
      ) {
        setTimeout(() => callback(null, ConfigParams.fromTuples("host", "later.example")), 5);
      },
    };
    const refs = References.fromTuples(DISCOVERY, delayed);
    const target = await targetOf({ connection: { discovery_key: "key1" } }, refs);
    expect(target.host).toBe("later.example");
  });
});

describe("with pip-services 3 MemoryCredentialStore", () => {
  it("resolves username and password through credential.store_key", async () => {
    const refs = References.fromTuples(
      STORE,
      store("cred1", `username=alice;password=${PASSWORD}`),
    );
    const target = await targetOf(
      ConfigParams.fromTuples("connection.host", "localhost", "credential.store_key", "cred1"),
      refs,
    );
    expect(target).toMatchObject({ host: "localhost", username: "alice", password: PASSWORD });
  });

  it("resolves through credentials.store_key", async () => {
    const refs = References.fromTuples(STORE, store("cred1", `username=bob;password=${PASSWORD}`));
    const target = await targetOf(
      { connection: { host: "localhost" }, credentials: { store_key: "cred1" } },
      refs,
    );
    expect(target).toMatchObject({ username: "bob", password: PASSWORD });
  });

  it("lets stored credentials override the uri's userinfo", async () => {
    const refs = References.fromTuples(
      STORE,
      store("cred1", `username=carol;password=${PASSWORD}`),
    );
    const target = await targetOf(
      {
        connection: { uri: "redis://uri-user:uri-pass@h.example" },
        credential: { store_key: "cred1" },
      },
      refs,
    );
    expect(target).toMatchObject({ username: "carol", password: PASSWORD });
  });

  it("uses the configured password when the store knows no such key", async () => {
    const refs = References.fromTuples(STORE, store("other", "password=other"));
    const target = await targetOf(
      { connection: { host: "h" }, credential: { store_key: "missing", password: PASSWORD } },
      refs,
    );
    expect(target.password).toBe(PASSWORD);
  });

  it("fails with INVALID_CONFIG naming credential.store_key when no store is referenced", async () => {
    const error = (await openError(
      { connection: { host: "h" }, credential: { store_key: "cred1" } },
      References.fromTuples(),
    )) as LockConfigError;
    expect(error).toBeInstanceOf(LockConfigError);
    expect(error.code).toBe("INVALID_CONFIG");
    expect(error.configKey).toBe("credential.store_key");
  });

  it("fails with INVALID_CONFIG naming credential.store_key for an unknown key", async () => {
    const refs = References.fromTuples(STORE, store("cred1", `password=${PASSWORD}`));
    const error = (await openError(
      { connection: { host: "h" }, credentials: { store_key: "nope" } },
      refs,
    )) as LockConfigError;
    expect(error).toBeInstanceOf(LockConfigError);
    expect(error.code).toBe("INVALID_CONFIG");
    expect(error.configKey).toBe("credential.store_key");
    expect(error.message).not.toContain(PASSWORD);
  });

  it("resolves discovery and credentials together, whatever the order of the calls", async () => {
    const refs = References.fromTuples(
      DISCOVERY,
      discovery("key1", "uri=redis://both.example:6500"),
      STORE,
      store("cred1", `username=dave;password=${PASSWORD}`),
    );
    const { transport, targets } = capturing();
    const lock = new RedisLock({ transports: [transport] });
    lock.setReferences(refs);
    lock.configure({ connection: { discovery_key: "key1" }, credential: { store_key: "cred1" } });
    await lock.open("t");
    await lock.close("t");
    expect(targets[0]).toMatchObject({
      host: "both.example",
      port: 6500,
      username: "dave",
      password: PASSWORD,
    });
  });
});

describe("with pip-services-4-style components (promises)", () => {
  it("resolves the connection and credentials from components in the same References", async () => {
    const calls: Calls = { resolveOne: [], lookup: [] };
    const refs = References.fromTuples(
      new Descriptor("my-app", "discovery", "custom", "default", "1.0"),
      promiseDiscovery(
        { key4: ConfigParams.fromTuples("host", "p4.example", "port", 6600) },
        calls,
      ),
      new Descriptor("my-app", "credential-store", "custom", "default", "1.0"),
      promiseStore({ cred4: { username: "erin", password: PASSWORD } }, calls),
    );
    const target = await targetOf(
      { connection: { discovery_key: "key4" }, credential: { store_key: "cred4" } },
      refs,
    );
    expect(target).toMatchObject({
      host: "p4.example",
      port: 6600,
      username: "erin",
      password: PASSWORD,
    });
    expect(calls.resolveOne.map(([, key]) => key)).toEqual(["key4"]);
    expect(calls.lookup.map(([, key]) => key)).toEqual(["cred4"]);
  });

  it("mixes a pip-services 3 discovery with a pip-services-4-style store", async () => {
    const refs = References.fromTuples(
      DISCOVERY,
      discovery("key1", "host=mixed.example"),
      STORE,
      promiseStore({ cred4: { password: PASSWORD } }),
    );
    const target = await targetOf(
      { connection: { discovery_key: "key1" }, credential: { store_key: "cred4" } },
      refs,
    );
    expect(target).toMatchObject({ host: "mixed.example", password: PASSWORD });
  });

  it("uses the configured connection when the promise resolves to nothing", async () => {
    const refs = References.fromTuples(DISCOVERY, promiseDiscovery({}));
    const target = await targetOf(
      { connection: { discovery_key: "none", host: "fallback.example" } },
      refs,
    );
    expect(target.host).toBe("fallback.example");
  });

  it("fails with INVALID_CONFIG when the promise resolves to nothing and nothing is configured", async () => {
    const refs = References.fromTuples(DISCOVERY, promiseDiscovery({}), STORE, promiseStore({}));
    const discoveryError = (await openError(
      { connection: { discovery_key: "none" } },
      refs,
    )) as LockConfigError;
    expect(discoveryError.configKey).toBe("connection.discovery_key");
    const storeError = (await openError(
      { connection: { host: "h" }, credential: { store_key: "none" } },
      refs,
    )) as LockConfigError;
    expect(storeError.configKey).toBe("credential.store_key");
  });

  it("rejects with the error of a rejected promise", async () => {
    const failure = new Error("store is down");
    const refs = References.fromTuples(STORE, {
      lookup: (_context: unknown, _key: string) => Promise.reject(failure),
    });
    expect(
      await openError({ connection: { host: "h" }, credential: { store_key: "cred" } }, refs),
    ).toBe(failure);
  });
});

describe("the context passed to open", () => {
  it("reaches resolveOne and lookup as their first argument (trace id string)", async () => {
    const calls: Calls = { resolveOne: [], lookup: [] };
    const refs = References.fromTuples(
      DISCOVERY,
      promiseDiscovery({ key: { host: "h.example" } }, calls),
      STORE,
      promiseStore({ cred: { password: PASSWORD } }, calls),
    );
    await targetOf(
      { connection: { discovery_key: "key" }, credential: { store_key: "cred" } },
      refs,
      "trace-123",
    );
    expect(calls.resolveOne).toEqual([["trace-123", "key"]]);
    expect(calls.lookup).toEqual([["trace-123", "cred"]]);
  });

  it("reaches a pip-services 3 MemoryDiscovery's resolveOne as its correlation id", async () => {
    const seen: unknown[] = [];
    const real = discovery("key1", "host=real.example");
    const original = real.resolveOne.bind(real);
    real.resolveOne = (correlationId, key, callback) => {
      seen.push(correlationId);
      original(correlationId, key, callback);
    };
    const target = await targetOf(
      { connection: { discovery_key: "key1" } },
      References.fromTuples(DISCOVERY, real),
      "trace-456",
    );
    expect(target.host).toBe("real.example");
    expect(seen).toEqual(["trace-456"]);
  });

  it("reaches resolveOne and lookup as their first argument (context object)", async () => {
    const calls: Calls = { resolveOne: [], lookup: [] };
    const refs = References.fromTuples(
      DISCOVERY,
      promiseDiscovery({ key: { host: "h.example" } }, calls),
      STORE,
      promiseStore({ cred: { password: PASSWORD } }, calls),
    );
    const context = { getTraceId: () => "trace-789", get: (name: string) => `ctx:${name}` };
    await targetOf(
      { connection: { discovery_key: "key" }, credential: { store_key: "cred" } },
      refs,
      context,
    );
    // A pip-services 4 component reads its IContext (ContextResolver calls context.get(...)),
    // so it must receive the caller's context, not a string extracted from it.
    expect(calls.resolveOne[0]?.[0]).toBe(context);
    expect(calls.lookup[0]?.[0]).toBe(context);
  });
});
