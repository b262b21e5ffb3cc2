/**
 * Pub/sub for the TCP transport: one subscriber connection per client, shared by every listener,
 * with one subscription per channel. The connection opens with the first listener and closes
 * when the last one leaves, so no idle socket keeps the process alive. After a reconnection,
 * listeners get an empty message: announcements may have been lost meanwhile.
 *
 * On Redis Cluster, channels are subscribed with `SSUBSCRIBE` (sharded pub/sub, Redis 7): the
 * subscription then lives on the node that owns the channel's slot, where the scripts count it
 * and publish to it. A cluster whose servers lack sharded pub/sub falls back to plain `SUBSCRIBE`
 * on the first refusal, and its subscriptions are then not counted.
 *
 * Node-only, like ioredis itself.
 *
 * @module
 */

import type { Unsubscribe } from "edgelock";
import type { Deadlines } from "./deadlines.js";

/** The part of a duplicated ioredis connection (`Redis` or `Cluster`) the hub uses. */
export interface IoredisSubscriber {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  /** Sharded pub/sub (ioredis 5.4+; a `Cluster` made with `shardedSubscribers`). */
  ssubscribe?(channel: string): Promise<unknown>;
  sunsubscribe?(channel: string): Promise<unknown>;
  on(event: "message" | "smessage", listener: (channel: string, message: string) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  disconnect(): void;
}

/** Makes the subscriber connection: sharded (a Cluster's) or not. */
export type Duplicate = (sharded: boolean) => IoredisSubscriber;

/** One client's subscriptions. */
export class SubscriptionHub {
  readonly #duplicate: Duplicate;
  readonly #deadlines: Deadlines;
  readonly #listeners = new Map<string, Set<(message: string) => void>>();
  /** Each channel's subscription, sent once for all its listeners. */
  readonly #subscribed = new Map<string, Promise<unknown>>();
  #connection: IoredisSubscriber | undefined;
  #sharded: boolean;

  /** @param sharded whether to subscribe with `SSUBSCRIBE` (Redis Cluster). */
  constructor(duplicate: Duplicate, deadlines: Deadlines, sharded: boolean) {
    this.#duplicate = duplicate;
    this.#deadlines = deadlines;
    this.#sharded = sharded;
  }

  /** True while channels are subscribed with `SSUBSCRIBE`. */
  get sharded(): boolean {
    return this.#sharded;
  }

  /** Calls `listener` with every message on `channel` once subscribed; see the module comment. */
  async subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe> {
    let listeners = this.#listeners.get(channel);
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
    }
    const entry = (message: string) => listener(message);
    listeners.add(entry);
    const unsubscribe = () => this.#remove(channel, entry);
    let subscribed = this.#subscribed.get(channel);
    if (!subscribed) {
      subscribed = this.#send(channel);
      subscribed.catch(() => this.#subscribed.delete(channel)); // the next listener tries again
      this.#subscribed.set(channel, subscribed);
    }
    try {
      await this.#deadlines.run(subscribed);
    } catch (error) {
      unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  /** Subscribes `channel` on the shared connection, falling back to plain pub/sub if refused. */
  async #send(channel: string): Promise<unknown> {
    const connection = this.#connect();
    if (!this.#sharded || !connection.ssubscribe) return connection.subscribe(channel);
    try {
      return await connection.ssubscribe(channel);
    } catch (error) {
      if (!/unknown command|MOVED|ASK /i.test(String((error as Error)?.message))) throw error;
      this.#sharded = false; // no sharded pub/sub: a server before Redis 7, or an older ioredis
      return connection.subscribe(channel);
    }
  }

  #connect(): IoredisSubscriber {
    if (this.#connection) return this.#connection;
    const connection = this.#duplicate(this.#sharded);
    connection.on("error", () => {}); // reconnects are ioredis's job; waiters fall back to polling
    connection.on("message", (channel, message) => this.#deliver(channel, message));
    connection.on("smessage", (channel, message) => this.#deliver(channel, message));
    let connected = false;
    connection.on("ready", () => {
      if (!connected) {
        connected = true;
        return;
      }
      // Reconnected: announcements sent meanwhile are lost. Once ioredis has subscribed again (a
      // subscription sent now is answered after its own), tell each listener to look for itself.
      for (const channel of this.#listeners.keys()) {
        this.#send(channel).then(
          () => this.#deliver(channel, ""),
          () => {},
        );
      }
    });
    this.#connection = connection;
    return connection;
  }

  #deliver(channel: string, message: string): void {
    for (const listener of this.#listeners.get(channel) ?? []) listener(message);
  }

  #remove(channel: string, entry: (message: string) => void): void {
    const listeners = this.#listeners.get(channel);
    if (!listeners?.delete(entry) || listeners.size > 0) return;
    this.#listeners.delete(channel);
    this.#subscribed.delete(channel);
    const connection = this.#connection;
    if (this.#listeners.size === 0) {
      this.#connection = undefined;
      this.#subscribed.clear();
      connection?.disconnect();
    } else if (this.#sharded && connection?.sunsubscribe) {
      connection.sunsubscribe(channel).catch(() => {});
    } else {
      connection?.unsubscribe(channel).catch(() => {});
    }
  }
}
