/**
 * Where a locker's waiters hear that a lock was handed to them. Each locker has one inbox: a
 * channel named for it alone, subscribed while it has waiters. A waiter joining the line in
 * Redis leaves the inbox's name with its place, and the release that hands it the lock publishes
 * `"<waiter id> <fence>"` there, so the message goes to this client only, not to every client
 * waiting for the same lock; the room routes it to the seat of the waiter it names. The
 * subscription lingers briefly after the last waiter leaves, so a client that waits again and
 * again does not subscribe anew each time.
 *
 * The room also decides when its waiters look again by themselves, since an announcement can fail
 * to come: for each lock, its oldest waiter here looks about every `pollEvery` ms (a lock whose
 * holder died is free without a release, and a look hands it on), and after the subscription was
 * re-established (announcements sent meanwhile are lost) every waiter looks once. So ten thousand
 * waiters for one lock cost Redis about one request per `pollEvery`, not ten thousand.
 *
 * @module
 */

import type { Nap } from "./abortable.js";
import type { LockAdapter, Unsubscribe } from "./adapter.js";
import { sleep } from "./time.js";

/** How long the inbox stays subscribed after its last waiter left, in ms. */
const LINGER_MS = 250;

/** One waiter's place in a room: it learns here that it was handed the lock, and its fence. */
export class Seat {
  /** The fence of the hand-off, once announced. */
  fence: number | undefined;
  #nap: Nap | undefined;

  /** @internal Seats are given out by a {@link WaitingRoom}. */
  constructor(
    /** Leaves the room; safe to call more than once. */
    readonly leave: () => void,
  ) {}

  /** Sleeps up to `ms`, ending early when the lock is handed over or the room says to look. */
  nap(ms: number): Nap {
    if (this.fence !== undefined) return { done: Promise.resolve(), wake: () => {} };
    const nap = sleep(ms);
    this.#nap = nap;
    return nap;
  }

  /** Ends the current nap, if any. */
  wake(): void {
    this.#nap?.wake();
    this.#nap = undefined;
  }

  /** @internal Called by the room when the announcement for this seat arrives. */
  handOff(fence: number): void {
    this.fence = fence;
    this.wake();
  }
}

/** This room's waiters for one lock, oldest first, and the timer that wakes the oldest. */
interface Line {
  readonly seats: Map<string, Seat>;
  timer?: ReturnType<typeof setTimeout>;
}

/** One locker's inbox and its waiters. */
export class WaitingRoom {
  /** The channel on which this locker's waiters are told of hand-offs (see `inboxName`). */
  readonly inbox: string;
  readonly #subscribe: NonNullable<LockAdapter["subscribe"]>;
  readonly #pollEvery: number;
  /** Every waiter, by waiter id. */
  readonly #seats = new Map<string, Seat>();
  /** The waiters by lock. */
  readonly #lines = new Map<string, Line>();
  /** The subscription: resolves true once made, false if it failed; undefined when not asked. */
  #ready: Promise<boolean> | undefined;
  #open = false;
  #unsubscribe: Unsubscribe | undefined;
  #linger: ReturnType<typeof setTimeout> | undefined;

  constructor(subscribe: NonNullable<LockAdapter["subscribe"]>, inbox: string, pollEvery: number) {
    this.#subscribe = subscribe;
    this.inbox = inbox;
    this.#pollEvery = pollEvery;
  }

  /** A seat for waiter `id` of `lock` if the inbox is already subscribed; otherwise undefined. */
  seatIfOpen(lock: string, id: string): Seat | undefined {
    return this.#open ? this.#seat(lock, id) : undefined;
  }

  /** A seat for waiter `id` of `lock`, subscribing to the inbox first if needed; undefined if that fails. */
  async join(lock: string, id: string): Promise<Seat | undefined> {
    const ready = this.#ready ?? this.#listen();
    const seat = this.#seat(lock, id);
    if (await ready) return seat;
    seat.leave();
    return undefined;
  }

  /**
   * Delivers an announcement that did not come through the subscription: the releaser's own copy,
   * when the release happened in this process, so a waiter here need not wait for the message.
   */
  announce(announcement: string): void {
    this.#deliver(announcement);
  }

  #listen(): Promise<boolean> {
    const ready: Promise<boolean> = this.#subscribe(this.inbox, (message) =>
      this.#deliver(message),
    ).then(
      (unsubscribe) => {
        if (this.#ready !== ready) {
          unsubscribe(); // every waiter left and the linger ran out before the subscription came
          return false;
        }
        this.#unsubscribe = unsubscribe;
        this.#open = true;
        return true;
      },
      () => {
        if (this.#ready === ready) this.#ready = undefined;
        return false;
      },
    );
    this.#ready = ready;
    return ready;
  }

  #seat(lock: string, id: string): Seat {
    clearTimeout(this.#linger);
    let line = this.#lines.get(lock);
    if (!line) {
      line = { seats: new Map() };
      this.#lines.set(lock, line);
      this.#poll(line);
    }
    const joined = line;
    const seat = new Seat(() => {
      if (this.#seats.get(id) !== seat) return;
      this.#seats.delete(id);
      joined.seats.delete(id);
      if (joined.seats.size === 0) {
        clearTimeout(joined.timer);
        this.#lines.delete(lock);
      }
      if (this.#seats.size === 0) this.#lingerThenClose();
    });
    this.#seats.set(id, seat);
    joined.seats.set(id, seat);
    return seat;
  }

  /**
   * Wakes a line's oldest waiter about every `pollEvery` ms (jittered, so rooms in many processes
   * spread out) while the line has waiters. The timer never keeps a process alive.
   */
  #poll(line: Line): void {
    line.timer = setTimeout(
      () => {
        line.seats.values().next().value?.wake();
        this.#poll(line);
      },
      this.#pollEvery * (0.5 + Math.random() / 2),
    );
    unref(line.timer);
  }

  /** Unsubscribes {@link LINGER_MS} after the last waiter left, unless a waiter comes back. */
  #lingerThenClose(): void {
    this.#linger = setTimeout(() => {
      const unsubscribe = this.#unsubscribe;
      this.#ready = undefined;
      this.#open = false;
      this.#unsubscribe = undefined;
      unsubscribe?.();
    }, LINGER_MS);
    unref(this.#linger);
  }

  /**
   * Routes an announcement `"<waiter id> <fence>"` to that waiter's seat. An empty message means
   * the subscription was re-established and announcements may have been lost: everyone looks.
   */
  #deliver(message: string): void {
    if (message === "") {
      for (const seat of this.#seats.values()) seat.wake();
      return;
    }
    const space = message.indexOf(" ");
    this.#seats.get(message.slice(0, space))?.handOff(Number(message.slice(space + 1)));
  }
}

/** Lets a timer run without keeping the process alive (where timers can be unref'd). */
function unref(timer: ReturnType<typeof setTimeout>): void {
  (timer as { unref?: () => void }).unref?.();
}
