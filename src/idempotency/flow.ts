/**
 * The idempotency flow every front end shares (`withIdempotency`, the Lambda wrappers and middy
 * middleware, the Hono middleware): claim a key, or learn what became of the request that
 * claimed it first (waiting for it if asked), and hand the claim to the run. What a front end
 * keeps to itself is its mapping: where keys come from, how outcomes are encoded, and how the
 * errors below reach its callers.
 *
 * @module
 */

import type { LockAdapter } from "../adapter.js";
import { backoffDelay } from "../backoff.js";
import type { LockUnavailableError } from "../errors.js";
import { now, sleep } from "../time.js";
import { newToken } from "../token.js";
import { Claim } from "./claim.js";
import { RunDurations } from "./durations.js";
import {
  IdempotencyConflictError,
  IdempotencyKeyReusedError,
  IdempotencyOutcomeUnknownError,
} from "./errors.js";
import { IdempotencyStore, type StoredOutcome } from "./store.js";

/** Options of {@link IdempotencyFlow}, checked by the front end that builds it. */
export interface IdempotencyFlowOptions {
  /** The transport. */
  adapter: LockAdapter;
  /** Namespace of the record keys. @default "idem" */
  prefix?: string | undefined;
  /** How long a stored outcome is kept, in ms. */
  retention: number;
  /** Told when storing an outcome or freeing a key failed. Never thrown. */
  onStoreError?: ((error: unknown) => void) | undefined;
  /**
   * What an in-progress conflict's `retryAfter` says, in ms (never past the first request's
   * lease). By default, how long the first request likely has left: the runs this process saw
   * take so long on average, less how long it has been running (with none seen, as long again).
   */
  retryAfter?: number | undefined;
}

/** One request for a key, as a front end resolved it. */
export interface ClaimRequest {
  /** What tells records apart: the scope first, then the request's parts, the key last. */
  parts: readonly string[];
  /** The idempotency key (for errors and hooks). */
  key: string;
  /** The request's fingerprint ("" when not checked). */
  fingerprint: string;
  /** The in-progress lease in ms, sized again for every attempt while waiting. */
  lease: () => number;
  /** Renew the lease while the work runs (front ends whose lease cannot cover the work). */
  renew: boolean;
  /** How long to wait for a duplicate in progress, in ms (0: do not wait). */
  wait: number;
  /** Stops waiting: the last conflict is then thrown. */
  signal?: AbortSignal | undefined;
  /**
   * Bounds every request, the claim's end included: when it aborts, the request is given up and
   * the call fails with {@link LockUnavailableError} (its cause the deadline's reason).
   */
  deadline?: AbortSignal | undefined;
  /** Told once if the claim's lease is lost: its outcome was (or will be) not stored. */
  onLeaseLost?: (() => void) | undefined;
}

/** What beginning found: a stored outcome to replay, or a claim to run under. */
export type Begun = { kind: "replay"; outcome: StoredOutcome } | { kind: "claimed"; claim: Claim };

/** The first and the largest pause between looks at a duplicate in progress, in ms. */
const WAIT_STEP = { base: 50, cap: 1_000 };

/**
 * Claims idempotency keys for runs, over one store.
 *
 * @example
 * ```ts
 * const flow = new IdempotencyFlow({ adapter, retention: DEFAULT_RETENTION });
 * const begun = await flow.begin({ parts: ["billing", key], key, fingerprint: "", lease: () => 30_000, renew: true, wait: 0 });
 * ```
 */
export class IdempotencyFlow {
  readonly #store: IdempotencyStore;
  readonly #options: IdempotencyFlowOptions;
  readonly #durations = new RunDurations();

  constructor(options: IdempotencyFlowOptions) {
    this.#store = new IdempotencyStore(options.adapter, { prefix: options.prefix });
    this.#options = options;
  }

  /**
   * Claims the request's key, or finds what became of the request that claimed it: its stored
   * outcome, for replay. With `wait` > 0, a duplicate in progress is looked at again (full-jitter
   * backoff, never past its lease) until it ends, the wait is over or `signal` aborts.
   *
   * @throws {IdempotencyKeyReusedError} the key was used for a different request (422).
   * @throws {IdempotencyConflictError} a duplicate is still in progress (409, `retryAfter`).
   * @throws {IdempotencyOutcomeUnknownError} the first request ran but cannot be replayed (409).
   * @throws {LockUnavailableError} the store cannot be reached, or not before `deadline`.
   * @throws {InvalidArgumentError} for a part with a lone surrogate, before any request.
   */
  async begin(request: ClaimRequest): Promise<Begun> {
    const { key, fingerprint, signal } = request;
    const record = await this.#store.recordKey(request.parts);
    const token = newToken();
    const deadline = now() + request.wait;
    for (let attempt = 1; ; attempt++) {
      const lease = request.lease();
      const found = await this.#store.begin(record, fingerprint, lease, token, request.deadline);
      if (found.kind === "claimed") {
        const claimed = { key, record, token, fence: found.fence, lease };
        const { retention, onStoreError } = this.#options;
        const { renew, onLeaseLost, deadline } = request;
        const observe = (ms: number) => this.#durations.observe(ms);
        const settings = { retention, renew, onLeaseLost, onStoreError, deadline, observe };
        return { kind: "claimed", claim: new Claim(this.#store, claimed, settings) };
      }
      if (found.kind === "reused") throw new IdempotencyKeyReusedError(key);
      if (found.kind === "replay") {
        if (found.outcome.truncated) throw new IdempotencyOutcomeUnknownError(key);
        return { kind: "replay", outcome: found.outcome };
      }
      const remaining = deadline - now();
      const hint = this.#options.retryAfter ?? this.#durations.left(found.running);
      const conflict = new IdempotencyConflictError(key, Math.min(hint, found.retryAfter));
      if (remaining <= 0 || signal?.aborted) throw conflict;
      const pause = backoffDelay({
        attempt,
        ...WAIT_STEP,
        holderTtl: found.retryAfter,
        remaining,
        notified: false,
      });
      await sleep(pause, signal).done.catch(() => {
        throw conflict;
      });
    }
  }
}
