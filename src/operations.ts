/**
 * The four lock operations over an adapter: each one script, one round trip when all goes well.
 * This layer turns replies into values and transport failures into {@link LockUnavailableError}.
 *
 * Every operation is idempotent for a given token (a repeated acquire renews the same lease with
 * the same fence; a repeated release or extend is harmless), so a failure whose outcome is unknown
 * (a timeout, a lost reply) is simply retried with the same token.
 *
 * @module
 */

import { raced } from "./abortable.js";
import type { LockAdapter, LockScript } from "./adapter.js";
import { LockUnavailableError } from "./errors.js";
import { checkFenceRetention, counterRetention } from "./fence-retention.js";
import type { LockNames } from "./keys.js";
import { retried } from "./retry.js";
import { acquireScript } from "./scripts/acquire.js";
import { extendScript } from "./scripts/extend.js";
import { inspectScript } from "./scripts/inspect.js";
import { releaseScript } from "./scripts/release.js";

/** What one acquire attempt found. */
export type AcquireReply =
  | { acquired: true; fence: number; ttl: number; renewed: boolean }
  | { acquired: false; holderTtl: number };

/** A lock's state as {@link LockOperations.inspect} reads it. */
export interface InspectReply {
  held: boolean;
  ttl: number;
  fence: number;
  mine: boolean;
}

/** The lock operations bound to one adapter. */
export class LockOperations {
  /** How long fencing counters are kept after their last use, in ms (see `fence-retention.ts`). */
  private readonly fenceRetention: number;

  /**
   * @param fenceRetention the `fenceRetention` option, checked here (undefined: the default).
   * @throws {InvalidArgumentError} for a `fenceRetention` that is not integer ms from 1 s.
   */
  constructor(
    readonly adapter: LockAdapter,
    private readonly retries: number,
    fenceRetention?: number,
  ) {
    this.fenceRetention = checkFenceRetention(fenceRetention);
  }

  /**
   * One acquire attempt for `token`. With `wait` > 0 (ms), a token that finds the lock held joins
   * the line of waiters, and is later handed the lock and told so on `inbox`, the channel its
   * client listens on, counted by Redis as the adapter says (see
   * {@link LockAdapter.subscriptions}).
   */
  acquire(
    key: string,
    names: LockNames,
    token: string,
    ttl: number,
    wait = 0,
    inbox = "",
    signal?: AbortSignal,
  ): Promise<AcquireReply> {
    const args = [token, counterRetention(ttl, this.fenceRetention), String(ttl)];
    if (wait > 0) {
      args.push(String(Math.ceil(wait)), inbox, INBOX_MODES[this.adapter.subscriptions ?? "none"]);
    } else {
      args.push("0");
    }
    const read = (reply: unknown) => acquireReply(reply, ttl);
    return this.run(acquireScript, key, lineKeys(names), args, read, signal);
  }

  /**
   * Deletes the lock if `token` holds it and hands it to the oldest waiter; true if this call
   * released it. A token that is only waiting leaves the line. When the lock was handed over,
   * `handedOver` gets the announcement the waiter is also sent (`"<waiter id> <fence>"`).
   */
  async release(
    key: string,
    names: LockNames,
    token: string,
    handedOver?: (announcement: string) => void,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const args = [token, counterRetention(0, this.fenceRetention)];
    const keys = lineKeys(names);
    // A release that passed over as many gone waiters as one call may goes on with another call,
    // still holding the lock (so nobody overtakes the line meanwhile), until the line is done.
    for (let calls = 0; ; calls++) {
      const released = await this.run(releaseScript, key, keys, args, releaseReply, signal);
      if (released === -1) continue;
      if (typeof released === "string") handedOver?.(released);
      // After a first call that went on, a lease that ran out meanwhile was still released here.
      return released !== 0 || calls > 0;
    }
  }

  /** Renews the lease of `token` to `ttl` ms from now; false if `token` does not hold the lock. */
  async extend(
    key: string,
    names: LockNames,
    token: string,
    ttl: number,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const args = [token, String(ttl), counterRetention(ttl, this.fenceRetention)];
    const keys = [names.lock, names.fence];
    const [extended] = await this.run(extendScript, key, keys, args, FLAG_REPLY, signal);
    return extended === 1;
  }

  /** Reads the lock's state; `token` (optional) is compared with the holder's. */
  async inspect(
    key: string,
    names: LockNames,
    token = "",
    signal?: AbortSignal,
  ): Promise<InspectReply> {
    const keys = [names.lock, names.fence];
    const reply = await this.run(inspectScript, key, keys, [token], INSPECT_REPLY, signal);
    const [held = 0, ttl = -2, fence = 0, mine = 0] = reply;
    return { held: held === 1, ttl, fence, mine: mine === 1 };
  }

  /**
   * Runs a script on `keys` and reads its reply with `read`, retrying failures `retries` times
   * with the same arguments. A reply of the wrong shape is a failure too (`read` throws): a
   * transport that mangles replies must not be mistaken for an answer. The final failure is a
   * {@link LockUnavailableError} whose message never shows the token (`args[0]`). When `signal`
   * aborts, rejects at once with its reason; a request already sent may still land.
   */
  private run<T>(
    script: LockScript,
    key: string,
    keys: string[],
    args: string[],
    read: (reply: unknown) => T,
    signal?: AbortSignal,
  ): Promise<T> {
    // Promise chains rather than async frames: this is every operation's path.
    const request = () => this.adapter.evalScript(script, keys, args).then(read);
    const fail = (error: unknown) => new LockUnavailableError(script.name, key, error, args[0]);
    const attempts = retried(this.retries, request, fail, signal);
    return signal ? raced(attempts, signal) : attempts;
  }
}

/** How a line entry says its inbox is counted and published to (see `lineEntry`). */
const INBOX_MODES = { counted: "1", sharded: "s", none: "0" } as const;

/** The keys of the acquire and release scripts: the lock, its counter and its line of waiters. */
function lineKeys(names: LockNames): string[] {
  return [names.lock, names.fence, names.queue, names.waiters];
}

/**
 * The acquire script's reply as an {@link AcquireReply}: a bare fence (taken with the lease asked
 * for, `ttl`) or `{status, fence, pttl}`.
 */
function acquireReply(reply: unknown, ttl: number): AcquireReply {
  if (typeof reply === "number" && reply > 0) {
    const [fence = 0] = FLAG_REPLY(reply); // which also checks it is a safe integer
    return { acquired: true, fence, ttl, renewed: false };
  }
  const [status = 0, fence = 0, pttl = 0] = ACQUIRE_REPLY(reply);
  if (status === 0) return { acquired: false, holderTtl: pttl };
  return { acquired: true, fence, ttl: pttl, renewed: status === 2 };
}

/** The release script's reply: 0, 1, -1 (call again), or the announcement of a hand-off. */
function releaseReply(reply: unknown): 0 | 1 | -1 | string {
  if (typeof reply === "string") return reply;
  const [flag] = FLAG_REPLY(reply);
  return flag === 1 || flag === -1 ? flag : 0;
}

/** A reader of a reply of `length` integers (a bare integer counts as a list of one). */
const integers =
  (length: number) =>
  (reply: unknown): number[] => {
    const values: unknown[] = Array.isArray(reply) ? reply : [reply];
    const ok =
      values.length === length &&
      values.every((value) => typeof value === "number" && Number.isSafeInteger(value));
    if (!ok) throw new TypeError("unexpected reply from the lock script");
    return values as number[];
  };

/** Readers of the lock scripts' integer replies, made once. */
const ACQUIRE_REPLY = integers(3);
/** One integer: a flag, or the bare fence of an acquisition. */
const FLAG_REPLY = integers(1);
const INSPECT_REPLY = integers(4);
