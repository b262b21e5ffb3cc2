/**
 * The least client code a lock needs whose waiters wait in a FIFO line in Redis and are handed
 * the lock by the release's announcement, as edgelock's are. The benchmark's two references of
 * that kind (edgelock's scripts sent raw, and the least pub/sub hand-off lock) differ only in
 * their scripts, so both run on this client:
 *
 * - a blocked acquire joins the line in the same script call;
 * - the client's one subscriber connection routes each announcement `"<waiter id> <fence>"` to
 *   the waiter it names, which then holds the lock;
 * - a waiter that hears nothing for a second asks again (the holder may have died);
 * - a waiter that stops waiting calls release, which takes it out of line or passes on a lock it
 *   was handed as it stopped.
 */

import { randomUUID } from "node:crypto";
import type { LockScript } from "edgelock";
import type { Redis } from "ioredis";
import { type Held, type LockClient, runScript } from "./peers.js";

/** One such lock's scripts and how it calls them. */
export interface LineProtocol {
  /**
   * Grants a free lock (a bare fence, or `{1 | 2, …}`), or answers `{0, …}`, joining the line when
   * asked to wait.
   */
  readonly acquire: LockScript;
  /** Frees the lock or hands it to the next waiter, announcing it on the waiter's channel. */
  readonly release: LockScript;
  /** The script keys of lock `key`. */
  keys(key: string): string[];
  /** ARGV of an acquire: a single attempt when `channel` is undefined, else a wait of `ttl` ms. */
  acquireArgs(token: string, ttl: number, channel?: string): string[];
  /** ARGV of a release. */
  releaseArgs(token: string): string[];
}

/** How long a waiter waits for its announcement before it asks again (the holder may have died). */
const LOOK_AGAIN_MS = 1_000;

/** True if an acquire reply granted the lock: a bare fence, or status 1 or 2 (not 0). */
function granted(reply: unknown): boolean {
  return typeof reply === "number" || (reply as [number])[0] !== 0;
}

/**
 * One client's inbox: a subscriber connection duplicated from `redis` (closed with it), the
 * waiters it routes announcements to, by waiter id, and the subscription, once made.
 */
function inbox(redis: Redis): {
  channel: string;
  seats: Map<string, () => void>;
  ready: Promise<unknown>;
} {
  const channel = `line-lock:inbox:${randomUUID()}`;
  const seats = new Map<string, () => void>();
  const subscriber = redis.duplicate();
  subscriber.on("message", (_channel: string, message: string) => {
    seats.get(message.slice(0, message.indexOf(" ")))?.();
  });
  const ready = subscriber.subscribe(channel);
  redis.once("end", () => subscriber.disconnect());
  return { channel, seats, ready };
}

/**
 * A client of `protocol` over `redis`. Tokens are `"el1."` and a UUID, as long as edgelock's;
 * the waiter id an announcement names is the 12 characters after the prefix.
 *
 * @example
 * ```ts
 * const client = lineLock(redis, leastProtocol);
 * const held = await client.acquire("report", 10_000, signal);
 * await held.release();
 * ```
 */
export function lineLock(redis: Redis, protocol: LineProtocol): LockClient {
  const held = (keys: string[], token: string): Held => ({
    release: () => runScript(redis, protocol.release, keys, protocol.releaseArgs(token)),
  });
  const tryAcquire = async (key: string, ttl: number): Promise<Held | null> => {
    const keys = protocol.keys(key);
    const token = `el1.${randomUUID()}`;
    const reply = await runScript(redis, protocol.acquire, keys, protocol.acquireArgs(token, ttl));
    return granted(reply) ? held(keys, token) : null;
  };
  let listening: ReturnType<typeof inbox> | undefined;
  const acquire = async (key: string, ttl: number, signal: AbortSignal): Promise<Held> => {
    listening ??= inbox(redis);
    const { channel, seats, ready } = listening;
    await ready;
    const keys = protocol.keys(key);
    const token = `el1.${randomUUID()}`;
    const id = token.slice(4, 16);
    const args = protocol.acquireArgs(token, ttl, channel);
    try {
      for (;;) {
        signal.throwIfAborted();
        const announced = new Promise<boolean>((resolve) => {
          seats.set(id, () => resolve(true)); // before the request: its hand-off may come first
        });
        if (granted(await runScript(redis, protocol.acquire, keys, args))) {
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
}

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
