/**
 * The conformance suite every adapter runs: the lock's semantics, independent of the transport.
 * An adapter passes only if it behaves exactly like the others.
 */

import {
  acquireScript,
  createLocker,
  FENCE_RETENTION,
  inboxName,
  type LockAdapter,
  LockError,
  LockLostError,
  type LockScript,
  LockTimeoutError,
  lockNames,
  releaseScript,
} from "edgelock";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

/** What a suite needs from the adapter under test. */
export interface ContractTarget {
  adapter: LockAdapter;
  /** Stops whatever the target started (servers, clients). */
  close(): Promise<void>;
  /** False for a transport that keeps no line of waiters (a Redlock quorum). */
  queues?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The fence of a fresh grant, checked: the bare fence one Redis answers, or the `{1, fence, ttl}`
 * a Redlock quorum composes.
 */
function grantedFence(reply: unknown): number {
  if (Array.isArray(reply)) expect(reply[0]).toBe(1);
  const fence = Array.isArray(reply) ? reply[1] : reply;
  expect(fence).toEqual(expect.any(Number));
  expect(fence).toBeGreaterThan(0);
  return fence as number;
}

/** Registers the conformance suite for one adapter. `open` runs once, before the tests. */
export function describeLockContract(name: string, open: () => Promise<ContractTarget>): void {
  describe(`lock contract: ${name}`, () => {
    let target: ContractTarget;
    let run = 0;
    /** A fresh prefix per test, so tests never see each other's keys. */
    const locker = (options: { prefix?: string; maxRetryDelay?: number } = {}) =>
      createLocker({ adapter: target.adapter, prefix: options.prefix ?? `t${run}`, ...options });

    beforeAll(async () => {
      target = await open();
    });
    afterAll(async () => {
      await target?.close();
    });
    beforeEach(() => {
      run = Math.floor(Math.random() * 1e9);
    });

    it("grants a lock to one holder at a time", async () => {
      const a = locker();
      const b = locker();
      const first = await a.tryAcquire("job", 5_000);
      expect(first).not.toBeNull();
      expect(await b.tryAcquire("job", 5_000)).toBeNull();
      expect(await first?.release()).toBe(true);
      const second = await b.tryAcquire("job", 5_000);
      expect(second).not.toBeNull();
      await second?.release();
    });

    it("lets the lock expire after its ttl", async () => {
      const a = locker();
      expect(await a.tryAcquire("short", 150)).not.toBeNull();
      expect(await a.tryAcquire("short", 150)).toBeNull();
      await sleep(250);
      const next = await a.tryAcquire("short", 1_000);
      expect(next).not.toBeNull();
      await next?.release();
    });

    it("releases only with the holder's token", async () => {
      const a = locker();
      const stale = await a.tryAcquire("stale", 150);
      expect(stale).not.toBeNull();
      await sleep(250);
      const fresh = await a.tryAcquire("stale", 5_000);
      expect(fresh).not.toBeNull();
      expect(await stale?.release()).toBe(false);
      const state = await a.inspect("stale", fresh?.token);
      expect(state).toMatchObject({ held: true, mine: true });
      expect(await fresh?.release()).toBe(true);
      expect(await fresh?.release()).toBe(false);
      expect((await a.inspect("stale")).held).toBe(false);
    });

    it("extends in milliseconds, and only with the holder's token", async () => {
      const a = locker();
      const lease = await a.tryAcquire("ext", 300);
      await lease?.extend(1_500);
      const state = await a.inspect("ext");
      expect(state.ttl).toBeGreaterThan(1_000);
      expect(state.ttl).toBeLessThanOrEqual(1_500);
      await lease?.extend(400);
      expect((await a.inspect("ext")).ttl).toBeLessThanOrEqual(400);
      await lease?.release();
    });

    it("never resurrects an expired lock on extend", async () => {
      const a = locker();
      const lease = await a.tryAcquire("gone", 150);
      expect(lease).not.toBeNull();
      await sleep(250);
      await expect(lease?.extend(5_000)).rejects.toBeInstanceOf(LockLostError);
      expect(lease?.signal.aborted).toBe(true);
      expect((await a.inspect("gone")).held).toBe(false);
    });

    it("refuses to extend a lock someone else took over", async () => {
      const a = locker();
      const old = await a.tryAcquire("taken", 150);
      expect(old).not.toBeNull();
      await sleep(250);
      const current = await a.tryAcquire("taken", 5_000);
      await expect(old?.extend(5_000)).rejects.toMatchObject({ code: "LOCK_LOST", key: "taken" });
      expect(await a.inspect("taken", current?.token)).toMatchObject({ held: true, mine: true });
      await current?.release();
    });

    it("mints strictly increasing fences, across releases and expiries", async () => {
      const a = locker();
      const fences: number[] = [];
      for (let i = 0; i < 10; i++) {
        // The expiring leases are long enough to arrive with validity left over a loaded REST hop.
        const lease = await a.tryAcquire("fence", i % 2 === 0 ? 5_000 : 150);
        fences.push(lease?.fence ?? Number.NaN);
        if (i % 2 === 0) await lease?.release();
        else await sleep(200);
      }
      for (let i = 1; i < fences.length; i++) {
        expect(fences[i]).toBeGreaterThan(fences[i - 1] ?? Number.POSITIVE_INFINITY);
      }
      expect(Number.isSafeInteger(fences[0])).toBe(true);
    });

    it("answers a retried acquire with the same token idempotently, with the same fence", async () => {
      const names = lockNames(`t${run}`, "retry");
      const keys = [names.lock, names.fence, names.queue, names.waiters];
      const args = ["el1.retried-token", String(FENCE_RETENTION), "2000", "0"];
      const fence = grantedFence(await target.adapter.evalScript(acquireScript, keys, args));
      const again = (await target.adapter.evalScript(acquireScript, keys, args)) as number[];
      expect(again).toEqual([2, fence, 2000]);
      const other = ["el1.other-token", ...args.slice(1)];
      const refused = (await target.adapter.evalScript(acquireScript, keys, other)) as number[];
      expect(refused[0]).toBe(0);
      expect(refused[2]).toBeGreaterThan(0);
      expect(await target.adapter.evalScript(releaseScript, keys, args.slice(0, 3))).toBe(1);
    });

    it("keeps lockers with different prefixes apart", async () => {
      const one = locker({ prefix: `p1-${run}` });
      const two = locker({ prefix: `p2-${run}` });
      const same = locker({ prefix: `p1-${run}` });
      const a = await one.tryAcquire("shared-name", 5_000);
      const b = await two.tryAcquire("shared-name", 5_000);
      expect(a).not.toBeNull();
      expect(b).not.toBeNull();
      expect(await same.tryAcquire("shared-name", 5_000)).toBeNull();
      await a?.release();
      await b?.release();
    });

    it("inspects a lock without revealing or changing it", async () => {
      const a = locker();
      expect(await a.inspect("look")).toEqual({ held: false, ttl: 0, fence: 0, mine: false });
      const lease = await a.tryAcquire("look", 5_000);
      const held = await a.inspect("look");
      expect(held).toMatchObject({ held: true, fence: lease?.fence, mine: false });
      expect(held.ttl).toBeGreaterThan(4_000);
      expect((await a.inspect("look", lease?.token)).mine).toBe(true);
      await lease?.release();
      expect(await a.inspect("look")).toEqual({
        held: false,
        ttl: 0,
        fence: lease?.fence,
        mine: false,
      });
    });

    it("handles keys with braces, percent signs and unicode", async () => {
      const a = locker();
      for (const key of ["{tag}", "}x", "a{b}c", "100%", "ключ🔒"]) {
        const lease = await a.tryAcquire(key, 5_000);
        expect(lease).not.toBeNull();
        expect(await a.tryAcquire(key, 5_000)).toBeNull();
        expect(await lease?.release()).toBe(true);
      }
    });

    it("waits for a held lock and times out with LOCK_TIMEOUT", async () => {
      const a = locker();
      const holder = await a.tryAcquire("busy", 5_000);
      const error = await a.acquire("busy", 1_000, { timeout: 150 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(error).toMatchObject({ code: "LOCK_TIMEOUT", key: "busy", timeout: 150 });
      expect((error as LockTimeoutError).attempts).toBeGreaterThan(1);
      await holder?.release();
    });

    it("hands a released lock to a waiter without waiting out the holder's ttl", async () => {
      // Waiters poll at most every maxRetryDelay and never past the holder's ttl; both are a
      // minute here, so only a release announcement (or a jittered poll) explains a quick grant.
      const a = locker({ maxRetryDelay: target.adapter.subscribe ? 60_000 : 100 });
      const holder = await a.tryAcquire("handoff", 60_000);
      const waiter = a.acquire("handoff", 5_000, { timeout: 3_000 });
      await sleep(100);
      await holder?.release();
      const lease = await waiter;
      expect(lease.fence).toBeGreaterThan(holder?.fence ?? Number.POSITIVE_INFINITY);
      await lease.release();
    });

    describe("the line of waiters", () => {
      /** Waiters in separate lockers, each started once the previous one is in line. */
      async function line(key: string, count: number, ttl = 5_000) {
        const served: number[] = [];
        const waiters = [];
        for (let i = 0; i < count; i++) {
          const waiter = locker({ maxRetryDelay: 60_000 });
          waiters.push(
            waiter.acquire(key, ttl, { timeout: 10_000 }).then(async (lease) => {
              served.push(i);
              await sleep(5);
              await lease.release();
              return lease.fence;
            }),
          );
          await sleep(40); // in line before the next one comes
        }
        return { served, waiters };
      }

      it("serves waiters in arrival order (with pub/sub), each exactly once", async () => {
        const holder = await locker().tryAcquire("fifo", 60_000);
        const { served, waiters } = await line("fifo", 5);
        await holder?.release();
        const fences = await Promise.all(waiters);
        // Without pub/sub, waiters poll and are not in line: any order, but everyone once.
        if (target.adapter.subscribe) expect(served).toEqual([0, 1, 2, 3, 4]);
        else expect([...served].sort()).toEqual([0, 1, 2, 3, 4]);
        const inServeOrder = served.map((i) => fences[i] ?? 0);
        for (let i = 1; i < inServeOrder.length; i++) {
          expect(inServeOrder[i]).toBeGreaterThan(inServeOrder[i - 1] ?? Number.POSITIVE_INFINITY);
        }
      });

      it("gives a lock that lapsed to the oldest waiter in line, not to a newcomer", async () => {
        const names = lockNames(`t${run}`, "queue-jump");
        const keys = [names.lock, names.fence, names.queue, names.waiters];
        const retention = String(FENCE_RETENTION);
        const holder = await locker().tryAcquire("queue-jump", 100); // lapses: nobody releases
        const inbox = inboxName(`t${run}`, "contract");
        const waiting = ["el1.first-in-line", retention, "5000", "10000", inbox];
        expect(await target.adapter.evalScript(acquireScript, keys, waiting)).toEqual([
          0,
          0,
          expect.any(Number),
        ]);
        await sleep(150);
        expect(holder?.held).toBe(false);
        const newcomer = await locker().tryAcquire("queue-jump", 5_000);
        if (target.queues === false) {
          expect(newcomer).not.toBeNull(); // no line: the lapsed lock is anyone's
          await newcomer?.release();
          return;
        }
        expect(newcomer).toBeNull();
        expect(await locker().inspect("queue-jump", "el1.first-in-line")).toMatchObject({
          held: true,
          mine: true,
        });
        const release = waiting.slice(0, 2);
        expect(await target.adapter.evalScript(releaseScript, keys, release)).toBe(1);
      });

      it("hands a released lock past waiters who left to the next one still in line", async () => {
        const names = lockNames(`t${run}`, "past-quitters");
        const keys = [names.lock, names.fence, names.queue, names.waiters];
        const retention = String(FENCE_RETENTION);
        const inbox = inboxName(`t${run}`, "contract");
        const script = (lua: LockScript, token: string, ...rest: string[]) =>
          target.adapter.evalScript(lua, keys, [token, retention, ...rest]);
        const fence = grantedFence(await script(acquireScript, "el1.holds-the-lock", "5000", "0"));
        for (const token of ["el1.quitter-one", "el1.quitter-two", "el1.stays-in-line"]) {
          expect(await script(acquireScript, token, "5000", "10000", inbox)).toEqual([
            0,
            0,
            expect.any(Number),
          ]);
        }
        expect(await script(releaseScript, "el1.quitter-one")).toBe(0); // leaves the line
        expect(await script(releaseScript, "el1.quitter-two")).toBe(0);
        const released = await script(releaseScript, "el1.holds-the-lock");
        if (target.queues === false) {
          expect(released).toBe(1); // no line: the lock is simply free
          expect((await locker().inspect("past-quitters")).held).toBe(false);
          return;
        }
        // The announcement names the waiter (its token's first 12 characters after "el1.").
        expect(released).toMatch(/^stays-in-lin \d+$/);
        expect(Number(String(released).split(" ")[1])).toBeGreaterThan(fence);
        expect(await locker().inspect("past-quitters", "el1.stays-in-line")).toMatchObject({
          held: true,
          mine: true,
        });
        // With only a waiter who left in line, a release frees the lock.
        expect(await script(acquireScript, "el1.quitter-three", "5000", "10000", inbox)).toEqual([
          0,
          0,
          expect.any(Number),
        ]);
        expect(await script(releaseScript, "el1.quitter-three")).toBe(0);
        expect(await script(releaseScript, "el1.stays-in-line")).toBe(1);
        expect((await locker().inspect("past-quitters")).held).toBe(false);
      });

      it("serves a live waiter behind waiters whose process died, at the release", async () => {
        const names = lockNames(`t${run}`, "dead-ahead");
        const keys = [names.lock, names.fence, names.queue, names.waiters];
        const retention = String(FENCE_RETENTION);
        /** Puts waiters of a process that died in line: nobody listens on their inbox. */
        const deadWaiters = async (process: string, count: number) => {
          const inbox = inboxName(`t${run}`, `dead-${process}`);
          for (let i = 0; i < count; i++) {
            const token = `el1.dead-${process}-${i}`;
            const args = [token, retention, "30000", "10000", inbox, "1"];
            const reply = await target.adapter.evalScript(acquireScript, keys, args);
            expect(reply).toEqual([0, 0, expect.any(Number)]);
          }
        };
        const holder = await locker().tryAcquire("dead-ahead", 60_000);
        await deadWaiters("one", 2);
        await deadWaiters("two", 2);
        // Waiters look by themselves only every maxRetryDelay: a minute, where pub/sub hands over.
        const live = locker({ maxRetryDelay: target.adapter.subscribe ? 60_000 : 100 });
        const waiting = live.acquire("dead-ahead", 5_000, { timeout: 10_000 });
        await sleep(100);
        const released = performance.now();
        await holder?.release();
        const lease = await waiting;
        expect(performance.now() - released).toBeLessThan(1_000);
        expect(lease.fence).toBeGreaterThan(holder?.fence ?? Number.POSITIVE_INFINITY);
        // With only dead waiters in line, a release frees the lock for anyone.
        await deadWaiters("three", 3);
        expect(await lease.release()).toBe(true);
        const next = await locker().tryAcquire("dead-ahead", 5_000);
        expect(next).not.toBeNull();
        await next?.release();
      });

      it("passes over a waiter that gave up", async () => {
        const holder = await locker().tryAcquire("give-up", 60_000);
        const quitter = locker({ maxRetryDelay: 60_000 });
        const gaveUp = quitter.acquire("give-up", 5_000, { timeout: 100 }).catch((e) => e);
        await sleep(20);
        const { served, waiters } = await line("give-up", 1);
        expect(await gaveUp).toBeInstanceOf(LockTimeoutError);
        await holder?.release();
        await Promise.all(waiters);
        expect(served).toEqual([0]);
      });
    });

    it("takes the lock once the holder's ttl runs out", async () => {
      const a = locker();
      await a.tryAcquire("lapse", 150);
      const lease = await a.acquire("lapse", 1_000, { timeout: 2_000 });
      expect(lease.held).toBe(true);
      await lease.release();
    });

    it("stops waiting when the signal aborts, leaving nothing locked", async () => {
      const a = locker();
      const holder = await a.tryAcquire("abort", 5_000);
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error("caller gave up")), 50);
      await expect(a.acquire("abort", 1_000, { signal: controller.signal })).rejects.toThrow(
        "caller gave up",
      );
      await holder?.release();
      expect((await a.inspect("abort")).held).toBe(false);
    });

    it("keeps a 200 ms lease through a 1 s task, then releases it", async () => {
      const a = locker();
      const seen: boolean[] = [];
      const result = await a.using("long", 200, async (lease) => {
        for (let i = 0; i < 5; i++) {
          await sleep(200);
          seen.push((await a.inspect("long", lease.token)).mine);
        }
        expect(await a.tryAcquire("long", 1_000)).toBeNull();
        return lease.signal.aborted;
      });
      expect(result).toBe(false);
      expect(seen).toEqual([true, true, true, true, true]);
      expect((await a.inspect("long")).held).toBe(false);
    });

    it("serialises concurrent withLock calls (no lost updates)", async () => {
      const a = locker();
      let counter = 0;
      let inside = 0;
      let overlap = false;
      const increment = a.withLock(
        "counter",
        2_000,
        async () => {
          inside++;
          overlap ||= inside > 1;
          const read = counter;
          await sleep(5);
          counter = read + 1;
          inside--;
        },
        { timeout: 10_000, retryDelay: 5 },
      );
      await Promise.all(Array.from({ length: 12 }, () => increment()));
      expect(overlap).toBe(false);
      expect(counter).toBe(12);
    });

    it("reports errors as LockError values with codes", async () => {
      const a = locker();
      const error = await a.tryAcquire("", 1_000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockError);
      expect(error).toMatchObject({ code: "INVALID_ARGUMENT" });
    });
  });
}
