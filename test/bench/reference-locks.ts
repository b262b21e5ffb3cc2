/**
 * Two locks that do not touch Redis, for the contention scenario:
 * - an in-process FIFO mutex: the ceiling a distributed lock could approach (hand-off costs one
 *   microtask, and waiters are served in arrival order);
 * - a broken lock that never blocks: it proves the overlap detector finds overlaps.
 */

import type { Held, Library, LockClient } from "./peers.js";

/** One key's queue of waiters; `held` while someone has it. */
interface Queue {
  held: boolean;
  waiters: Array<() => void>;
}

/** Shared by every client, as one process's workers would share it. */
const queues = new Map<string, Queue>();

function queueOf(key: string): Queue {
  let queue = queues.get(key);
  if (!queue) {
    queue = { held: false, waiters: [] };
    queues.set(key, queue);
  }
  return queue;
}

/** Hands the lock straight to the oldest waiter, or frees it. */
function handOff(key: string): Held {
  return {
    async release() {
      const queue = queueOf(key);
      const next = queue.waiters.shift();
      if (next) next();
      else queue.held = false;
    },
  };
}

export const inProcessFifo: Library = {
  id: "in-process-fifo",
  pkg: undefined,
  label: "reference: in-process FIFO mutex (no Redis)",
  waits: "FIFO queue, direct hand-off",
  delayConfigurable: false,
  connect(): LockClient {
    return {
      async tryAcquire(key) {
        const queue = queueOf(key);
        if (queue.held) return null;
        queue.held = true;
        return handOff(key);
      },
      acquire(key, _ttl, signal) {
        const queue = queueOf(key);
        if (!queue.held) {
          queue.held = true;
          return Promise.resolve(handOff(key));
        }
        return new Promise((resolve, reject) => {
          const giveUp = () => {
            const index = queue.waiters.indexOf(grant);
            if (index >= 0) queue.waiters.splice(index, 1);
            reject(signal.reason);
          };
          // The listener goes with the grant: the signal is shared by every worker's calls.
          const grant = () => {
            signal.removeEventListener("abort", giveUp);
            resolve(handOff(key));
          };
          queue.waiters.push(grant);
          signal.addEventListener("abort", giveUp, { once: true });
        });
      },
    };
  },
};

export const brokenLock: Library = {
  id: "broken",
  pkg: undefined,
  label: "control: a lock that never blocks",
  waits: "never waits",
  delayConfigurable: false,
  connect(): LockClient {
    const held: Held = { release: async () => true };
    return {
      tryAcquire: async () => held,
      acquire: async () => held,
    };
  },
};
