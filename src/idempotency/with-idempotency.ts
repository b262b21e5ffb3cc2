/**
 * `withIdempotency`: the non-HTTP form of idempotency, for event handlers (API Gateway, SQS,
 * EventBridge, queue consumers) that must run at most once per key within the retention.
 *
 * @module
 */

import type { LockAdapter } from "../adapter.js";
import { InvalidArgumentError } from "../errors.js";
import { checkDuration, checkFunction, MIN_TTL } from "../validate.js";
import { canonicalJson, sha256Hex } from "./digest.js";
import type {
  IdempotencyConflictError,
  IdempotencyKeyReusedError,
  IdempotencyOutcomeUnknownError,
} from "./errors.js";
import { IdempotencyFlow } from "./flow.js";
import { checkIdempotencyKey } from "./key.js";
import { type CallOutcome, IdempotentResults } from "./results.js";

/** Options of {@link withIdempotency}. */
export interface IdempotencyOptions<A extends unknown[], R> {
  /** The transport (`memoryAdapter()`, `ioredisAdapter(client)`, `upstashAdapter(client)`). */
  adapter: LockAdapter;
  /**
   * The idempotency key of a call (for example a message id); `undefined` or `null` runs the
   * call without idempotency. At most 255 characters.
   */
  key: (...args: A) => string | undefined | null;
  /**
   * The namespace of the records, so equal keys in two scopes never meet: a string, or a
   * function of the arguments (a tenant, a caller). Give one to share records between functions
   * on purpose, to keep them across a rename, or when a bundler renames functions (esbuild's
   * `minify` without `keepNames`): two functions could then share a name.
   * @default the wrapped function's name (an anonymous function needs a scope)
   */
  scope?: string | ((...args: A) => string);
  /**
   * What identifies the request, so a key reused for a different request is refused (422): a
   * function of the arguments, whose result is canonical-JSON hashed (for an SQS record, its
   * `body`: the record itself changes on every delivery). Keys only are checked by default.
   * @default false
   */
  fingerprint?: false | ((...args: A) => unknown);
  /**
   * How long a finished result is kept for replay, in ms.
   * @default 86_400_000 (24 h)
   */
  retention?: number;
  /**
   * The in-progress lease in ms, renewed about every third while `fn` runs; a crashed run frees
   * the key after it. A function of the arguments may bound it (Lambda: the remaining time).
   * @default 30_000
   */
  lease?: number | ((...args: A) => number);
  /**
   * How long to wait for a duplicate in progress before giving up with
   * {@link IdempotencyConflictError}, in ms; its result is replayed if it finishes in time.
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
   * When `fn` throws: `"release"` frees the key so a retry runs again (the error is rethrown
   * unchanged); `"hold"` keeps it until the lease ends.
   * @default "release"
   */
  onThrow?: "release" | "hold";
  /**
   * Turns a result into text for storage, for results JSON cannot encode (a BigInt from a
   * database driver, say). A result it cannot encode (it throws, or gives no text: a function,
   * a Symbol, a `toJSON` that returns undefined) is not stored: the key is marked "ran, not
   * replayable" (a retry gets {@link IdempotencyOutcomeUnknownError} rather than running again)
   * and `onStoreError` is told; the call still resolves with its result.
   * @default JSON.stringify
   */
  serialize?: (result: Awaited<R>) => string;
  /**
   * Turns stored text back into a result. A replay it cannot decode throws
   * {@link IdempotencyOutcomeUnknownError}.
   * @default JSON.parse
   */
  deserialize?: (text: string) => Awaited<R>;
  /** Told when the lease was lost while `fn` ran: its result was not stored. */
  onLeaseLost?: (key: string) => void;
  /**
   * Told when a result could not be stored (Redis unreachable, or a result `serialize` cannot
   * encode) or a key not freed. Never thrown: a call whose work succeeded resolves with its
   * result, whatever the store did.
   */
  onStoreError?: (error: unknown) => void;
  /**
   * Namespace of the record keys.
   * @default "idem"
   */
  prefix?: string;
}

/**
 * A function wrapped by {@link withIdempotency}: called, it resolves with the result (run or
 * replayed); `detailed` resolves with the result, whether it was replayed, and the key.
 */
export interface IdempotentFunction<A extends unknown[], R> {
  (...args: A): Promise<R>;
  /**
   * The same call, telling whether the result was replayed rather than run, for callers that
   * answer differently then (an HTTP route's `Idempotent-Replayed: true`).
   *
   * @example
   * ```ts
   * const { result, replayed } = await placeOrder.detailed(order);
   * return Response.json(result, { status: 201, headers: replayed ? { "Idempotent-Replayed": "true" } : {} });
   * ```
   */
  detailed(...args: A): Promise<CallOutcome<R>>;
}

/** The default retention: 24 hours. */
export const DEFAULT_RETENTION = 24 * 60 * 60 * 1000;
/** The default in-progress lease: 30 seconds. */
export const DEFAULT_LEASE = 30_000;

/**
 * Wraps `fn` so it runs at most once per idempotency key within the retention: the first call
 * runs it and stores its result; later calls with the same key get the stored result without
 * running it; a call while the first is still running is rejected with
 * {@link IdempotencyConflictError} (or waits, with `wait`); the same key with a different
 * request is rejected with {@link IdempotencyKeyReusedError}. Records belong to the wrapped
 * function (its name, or `scope`): two functions keyed the same way never share them.
 *
 * Exactly-once is not promised: if the lease runs out while `fn` still runs (a crash, a freeze),
 * a retry may run it again. Pass the key downstream too where it matters.
 *
 * @example
 * ```ts
 * export const handler = withIdempotency(processOrder, {
 *   adapter: ioredisAdapter(redis),
 *   key: (record: SQSRecord) => record.messageId,
 * });
 * ```
 */
export function withIdempotency<A extends unknown[], R>(
  fn: (...args: A) => R | PromiseLike<R>,
  options: IdempotencyOptions<A, R>,
): IdempotentFunction<A, Awaited<R>> {
  checkFunction(fn, "fn");
  const settings = checkOptions(options);
  const scope = options.scope ?? fn.name;
  if (scope === "") {
    throw new InvalidArgumentError(
      "scope",
      "withIdempotency: the wrapped function has no name to scope its records by: name it, or pass scope",
    );
  }
  const flow = new IdempotencyFlow({
    adapter: options.adapter,
    prefix: options.prefix,
    retention: settings.retention,
    onStoreError: options.onStoreError,
    retryAfter: settings.retryAfter,
  });
  const results = new IdempotentResults<Awaited<R>>(flow, {
    serialize: options.serialize ?? ((result) => JSON.stringify(result)),
    deserialize: options.deserialize ?? ((text) => JSON.parse(text) as Awaited<R>),
    storable: () => true,
    onThrow: settings.onThrow,
  });

  /** One call: its result, whether it was replayed, and its key (undefined without one). */
  async function call(self: unknown, args: A): Promise<CallOutcome<Awaited<R>>> {
    const key = options.key(...args);
    if (key === undefined || key === null) {
      return { result: await fn.apply(self, args), replayed: false, key: undefined };
    }
    checkIdempotencyKey(key);
    const namespace = typeof scope === "function" ? scope(...args) : scope;
    const fingerprint = options.fingerprint
      ? await sha256Hex(canonicalJson(options.fingerprint(...args)))
      : "";
    const lease = typeof options.lease === "function" ? options.lease(...args) : settings.lease;
    checkDuration(lease, "lease", MIN_TTL);
    const request = {
      parts: [namespace, key],
      key,
      fingerprint,
      lease: () => lease,
      renew: true,
      wait: settings.wait,
      onLeaseLost: options.onLeaseLost && (() => options.onLeaseLost?.(key)),
    };
    return results.run(request, async (): Promise<Awaited<R>> => await fn.apply(self, args));
  }

  const idempotent = async function idempotent(this: unknown, ...args: A): Promise<Awaited<R>> {
    return (await call(this, args)).result;
  };
  return Object.assign(idempotent, {
    detailed(this: unknown, ...args: A) {
      return call(this, args);
    },
  });
}

function checkOptions<A extends unknown[], R>(options: IdempotencyOptions<A, R>) {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError("options", "options must be an object");
  }
  checkFunction(options.key, "key");
  if (typeof options.scope !== "string" && options.scope !== undefined) {
    checkFunction(options.scope, "scope");
  }
  for (const hook of ["serialize", "deserialize", "onLeaseLost", "onStoreError"] as const) {
    if (options[hook] !== undefined) checkFunction(options[hook], hook);
  }
  if (options.onThrow !== undefined && !["release", "hold"].includes(options.onThrow)) {
    throw new InvalidArgumentError("onThrow", `onThrow must be "release" or "hold"`);
  }
  return {
    retention: checkDuration(options.retention ?? DEFAULT_RETENTION, "retention", MIN_TTL),
    lease:
      typeof options.lease === "function"
        ? DEFAULT_LEASE
        : checkDuration(options.lease ?? DEFAULT_LEASE, "lease", MIN_TTL),
    wait: checkDuration(options.wait ?? 0, "wait", 0),
    retryAfter:
      options.retryAfter === undefined
        ? undefined
        : checkDuration(options.retryAfter, "retryAfter", 0),
    onThrow: options.onThrow ?? "release",
  };
}
