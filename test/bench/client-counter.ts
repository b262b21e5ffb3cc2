/**
 * Counts the commands ioredis connections send, on the client side: each connection's
 * `sendCommand` (and that of every connection it duplicates, such as a subscriber) is wrapped.
 * Unlike MONITOR this costs Redis nothing, so contention runs are timed without it: MONITOR makes
 * Redis format every command a script runs, which would slow script-heavy libraries most.
 */

import type { Redis } from "ioredis";

export class ClientCounter {
  #counting = false;
  #count = 0;
  readonly #commands = new Map<string, number>();

  /** Counts what `redis` (and every connection duplicated from it) sends while counting is on. */
  watch(redis: Redis): void {
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((command, stream) => {
      if (this.#counting) {
        this.#count++;
        this.#commands.set(command.name, (this.#commands.get(command.name) ?? 0) + 1);
      }
      return send(command, stream);
    }) as Redis["sendCommand"];
    const duplicate = redis.duplicate.bind(redis);
    redis.duplicate = ((...args: Parameters<Redis["duplicate"]>) => {
      const copy = duplicate(...args);
      this.watch(copy);
      return copy;
    }) as Redis["duplicate"];
  }

  /** Starts counting from zero. */
  start(): void {
    this.#count = 0;
    this.#commands.clear();
    this.#counting = true;
  }

  stop(): void {
    this.#counting = false;
  }

  /** Commands sent while counting. */
  get count(): number {
    return this.#count;
  }

  /** Commands sent while counting, by lowercase name. */
  get byCommand(): ReadonlyMap<string, number> {
    return this.#commands;
  }
}
