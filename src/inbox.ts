/**
 * One channel a locker's waiters are told on, and its subscription: made when the first waiter
 * needs it, shared by every waiter that listens there, and dropped a little after the last one
 * leaves, so a client that waits again and again does not subscribe anew each time.
 *
 * @module
 */

import type { LockAdapter, Unsubscribe } from "./adapter.js";

/** How long an inbox stays subscribed after its last waiter left, in ms. */
const LINGER_MS = 250;

/** A channel's subscription, shared by the waiters that listen on it. */
export class Inbox {
  /** The channel. */
  readonly channel: string;
  readonly #subscribe: () => ReturnType<NonNullable<LockAdapter["subscribe"]>>;
  /** Told when the inbox has closed and has no waiters left, so its owner can forget it. */
  readonly #closed: () => void;
  /** The subscription: resolves true once made, false if it failed; undefined when not asked. */
  #ready: Promise<boolean> | undefined;
  #open = false;
  #unsubscribe: Unsubscribe | undefined;
  #linger: ReturnType<typeof setTimeout> | undefined;
  /** How many waiters listen here. */
  #waiters = 0;

  /**
   * @param subscribe subscribes to `channel`, calling the room's listener with every message.
   * @param closed told once the subscription is dropped with no waiter left.
   */
  constructor(
    channel: string,
    subscribe: () => ReturnType<NonNullable<LockAdapter["subscribe"]>>,
    closed: () => void,
  ) {
    this.channel = channel;
    this.#subscribe = subscribe;
    this.#closed = closed;
  }

  /** True while subscribed: a waiter can count on hearing of its hand-off here. */
  get open(): boolean {
    return this.#open;
  }

  /** Counts a waiter in (cancelling a pending unsubscribe). */
  enter(): void {
    this.#waiters++;
    clearTimeout(this.#linger);
  }

  /** Counts a waiter out; unsubscribes {@link LINGER_MS} after the last one, unless one comes back. */
  leave(): void {
    if (--this.#waiters > 0) return;
    this.#linger = setTimeout(() => this.#close(), LINGER_MS);
    unref(this.#linger);
  }

  /** Subscribes if not yet asked; resolves true once subscribed, false if that failed. */
  listen(): Promise<boolean> {
    if (this.#ready) return this.#ready;
    const ready: Promise<boolean> = this.#subscribe().then(
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

  #close(): void {
    const unsubscribe = this.#unsubscribe;
    this.#ready = undefined;
    this.#open = false;
    this.#unsubscribe = undefined;
    unsubscribe?.();
    this.#closed();
  }
}

/** Lets a timer run without keeping the process alive (where timers can be unref'd). */
export function unref(timer: ReturnType<typeof setTimeout>): void {
  (timer as { unref?: () => void }).unref?.();
}
