/**
 * Lock middleware for Hono: one request at a time per lock key. The request's handler runs only
 * while it holds the lock; the lease (with its fencing token and an AbortSignal that fires if the
 * lock is lost) is a typed context variable; the lock is released once the handler is done.
 * Web-standard APIs only: it runs on Workers, Vercel Edge, Deno, Bun and Node.
 *
 * @module
 */

import {
  checkDuration,
  checkFunction,
  checkWellFormed,
  InvalidArgumentError,
  keepAlive,
  type Lease,
  type LockError,
  type Locker,
  type LockUnavailableError,
  MAX_KEY_LENGTH,
  MIN_TTL,
  settleLease,
  describeValue as show,
} from "edgelock";
import type { Context, Env, MiddlewareHandler } from "hono";
import { problemResponse } from "./respond.js";

/** The context variables {@link lock} sets: `c.get("lease")` / `c.var.lease`. */
export type LockVariables = {
  /** The held lock: pass `lease.fence` to what you write, and `lease.signal` to what you await. */
  lease: Lease;
};

/** The Hono environment {@link lock}'s handler adds to an app: `{ Variables: LockVariables }`. */
export type LockEnv = {
  Variables: LockVariables;
};

/** What {@link LockOptions.onContention} is told about a lock that stayed held. */
export interface LockContentionInfo {
  /** The lock key the request asked for. */
  key: string;
  /** The holder's remaining lease at the last attempt, in milliseconds (-1 when unknown). */
  holderTtl: number;
  /** When to try again, in seconds, as {@link LockOptions.retryAfter} computed it. */
  retryAfter: number;
}

/** What {@link LockOptions.onUnavailable} is told about a store that could not be reached. */
export interface LockUnavailableInfo {
  /** The lock key the request asked for. */
  key: string;
  /** The failure (`code: "LOCK_UNAVAILABLE"`); the transport's error is its `cause`. */
  error: LockUnavailableError;
}

/** Options of {@link lock}. */
export interface LockOptions<E extends Env = Env> {
  /** The lock client, from `createLocker({ adapter })`; share one across requests. */
  locker: Locker;
  /**
   * The lock's name: a fixed string, or computed from the request (a route param, a header, the
   * user); at most 1024 characters. A bad computed key is an error for `app.onError`.
   */
  key: string | ((c: Context<E>) => string | Promise<string>);
  /** The lease, in milliseconds, renewed about every ttl/3 while the handler runs (at least 10). */
  ttl: number;
  /**
   * How long to wait for a held lock, in milliseconds; 0 makes one attempt. Waiting also stops
   * when the request's signal aborts (the client went away): the abort reason is then thrown.
   * @default 0
   */
  wait?: number;
  /**
   * Computes the `Retry-After` of a contention response, in seconds, from the holder's remaining
   * lease in milliseconds (-1 when unknown).
   * @default ceil(holderTtl / 1000), at least 1; 1 when unknown
   */
  retryAfter?: (holderTtl: number, c: Context<E>) => number;
  /**
   * Builds the response when the lock stayed held (the handler does not run).
   * @default a 409 `application/problem+json` with `code: "lock_held"` and `Retry-After`
   */
  onContention?: (c: Context<E>, info: LockContentionInfo) => Response | Promise<Response>;
  /**
   * Builds the response when the store cannot be reached: fail closed, the handler does not run.
   * @default a 503 `application/problem+json` with `code: "lock_unavailable"` and `Retry-After: 1`
   */
  onUnavailable?: (c: Context<E>, info: LockUnavailableInfo) => Response | Promise<Response>;
  /**
   * Stops renewing the lease this many milliseconds after it was taken; it then lapses and
   * `lease.signal` aborts (at least 10).
   * @default unbounded: renewed until the handler returns
   */
  maxHold?: number;
}

/**
 * Lock middleware: runs the handler only while holding the lock named by `key`.
 *
 * - The lock is taken with one attempt, or by waiting up to `wait` ms. If it stays held, the
 *   handler does not run and the response is a 409 problem+json with `Retry-After` derived from
 *   the holder's remaining lease (or whatever `onContention` returns).
 * - If the store cannot be reached, the handler does not run either: 503 with `Retry-After: 1`
 *   (or `onUnavailable`'s response).
 * - While the handler runs, the lease is renewed about every ttl/3 and is `c.var.lease`. If it
 *   is lost anyway, `lease.signal` aborts.
 * - When the handler is done, successfully or not, the lock is released before the response
 *   goes out. A handler's error still reaches `app.onError` unchanged. If the handler succeeded
 *   but the lease was lost on the way (an extension or the release found another holder's
 *   token: Redis restarted without persistence or failed over, or the lease ran out), its
 *   {@link LockLostError} (`code: "LOCK_LOST"`) is thrown for `app.onError`, replacing the
 *   handler's response: the work was not exclusive, and the client must not read success. A
 *   release that cannot reach the store never changes the response (the lease expires).
 *
 * The lock covers the handler until it returns its `Response`. A body streamed after that (for
 * example by `hono/streaming`'s `stream()`) is produced outside the lock.
 *
 * @see {@link https://hono.dev/docs/guides/middleware} Hono middleware
 * @see {@link Locker.acquire} how the lock is taken and waited for
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createLocker } from "edgelock";
 * import { lock, type LockVariables } from "edgelock/hono";
 * import { upstashAdapter } from "edgelock/upstash";
 *
 * const locker = createLocker({ adapter: upstashAdapter(redis) });
 * const app = new Hono<{ Variables: LockVariables }>();
 *
 * app.post(
 *   "/accounts/:id/transfer",
 *   lock({ locker, key: (c) => `account:${c.req.param("id")}`, ttl: 10_000 }),
 *   async (c) => {
 *     const { fence, signal } = c.var.lease;
 *     await ledger.transfer(await c.req.json(), { fence, signal });
 *     return c.json({ ok: true });
 *   },
 * );
 * ```
 */
export const lock = <E extends Env = Env>(
  options: LockOptions<E>,
): MiddlewareHandler<E & LockEnv> => {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError("options", `options must be an object, got ${show(options)}`);
  }
  const locker = checkLocker(options.locker);
  const key = checkKeyOption(options.key);
  const ttl = checkDuration(options.ttl, "ttl", MIN_TTL);
  const wait = checkDuration(options.wait ?? 0, "wait", 0);
  const maxHold =
    options.maxHold === undefined ? undefined : checkDuration(options.maxHold, "maxHold", MIN_TTL);
  type Hooks = Required<Pick<LockOptions<E>, "retryAfter" | "onContention" | "onUnavailable">>;
  const retryAfter: Hooks["retryAfter"] =
    checkHook(options.retryAfter, "retryAfter") ?? defaultRetryAfter;
  const onContention: Hooks["onContention"] =
    checkHook(options.onContention, "onContention") ?? contentionProblem;
  const onUnavailable: Hooks["onUnavailable"] =
    checkHook(options.onUnavailable, "onUnavailable") ?? unavailableProblem;

  return async function lockMiddleware(c, next) {
    // The handler's context is the app's plus LockVariables; the hooks were typed for the app's.
    const context = c as unknown as Context<E>;
    const name = typeof key === "function" ? await key(context) : key;
    let lease: Lease;
    try {
      lease = await locker.acquire(name, ttl, { timeout: wait, signal: c.req.raw.signal });
    } catch (error) {
      if (hasCode(error, "LOCK_TIMEOUT")) {
        const holderTtl = typeof error.holderTtl === "number" ? error.holderTtl : -1;
        const seconds = checkRetryAfter(retryAfter(holderTtl, context));
        return onContention(context, { key: name, holderTtl, retryAfter: seconds });
      }
      if (hasCode(error, "LOCK_UNAVAILABLE")) {
        return onUnavailable(context, { key: name, error: error as LockUnavailableError });
      }
      throw error; // a bad computed key, or the request's abort reason
    }

    c.set("lease", lease);
    const stop = keepAlive(lease, { maxHold });
    let lost: unknown;
    try {
      // Hono's compose catches the handler's Error, hands it to app.onError and puts the result
      // in c.res, so next() resolves; anything else it rethrows. Either way: release, awaited
      // before the response (an unreachable store only lets the lease expire by itself).
      await next();
    } finally {
      stop();
      lost = await settleLease(lease);
    }
    // A handler error answered by app.onError wins; otherwise a lost lease replaces the response.
    if (lost !== undefined && c.error === undefined) throw lost;
  };
};

/** The default of {@link LockOptions.retryAfter}: the holder's lease in whole seconds, at least 1. */
function defaultRetryAfter(holderTtl: number): number {
  return holderTtl > 0 ? Math.max(1, Math.ceil(holderTtl / 1000)) : 1;
}

/** The default of {@link LockOptions.onContention}: 409 problem+json with `Retry-After`. */
function contentionProblem<E extends Env>(c: Context<E>, info: LockContentionInfo): Response {
  return problemResponse(c, {
    status: 409,
    title: "Conflict",
    detail: `Another request holds the lock; retry in ${info.retryAfter} s.`,
    code: "lock_held",
    retryAfter: info.retryAfter,
  });
}

/** The default of {@link LockOptions.onUnavailable}: 503 problem+json with `Retry-After: 1`. */
function unavailableProblem<E extends Env>(c: Context<E>): Response {
  return problemResponse(c, {
    status: 503,
    title: "Service Unavailable",
    detail: "The lock store is unreachable; nothing was processed.",
    code: "lock_unavailable",
    retryAfter: 1,
  });
}

/** True if `error` is a {@link LockError} with `code` (compared by code: it may cross copies). */
function hasCode<C extends "LOCK_TIMEOUT" | "LOCK_UNAVAILABLE">(
  error: unknown,
  code: C,
): error is LockError & { code: C; holderTtl?: unknown } {
  return error instanceof Error && (error as Partial<LockError>).code === code;
}

function checkLocker(locker: unknown): Locker {
  if (typeof (locker as Partial<Locker> | undefined)?.acquire !== "function") {
    throw new InvalidArgumentError(
      "locker",
      `locker must be a Locker (from createLocker), got ${show(locker)}`,
    );
  }
  return locker as Locker;
}

function checkKeyOption<K>(key: K): K {
  if (typeof key === "function") return key;
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidArgumentError(
      "key",
      `key must be a function or a non-empty string of at most ${MAX_KEY_LENGTH} characters, got ${show(key)}`,
    );
  }
  checkWellFormed(key, "key");
  return key;
}

function checkHook<F>(hook: F | undefined, argument: string): F | undefined {
  if (hook !== undefined) checkFunction(hook, argument);
  return hook;
}

/** Checks what a `retryAfter` hook returned: whole seconds, rounded up. */
function checkRetryAfter(seconds: unknown): number {
  if (typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0) {
    return Math.ceil(seconds);
  }
  throw new InvalidArgumentError(
    "retryAfter",
    `retryAfter must return a non-negative number of seconds, got ${show(seconds)}`,
  );
}
