/**
 * `RedisLock`: the pip-services lock component edgelock was created from (see the seed document),
 * on top of the lock core. Drop-in for pip-services users: `configure`, `setReferences`,
 * `open`/`close`/`isOpen`, `tryAcquireLock`, `acquireLock`, `releaseLock`, with promises (as in
 * pip-services 4) or a trailing callback (as in pip-services 3).
 *
 * Unlike the reference implementation, every acquisition has its own token: `releaseLock` releases
 * only a lock this instance acquired, and `options.retry_timeout` really sets the retry interval.
 *
 * @module
 */

import {
  LockError,
  LockNotOpenedError,
  LockTimeoutError,
  LockUnavailableError,
} from "../errors.js";
import type { Lease } from "../lease.js";
import { createLocker, type Locker } from "../locker.js";
import { now, sleep } from "../time.js";
import { checkDuration } from "../validate.js";
import { type RedisLockSettings, readSettings } from "./config.js";
import { checkDatabase, resolveTarget } from "./target.js";
import { type LockConnection, type LockTransport, transportFor } from "./transport.js";

/**
 * The call's context: a trace id (pip-services 3's correlation id) or a pip-services 4 context
 * with `getTraceId()`. It is carried into the details of every error.
 */
export type LockContext = string | { getTraceId(): string | null | undefined } | null | undefined;

/** A pip-services 3 style callback. */
export type LockCallback<T> = (error: unknown, result?: T) => void;

/** Options of the {@link RedisLock} constructor. */
export interface RedisLockOptions {
  /**
   * Transports to use before the built-in ones, which are imported on demand by URI scheme. In
   * bundles (Workers, Vercel Edge, bundled Lambda), pass the ones you use:
   * `[upstashTransport]` from `edgelock/upstash`, `[ioredisTransport]` from `edgelock/ioredis`.
   */
  transports?: readonly LockTransport[];
}

/**
 * A distributed lock component over Redis (TCP via ioredis, REST via `@upstash/redis`, or
 * `memory://` in process), configured the pip-services way.
 *
 * @example
 * ```ts
 * import { ConfigParams } from "pip-services3-commons-node";
 * import { RedisLock } from "edgelock";
 *
 * const lock = new RedisLock();
 * lock.configure(ConfigParams.fromTuples("connection.host", "localhost", "connection.port", 6379));
 * await lock.open("123");
 * if (await lock.tryAcquireLock("123", "key1", 3000)) {
 *   // Processing...
 *   await lock.releaseLock("123", "key1");
 * }
 * await lock.close("123");
 * ```
 */
export class RedisLock {
  readonly #transports: readonly LockTransport[];
  #settings: RedisLockSettings = readSettings({});
  #references: unknown;
  #opening: Promise<void> | undefined;
  #connection: LockConnection | undefined;
  #locker: Locker | undefined;
  /** The leases this instance holds, by key: only these can be released through it. */
  readonly #leases = new Map<string, Lease>();

  constructor(options: RedisLockOptions = {}) {
    this.#transports = options.transports ?? [];
  }

  /**
   * Configures the component: `connection(s).discovery_key|host|port|uri`,
   * `credential(s).store_key|username|password`, `options.retry_timeout` (ms, default 100),
   * `options.retries` (default 3), `options.db_num` (default 0), `options.fence_retention` (ms,
   * how long fencing counters are kept; default 24 h, at least 1000). Takes a pip-services
   * `ConfigParams`, a nested object or a flat dotted object. Throws a `LockConfigError`
   * (`code: "INVALID_CONFIG"`) naming the key of a malformed value.
   */
  configure(config: unknown): void {
    const settings = readSettings(config);
    checkDatabase(settings.connection.uri?.protocol, settings.dbNum);
    this.#settings = settings;
  }

  /**
   * Takes the references to resolve the connection from an `IDiscovery`
   * (`*:discovery:*:*:1.0`, when `discovery_key` is set) and credentials from an
   * `ICredentialStore` (`*:credential-store:*:*:1.0`, when `store_key` is set).
   */
  setReferences(references: unknown): void {
    this.#references = references;
  }

  /** True once `open` has succeeded and until `close`. */
  isOpen(): boolean {
    return this.#locker !== undefined;
  }

  /** Resolves the connection, connects and checks that the server answers. */
  open(context?: LockContext, callback?: LockCallback<void>): Promise<void> {
    const traceId = traceIdOf(context);
    if (this.#locker) return respond(Promise.resolve(), callback);
    this.#opening ??= this.#open(context).finally(() => {
      this.#opening = undefined;
    });
    return respond(withTrace(this.#opening, traceId), callback);
  }

  /** Releases every lock this component still holds, then closes the connection it opened. */
  close(context?: LockContext, callback?: LockCallback<void>): Promise<void> {
    return respond(withTrace(this.#close(), traceIdOf(context)), callback);
  }

  /**
   * Makes a single attempt to acquire the lock: true if it was acquired, false if someone else
   * (another instance, or this one) holds it. `ttl` is in milliseconds.
   */
  tryAcquireLock(
    context: LockContext,
    key: string,
    ttl: number,
    callback?: LockCallback<boolean>,
  ): Promise<boolean> {
    const traceId = traceIdOf(context);
    return respond(withTrace(this.#tryAcquire(key, ttl, traceId), traceId), callback);
  }

  /**
   * Acquires the lock, retrying every `options.retry_timeout` ms until `timeout` ms have passed,
   * then fails with `LockTimeoutError` (`code: "LOCK_TIMEOUT"`, `details.key`), as pip-services'
   * ConflictException does.
   */
  acquireLock(
    context: LockContext,
    key: string,
    ttl: number,
    timeout: number,
    callback?: LockCallback<void>,
  ): Promise<void> {
    const traceId = traceIdOf(context);
    return respond(withTrace(this.#acquire(key, ttl, timeout, traceId), traceId), callback);
  }

  /**
   * Releases a lock this instance acquired. A no-op for a key it does not hold, even if another
   * instance (in this process or elsewhere) holds it.
   */
  releaseLock(context: LockContext, key: string, callback?: LockCallback<void>): Promise<void> {
    const traceId = traceIdOf(context);
    return respond(withTrace(this.#release(key, traceId), traceId), callback);
  }

  /** Connects; `context` is passed as given to the discovery service and credential store. */
  async #open(context: LockContext): Promise<void> {
    const target = await resolveTarget(this.#settings, this.#references, context ?? undefined);
    const transport = await transportFor(target.protocol, this.#transports);
    let connection: LockConnection;
    try {
      connection = await transport.connect(target);
    } catch (error) {
      if (error instanceof LockError) throw error;
      throw new LockUnavailableError("open", undefined, error, target.password);
    }
    try {
      await connection.ping();
    } catch (error) {
      await connection.close().catch(() => {});
      throw new LockUnavailableError("open", undefined, error, target.password);
    }
    this.#connection = connection;
    const { retries, fenceRetention } = this.#settings;
    this.#locker = createLocker({ adapter: connection.adapter, retries, fenceRetention });
  }

  async #close(): Promise<void> {
    await this.#opening?.catch(() => {});
    const leases = [...this.#leases.values()];
    this.#leases.clear();
    await Promise.allSettled(leases.map((lease) => lease.release()));
    const connection = this.#connection;
    this.#connection = undefined;
    this.#locker = undefined;
    await connection?.close();
  }

  async #tryAcquire(key: string, ttl: number, traceId: string | undefined): Promise<boolean> {
    const lease = await this.#opened(traceId).tryAcquire(key, ttl);
    if (lease) this.#leases.set(key, lease);
    return lease !== null;
  }

  /** The seed's loop: one attempt, then one every retry_timeout until the timeout has passed. */
  async #acquire(
    key: string,
    ttl: number,
    timeout: number,
    traceId: string | undefined,
  ): Promise<void> {
    checkDuration(timeout, "timeout", 0);
    const deadline = now() + timeout;
    let attempts = 1;
    if (await this.#tryAcquire(key, ttl, traceId)) return;
    for (;;) {
      await sleep(this.#settings.retryTimeout).done;
      if (now() > deadline) throw new LockTimeoutError(key, timeout, attempts);
      attempts++;
      if (await this.#tryAcquire(key, ttl, traceId)) return;
    }
  }

  async #release(key: string, traceId: string | undefined): Promise<void> {
    this.#opened(traceId);
    const lease = this.#leases.get(key);
    if (!lease) return;
    await lease.release();
    if (this.#leases.get(key) === lease) this.#leases.delete(key);
  }

  #opened(traceId: string | undefined): Locker {
    if (!this.#locker) throw new LockNotOpenedError(traceId);
    return this.#locker;
  }
}

/** The trace id of a pip-services context (string or `getTraceId()`), if any. */
function traceIdOf(context: LockContext): string | undefined {
  if (typeof context === "string") return context || undefined;
  return context?.getTraceId?.() ?? undefined;
}

/** Rejections of `promise` carry `traceId` when they are LockErrors without one. */
function withTrace<T>(promise: Promise<T>, traceId: string | undefined): Promise<T> {
  return promise.catch((error: unknown) => {
    if (error instanceof LockError && error.traceId === undefined) error.traceId = traceId;
    throw error;
  });
}

/** Also reports the outcome to a pip-services 3 style callback, when one is given. */
function respond<T>(promise: Promise<T>, callback: LockCallback<T> | undefined): Promise<T> {
  if (callback)
    promise.then(
      (result) => callback(null, result),
      (error) => callback(error),
    );
  return promise;
}
