import {
  type ClaimRequest,
  canonicalJson,
  checkDuration,
  checkFunction,
  checkIdempotencyKey,
  DEFAULT_RETENTION,
  type IdempotencyConflictError,
  IdempotencyFlow,
  type IdempotencyKeyInvalidError,
  type IdempotencyKeyReusedError,
  type IdempotencyOutcomeUnknownError,
  IdempotentResults,
  InvalidArgumentError,
  type LockAdapter,
  MIN_TTL,
  sha256Hex,
  describeValue as show,
  storesStatus,
} from "edgelock";
import { checkObject, checkOptionalFunction } from "./checks.js";
import { checkMargin, InvocationDeadline } from "./deadline.js";
import { type HttpEvent, type headerKey, isClientKey, requestTarget } from "./header-key.js";
import {
  bounded,
  checkLeaseOptions,
  type LambdaContext,
  type LeaseBounds,
  type LeaseOptions,
  type leaseFor,
  waitFor,
} from "./lease.js";
import type { idempotencyMiddleware } from "./middy.js";

/** Options of {@link lambdaWithIdempotency} and {@link idempotencyMiddleware}. */
export interface LambdaIdempotencyOptions<E, C extends LambdaContext, R> {
  /** The transport (`ioredisAdapter(client)`, `upstashAdapter(client)`, `memoryAdapter()`). */
  adapter: LockAdapter;
  /**
   * The idempotency key of an event: an SQS `messageId`, or {@link headerKey}`()` for the
   * `Idempotency-Key` header of an HTTP event; `undefined` or `null` runs the handler without
   * idempotency. 1 to 255 printable ASCII characters, else {@link IdempotencyKeyInvalidError}
   * (400).
   */
  key: (event: E, context: C) => string | undefined | null;
  /**
   * The namespace of the records, so equal keys in two scopes never meet: a string, or a
   * function of the event. With keys clients choose ({@link headerKey}), make it the caller
   * (the authorizer's principal), or another caller presenting the same key gets the first
   * one's response; a warning is printed once when it is not a function. Give one to share records
   * between functions on purpose, to keep them across a rename, or when a bundler renames
   * functions (esbuild's `minify` without `keepNames`).
   * @default the Lambda function's name (`context.functionName`) and, for
   * {@link lambdaWithIdempotency}, the wrapped function's name (an anonymous one needs a scope)
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
   * time less the `margin`); its result is replayed if it finishes in time, else
   * {@link IdempotencyConflictError}.
   * @default 0
   */
  wait?: number;
  /**
   * What a duplicate that finds the first request in progress is told (`retryAfter`, and the
   * `Retry-After` header in whole seconds), in ms; never past the first request's lease.
   * @default how long the first request likely has left: the runs this process saw take so
   * long on average, less how long it has been running (with none seen yet, as long again)
   */
  retryAfter?: number;
  /**
   * When the handler throws: `"release"` frees the key so a retry runs again (the error is
   * rethrown unchanged); `"hold"` keeps it until the lease ends, just after the deadline.
   * With the middy middleware, middy's early timeout always holds: the handler may still be
   * running. A `TimeoutError` of the handler's own is an error like any other.
   * @default "release"
   */
  onThrow?: "release" | "hold";
  /**
   * Whether a result is kept for replay; a result not kept frees the key instead, so a retry
   * runs afresh. The default keeps everything except HTTP-shaped results (`{ statusCode }`)
   * with a status a retry may change: 5xx, 401 and 403 (fresh credentials), 408, 409, 425, 429.
   */
  storeResult?: (result: Awaited<R>) => boolean;
  /**
   * Turns a result into text for storage, for results JSON cannot encode (a BigInt from a
   * database driver, say). A result it cannot encode (it throws, or gives no text) is not
   * stored: the key is marked "ran, not replayable" and `onStoreError` told, and the call still
   * resolves with its result.
   * @default JSON.stringify
   */
  serialize?: (result: Awaited<R>) => string;
  /**
   * Turns stored text back into a result. A replay it cannot decode throws
   * {@link IdempotencyOutcomeUnknownError}.
   * @default JSON.parse
   */
  deserialize?: (text: string) => Awaited<R>;
  /**
   * The header added to a replayed HTTP-shaped result (`{ statusCode, headers }`), with the
   * value `"true"`; `false` adds none. `Set-Cookie` and `cookies` are never stored.
   * @default "Idempotent-Replayed"
   */
  replayHeader?: string | false;
  /**
   * Silence the warning about keys clients choose ({@link headerKey}) without a `scope`
   * function: callers then share keys.
   * @default false
   */
  allowGlobalKeys?: boolean;
  /** Told when the lease was lost while the handler ran: its result was not stored. */
  onLeaseLost?: (key: string) => void;
  /**
   * How long before the invocation's deadline every Redis request must be done, in
   * milliseconds: each is bounded by the remaining time less this, so a Redis that does not
   * answer gives `LOCK_UNAVAILABLE` while the handler can still answer, not Lambda's "Task
   * timed out". A result that would be stored within the margin is not: the claim then ends
   * with its lease, just after the deadline.
   * @default 200
   */
  margin?: number;
  /**
   * Told when a result could not be stored (Redis unreachable, or a result `serialize` cannot
   * encode) or a key not freed. Never thrown: the handler's outcome stands.
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
 * Records belong to the Lambda function and the wrapped function (by their names), so two
 * wrapped functions keyed the same way (`chargeCard` and `sendReceipt` by message id) never
 * share them; an anonymous function needs a `scope`.
 *
 * The in-progress lease covers the remaining time, with no heartbeat: if the invocation times
 * out or crashes, a retry runs about one second after the deadline. Exactly-once is not
 * promised: such a retry runs the handler again, so pass the key downstream where it matters.
 *
 * @example
 * ```ts
 * const charge = lambdaWithIdempotency(
 *   async function chargeCard(record: SQSRecord, context: Context) {
 *     return payments.charge(JSON.parse(record.body));
 *   },
 *   { adapter: ioredisAdapter(redis), key: (record) => record.messageId },
 * );
 * ```
 */
export function lambdaWithIdempotency<E, R, C extends LambdaContext = LambdaContext>(
  handler: (event: E, context: C) => R | PromiseLike<R>,
  options: LambdaIdempotencyOptions<E, C, R>,
): (event: E, context: C) => Promise<Awaited<R>> {
  checkFunction(handler, "handler");
  if (options?.scope === undefined && handler.name === "") {
    throw new InvalidArgumentError(
      "scope",
      "lambdaWithIdempotency: the wrapped function has no name to scope its records by: name it, or pass scope",
    );
  }
  const flow = new LambdaIdempotency(options, handler.name);
  return async function idempotentHandler(event: E, context: C): Promise<Awaited<R>> {
    const deadline = flow.deadline(context);
    try {
      const request = await flow.request(event, context, deadline.signal);
      if (!request) return await handler(event, context);
      const { result } = await flow.results.run(
        request,
        async (): Promise<Awaited<R>> => await handler(event, context),
      );
      return result;
    } finally {
      deadline.dispose();
    }
  };
}

/**
 * The Lambda mapping of the idempotency flow, shared by the wrapper and the middleware: keys,
 * scopes and leases from the event and its context, and HTTP-shaped results stored without
 * their cookies and replayed with a marker header.
 */
export class LambdaIdempotency<E, C extends LambdaContext, R> {
  /** Runs calls through the shared flow, storing their results. */
  readonly results: IdempotentResults<Awaited<R>>;
  readonly #options: LambdaIdempotencyOptions<E, C, R>;
  readonly #wait: number;
  readonly #bounds: LeaseBounds;
  readonly #margin: number;
  /** The wrapped function's name, part of the default scope ("" for the middleware). */
  readonly #name: string;

  /** @param name the wrapped function's name, for the default scope. */
  constructor(options: LambdaIdempotencyOptions<E, C, R>, name = "") {
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
    const header = options.replayHeader ?? "Idempotent-Replayed";
    if (header !== false && (typeof header !== "string" || !header)) {
      throw new InvalidArgumentError(
        "replayHeader",
        `replayHeader must be a header name or false, got ${show(header)}`,
      );
    }
    this.#options = options;
    this.#wait = checkDuration(options.wait ?? 0, "wait", 0);
    this.#bounds = checkLeaseOptions(options.lease);
    this.#margin = checkMargin(options.margin);
    this.#name = name;
    if (
      isClientKey(options.key) &&
      typeof options.scope !== "function" &&
      !options.allowGlobalKeys
    ) {
      console.warn(
        "edgelock: idempotency keys come from a client header, but no scope function names " +
          "the caller, so callers share keys; pass scope (the authorizer's principal) or allowGlobalKeys",
      );
    }
    const flow = new IdempotencyFlow({
      adapter: options.adapter,
      prefix: options.prefix,
      retention: checkDuration(options.retention ?? DEFAULT_RETENTION, "retention", MIN_TTL),
      onStoreError: options.onStoreError,
      retryAfter:
        options.retryAfter === undefined
          ? undefined
          : checkDuration(options.retryAfter, "retryAfter", 0),
    });
    const serialize = options.serialize ?? ((result: Awaited<R>) => JSON.stringify(result));
    const deserialize = options.deserialize ?? ((text: string) => JSON.parse(text) as Awaited<R>);
    this.results = new IdempotentResults(flow, {
      serialize: (result) => serialize(withoutCookies(result)),
      deserialize: (text) => marked(deserialize(text), header),
      storable: options.storeResult ?? storableByDefault,
      onThrow: options.onThrow ?? "release",
    });
  }

  /** The deadline of an invocation's requests: dispose of it when the invocation is done. */
  deadline(context: C): InvocationDeadline {
    return new InvocationDeadline(context, this.#margin);
  }

  /**
   * The event's claim request, every request bounded by `deadline`; undefined when the event has
   * no key (it runs without idempotency).
   */
  async request(event: E, context: C, deadline: AbortSignal): Promise<ClaimRequest | undefined> {
    const options = this.#options;
    const key = options.key(event, context);
    if (key === undefined || key === null) return undefined;
    checkIdempotencyKey(key);
    const { scope } = options;
    const functionName = context?.functionName ?? "";
    const namespace =
      scope === undefined
        ? [functionName, ...(this.#name ? [this.#name] : [])]
        : [typeof scope === "function" ? scope(event, context) : scope];
    const fingerprint = options.fingerprint
      ? await sha256Hex(canonicalJson(options.fingerprint(event, context)))
      : "";
    // A key a client chose is scoped to the resource it was sent to, as the Hono middleware does.
    const target = isClientKey(options.key) ? requestTarget(event as HttpEvent) : [];
    return {
      parts: [...namespace, ...target, key],
      key,
      fingerprint,
      // Sized afresh on every attempt, so a claim after a wait still ends at the deadline.
      lease: () => bounded(context, this.#bounds),
      renew: false,
      wait: waitFor(context, this.#wait, this.#margin),
      signal: deadline,
      deadline,
      onLeaseLost: options.onLeaseLost && (() => options.onLeaseLost?.(key)),
    };
  }
}

/** Whether a result is kept by default: all but HTTP-shaped results with a transient status. */
const storableStatus = storesStatus("non-5xx");

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
  return !isHttpResult(result) || storableStatus(result.statusCode);
}

/** A replayed HTTP-shaped result with `header: true`; others as they are. */
function marked<T>(result: T, header: string | false): T {
  if (header === false || !isHttpResult(result)) return result;
  return { ...result, headers: { ...result.headers, [header]: "true" } } as T;
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
