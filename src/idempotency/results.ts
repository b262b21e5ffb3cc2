/**
 * Function results through the idempotency flow, for the front ends that wrap functions
 * (`withIdempotency`, the Lambda wrappers and middy middleware): a result is stored as the text
 * `serialize` makes of it and replayed through `deserialize`; a thrown error frees the key, or
 * keeps it until the lease ends.
 *
 * @module
 */

import { describeValue } from "../validate.js";
import type { Claim } from "./claim.js";
import { IdempotencyOutcomeUnknownError } from "./errors.js";
import type { ClaimRequest, IdempotencyFlow } from "./flow.js";
import type { StoredOutcome } from "./store.js";

/** What happens to a key when the work throws. */
export type OnThrow =
  /** Free it, so a retry runs again. */
  | "release"
  /** Keep it claimed until its lease ends. */
  | "hold";

/** How results are stored and replayed. */
export interface ResultPolicy<R> {
  /** Turns a result into text for storage. */
  serialize: (result: R) => string;
  /** Turns stored text back into a result. */
  deserialize: (text: string) => R;
  /** Whether a result is kept for replay; one that is not frees the key instead. */
  storable: (result: R) => boolean;
  /** What a thrown error does to the key. */
  onThrow: OnThrow;
}

/** What beginning a call found: a result to replay, or a claim to run under. */
export type BegunCall<R> = { kind: "replay"; result: R } | { kind: "run"; claim: Claim };

/** A call's result, whether it was replayed rather than run, and its idempotency key. */
export interface CallOutcome<R> {
  result: R;
  replayed: boolean;
  /** The call's idempotency key; undefined for a call without one (it ran). */
  key: string | undefined;
}

/**
 * Runs calls at most once per key, storing their results.
 *
 * @example
 * ```ts
 * const results = new IdempotentResults(flow, { serialize: JSON.stringify, deserialize: JSON.parse, storable: () => true, onThrow: "release" });
 * const { result, replayed } = await results.run(request, () => charge(order));
 * ```
 */
export class IdempotentResults<R> {
  readonly #flow: IdempotencyFlow;
  readonly #policy: ResultPolicy<R>;

  constructor(flow: IdempotencyFlow, policy: ResultPolicy<R>) {
    this.#flow = flow;
    this.#policy = policy;
  }

  /** Runs `work` under a claim of the request's key, or replays the stored result. */
  async run(request: ClaimRequest, work: () => R | PromiseLike<R>): Promise<CallOutcome<R>> {
    const begun = await this.begin(request);
    const { key } = request;
    if (begun.kind === "replay") return { result: begun.result, replayed: true, key };
    let result: R;
    try {
      result = await work();
    } catch (error) {
      await this.fail(begun.claim);
      throw error;
    }
    await this.complete(begun.claim, result);
    return { result, replayed: false, key };
  }

  /**
   * Claims the request's key, or finds its stored result (see {@link IdempotencyFlow.begin}).
   *
   * @throws {IdempotencyOutcomeUnknownError} also when the stored result cannot be decoded.
   */
  async begin(request: ClaimRequest): Promise<BegunCall<R>> {
    const begun = await this.#flow.begin(request);
    if (begun.kind === "claimed") return { kind: "run", claim: begun.claim };
    try {
      return { kind: "replay", result: this.#decode(begun.outcome) };
    } catch (error) {
      throw new IdempotencyOutcomeUnknownError(request.key, error);
    }
  }

  /**
   * Stores `result` for replay, or frees the key if it is not to be kept. A result that cannot
   * be encoded (a BigInt for JSON, or nothing `serialize` turns into text: a function, a Symbol,
   * a `toJSON` that returns undefined) is reported to `onStoreError`, and the key marked "ran,
   * not replayable". Never throws: the call's work succeeded.
   */
  async complete(claim: Claim, result: R): Promise<void> {
    if (!this.#policy.storable(result)) return claim.release();
    let outcome: StoredOutcome;
    try {
      outcome = this.#encode(result);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const cause = new TypeError(`the result cannot be stored for replay: ${reason}`, {
        cause: error,
      });
      return claim.unstorable(cause);
    }
    await claim.finish(outcome);
  }

  /** Ends a claim whose work threw: frees the key, or keeps it (per `onThrow`). Never throws. */
  async fail(claim: Claim, onThrow: OnThrow = this.#policy.onThrow): Promise<void> {
    if (onThrow === "hold") claim.keep();
    else await claim.release();
  }

  #encode(result: R): StoredOutcome {
    const stored = { status: 0, headers: "", truncated: false, failed: false };
    if (result === undefined) return { ...stored, body: "", encoding: "undefined" };
    const body: unknown = this.#policy.serialize(result);
    if (typeof body !== "string") {
      throw new TypeError(`serialize gave ${describeValue(body)}, not text`);
    }
    return { ...stored, body, encoding: "json" };
  }

  #decode(outcome: StoredOutcome): R {
    if (outcome.encoding === "undefined") return undefined as R;
    return this.#policy.deserialize(outcome.body);
  }
}
