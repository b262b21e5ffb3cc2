/**
 * The options of the Idempotency-Key middleware: what each means, their defaults, and the checks
 * that run once, when the middleware is created.
 *
 * @module
 */

import {
  checkDuration,
  checkFunction,
  DEFAULT_LEASE,
  DEFAULT_RETENTION,
  InvalidArgumentError,
  type LockAdapter,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MIN_TTL,
  type StoreResponsesPolicy,
  describeValue as show,
  storesStatus,
} from "edgelock";
import type { Context, Env } from "hono";
import type { IdempotencyProblem } from "./idempotency-problem.js";
import { DEFAULT_REPLAY_HEADERS, NEVER_REPLAYED } from "./idempotency-response.js";
import { problemResponse } from "./respond.js";

/** What happens to the key when the handler throws. */
export type OnThrowPolicy =
  /** Free it: a retry runs the handler again. */
  | "release"
  /** Keep it for one lease: duplicates get 409 `idempotency_outcome_unknown`, then it frees. */
  | "hold"
  /** Store the error response (as `app.onError` rendered it) for replay, for the retention. */
  | "store-500";

/** Options of `idempotency()`. */
export interface IdempotencyMiddlewareOptions<E extends Env = Env> {
  /** The transport (`memoryAdapter()`, `ioredisAdapter(client)`, `upstashAdapter(client)`). */
  adapter: LockAdapter;
  /**
   * Namespace of the record keys in Redis.
   * @default "idem"
   */
  prefix?: string;
  /**
   * The request header that carries the key: an RFC 8941 String (`"abc"`) or a bare value.
   * @default "Idempotency-Key"
   */
  header?: string;
  /**
   * The methods the middleware applies to; other requests pass through untouched.
   * @default ["POST", "PATCH"]
   */
  methods?: readonly string[];
  /**
   * Refuse requests without a key (400 `idempotency_key_missing`). Otherwise they run without
   * idempotency, with `c.var.idempotency.key` undefined.
   * @default false
   */
  required?: boolean;
  /**
   * The shortest key accepted, in characters (keys are at most 255 printable ASCII characters).
   * Raise it (to 16 or 21, say) to demand enough entropy.
   * @default 1
   */
  minLength?: number;
  /** Further validation of a key; false refuses it (400 `idempotency_key_invalid`). */
  validate?: (key: string) => boolean;
  /** Requests for which it returns true pass through untouched. */
  skip?: (c: Context<E>) => boolean | Promise<boolean>;
  /**
   * The principal the key belongs to (a tenant, a user, an API key id), so the same key from two
   * principals never meets. Keys are always scoped by method and path as well.
   * @default none: keys are global (a warning is printed once, unless `allowGlobalKeys`)
   */
  getScope?: (c: Context<E>) => string | undefined | Promise<string | undefined>;
  /**
   * Silence the warning about keys without a `getScope`.
   * @default false
   */
  allowGlobalKeys?: boolean;
  /**
   * What identifies the request, so a key reused for a different one is refused (422): by
   * default a SHA-256 of the method, path, sorted query, content type, `fingerprintHeaders` and
   * raw body bytes; a function (its string is hashed, anything else canonical-JSON hashed); or
   * `false` to check keys only.
   */
  fingerprint?: false | ((c: Context<E>) => unknown);
  /**
   * Request headers that are part of the request's meaning (`Api-Version`, say), added to the
   * default fingerprint.
   * @default []
   */
  fingerprintHeaders?: readonly string[];
  /**
   * The largest request body the default fingerprint reads, in bytes; larger ones get 413
   * `idempotency_body_too_large`.
   * @default 1_048_576 (1 MiB)
   */
  maxBodyBytes?: number;
  /**
   * How long a stored response is kept for replay, in ms.
   * @default 86_400_000 (24 h)
   */
  retention?: number;
  /**
   * The in-progress lease, in ms, renewed about every third while the handler runs (and while a
   * streamed body is still being stored). A crashed run frees the key after it.
   * @default 30_000
   */
  lease?: number;
  /**
   * How long a duplicate waits for the first request to finish before getting 409, in ms; if the
   * first finishes in time its response is replayed (or, if it was not stored, the duplicate
   * runs). Keep it short on Workers: waiting counts against the request's wall time.
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
   * Which responses are stored for replay. The others free the key.
   * @default "non-5xx"
   */
  storeResponses?: StoreResponsesPolicy;
  /**
   * What happens to the key when the handler throws. The error always reaches `app.onError`
   * unchanged, whatever the store does.
   * @default "release"
   */
  onThrow?: OnThrowPolicy;
  /**
   * The largest response body stored, in bytes. A larger one (streamed through to the client
   * untouched) is recorded as not replayable: duplicates get 409 `idempotency_outcome_unknown`.
   * A large body is stored in parts of at most 512 KiB (one request each), so a REST endpoint's
   * request size limit (1 MiB for edgelock's gateway) does not cap it.
   * @default 1_048_576 (1 MiB)
   */
  maxStoredBodyBytes?: number;
  /**
   * Response content types that are never stored (streams of events): the key is held while the
   * body streams, then freed.
   * @default ["text/event-stream", "application/x-ndjson"]
   */
  bypassContentTypes?: readonly string[];
  /**
   * Response headers replayed besides the defaults (`content-type`, `content-encoding`,
   * `content-language`, `content-disposition`, `location`, `etag`, `last-modified`,
   * `cache-control`). `set-cookie` is never replayed.
   * @default []
   */
  replayHeaders?: readonly string[];
  /**
   * The header that marks a replay (`"Idempotency-Replayed"` for hono-idempotency's clients).
   * @default "Idempotent-Replayed"
   */
  replayedHeader?: string;
  /**
   * When the store cannot be reached, run the request without idempotency instead of refusing it
   * with 503 `idempotency_store_unavailable`.
   * @default false
   */
  failOpen?: boolean;
  /**
   * Renders a refusal (to use 400 for a reused key as Stripe does, or another body format).
   * @default an `application/problem+json` response with `code`, and `Retry-After` where it applies
   */
  onProblem?: (c: Context<E>, problem: IdempotencyProblem) => Response | Promise<Response>;
  /** Told when the handler is about to run for a claimed key (for metrics). */
  onExecute?: (c: Context<E>, info: { key: string; fence: number }) => void;
  /** Told when a stored response is replayed (for metrics). */
  onReplay?: (c: Context<E>, info: { key: string; status: number }) => void;
  /**
   * Told when the lease was lost while the handler ran (it lapsed, or another run took the key):
   * this run's response went to its client but was not stored.
   */
  onLeaseLost?: (c: Context<E>, info: { key: string }) => void;
  /**
   * Told when a response could not be stored or a key not freed (the store unreachable, a body
   * too large for the transport). Never changes the response: the key is marked "ran, not
   * replayable" where it can be, and otherwise frees itself when its lease ends.
   */
  onStoreError?: (error: unknown) => void;
}

/** The default cap on fingerprinted request bodies and stored response bodies: 1 MiB. */
const DEFAULT_MAX_BYTES = 1_048_576;

/** Checks the options once, at construction, and resolves the defaults. */
export function checkOptions<E extends Env>(options: IdempotencyMiddlewareOptions<E>) {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError("options", `options must be an object, got ${show(options)}`);
  }
  for (const hook of [
    "validate",
    "skip",
    "getScope",
    "onProblem",
    "onExecute",
    "onReplay",
    "onLeaseLost",
    "onStoreError",
  ] as const) {
    if (options[hook] !== undefined) checkFunction(options[hook], hook);
  }
  const fingerprint: unknown = options.fingerprint;
  if (fingerprint !== undefined && fingerprint !== false && typeof fingerprint !== "function") {
    throw new InvalidArgumentError(
      "fingerprint",
      `fingerprint must be false or a function, got ${show(fingerprint)}`,
    );
  }
  const storeResponses = oneOf(options.storeResponses, "storeResponses", [
    "non-5xx",
    "success",
    "all",
  ] as const);
  const onThrow = oneOf(options.onThrow, "onThrow", ["release", "hold", "store-500"] as const);
  const replayHeaders = names(options.replayHeaders ?? [], "replayHeaders");
  for (const name of replayHeaders) {
    if (NEVER_REPLAYED.has(name)) {
      throw new InvalidArgumentError("replayHeaders", `${name} is never replayed`);
    }
  }
  const minLength = options.minLength ?? 1;
  if (!Number.isSafeInteger(minLength) || minLength < 1 || minLength > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new InvalidArgumentError(
      "minLength",
      `minLength must be an integer from 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH}, got ${show(minLength)}`,
    );
  }
  const bypass = new Set(names(options.bypassContentTypes ?? BYPASSED, "bypassContentTypes"));
  return {
    header: headerName(options.header ?? "Idempotency-Key", "header"),
    replayedHeader: headerName(options.replayedHeader ?? "Idempotent-Replayed", "replayedHeader"),
    methods: new Set(names(options.methods ?? ["POST", "PATCH"], "methods").map(upper)),
    required: options.required === true,
    minLength,
    validate: options.validate ?? (() => true),
    fingerprintHeaders: names(options.fingerprintHeaders ?? [], "fingerprintHeaders"),
    maxBodyBytes: byteCount(options.maxBodyBytes ?? DEFAULT_MAX_BYTES, "maxBodyBytes"),
    maxStoredBodyBytes: byteCount(
      options.maxStoredBodyBytes ?? DEFAULT_MAX_BYTES,
      "maxStoredBodyBytes",
    ),
    retention: checkDuration(options.retention ?? DEFAULT_RETENTION, "retention", MIN_TTL),
    lease: checkDuration(options.lease ?? DEFAULT_LEASE, "lease", MIN_TTL),
    wait: checkDuration(options.wait ?? 0, "wait", 0),
    retryAfter:
      options.retryAfter === undefined
        ? undefined
        : checkDuration(options.retryAfter, "retryAfter", 0),
    stores: storesStatus(storeResponses ?? "non-5xx"),
    onThrow: onThrow ?? "release",
    replayHeaders: new Set([...DEFAULT_REPLAY_HEADERS, ...replayHeaders]),
    bypassed: (contentType: string | null) =>
      contentType !== null && bypass.has(contentType.split(";")[0]?.trim().toLowerCase() ?? ""),
    failOpen: options.failOpen === true,
    onProblem: options.onProblem ?? problemResponse,
  };
}

const BYPASSED = ["text/event-stream", "application/x-ndjson"];

function oneOf<T extends string>(
  value: unknown,
  argument: string,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined || allowed.includes(value as T)) return value as T | undefined;
  throw new InvalidArgumentError(
    argument,
    `${argument} must be one of ${allowed.join(", ")}, got ${show(value)}`,
  );
}

/** Checks a list of header names, media types or methods; returns them lowercased. */
function names(value: unknown, argument: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v.length > 0)) {
    throw new InvalidArgumentError(
      argument,
      `${argument} must be an array of non-empty strings, got ${show(value)}`,
    );
  }
  return value.map((v: string) => v.toLowerCase());
}

function headerName(value: unknown, argument: string): string {
  if (typeof value !== "string" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) {
    throw new InvalidArgumentError(
      argument,
      `${argument} must be a header name, got ${show(value)}`,
    );
  }
  return value;
}

function byteCount(value: unknown, argument: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(
      argument,
      `${argument} must be a non-negative integer number of bytes, got ${show(value)}`,
    );
  }
  return value;
}

function upper(value: string): string {
  return value.toUpperCase();
}
