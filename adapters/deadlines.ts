/**
 * Deadlines for many requests that share one timeout, kept with one timer for all of them
 * instead of a timer (and a race) per request: requests end in the order they were given a
 * deadline, so the pending ones form a queue whose head always expires first. Given the
 * connection's {@link DeadlineGroup}, the requests are given up on all at once, before their
 * deadline, when it is known to be down, and a timeout says whether it was connected at all.
 *
 * @module
 */

/**
 * The connection a {@link Deadlines}' requests go over, as far as it can tell: which Deadlines
 * have requests pending on it (to {@link Deadlines.abandon} them when it is known to be down),
 * and why an answer may be late.
 */
export interface DeadlineGroup {
  /** The Deadlines with requests pending; each joins while it has any. */
  readonly busy: Set<Deadlines>;
  /** Why requests may go unanswered now (added to a timeout's message), if known. */
  readonly unready: string | undefined;
}

/** One request's deadline. */
interface Pending {
  readonly at: number;
  readonly reject: (error: unknown) => void;
  settled: boolean;
}

/**
 * Rejects requests that take longer than `ms`. The timer is not cleared when the last pending
 * request settles (clearing and setting it again around every request of a sequential caller
 * costs more than the request's own bookkeeping): it fires once more, finds nothing due, and
 * stops. It never keeps a process alive by itself.
 *
 * @example
 * ```ts
 * const deadlines = new Deadlines(2_000);
 * const reply = await deadlines.run(client.evalsha(sha1, 1, key));
 * ```
 */
export class Deadlines {
  readonly #ms: number;
  readonly #failure: (error: unknown) => unknown;
  readonly #group: DeadlineGroup | undefined;
  #queue: Pending[] = [];
  #head = 0;
  #open = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * `failure` maps each request's error before it is passed on (to strip secrets, say). While
   * requests are pending, this instance is in `group.busy`.
   */
  constructor(
    ms: number,
    failure: (error: unknown) => unknown = (error) => error,
    group?: DeadlineGroup,
  ) {
    this.#ms = ms;
    this.#failure = failure;
    this.#group = group;
  }

  /** How many requests are waiting for an answer. */
  get pending(): number {
    return this.#open;
  }

  /**
   * Settles as `request` does (its error mapped by `failure`), or rejects once `ms` have passed
   * without an answer.
   */
  run<T>(request: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { at: performance.now() + this.#ms, reject, settled: false };
      this.#queue.push(pending);
      if (this.#open++ === 0) this.#group?.busy.add(this);
      if (this.#timer === undefined) this.#arm();
      request.then(
        (value) => {
          this.#settle(pending);
          resolve(value);
        },
        (error: unknown) => {
          this.#settle(pending);
          reject(this.#failure(error));
        },
      );
    });
  }

  /**
   * Rejects every pending request at once with `error` (mapped by `failure`), as if its deadline
   * had passed; an answer that comes later changes nothing.
   */
  abandon(error: unknown): void {
    const pending = this.#queue.slice(this.#head);
    for (const request of pending) {
      if (request.settled) continue;
      this.#settle(request);
      request.reject(this.#failure(error));
    }
  }

  #settle(pending: Pending): void {
    if (pending.settled) return;
    pending.settled = true;
    if (--this.#open > 0) return;
    this.#group?.busy.delete(this);
    this.#queue = [];
    this.#head = 0;
  }

  /**
   * Sets the timer for the oldest request still pending. A timer left from an earlier request is
   * due no later than that, so {@link run} arms one only when none is set.
   */
  #arm(): void {
    while (this.#queue[this.#head]?.settled) this.#head++;
    const first = this.#queue[this.#head];
    if (!first) return;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, first.at - performance.now()));
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Rejects every request past its deadline, then waits for the next one. */
  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (
      let first = this.#queue[this.#head];
      first && first.at <= now;
      first = this.#queue[this.#head]
    ) {
      this.#head++;
      if (first.settled) continue;
      this.#settle(first);
      first.reject(timeoutError(this.#ms, this.#group?.unready));
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.#open > 0) this.#arm();
  }
}

/**
 * The error of a request that ran out its deadline, named `TimeoutError` as web-standard
 * timeouts are, so the lock core knows not to send it again (it would wait as long once more).
 */
function timeoutError(ms: number, why: string | undefined): Error {
  const error = new Error(`Redis did not answer within ${ms} ms${why ? `: ${why}` : ""}`);
  error.name = "TimeoutError";
  return error;
}
