/**
 * Where a locker's waiters hear that a lock was handed to them: its inboxes, channels named for
 * this locker alone, each subscribed while it has waiters (see `inbox.ts`). Over one Redis, one
 * inbox serves every lock; on Redis Cluster with sharded pub/sub, each lock has its own, named in
 * the lock's hash slot, so that the lock's node counts the subscription (see
 * {@link LockAdapter.subscriptions}). A waiter joining the line in Redis leaves its inbox's name
 * with its place, and the release that hands it the lock publishes `"<waiter id> <fence>"` there,
 * so the message goes to this client only, not to every client waiting for the same lock; the
 * room routes it to the seat of the waiter it names.
 *
 * The room also decides when its waiters look again by themselves, since an announcement can fail
 * to come: for each lock, its oldest waiter here looks about every `pollEvery` ms (a lock whose
 * holder died is free without a release, and a look hands it on), and after a subscription was
 * re-established (announcements sent meanwhile are lost) every waiter told there looks once. So ten thousand
 * waiters for one lock cost Redis about one request per `pollEvery`, not ten thousand.
 *
 * @module
 */

import type { Nap } from "./abortable.js";
import type { LockAdapter } from "./adapter.js";
import { Inbox, unref } from "./inbox.js";
import { sleep } from "./time.js";

/** One waiter's place in a room: it learns here that it was handed the lock, and its fence. */
export class Seat {
  /** The fence of the hand-off, once announced. */
  fence: number | undefined;
  #nap: Nap | undefined;

  /** @internal Seats are given out by a {@link WaitingRoom}. */
  constructor(
    /** The channel the waiter is told on. */
    readonly channel: string,
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

/** One locker's inboxes and its waiters. */
export class WaitingRoom {
  readonly #subscribe: NonNullable<LockAdapter["subscribe"]>;
  readonly #inboxOf: (lock: string) => string;
  readonly #pollEvery: number;
  /** Every waiter, by waiter id. */
  readonly #seats = new Map<string, Seat>();
  /** The waiters by lock. */
  readonly #lines = new Map<string, Line>();
  /** The inboxes subscribed or being subscribed, by channel. */
  readonly #inboxes = new Map<string, Inbox>();

  /**
   * @param inboxOf the channel a waiter for a lock (its Redis name) is told on.
   * @param pollEvery about how often a line's oldest waiter looks by itself, in ms.
   */
  constructor(
    subscribe: NonNullable<LockAdapter["subscribe"]>,
    inboxOf: (lock: string) => string,
    pollEvery: number,
  ) {
    this.#subscribe = subscribe;
    this.#inboxOf = inboxOf;
    this.#pollEvery = pollEvery;
  }

  /** A seat for waiter `id` of `lock` if its inbox is already subscribed; otherwise undefined. */
  seatIfOpen(lock: string, id: string): Seat | undefined {
    const inbox = this.#inboxes.get(this.#inboxOf(lock));
    return inbox?.open ? this.#seat(lock, id, inbox) : undefined;
  }

  /** A seat for waiter `id` of `lock`, subscribing to its inbox first if needed; undefined if that fails. */
  async join(lock: string, id: string): Promise<Seat | undefined> {
    const inbox = this.#inbox(this.#inboxOf(lock));
    const seat = this.#seat(lock, id, inbox);
    if (await inbox.listen()) return seat;
    seat.leave();
    return undefined;
  }

  /**
   * Delivers an announcement that did not come through a subscription: the releaser's own copy,
   * when the release happened in this process, so a waiter here need not wait for the message.
   */
  announce(announcement: string): void {
    this.#deliver(announcement, undefined);
  }

  /** The inbox on `channel`, made if there is none (it forgets itself once closed). */
  #inbox(channel: string): Inbox {
    const known = this.#inboxes.get(channel);
    if (known) return known;
    const inbox = new Inbox(
      channel,
      () => this.#subscribe(channel, (message) => this.#deliver(message, channel)),
      () => {
        if (this.#inboxes.get(channel) === inbox) this.#inboxes.delete(channel);
      },
    );
    this.#inboxes.set(channel, inbox);
    return inbox;
  }

  #seat(lock: string, id: string, inbox: Inbox): Seat {
    inbox.enter();
    let line = this.#lines.get(lock);
    if (!line) {
      line = { seats: new Map() };
      this.#lines.set(lock, line);
      this.#poll(line);
    }
    const joined = line;
    const seat = new Seat(inbox.channel, () => {
      if (this.#seats.get(id) !== seat) return;
      this.#seats.delete(id);
      joined.seats.delete(id);
      if (joined.seats.size === 0) {
        clearTimeout(joined.timer);
        this.#lines.delete(lock);
      }
      inbox.leave();
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

  /**
   * Routes an announcement `"<waiter id> <fence>"` to that waiter's seat. An empty message means
   * the subscription to `channel` was re-established and announcements may have been lost: every
   * waiter told there looks.
   */
  #deliver(message: string, channel: string | undefined): void {
    if (message === "") {
      for (const seat of this.#seats.values()) if (seat.channel === channel) seat.wake();
      return;
    }
    const space = message.indexOf(" ");
    this.#seats.get(message.slice(0, space))?.handOff(Number(message.slice(space + 1)));
  }
}
