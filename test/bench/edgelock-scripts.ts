/**
 * Reference: edgelock's own acquire and release scripts, sent raw with `EVALSHA` over the
 * benchmark's ioredis connection, with none of the library around them (no validation, no lease,
 * no retries, no deadlines, no waiting room). Between the fenced floor and edgelock, it splits
 * edgelock's gap to the floor into what its scripts cost (the line of waiters, the clock floor of
 * the fence, four keys per call) and what its client code costs.
 *
 * In the contention scenario it waits as edgelock does, with the least code that protocol needs:
 * a blocked acquire joins the line in the same script call, and the client's one subscriber
 * connection routes the release's announcement `"<waiter id> <fence>"` to the waiter it names,
 * which then holds the lock. Its critical sections per second are what edgelock's protocol
 * reaches on this machine before any library code runs.
 */

import { randomUUID } from "node:crypto";
import { acquireScript, FENCE_RETENTION, lockNames, releaseScript } from "edgelock";
import type { Redis } from "ioredis";
import { type Held, type Library, runScript } from "./peers.js";

/** True if an acquire reply granted the lock: a bare fence, or status 1 (handed over) or 2 (ours). */
function granted(reply: unknown): boolean {
  return typeof reply === "number" || (reply as [number])[0] !== 0;
}

/** How long a waiter waits for its announcement before it asks again (the holder may have died). */
const LOOK_AGAIN_MS = 1_000;

/**
 * One client's inbox: a subscriber connection duplicated from `redis` (closed with it), the
 * waiters it routes announcements to, by waiter id, and the subscription, once made.
 */
function inbox(redis: Redis): {
  channel: string;
  seats: Map<string, () => void>;
  ready: Promise<unknown>;
} {
  const channel = `scripts:inbox:${randomUUID()}`;
  const seats = new Map<string, () => void>();
  const subscriber = redis.duplicate();
  subscriber.on("message", (_channel: string, message: string) => {
    seats.get(message.slice(0, message.indexOf(" ")))?.();
  });
  const ready = subscriber.subscribe(channel);
  redis.once("end", () => subscriber.disconnect());
  return { channel, seats, ready };
}

export const edgelockScripts: Library = {
  id: "edgelock-scripts",
  pkg: undefined,
  label: "reference: edgelock's scripts sent raw (EVALSHA, no library code)",
  waits: "FIFO line in Redis, handed the lock by the release (pub/sub)",
  delayConfigurable: false,
  connect(redis) {
    const retention = String(FENCE_RETENTION);
    const keysOf = (key: string) => {
      const names = lockNames("scripts", key);
      return [names.lock, names.fence, names.queue, names.waiters];
    };
    const held = (keys: string[], token: string): Held => ({
      release: () => runScript(redis, releaseScript, keys, [token, retention]),
    });
    const tryAcquire = async (key: string, ttl: number): Promise<Held | null> => {
      const keys = keysOf(key);
      const token = `el1.${randomUUID()}`; // as long as edgelock's tokens
      const reply = await runScript(redis, acquireScript, keys, [
        token,
        retention,
        String(ttl),
        "0",
      ]);
      return granted(reply) ? held(keys, token) : null;
    };
    let listening: ReturnType<typeof inbox> | undefined;
    const acquire = async (key: string, ttl: number, signal: AbortSignal): Promise<Held> => {
      listening ??= inbox(redis);
      const { channel, seats, ready } = listening;
      await ready;
      const keys = keysOf(key);
      const token = `el1.${randomUUID()}`;
      const id = token.slice(4, 16); // the waiter id the hand-off announces
      const args = [token, retention, String(ttl), String(ttl), channel];
      try {
        for (;;) {
          signal.throwIfAborted();
          const announced = new Promise<boolean>((resolve) => {
            seats.set(id, () => resolve(true)); // before the request: its hand-off may come first
          });
          if (granted(await runScript(redis, acquireScript, keys, args))) {
            return held(keys, token);
          }
          if (await wakeOf(announced, signal)) return held(keys, token);
        }
      } catch (error) {
        // Leave the line, or pass on a lock handed over as the signal aborted.
        await held(keys, token)
          .release()
          .catch(() => {});
        throw error;
      } finally {
        seats.delete(id);
      }
    };
    return { tryAcquire, acquire };
  },
};

/** True once `announced` resolves; false after {@link LOOK_AGAIN_MS} or when `signal` aborts. */
async function wakeOf(announced: Promise<boolean>, signal: AbortSignal): Promise<boolean> {
  let stop = () => {};
  const giveUp = new Promise<boolean>((resolve) => {
    const timer = setTimeout(resolve, LOOK_AGAIN_MS, false);
    const onAbort = () => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    stop = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    };
  });
  try {
    return await Promise.race([announced, giveUp]);
  } finally {
    stop();
  }
}
