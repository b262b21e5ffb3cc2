/**
 * Where a locker's waiters listen for the hand-off of a lock. One subscription per lock channel
 * per locker serves all its waiters there; each announcement names one waiter and goes to that
 * waiter only. The subscription lingers briefly after the last waiter leaves, so a lock that is
 * asked for again and again is not subscribed to anew each time.
 *
 * @module
 */

import type { LockAdapter, Unsubscribe } from "./adapter.js";
import { sleep } from "./time.js";

/** How long a channel stays subscribed after its last waiter left, in ms. */
const LINGER_MS = 250;

/** One waiter's place in a room: it learns here that it was handed the lock, and its fence. */
export class Seat {
  /** The fence of the hand-off, once announced. */
  fence: number | undefined;
  #nap: ReturnType<typeof sleep> | undefined;

  /** @internal Seats are given out by a {@link WaitingRoom}. */
  constructor(
    /** Leaves the room; safe to call more than once. */
    readonly leave: () => void,
  ) {}

  /** Sleeps up to `ms`, or until the lock is handed over; rejects if `signal` aborts. */
  async wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.fence !== undefined) return;
    this.#nap = sleep(ms, signal);
    try {
      await this.#nap.done;
    } finally {
      this.#nap = undefined;
    }
  }

  /** @internal Called by the room when the announcement for this seat arrives. */
  handOff(fence: number): void {
    this.fence = fence;
    this.#nap?.wake();
  }
}

/** The waiters of one channel and its subscription. */
interface Room {
  readonly seats: Map<string, Seat>;
  /** Resolves true once subscribed, false if subscribing failed. */
  ready: Promise<boolean>;
  open: boolean;
  unsubscribe?: Unsubscribe;
  linger?: ReturnType<typeof setTimeout>;
}

/** The rooms of one locker, by channel. */
export class WaitingRoom {
  readonly #subscribe: NonNullable<LockAdapter["subscribe"]>;
  readonly #rooms = new Map<string, Room>();

  constructor(subscribe: NonNullable<LockAdapter["subscribe"]>) {
    this.#subscribe = subscribe;
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

  #open(channel: string): Room {
    const room: Room = { seats: new Map(), ready: Promise.resolve(false), open: false };
    room.ready = this.#subscribe(channel, (message) => deliver(room, message)).then(
      (unsubscribe) => {
        room.unsubscribe = unsubscribe;
        room.open = true;
        if (room.seats.size === 0) this.#linger(channel, room);
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
    clearTimeout(room.linger);
    const seat = new Seat(() => {
      if (room.seats.get(id) !== seat) return;
      room.seats.delete(id);
      if (room.seats.size === 0 && room.open) this.#linger(channel, room);
    });
    room.seats.set(id, seat);
    return seat;
  }

  /** Unsubscribes after {@link LINGER_MS} unless a waiter comes back; never keeps a process alive. */
  #linger(channel: string, room: Room): void {
    room.linger = setTimeout(() => {
      if (room.seats.size > 0) return;
      this.#rooms.delete(channel);
      room.unsubscribe?.();
    }, LINGER_MS);
    (room.linger as { unref?: () => void }).unref?.();
  }
}

/** Routes an announcement `"<waiter id> <fence>"` to that waiter's seat. */
function deliver(room: Room, message: string): void {
  const space = message.indexOf(" ");
  room.seats.get(message.slice(0, space))?.handOff(Number(message.slice(space + 1)));
}
