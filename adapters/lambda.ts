/**
 * AWS Lambda glue: leases bounded by the invocation's remaining time, wrappers for
 * `(event, context)` handlers, and middy middlewares for locks and idempotency.
 *
 * - **One lease, no heartbeat.** A function cannot outlive `context.getRemainingTimeInMillis()`,
 *   so a lease of the remaining time plus a small safety margin covers the whole invocation. No
 *   timer renews it, and when an invocation times out or crashes, the key frees itself about one
 *   second after the deadline: the retry proceeds at once instead of waiting out a fixed lease.
 * - **Everything awaited.** Lambda has no `waitUntil` and freezes the sandbox when the handler's
 *   promise settles, so releases and stored results complete before it does.
 * - **Middy without middy.** The middlewares are plain `{ before, after, onError }` objects typed
 *   structurally; `@middy/core` is not imported.
 *
 * Web-standard APIs only (Web Crypto for record keys), so it also bundles for other runtimes.
 *
 * @see {@link https://docs.aws.amazon.com/lambda/latest/dg/nodejs-context.html} the Lambda context
 * @see {@link https://middy.js.org/docs/writing-middlewares/intro} writing middy middlewares
 *
 * @module
 */

import {
  canonicalJson,
  checkDuration,
  checkIdempotencyKey,
  DEFAULT_RETENTION,
  IdempotencyConflictError,
  IdempotencyKeyReusedError,
  IdempotencyStore,
  InvalidArgumentError,
  type Lease,
  type LockAdapter,
  type Locker,
  LockTimeoutError,
  MAX_DURATION,
  MIN_TTL,
  type StoredOutcome,
  sha256Hex,
} from "edgelock";

/** The part of the Lambda `Context` used here; the real `Context` of `aws-lambda` fits it. */
export interface LambdaContext {
  /** Milliseconds left before Lambda stops the invocation. */
  getRemainingTimeInMillis(): number;
  /** The function's name: the default idempotency scope. */
  readonly functionName?: string;
}

/** How {@link leaseFor} sizes a lease. */
export interface LeaseOptions {
  /**
   * The longest lease, in milliseconds. A cap below the remaining time lets a long invocation
   * outlive its lease (nothing renews it): the lock's `lease.signal` then aborts.
   * @default no cap
   */
  max?: number;
  /**
   * Added to the remaining time, in milliseconds, so the lease ends just after the function
   * can no longer run.
   * @default 1000
   */
  safety?: number;
}

/** The default safety margin of {@link leaseFor}: one second. */
export const DEFAULT_LEASE_SAFETY = 1_000;

/** A wait longer than this (in ms) is followed by trimming the lease to the time then left. */
const TRIM_AFTER_WAIT = 250;

/**
 * A lease that covers the rest of the invocation: `min(max, remaining + safety)` milliseconds,
 * at least 10.
 *
 * @throws {InvalidArgumentError} if `context` has no `getRemainingTimeInMillis()`, or for bad
 * options.
 *
 * @example
 * ```ts
 * export const handler = async (event: SQSEvent, context: Context) => {
 *   await using lease = await locker.acquire("nightly-export", leaseFor(context));
 *   await runExport({ fence: lease.fence });
 * };
 * ```
 */
export function leaseFor(context: LambdaContext, options: LeaseOptions = {}): number {
  return bounded(context, checkLeaseOptions(options));
}

/** Lease options once checked. */
interface LeaseBounds {
  max: number;
  safety: number;
}

function checkLeaseOptions(options: LeaseOptions | undefined): LeaseBounds {
  if (options === undefined) return { max: MAX_DURATION, safety: DEFAULT_LEASE_SAFETY };
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(
      "lease",
      `lease options must be an object, got ${show(options)}`,
    );
  }
  return {
    max: checkDuration(options.max ?? MAX_DURATION, "max", MIN_TTL),
    safety: checkDuration(options.safety ?? DEFAULT_LEASE_SAFETY, "safety", 0),
  };
}

/** Milliseconds left in the invocation, checked. */
function remainingTime(context: LambdaContext): number {
  if (typeof context?.getRemainingTimeInMillis !== "function") {
    throw new InvalidArgumentError(
      "context",
      `context must be a Lambda context with getRemainingTimeInMillis(), got ${show(context)}`,
    );
  }
  const remaining = context.getRemainingTimeInMillis();
  if (typeof remaining !== "number" || Number.isNaN(remaining)) {
    throw new InvalidArgumentError(
      "context",
      `getRemainingTimeInMillis() must return a number, got ${show(remaining)}`,
    );
  }
  return Math.max(0, Math.ceil(remaining));
}

function bounded(context: LambdaContext, bounds: LeaseBounds): number {
  const lease = Math.min(bounds.max, remainingTime(context) + bounds.safety, MAX_DURATION);
  return Math.max(MIN_TTL, lease);
}

/** How long to wait for a key held by someone else: `wait`, but at most half the time left. */
function waitFor(context: LambdaContext, wait: number): number {
  return wait === 0 ? 0 : Math.min(wait, Math.floor(remainingTime(context) / 2));
}

// ---------------------------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------------------------

/** Options of {@link lambdaWithLock}. */
export interface LambdaLockOptions<E, C extends LambdaContext, R> {
  /**
   * How long to wait for a lock held by someone else, in milliseconds (at most half the
   * remaining time); 0 makes one attempt.
   * @default 0
   */
  wait?: number;
  /** How the lease is sized from the remaining time; see {@link leaseFor}. */
  lease?: LeaseOptions;
  /**
   * The result when the lock stays held (the handler does not run), for example a 409 for API
   * Gateway. Without it, the {@link LockTimeoutError} is thrown (`statusCode` 409, `Retry-After`).
   */
  onContention?: (error: LockTimeoutError, event: E, context: C) => R | PromiseLike<R>;
  /**
   * Told about a release that failed (Redis unreachable). Such a failure is never thrown: the
   * lease ends on its own just after the invocation's deadline.
   */
  onReleaseError?: (error: unknown) => void;
}

/**
 * Wraps a Lambda handler so it runs only while holding the lock named by `key(event, context)`.
 * The lease covers the remaining time (see {@link leaseFor}) and is handed to the handler as a
 * third argument (`lease.fence` for fenced writes). The lock is released, and the release
 * awaited, before the returned promise settles.
 *
 * - Contention: `onContention`'s result, or a thrown {@link LockTimeoutError}.
 * - The handler's error is rethrown unchanged; a failed release never replaces it.
 * - If the lease was lost while the handler ran (only possible with `lease.max` below the
 *   remaining time), `lease.signal` aborts and `LockLostError` is thrown once it resolves.
 *
 * @example
 * ```ts
 * export const handler = lambdaWithLock(
 *   locker,
 *   (event: APIGatewayProxyEventV2) => `account:${event.pathParameters?.id}`,
 *   async (event, context, lease) => ({ statusCode: 200, body: await debit(event, lease.fence) }),
 *   { onContention: (error) => ({ statusCode: 409, headers: error.headers, body: "busy" }) },
 * );
 * ```
 */
export function lambdaWithLock<E, R, C extends LambdaContext = LambdaContext>(
  locker: Locker,
  key: (event: E, context: C) => string,
  handler: (event: E, context: C, lease: Lease) => R | PromiseLike<R>,
  options: LambdaLockOptions<E, C, R> = {},
): (event: E, context: C) => Promise<Awaited<R>> {
  checkLocker(locker);
  checkFunction(key, "key");
  checkFunction(handler, "handler");
  const settings = checkLockOptions(options);
  return async function lockedHandler(event: E, context: C): Promise<Awaited<R>> {
    let lease: Lease;
    try {
      lease = await acquire(locker, key(event, context), context, settings);
    } catch (error) {
      if (error instanceof LockTimeoutError && options.onContention) {
        return await options.onContention(error, event, context);
      }
      throw error;
    }
    let result: Awaited<R>;
    try {
      result = await handler(event, context, lease);
    } catch (error) {
      await release(lease, settings.onReleaseError);
      throw error;
    }
    const lost: unknown = lease.signal.aborted ? lease.signal.reason : undefined;
    await release(lease, settings.onReleaseError);
    if (lost !== undefined) throw lost;
    return result;
  };
}

/** Lock options once checked. */
interface LockSettings {
  wait: number;
  bounds: LeaseBounds;
  onReleaseError: ((error: unknown) => void) | undefined;
}

function checkLockOptions(options: {
  wait?: number;
  lease?: LeaseOptions;
  onReleaseError?: (error: unknown) => void;
  onContention?: unknown;
}): LockSettings {
  checkObject(options, "options");
  checkOptionalFunction(options.onContention, "onContention");
  checkOptionalFunction(options.onReleaseError, "onReleaseError");
  return {
    wait: checkDuration(options.wait ?? 0, "wait", 0),
    bounds: checkLeaseOptions(options.lease),
    onReleaseError: options.onReleaseError,
  };
}

/**
 * Takes the lock with a lease covering the rest of the invocation. After a long wait the lease,
 * sized when the wait began, is trimmed to the time then left.
 */
async function acquire(
  locker: Locker,
  key: string,
  context: LambdaContext,
  settings: LockSettings,
): Promise<Lease> {
  const started = performance.now();
  const ttl = bounded(context, settings.bounds);
  const lease = await locker.acquire(key, ttl, { timeout: waitFor(context, settings.wait) });
  if (performance.now() - started > TRIM_AFTER_WAIT) {
    // A failure leaves the longer lease in place; a lost lock aborts lease.signal.
    await lease.extend(bounded(context, settings.bounds)).catch(() => {});
  }
  return lease;
}

/** Releases and awaits it; a failure goes to the listener, never to the caller. */
async function release(lease: Lease, onError: ((error: unknown) => void) | undefined) {
  await lease.release().catch((error: unknown) => {
    try {
      onError?.(error);
    } catch {
      // A faulty listener must not replace the handler's outcome either.
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------------

/** Options of {@link lambdaWithIdempotency} and {@link idempotencyMiddleware}. */
export interface LambdaIdempotencyOptions<E, C extends LambdaContext, R> {
  /** The transport (`ioredisAdapter(client)`, `upstashAdapter(client)`, `memoryAdapter()`). */
  adapter: LockAdapter;
  /**
   * The idempotency key of an event (an SQS `messageId`, an `Idempotency-Key` header);
   * `undefined` or `null` runs the handler without idempotency. At most 255 printable ASCII
   * characters.
   */
  key: (event: E, context: C) => string | undefined | null;
  /**
   * A namespace for keys, so equal keys in two scopes never meet.
   * @default the function's name (`context.functionName`)
   */
  scope?: string | ((event: E, context: C) => string);
  /**
   * What identifies the request, so a key reused for a different request is refused with
   * {@link IdempotencyKeyReusedError}: a function of the event (its result is canonical-JSON
   * hashed), or `false` to check keys only. The default is `false` because a redelivered event
   * is never byte-identical: SQS changes `receiptHandle` and `ApproximateReceiveCount`, API
   * Gateway `requestId` and `time`. Fingerprint the payload, such as `record.body`.
   * @default false
   */
  fingerprint?: false | ((event: E, context: C) => unknown);
  /**
   * How long a finished result is kept for replay, in milliseconds.
   * @default 86_400_000 (24 h)
   */
  retention?: number;
  /** How the in-progress lease is sized from the remaining time; see {@link leaseFor}. */
  lease?: LeaseOptions;
  /**
   * How long to wait for a duplicate in progress, in milliseconds (at most half the remaining
   * time); its result is replayed if it finishes in time, else {@link IdempotencyConflictError}.
   * @default 0
   */
  wait?: number;
  /**
   * When the handler throws: `"release"` frees the key so a retry runs again (the error is
   * rethrown unchanged); `"hold"` keeps it until the lease ends, just after the deadline.
   * Middy's early `TimeoutError` always holds: the handler may still be running.
   * @default "release"
   */
  onThrow?: "release" | "hold";
  /**
   * Whether a result is kept for replay; a result not kept frees the key instead, so a retry
   * runs afresh. The default keeps everything except HTTP-shaped results (`{ statusCode }`)
   * with a 5xx, 408, 409, 425 or 429 status, which are transient.
   */
  storeResult?: (result: Awaited<R>) => boolean;
  /** Turns a result into text for storage. @default JSON.stringify */
  serialize?: (result: Awaited<R>) => string;
  /** Turns stored text back into a result. @default JSON.parse */
  deserialize?: (text: string) => Awaited<R>;
  /**
   * The header added to a replayed HTTP-shaped result (`{ statusCode, headers }`), with the
   * value `"true"`; `false` adds none. `Set-Cookie` and `cookies` are never stored.
   * @default "Idempotent-Replayed"
   */
  replayHeader?: string | false;
  /** Told when the lease was lost while the handler ran: its result was not stored. */
  onLeaseLost?: (key: string) => void;
  /**
   * Told when storing a result or freeing a key failed (Redis unreachable). Never thrown: the
   * handler's outcome stands, and the key frees itself when the lease ends.
   */
  onStoreError?: (error: unknown) => void;
  /**
   * Namespace of the record keys.
   * @default "idem"
   */
  prefix?: string;
}

/**
 * Wraps a Lambda handler, or a per-record function `(record, context)`, so it runs at most once
 * per idempotency key within the retention:
 *
 * - the first call runs it and stores its result before resolving;
 * - later calls with the same key resolve with the stored result without running it;
 * - a call while the first still runs throws {@link IdempotencyConflictError} (409,
 *   `Retry-After`), or waits up to `wait` ms;
 * - with a `fingerprint`, the same key for a different request throws
 *   {@link IdempotencyKeyReusedError} (422).
 *
 * The in-progress lease covers the remaining time, with no heartbeat: if the invocation times
 * out or crashes, a retry runs about one second after the deadline. Exactly-once is not
 * promised: such a retry runs the handler again, so pass the key downstream where it matters.
 *
 * @example
 * ```ts
 * const charge = lambdaWithIdempotency(
 *   async (record: SQSRecord, context: Context) => payments.charge(JSON.parse(record.body)),
 *   { adapter: ioredisAdapter(redis), key: (record) => record.messageId },
 * );
 * ```
 */
export function lambdaWithIdempotency<E, R, C extends LambdaContext = LambdaContext>(
  handler: (event: E, context: C) => R | PromiseLike<R>,
  options: LambdaIdempotencyOptions<E, C, R>,
): (event: E, context: C) => Promise<Awaited<R>> {
  checkFunction(handler, "handler");
  const flow = new IdempotentFlow(options);
  return async function idempotentHandler(event: E, context: C): Promise<Awaited<R>> {
    const begun = await flow.begin(event, context);
    if (begun.kind === "replay") return begun.result;
    if (begun.kind === "skip") return await handler(event, context);
    let result: Awaited<R>;
    try {
      result = await handler(event, context);
    } catch (error) {
      await flow.fail(begun.claim, error);
      throw error;
    }
    await flow.complete(begun.claim, result);
    return result;
  };
}

/** A record this invocation claimed. */
interface Claim {
  key: string;
  record: string;
  token: string;
}

/** What beginning found. */
type Begun<R> = { kind: "skip" } | { kind: "replay"; result: R } | { kind: "run"; claim: Claim };

/** Statuses never stored for replay by default: a retry may well succeed. */
const TRANSIENT = new Set([408, 409, 425, 429]);

/**
 * The idempotency steps around a handler, shared by the wrapper and the middleware: begin
 * (claim, replay or refuse), complete (store or free) and fail (free or hold). `complete` and
 * `fail` never throw.
 */
class IdempotentFlow<E, C extends LambdaContext, R> {
  readonly #options: LambdaIdempotencyOptions<E, C, R>;
  readonly #store: IdempotencyStore;
  readonly #retention: number;
  readonly #wait: number;
  readonly #bounds: LeaseBounds;
  readonly #serialize: (result: Awaited<R>) => string;
  readonly #deserialize: (text: string) => Awaited<R>;
  readonly #storeResult: (result: Awaited<R>) => boolean;

  constructor(options: LambdaIdempotencyOptions<E, C, R>) {
    checkObject(options, "options");
    checkFunction(options.key, "key");
    if (typeof options.scope !== "string") checkOptionalFunction(options.scope, "scope");
    if (options.fingerprint !== false) checkOptionalFunction(options.fingerprint, "fingerprint");
    checkOptionalFunction(options.storeResult, "storeResult");
    checkOptionalFunction(options.serialize, "serialize");
    checkOptionalFunction(options.deserialize, "deserialize");
    checkOptionalFunction(options.onLeaseLost, "onLeaseLost");
    checkOptionalFunction(options.onStoreError, "onStoreError");
    if (
      options.onThrow !== undefined &&
      options.onThrow !== "release" &&
      options.onThrow !== "hold"
    ) {
      throw new InvalidArgumentError(
        "onThrow",
        `onThrow must be "release" or "hold", got ${show(options.onThrow)}`,
      );
    }
    const header = options.replayHeader;
    if (header !== undefined && header !== false && (typeof header !== "string" || !header)) {
      throw new InvalidArgumentError(
        "replayHeader",
        `replayHeader must be a header name or false, got ${show(header)}`,
      );
    }
    this.#options = options;
    this.#store = new IdempotencyStore(options.adapter, { prefix: options.prefix });
    this.#retention = checkDuration(options.retention ?? DEFAULT_RETENTION, "retention", MIN_TTL);
    this.#wait = checkDuration(options.wait ?? 0, "wait", 0);
    this.#bounds = checkLeaseOptions(options.lease);
    this.#serialize = options.serialize ?? ((result) => JSON.stringify(result));
    this.#deserialize = options.deserialize ?? ((text) => JSON.parse(text) as Awaited<R>);
    this.#storeResult = options.storeResult ?? storableByDefault;
  }

  /** Claims the event's key, or finds its stored result; throws 409 / 422 errors. */
  async begin(event: E, context: C): Promise<Begun<Awaited<R>>> {
    const options = this.#options;
    const key = options.key(event, context);
    if (key === undefined || key === null) return { kind: "skip" };
    checkIdempotencyKey(key);
    const scope =
      typeof options.scope === "function"
        ? options.scope(event, context)
        : (options.scope ?? context?.functionName ?? "");
    const record = await this.#store.recordKey([scope, key]);
    const fingerprint = options.fingerprint
      ? await sha256Hex(canonicalJson(options.fingerprint(event, context)))
      : "";
    const deadline = performance.now() + waitFor(context, this.#wait);
    for (let attempt = 0; ; attempt++) {
      // Sized afresh on every attempt, so a claim after a wait still ends at the deadline.
      const begun = await this.#store.begin(record, fingerprint, bounded(context, this.#bounds));
      if (begun.kind === "claimed")
        return { kind: "run", claim: { key, record, token: begun.token } };
      if (begun.kind === "reused") throw new IdempotencyKeyReusedError(key);
      if (begun.kind === "replay") return { kind: "replay", result: this.#replay(begun.outcome) };
      const left = deadline - performance.now();
      if (left <= 0) throw new IdempotencyConflictError(key, begun.retryAfter);
      const backoff = Math.random() * Math.min(1000, 50 * 2 ** attempt);
      await sleep(Math.min(backoff, begun.retryAfter + 1, left));
    }
  }

  /** Stores `result` for replay (or frees the key if it is not to be kept). Never throws. */
  async complete(claim: Claim, result: Awaited<R>): Promise<void> {
    try {
      if (!this.#storeResult(result)) {
        await this.#store.abandon(claim.record, claim.token);
        return;
      }
      const outcome: StoredOutcome = {
        status: 0,
        headers: "",
        body: result === undefined ? "" : this.#serialize(withoutCookies(result)),
        encoding: result === undefined ? "undefined" : "json",
        truncated: false,
        failed: false,
      };
      const stored = await this.#store.finish(claim.record, claim.token, outcome, this.#retention);
      if (!stored) this.#options.onLeaseLost?.(claim.key);
    } catch (error) {
      this.#report(error);
    }
  }

  /** After the handler threw: frees the key, or holds it (`onThrow: "hold"`, timeouts). */
  async fail(claim: Claim, error: unknown): Promise<void> {
    if (this.#options.onThrow === "hold" || isTimeout(error)) return;
    await this.#store.abandon(claim.record, claim.token).catch((failure: unknown) => {
      this.#report(failure);
    });
  }

  #replay(outcome: StoredOutcome): Awaited<R> {
    if (outcome.encoding === "undefined") return undefined as Awaited<R>;
    const result = this.#deserialize(outcome.body);
    const header = this.#options.replayHeader ?? "Idempotent-Replayed";
    if (header === false || !isHttpResult(result)) return result;
    return { ...result, headers: { ...result.headers, [header]: "true" } } as Awaited<R>;
  }

  #report(error: unknown): void {
    try {
      this.#options.onStoreError?.(error);
    } catch {
      // A faulty listener must not replace the handler's outcome.
    }
  }
}

/** An API Gateway / ALB / function URL result: `{ statusCode, headers?, ... }`. */
interface HttpResult {
  statusCode: number;
  headers?: Record<string, unknown>;
  multiValueHeaders?: Record<string, unknown>;
  cookies?: unknown;
}

function isHttpResult(value: unknown): value is HttpResult {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { statusCode?: unknown }).statusCode === "number"
  );
}

function storableByDefault(result: unknown): boolean {
  if (!isHttpResult(result)) return true;
  return result.statusCode < 500 && !TRANSIENT.has(result.statusCode);
}

/** An HTTP-shaped result without its cookies (never replayed to someone else); others as is. */
function withoutCookies<T>(result: T): T {
  if (!isHttpResult(result)) return result;
  const { cookies: _cookies, ...rest } = result;
  const strip = (headers: Record<string, unknown> | undefined) =>
    headers &&
    Object.fromEntries(Object.entries(headers).filter(([name]) => !/^set-cookie$/i.test(name)));
  const stripped: HttpResult = { ...rest, headers: strip(rest.headers) };
  if (rest.multiValueHeaders) stripped.multiValueHeaders = strip(rest.multiValueHeaders);
  if (stripped.headers === undefined) delete stripped.headers;
  return stripped as T;
}

/** Middy's early-timeout error: the handler may still be running. */
function isTimeout(error: unknown): boolean {
  return error instanceof Error && error.name === "TimeoutError";
}

// ---------------------------------------------------------------------------------------------
// Middy
// ---------------------------------------------------------------------------------------------

/** The part of a middy request the middlewares use (`middy.Request`, typed structurally). */
export interface MiddyRequest<E = unknown, R = unknown, C extends LambdaContext = LambdaContext> {
  event: E;
  context: C;
  response: R | null | undefined;
  /** Set to short-circuit: middy then skips the handler and every other middleware. */
  earlyResponse?: R | null | undefined;
  error: unknown;
  internal?: unknown;
}

/** A middy middleware object (`middy.MiddlewareObj`, typed structurally). */
export interface MiddyMiddleware<
  E = unknown,
  R = unknown,
  C extends LambdaContext = LambdaContext,
> {
  name?: string;
  before?: (request: MiddyRequest<E, R, C>) => Promise<R | undefined>;
  after?: (request: MiddyRequest<E, R, C>) => Promise<void>;
  onError?: (request: MiddyRequest<E, R, C>) => Promise<void>;
}

/** Options of {@link lockMiddleware}. */
export interface LockMiddlewareOptions<E, C extends LambdaContext> {
  /** The lock client, from `createLocker({ adapter })`; create it outside the handler. */
  locker: Locker;
  /** The lock's name for an invocation (at most 1024 characters). */
  key: (event: E, context: C) => string | PromiseLike<string>;
  /**
   * How long to wait for a lock held by someone else, in milliseconds (at most half the
   * remaining time); 0 makes one attempt.
   * @default 0
   */
  wait?: number;
  /** How the lease is sized from the remaining time; see {@link leaseFor}. */
  lease?: LeaseOptions;
  /**
   * Also put the lease on the context, as `context.lease`, for the handler (middy's
   * `setToContext` convention).
   * @default false
   */
  setToContext?: boolean;
  /** Told about a release that failed; never thrown (the lease ends just after the deadline). */
  onReleaseError?: (error: unknown) => void;
}

/**
 * Middy middleware: the handler runs only while holding the lock named by `key`.
 *
 * - `before` takes the lock with a lease covering the remaining time. If it stays held, the
 *   {@link LockTimeoutError} is thrown: it carries `statusCode: 409`, `expose: true` and a
 *   `Retry-After` header from the holder's remaining lease, so `@middy/http-error-handler`
 *   turns it into a 409 response as it is.
 * - `after` releases the lock, and `onError` releases it after an error, before the invocation
 *   ends. The error is left untouched for the middlewares after it, and a failed release never
 *   masks it. On middy's early `TimeoutError` the lock is kept: the handler may still be running,
 *   and the lease ends just after the deadline anyway.
 *
 * @example
 * ```ts
 * export const handler = middy(transfer)
 *   .use(httpErrorHandler())
 *   .use(lockMiddleware({ locker, key: (event) => `account:${event.pathParameters.id}` }));
 * ```
 */
export function lockMiddleware<E = unknown, R = unknown, C extends LambdaContext = LambdaContext>(
  options: LockMiddlewareOptions<E, C>,
): MiddyMiddleware<E, R, C> {
  checkObject(options, "options");
  const locker = checkLocker(options.locker);
  checkFunction(options.key, "key");
  const settings = checkLockOptions(options);
  /** The lease of each request in flight: its own, never another middleware's or request's. */
  const leases = new WeakMap<object, Lease>();

  const releaseOwn = async (request: MiddyRequest<E, R, C>) => {
    const lease = leases.get(request);
    if (!lease) return;
    leases.delete(request);
    await release(lease, settings.onReleaseError);
  };

  return {
    name: "edgelock-lock",
    before: async (request) => {
      leases.delete(request);
      const key = await options.key(request.event, request.context);
      const lease = await acquire(locker, key, request.context, settings);
      leases.set(request, lease);
      if (options.setToContext) Object.assign(request.context as object, { lease });
      return undefined;
    },
    after: releaseOwn,
    onError: async (request) => {
      if (isTimeout(request.error)) {
        leases.delete(request);
        return;
      }
      await releaseOwn(request);
    },
  };
}

/**
 * Middy middleware: idempotent invocations, with the semantics of
 * {@link lambdaWithIdempotency} (the options are the same).
 *
 * - `before` claims the key. A finished duplicate short-circuits: `before` returns the stored
 *   response (with `Idempotent-Replayed: true` on HTTP-shaped responses), so middy skips the
 *   handler and every other middleware's `after`. A duplicate in progress throws
 *   {@link IdempotencyConflictError} (409, `Retry-After`), a key reused for a different request
 *   {@link IdempotencyKeyReusedError} (422): `@middy/http-error-handler` maps both.
 * - `after` stores `request.response`, awaited.
 * - `onError` frees the key (or holds it, per `onThrow`; always on middy's `TimeoutError`),
 *   leaving the error untouched for the middlewares after it.
 *
 * Order: the response stored and replayed is the one this middleware's `after` sees, so `use`
 * it before (outside) the middlewares that shape the response, such as http-response-serializer
 * and http-cors: a replay then returns the finished response. Its `key` and `fingerprint` then
 * see the raw event (headers as the client sent them).
 *
 * @example
 * ```ts
 * export const handler = middy(createOrder)
 *   .use(idempotencyMiddleware({ adapter, key: (event) => event.headers["idempotency-key"] }))
 *   .use(httpErrorHandler());
 * ```
 */
export function idempotencyMiddleware<
  E = unknown,
  R = unknown,
  C extends LambdaContext = LambdaContext,
>(options: LambdaIdempotencyOptions<E, C, R>): MiddyMiddleware<E, R, C> {
  const flow = new IdempotentFlow(options);
  /** The claim of each request in flight (reset per request: `internal` may be reused). */
  const claims = new WeakMap<object, Claim>();

  return {
    name: "edgelock-idempotency",
    before: async (request) => {
      claims.delete(request);
      const begun = await flow.begin(request.event, request.context);
      if (begun.kind === "run") claims.set(request, begun.claim);
      if (begun.kind !== "replay") return undefined;
      // middy ≥ 6 honours earlyResponse even when the stored response is undefined.
      request.earlyResponse = begun.result as R;
      return begun.result as R | undefined;
    },
    after: async (request) => {
      const claim = claims.get(request);
      if (!claim) return;
      claims.delete(request);
      await flow.complete(claim, request.response as Awaited<R>);
    },
    onError: async (request) => {
      const claim = claims.get(request);
      if (!claim) return;
      claims.delete(request);
      await flow.fail(claim, request.error);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function checkLocker(locker: unknown): Locker {
  if (typeof (locker as Locker | undefined)?.acquire !== "function") {
    throw new InvalidArgumentError(
      "locker",
      `locker must be a Locker from createLocker(), got ${show(locker)}`,
    );
  }
  return locker as Locker;
}

function checkFunction(value: unknown, argument: string): void {
  if (typeof value !== "function") {
    throw new InvalidArgumentError(argument, `${argument} must be a function, got ${show(value)}`);
  }
}

function checkOptionalFunction(value: unknown, argument: string): void {
  if (value !== undefined) checkFunction(value, argument);
}

function checkObject(value: unknown, argument: string): void {
  if (typeof value !== "object" || value === null) {
    throw new InvalidArgumentError(argument, `${argument} must be an object, got ${show(value)}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}
