/**
 * Section A of the reliability scenarios, under the multi-process history: the lock's semantics
 * without faults (S1), a stale release (S2) and extension edge cases (S3). S2 and S3 are also
 * covered call by call in test/contract/lock-contract.ts; here they stay cheap.
 */

import { expect } from "vitest";
import type { Scenario } from "../scenario.js";

const CONTENDERS = 4;
const SECTIONS_PER_PROCESS = 15;

/** S1: processes contending for one key, half with `using`, half with `acquire`/`release`. */
export const contention: Scenario = {
  id: "S1",
  title: "contention",
  fault: `none: ${CONTENDERS} processes × ${SECTIONS_PER_PROCESS} read-modify-writes of one counter`,
  guarantee:
    "no overlap; no lost update even unfenced; no stale request; lock free and no timer left after",
  iterations: 3,
  promises: { exclusive: true, noLeakedTimers: true },
  async run(context) {
    const handles = await Promise.all(
      Array.from({ length: CONTENDERS }, (_, slot) =>
        context.start(slot, {
          iterations: SECTIONS_PER_PROCESS,
          ttl: 1_000,
          timeout: 10_000,
          work: [1, 4],
          gap: [0, 3],
          api: slot % 2 === 0 ? "using" : "acquire",
        }),
      ),
    );
    for (const handle of handles) handle.go();
    await context.finish();
    const total = CONTENDERS * SECTIONS_PER_PROCESS;
    const granted = context.history.events.filter((e) => e.op === "acquire" && e.type === "ok");
    expect(granted).toHaveLength(total);
    expect(context.store.final(context.key)).toEqual({ value: total, plain: total });
    expect((await context.observer.inspect()).held).toBe(false);
  },
};

/** S2: A's lease runs out while it works, B takes the lock, then A releases. */
export const staleRelease: Scenario = {
  id: "S2",
  title: "stale release",
  fault: "A's 300 ms lease runs out while it works 550–650 ms; B takes the lock; A releases",
  guarantee:
    "A's release reports false (no throw) and B keeps the lock; A's late write is rejected",
  iterations: 3,
  promises: { exclusive: false, staleRejections: true },
  async run(context) {
    const a = await context.start(0, { api: "acquire", ttl: 300, work: [550, 650] });
    const b = await context.start(1, { api: "acquire", ttl: 1_500, work: [600, 700] });
    a.go();
    await context.next(a, "acquire", "ok");
    b.go();
    await context.finish();
    const release = context.last(a, "release", "ok");
    expect(release.released).toBe(false);
    const bFence = context.last(b, "acquire", "ok").fence;
    const bHeld = context.observer.samples.filter((s) => s.held && s.fence === bFence);
    expect(bHeld.some((s) => s.sent > release.t)).toBe(true);
  },
};

/** S3: extending an expired lease, one someone else holds, and one about to expire. */
export const extensionEdges: Scenario = {
  id: "S3",
  title: "extension edge cases",
  fault:
    "A extends 450 ms into a 300 ms lease (B holding the key, or nobody); " +
    "B extends by 1500 ms at PTTL < 500 ms",
  guarantee: "A's extend fails with LOCK_LOST and never re-creates the key; B's extend succeeds",
  iterations: 2,
  promises: { exclusive: false },
  async run(context) {
    const contended = context.iteration % 2 === 0;
    const a = await context.start(0, {
      api: "acquire",
      ttl: 300,
      work: [450, 450],
      extend: { after: 450, ttl: 300 },
    });
    const b = await context.start(1, {
      api: "acquire",
      ttl: 600,
      work: [700, 700],
      extend: { after: 250, ttl: 1_500 },
    });
    a.go();
    await context.next(a, "acquire", "ok");
    if (!contended) await context.next(a, "extend", "fail"); // nobody holds the key by then
    b.go();
    await context.finish();
    expect(context.last(a, "extend")).toMatchObject({ type: "fail", code: "LOCK_LOST" });
    expect(context.last(b, "extend").type).toBe("ok");
    const bFence = context.last(b, "acquire", "ok").fence;
    const bLeft = context.observer.samples.filter((s) => s.held && s.fence === bFence);
    expect(Math.max(...bLeft.map((s) => s.ttl))).toBeGreaterThan(1_000);
  },
};
