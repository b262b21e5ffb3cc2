/// <reference types="node" />
/**
 * The lock observer: polls a lock's state (`locker.inspect`) straight from redis-server, never
 * through the fault proxy, every few milliseconds. Its samples tell the checker what the server
 * knew: who held the lock (by fence) and until when, so a lease's server-side expiry can be
 * bounded without trusting the client's arithmetic.
 */

import { createLocker, type Locker } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { monotonicMs } from "./history.js";

const POLL_MS = 5;

/** One look at the lock. `sent` is taken before the request left: `sent + ttl` bounds the expiry from below. */
export interface Sample {
  sent: number;
  held: boolean;
  /** Remaining lease in ms when held. */
  ttl: number;
  /** The last fence minted for the key: the holder's fence while `held`. */
  fence: number;
}

/** Polls one key of one prefix until stopped. */
export class Observer {
  readonly samples: Sample[] = [];
  readonly #client: Redis;
  readonly #locker: Locker;
  #stopped = false;
  readonly #loop: Promise<void>;

  constructor(
    url: string,
    prefix: string,
    readonly key: string,
  ) {
    this.#client = new Redis(url, { retryStrategy: () => 50, maxRetriesPerRequest: 1 });
    this.#client.on("error", () => {});
    this.#locker = createLocker({
      adapter: ioredisAdapter(this.#client, { commandTimeout: 100, notifications: false }),
      prefix,
      retries: 0,
    });
    this.#loop = this.#poll();
  }

  /** Stops polling and closes the connection. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#loop;
    this.#client.disconnect();
  }

  /** The current state, read once (not recorded). */
  inspect(): ReturnType<Locker["inspect"]> {
    return this.#locker.inspect(this.key);
  }

  async #poll(): Promise<void> {
    while (!this.#stopped) {
      const sent = monotonicMs();
      try {
        const state = await this.#locker.inspect(this.key);
        this.samples.push({ sent, held: state.held, ttl: state.ttl, fence: state.fence });
      } catch {
        // Redis paused or down: no sample, the last ones still bound the expiry.
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
}

/**
 * A lower bound of when the server-side lease with `fence` ends: the latest `sent + ttl` over the
 * samples that saw it held. Undefined if no sample saw it.
 */
export function expiryLowerBound(samples: readonly Sample[], fence: number): number | undefined {
  let bound: number | undefined;
  for (const sample of samples) {
    if (!sample.held || sample.fence !== fence || sample.ttl < 0) continue;
    bound = Math.max(bound ?? 0, sample.sent + sample.ttl);
  }
  return bound;
}
