/**
 * A claimed idempotency record: the run that holds a key, and the three ways its claim ends
 * (its outcome stored, the key freed, or the key kept until its lease lapses).
 *
 * @module
 */

import { now } from "../time.js";
import type { IdempotencyOutcomeUnknownError } from "./errors.js";
import { heartbeat } from "./heartbeat.js";
import type { IdempotencyStore, StoredOutcome } from "./store.js";

/** What a {@link Claim} needs besides its record. */
export interface ClaimSettings {
  /** How long a stored outcome is kept, in ms. */
  retention: number;
  /** Renew the lease about every third of its length while the work runs. */
  renew: boolean;
  /** Told once when the lease was lost: the outcome was (or will be) not stored. */
  onLeaseLost: (() => void) | undefined;
  /** Told when storing or freeing failed; the claim then lapses with its lease. */
  onStoreError: ((error: unknown) => void) | undefined;
  /** Bounds every request of the claim's end (see {@link IdempotencyStore.finish}). */
  deadline: AbortSignal | undefined;
  /** Told how long the run took, when it ends with an outcome or a release. */
  observe: (ms: number) => void;
}

/**
 * The run that claimed an idempotency key. End it once, with {@link Claim.finish},
 * {@link Claim.release} or {@link Claim.keep}; none of them ever throws.
 *
 * @example
 * ```ts
 * const begun = await flow.begin(request);
 * if (begun.kind === "claimed") {
 *   const outcome = await work();
 *   await begun.claim.finish(outcomeOf(outcome));
 * }
 * ```
 */
export class Claim {
  /** The idempotency key, as the caller gave it. */
  readonly key: string;
  /** The record's Redis key. */
  readonly record: string;
  /** The secret that owns the record while this run holds it. */
  readonly token: string;
  /** Increases with every claim of the key: pass it downstream so a stale run can be refused. */
  readonly fence: number;
  readonly #store: IdempotencyStore;
  readonly #settings: ClaimSettings;
  readonly #stopRenewing: () => void;
  readonly #started = now();
  #lostTold = false;

  constructor(
    store: IdempotencyStore,
    claimed: { key: string; record: string; token: string; fence: number; lease: number },
    settings: ClaimSettings,
  ) {
    this.key = claimed.key;
    this.record = claimed.record;
    this.token = claimed.token;
    this.fence = claimed.fence;
    this.#store = store;
    this.#settings = settings;
    this.#stopRenewing = settings.renew
      ? heartbeat(
          () => store.renew(this.record, this.token, claimed.lease),
          claimed.lease,
          () => this.#leaseLost(),
        )
      : () => {};
  }

  /**
   * Stores `outcome` for replay, kept `keep` ms (the retention by default). If it cannot be
   * stored, "ran, not replayable" is stored instead, so a retry is not run again; if even that
   * fails, the failure goes to `onStoreError` and the key frees itself when its lease ends. A
   * lease found lost goes to `onLeaseLost`. Resolves true if `outcome` was stored.
   */
  async finish(outcome: StoredOutcome, keep = this.#settings.retention): Promise<boolean> {
    // Stopped first, so a renewal racing the finish cannot be mistaken for a lost lease.
    this.#stopRenewing();
    this.#ended();
    try {
      const { deadline } = this.#settings;
      const stored = await this.#store.finish(this.record, this.token, outcome, keep, deadline);
      if (!stored) this.#leaseLost();
      return stored;
    } catch (error) {
      this.#report(error);
      if (!outcome.truncated) await this.#markUnreplayable(outcome, keep);
      return false;
    }
  }

  /**
   * Ends a claim whose outcome cannot be stored (it cannot be encoded for replay: `error` says
   * why): stores "ran, not replayable" instead, so a retry is not run again and gets
   * {@link IdempotencyOutcomeUnknownError}, and tells `onStoreError`.
   */
  async unstorable(error: unknown): Promise<void> {
    this.#stopRenewing();
    this.#ended();
    this.#report(error);
    const { retention } = this.#settings;
    await this.#markUnreplayable(
      { status: 0, headers: "", body: "", encoding: "", truncated: false, failed: false },
      retention,
    );
  }

  /** Frees the key so a retry runs afresh; a failure goes to `onStoreError`. */
  async release(): Promise<void> {
    this.#stopRenewing();
    this.#ended();
    const { deadline } = this.#settings;
    await this.#store.abandon(this.record, this.token, deadline).catch((error: unknown) => {
      this.#report(error);
    });
  }

  /** Leaves the key claimed until its lease ends (the work may still be running). */
  keep(): void {
    this.#stopRenewing();
  }

  async #markUnreplayable(outcome: StoredOutcome, keep: number): Promise<void> {
    const unreplayable = { ...outcome, body: "", truncated: true };
    const { deadline } = this.#settings;
    try {
      if (!(await this.#store.finish(this.record, this.token, unreplayable, keep, deadline))) {
        this.#leaseLost();
      }
    } catch {
      // Told once already; the lease lapses by itself and a retry runs again.
    }
  }

  /** Tells how long the run took. */
  #ended(): void {
    this.#settings.observe(now() - this.#started);
  }

  #leaseLost(): void {
    if (this.#lostTold) return;
    this.#lostTold = true;
    this.#stopRenewing();
    guarded(this.#settings.onLeaseLost);
  }

  #report(error: unknown): void {
    guarded(this.#settings.onStoreError, error);
  }
}

/** Calls a listener, if any; a faulty one must not change the outcome of the run it is told of. */
function guarded<A extends unknown[]>(listener: ((...args: A) => void) | undefined, ...args: A) {
  try {
    listener?.(...args);
  } catch {
    // ignored: see above
  }
}
