/**
 * Watching an AbortSignal for the length of one operation.
 *
 * @module
 */

/** A sleep that can be cut short. */
export interface Nap {
  readonly done: Promise<void>;
  wake(): void;
}

/**
 * Watches `signal` with one listener for a whole operation, however many requests and sleeps it
 * awaits. (A signal shared by thousands of waiters makes each listener added or removed cost as
 * much as the listeners it has, so one per step would be quadratic.)
 *
 * @example
 * ```ts
 * const watch = new AbortWatch(signal);
 * try {
 *   const reply = await watch.race(request(), (late) => late.then(undo));
 *   await watch.pause(sleep(100));
 * } finally {
 *   watch.dispose();
 * }
 * ```
 */
export class AbortWatch {
  readonly #signal: AbortSignal | undefined;
  readonly #aborted: Promise<never> | undefined;
  #onAbort: () => void = () => {};
  #nap: Nap | undefined;

  constructor(signal: AbortSignal | undefined) {
    this.#signal = signal;
    if (!signal) return;
    this.#aborted = new Promise<never>((_, reject) => {
      this.#onAbort = () => {
        reject(signal.reason);
        this.#nap?.wake();
      };
    });
    this.#aborted.catch(() => {});
    signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Throws the signal's reason if it has aborted. */
  check(): void {
    if (this.#signal?.aborted) throw this.#signal.reason;
  }

  /**
   * Resolves as `promise` does, or rejects with the signal's reason as soon as it aborts. A
   * request cannot be recalled once sent, so when the signal wins, `abandoned` receives the
   * promise to clean up after (for example, to release a lock the request took anyway).
   */
  async race<T>(promise: Promise<T>, abandoned: (late: Promise<T>) => void): Promise<T> {
    if (!this.#aborted) return promise;
    try {
      return await Promise.race([promise, this.#aborted]);
    } catch (error) {
      if (this.#signal?.aborted) abandoned(promise);
      throw error;
    }
  }

  /** Waits out `nap`, which an abort cuts short, then throws if the signal aborted. */
  async pause(nap: Nap): Promise<void> {
    this.#nap = nap;
    try {
      await nap.done;
    } finally {
      this.#nap = undefined;
    }
    this.check();
  }

  /** Stops watching. */
  dispose(): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}

/**
 * Settles as `promise` does, or rejects with the signal's reason as soon as it aborts (the
 * promise itself goes on; what it does when it lands is the caller's to undo, if anything).
 *
 * @example
 * ```ts
 * const state = await raced(operations.inspect(key, names), signal);
 * ```
 */
export async function raced<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  // The promise left behind may still reject (with the same reason, say): nobody waits for it.
  const abandon = (late: Promise<T>) => void late.catch(() => {});
  if (signal.aborted) {
    abandon(promise);
    throw signal.reason;
  }
  const watch = new AbortWatch(signal);
  try {
    return await watch.race(promise, abandon);
  } finally {
    watch.dispose();
  }
}
