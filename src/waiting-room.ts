/**
 * Where a locker's waiters listen for the hand-off of a lock. One subscription per lock channel
 * per locker serves all its waiters there; each announcement names one waiter and goes to that
 * waiter only. The subscription lingers briefly after the last waiter leaves, so a lock that is
 * asked for again and again is not subscribed to anew each time.
 *
 * A room also decides when its waiters look again by themselves, since an announcement can fail
 * to come: its oldest waiter looks about every `pollEvery` ms (a lock whose holder died is free
 * without a release, and a look hands it on), and after the subscription was re-established
 * (announcements sent meanwhile are lost) every waiter looks once. So a room of ten thousand
 * waiters costs Redis about one request per `pollEvery`, not ten thousand.
 *
 * @module
 */

import type { Nap } from "./abortable.js";
import type { LockAdapter, Unsubscribe } from "./adapter.js";
import { sleep } from "./time.js";

/** How long a channel stays subscribed after its last waiter left, in ms. */
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

/** The waiters of one channel and its subscription. */
interface Room {
  /** By waiter id, oldest first. */
  readonly seats: Map<string, Seat>;
  /** Resolves true once subscribed, false if subscribing failed. */
  ready: Promise<boolean>;
  open: boolean;
  unsubscribe?: Unsubscribe;
  /** The linger timer while empty, else the poll timer. */
  timer?: ReturnType<typeof setTimeout>;
}

/** The rooms of one locker, by channel. */
export class WaitingRoom {
  readonly #subscribe: NonNullable<LockAdapter["subscribe"]>;
  readonly #pollEvery: number;
  readonly #rooms = new Map<string, Room>();

  constructor(subscribe: NonNullable<LockAdapter["subscribe"]>, pollEvery: number) {
    this.#subscribe = subscribe;
    this.#pollEvery = pollEvery;
  }

  /** A seat for waiter `id` if the channel is already subscribed; otherwise undefined. */
  seatIfOpen(channel: string, id: string): Seat | undefined {
    const room = this.#rooms.get(channel);
    return room?.open ? this.#seat(channel, room, id) : undefined;
  }

  /** A seat for waiter `id`, subscribing to the channel first if needed; undefined if that fails. */
  async join(channel: string, id: string): Promise<Seat | undefined> {
    const room = this.#rooms.get(channel) ?? this.#open(channel);
    const seat = this.#seat(channel, room, id);
    if (await room.ready) return seat;
    seat.leave();
    return undefined;
  }

  /**
   * Delivers an announcement that did not come through the subscription: the releaser's own copy,
   * when the release happened in this process, so a waiter here need not wait for the message.
   */
  announce(channel: string, announcement: string): void {
    const room = this.#rooms.get(channel);
    if (room) deliver(room, announcement);
  }

  #open(channel: string): Room {
    const room: Room = { seats: new Map(), ready: Promise.resolve(false), open: false };
    room.ready = this.#subscribe(channel, (message) => deliver(room, message)).then(
      (unsubscribe) => {
        room.unsubscribe = unsubscribe;
        room.open = true;
        this.#schedule(channel, room);
        return true;
      },
      () => {
        if (this.#rooms.get(channel) === room) this.#rooms.delete(channel);
        return false;
      },
    );
    this.#rooms.set(channel, room);
    return room;
  }

  #seat(channel: string, room: Room, id: string): Seat {
    const seat = new Seat(() => {
      if (room.seats.get(id) !== seat) return;
      room.seats.delete(id);
      if (room.seats.size === 0) this.#schedule(channel, room);
    });
    const first = room.seats.size === 0;
    room.seats.set(id, seat);
    if (first && room.open) this.#schedule(channel, room);
    return seat;
  }

  /**
   * Sets the room's one timer: while it has waiters, wake the oldest about every `pollEvery` ms
   * (jittered, so rooms in many processes spread out); once empty, unsubscribe after
   * {@link LINGER_MS} unless a waiter comes back. The timer never keeps a process alive.
   */
  #schedule(channel: string, room: Room): void {
    clearTimeout(room.timer);
    if (room.seats.size > 0) {
      room.timer = setTimeout(
        () => {
          room.seats.values().next().value?.wake();
          this.#schedule(channel, room);
        },
        this.#pollEvery * (0.5 + Math.random() / 2),
      );
    } else {
      room.timer = setTimeout(() => {
        this.#rooms.delete(channel);
        room.unsubscribe?.();
      }, LINGER_MS);
    }
    (room.timer as { unref?: () => void }).unref?.();
  }
}

/**
 * Routes an announcement `"<waiter id> <fence>"` to that waiter's seat. An empty message means
 * the subscription was re-established and announcements may have been lost: everyone looks.
 */
function deliver(room: Room, message: string): void {
  if (message === "") {
    for (const seat of room.seats.values()) seat.wake();
    return;
  }
  const space = message.indexOf(" ");
  room.seats.get(message.slice(0, space))?.handOff(Number(message.slice(space + 1)));
}
