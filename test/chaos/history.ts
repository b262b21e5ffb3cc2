/**
 * The Jepsen-style history of one chaos run: every operation of every client process, the fenced
 * store's decisions and the faults injected, as `invoke / ok / fail / info` events on one clock.
 *
 * Timestamps come from `process.hrtime.bigint()`, which is CLOCK_MONOTONIC: the same clock in
 * every process of the machine, so events of different processes compare directly.
 */

/** Milliseconds on CLOCK_MONOTONIC, comparable across the processes of one machine. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * What an event is about:
 * - `acquire`: taking the lock (`ok` carries the fence);
 * - `lost`: the lease's `signal` aborted (`info`);
 * - `extend`: an explicit `lease.extend()`;
 * - `release`: `invoke` when the critical section ends (the protected work is over), then the
 *   release's outcome (`ok` with `released`, or `fail`);
 * - `hold`: the outcome of `locker.using()` after the release;
 * - `read` / `write`: the fenced store's decisions (`ok` accepted, `fail` rejected as stale);
 * - `nemesis`: a fault injected or healed (`info`, `detail` names it);
 * - `exit`: a client process ended (`info`; `detail` says how).
 */
export type Op =
  | "acquire"
  | "lost"
  | "extend"
  | "release"
  | "hold"
  | "read"
  | "write"
  | "nemesis"
  | "exit";

/** Jepsen's outcome types; `info` means the outcome is unknown (or the event is a fact). */
export type EventType = "invoke" | "ok" | "fail" | "info";

/** One event of a history. */
export interface HistoryEvent {
  /** When, in {@link monotonicMs}. */
  t: number;
  /** The client process (its pid), or 0 for the harness itself. */
  p: number;
  op: Op;
  type: EventType;
  /** The lock key, for lock operations. */
  key?: string;
  /** The fence of the lease involved. */
  fence?: number;
  /** The lease length asked for, on `acquire invoke`. */
  ttl?: number;
  /** The error code (`LOCK_LOST`, `LOCK_UNAVAILABLE`, `AbortError`...) of a failure. */
  code?: string;
  /** Free text: the fault's name, an error message, how a process exited. */
  detail?: string;
  /** `release ok`: whether this call released the lock. */
  released?: boolean;
  /** Store operations: the fenced value read or written, and the unfenced one. */
  value?: number;
  plain?: number;
}

/** A growing history that scenarios can wait on. */
export class History {
  readonly events: HistoryEvent[] = [];
  readonly #waiters = new Set<(event: HistoryEvent) => void>();

  /** Appends an event and tells whoever waits for one like it. */
  record(event: HistoryEvent): void {
    this.events.push(event);
    for (const waiter of [...this.#waiters]) waiter(event);
  }

  /** Records a harness event (a fault injected or healed) now. */
  nemesis(detail: string): void {
    this.record({ t: monotonicMs(), p: 0, op: "nemesis", type: "info", detail });
  }

  /**
   * Resolves with the first event (already recorded or to come) that `match` accepts; rejects
   * after `timeout` ms saying what was awaited.
   */
  waitFor(
    match: (event: HistoryEvent) => boolean,
    timeout: number,
    what = "event",
  ): Promise<HistoryEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = (event: HistoryEvent) => {
        if (!match(event)) return;
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        resolve(event);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`no ${what} within ${timeout} ms`));
      }, timeout);
      this.#waiters.add(waiter);
    });
  }

  /** The events of process `p`. */
  of(p: number): HistoryEvent[] {
    return this.events.filter((event) => event.p === p);
  }
}
