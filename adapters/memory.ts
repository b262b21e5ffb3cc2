/**
 * The embedded in-memory backend: the lock's full semantics (expiry, fencing, wake-ups on
 * release) inside one process, with no Redis. For demos, tests and single-process apps; it passes
 * the same conformance suite as the Redis transports.
 *
 * @module
 */

import {
  checkFunction,
  describeValue,
  emulationOf,
  InvalidArgumentError,
  type LockAdapter,
  type LockScript,
  type LockTransport,
  type ScriptHost,
  type Unsubscribe,
} from "edgelock";

/** Options of {@link memoryAdapter}. */
export interface MemoryAdapterOptions {
  /**
   * The clock the store expires keys by, in milliseconds (monotonic).
   * @default performance.now
   */
  clock?: () => number;
}

/** A stored value (a string, a hash or a list) and when it expires on the store's clock (`Infinity`: never). */
interface Entry {
  value: string | Map<string, string> | string[];
  expiresAt: number;
}

/** How many script runs pass between sweeps of expired keys. */
const SWEEP_EVERY = 1024;

/**
 * A key-value store with Redis's expiry semantics and an in-process pub/sub, which runs the core's
 * scripts through their TypeScript twins, one at a time, atomically.
 */
class MemoryStore implements ScriptHost {
  readonly #entries = new Map<string, Entry>();
  readonly #channels = new Map<string, Set<(message: string) => void>>();
  readonly #clock: () => number;
  #runs = 0;

  constructor(clock: () => number) {
    this.#clock = clock;
  }

  run(script: LockScript, keys: readonly string[], args: readonly string[]): unknown {
    if (++this.#runs % SWEEP_EVERY === 0) this.#sweep();
    return emulationOf(script)(this, keys, args);
  }

  get(key: string): string | null {
    const value = this.#live(key)?.value;
    if (value !== undefined && typeof value !== "string") throw wrongType();
    return value ?? null;
  }

  set(key: string, value: string, ttl: number): void {
    this.#entries.set(key, { value, expiresAt: this.#clock() + ttl });
  }

  del(key: string): boolean {
    return this.#live(key) !== undefined && this.#entries.delete(key);
  }

  pexpire(key: string, ttl: number): boolean {
    const entry = this.#live(key);
    if (entry) entry.expiresAt = this.#clock() + ttl;
    return entry !== undefined;
  }

  pttl(key: string): number {
    const entry = this.#live(key);
    if (!entry) return -2;
    if (entry.expiresAt === Number.POSITIVE_INFINITY) return -1;
    return Math.max(0, Math.ceil(entry.expiresAt - this.#clock()));
  }

  timeMicros(): number {
    return Math.floor((performance.timeOrigin + performance.now()) * 1000);
  }

  publish(channel: string, message: string): void {
    for (const listener of this.#channels.get(channel) ?? [])
      queueMicrotask(() => listener(message));
  }

  subscribe(channel: string, listener: (message: string) => void): Unsubscribe {
    const listeners = this.#channels.get(channel) ?? new Set();
    const entry = (message: string) => listener(message);
    listeners.add(entry);
    this.#channels.set(channel, listeners);
    return () => {
      listeners.delete(entry);
      if (listeners.size === 0 && this.#channels.get(channel) === listeners) {
        this.#channels.delete(channel);
      }
    };
  }

  hget(key: string, field: string): string | null {
    return this.#hash(key)?.get(field) ?? null;
  }

  hset(key: string, fields: Readonly<Record<string, string>>): void {
    let hash = this.#hash(key);
    if (!hash) {
      hash = new Map();
      this.#entries.set(key, { value: hash, expiresAt: Number.POSITIVE_INFINITY });
    }
    for (const [field, value] of Object.entries(fields)) hash.set(field, value);
  }

  hdel(key: string, field: string): boolean {
    const hash = this.#hash(key);
    const deleted = hash?.delete(field) ?? false;
    if (hash?.size === 0) this.#entries.delete(key);
    return deleted;
  }

  rpush(key: string, value: string): void {
    const list = this.#list(key);
    if (list) list.push(value);
    else this.#entries.set(key, { value: [value], expiresAt: Number.POSITIVE_INFINITY });
  }

  lpush(key: string, value: string): void {
    const list = this.#list(key);
    if (list) list.unshift(value);
    else this.#entries.set(key, { value: [value], expiresAt: Number.POSITIVE_INFINITY });
  }

  lpop(key: string): string | null {
    const list = this.#list(key);
    const first = list?.shift() ?? null;
    if (list?.length === 0) this.#entries.delete(key);
    return first;
  }

  lrem(key: string, value: string): void {
    const list = this.#list(key);
    const at = list?.indexOf(value) ?? -1;
    if (at >= 0) list?.splice(at, 1);
    if (list?.length === 0) this.#entries.delete(key);
  }

  subscribers(channel: string): number {
    return this.#channels.get(channel)?.size ?? 0;
  }

  /** The hash under `key`, if any (WRONGTYPE for another type). */
  #hash(key: string): Map<string, string> | undefined {
    const value = this.#live(key)?.value;
    if (value !== undefined && !(value instanceof Map)) throw wrongType();
    return value;
  }

  /** The list under `key`, if any (WRONGTYPE for another type). */
  #list(key: string): string[] | undefined {
    const value = this.#live(key)?.value;
    if (value !== undefined && !Array.isArray(value)) throw wrongType();
    return value;
  }

  /** The entry under `key` if it has not expired; expired ones are dropped on sight. */
  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt <= this.#clock()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #sweep(): void {
    for (const key of this.#entries.keys()) this.#live(key);
  }
}

/** The error Redis gives for an operation on a key of the wrong type. */
function wrongType(): Error {
  return new Error("WRONGTYPE Operation against a key holding the wrong kind of value");
}

/**
 * Creates an in-memory backend. Locks are shared by every locker built on the same adapter, so
 * share one adapter per process (or per test).
 *
 * @example
 * ```ts
 * import { createLocker } from "edgelock";
 * import { memoryAdapter } from "edgelock/memory";
 *
 * const locker = createLocker({ adapter: memoryAdapter() });
 * ```
 *
 * @throws {InvalidArgumentError} if `options` is not an object, or `clock` not a function.
 */
export function memoryAdapter(options: MemoryAdapterOptions = {}): LockAdapter {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(
      "options",
      `options must be an object, got ${describeValue(options)}`,
    );
  }
  const { clock } = options;
  const store = new MemoryStore(
    clock === undefined ? () => performance.now() : checkFunction<() => number>(clock, "clock"),
  );
  return {
    name: "memory",
    evalScript: async (script, keys, args) => store.run(script, keys, args),
    subscribe: async (channel, listener) => store.subscribe(channel, listener),
    subscriptions: "counted",
  };
}

/** The shared in-memory stores of `memory://<name>` connections, by name. */
const namedStores = new Map<string, LockAdapter>();

/**
 * The `memory://` transport of `RedisLock`: every component configured with the same
 * `memory://<name>` URI shares one in-process store, so they contend as they would on Redis.
 *
 * @example
 * ```ts
 * lock.configure({ connection: { uri: "memory://tests" } });
 * ```
 */
export const memoryTransport: LockTransport = {
  protocols: ["memory:"],
  async connect(target) {
    let adapter = namedStores.get(target.host);
    if (!adapter) {
      adapter = memoryAdapter();
      namedStores.set(target.host, adapter);
    }
    return { adapter, ping: async () => {}, close: async () => {} };
  },
};
