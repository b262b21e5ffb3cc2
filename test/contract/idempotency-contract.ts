/**
 * The idempotency store's conformance suite, run by every transport: each state change of a
 * record, its ownership rules, and byte-exact storage of outcomes.
 */

import { IdempotencyStore, type LockAdapter, type StoredOutcome, withIdempotency } from "edgelock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContractTarget } from "./lock-contract.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A stored outcome with a binary body, to check byte-exact round trips. */
function outcome(overrides: Partial<StoredOutcome> = {}): StoredOutcome {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  return {
    status: 201,
    headers: JSON.stringify({ "content-type": "application/octet-stream", etag: '"v1"' }),
    body: btoa(String.fromCharCode(...bytes)),
    encoding: "base64",
    truncated: false,
    failed: false,
    ...overrides,
  };
}

/** Registers the idempotency suite for one adapter. */
export function describeIdempotencyContract(
  name: string,
  open: () => Promise<ContractTarget>,
): void {
  describe(`idempotency contract: ${name}`, () => {
    let target: ContractTarget;
    let store: IdempotencyStore;
    const record = () => store.recordKey([`scope-${Math.random()}`, "key"]);

    beforeAll(async () => {
      target = await open();
      store = new IdempotencyStore(target.adapter, { prefix: `idem-${Date.now()}` });
    });
    afterAll(async () => {
      await target?.close();
    });

    it("claims a new record once; a retried begin with the same token gets the same fence", async () => {
      const key = await record();
      const first = await store.begin(key, "fp", 5_000, "el1.owner");
      expect(first).toMatchObject({ kind: "claimed", token: "el1.owner" });
      const again = await store.begin(key, "fp", 5_000, "el1.owner");
      expect(again).toEqual(first);
      const other = await store.begin(key, "fp", 5_000, "el1.other");
      expect(other.kind).toBe("in-progress");
      if (other.kind === "in-progress") {
        expect(other.retryAfter).toBeGreaterThan(4_000);
        expect(other.retryAfter).toBeLessThanOrEqual(5_000);
      }
    });

    it("refuses a different fingerprint before reporting in-progress or replaying", async () => {
      const key = await record();
      await store.begin(key, "fp-a", 5_000, "el1.a");
      expect(await store.begin(key, "fp-b", 5_000, "el1.b")).toEqual({ kind: "reused" });
      await store.finish(key, "el1.a", outcome(), 60_000);
      expect(await store.begin(key, "fp-b", 5_000, "el1.b")).toEqual({ kind: "reused" });
      expect((await store.begin(key, "", 5_000, "el1.c")).kind).toBe("replay"); // unchecked
    });

    it("replays a finished outcome byte for byte", async () => {
      const key = await record();
      await store.begin(key, "fp", 5_000, "el1.a");
      expect(await store.finish(key, "el1.a", outcome(), 60_000)).toBe(true);
      expect(await store.begin(key, "fp", 5_000, "el1.b")).toEqual({
        kind: "replay",
        outcome: outcome(),
      });
      const unicode = await record();
      const text = outcome({ body: "κλειδί 🔒 \u0000 end", encoding: "utf8", status: 200 });
      await store.begin(unicode, "fp", 5_000, "el1.a");
      await store.finish(unicode, "el1.a", text, 60_000);
      expect(await store.begin(unicode, "fp", 5_000, "el1.b")).toEqual({
        kind: "replay",
        outcome: text,
      });
    });

    it("stores and replays an outcome larger than one request carries, byte for byte", async () => {
      const key = await record();
      // 1.5 MiB of binary as base64, and text with quotes, multibyte characters and emoji.
      const bytes = Uint8Array.from({ length: 1_536 * 1024 }, (_, i) => (i * 31) % 256);
      let binary = "";
      for (let i = 0; i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      }
      const large = outcome({ body: btoa(binary) });
      await store.begin(key, "fp", 5_000, "el1.a");
      expect(await store.finish(key, "el1.a", large, 60_000)).toBe(true);
      expect(await store.begin(key, "fp", 5_000, "el1.b")).toEqual({
        kind: "replay",
        outcome: large,
      });

      const text = outcome({ body: '{"q":"é€🔒\\"}'.repeat(60_000), encoding: "json" });
      const other = await record();
      await store.begin(other, "fp", 5_000, "el1.a");
      expect(await store.finish(other, "el1.a", text, 60_000)).toBe(true);
      expect(await store.begin(other, "fp", 5_000, "el1.b")).toEqual({
        kind: "replay",
        outcome: text,
      });
    });

    it("keeps stored failures and non-replayable outcomes apart", async () => {
      const failed = await record();
      await store.begin(failed, "fp", 5_000, "el1.a");
      await store.finish(failed, "el1.a", outcome({ status: 500, failed: true }), 60_000);
      const replay = await store.begin(failed, "fp", 5_000, "el1.b");
      expect(replay).toMatchObject({ kind: "replay", outcome: { status: 500, failed: true } });
      const truncated = await record();
      await store.begin(truncated, "fp", 5_000, "el1.a");
      await store.finish(truncated, "el1.a", outcome({ body: "", truncated: true }), 60_000);
      const cut = await store.begin(truncated, "fp", 5_000, "el1.b");
      expect(cut).toMatchObject({ kind: "replay", outcome: { truncated: true, failed: false } });
    });

    it("lets only the owner finish, renew or abandon; a retried finish is idempotent", async () => {
      const key = await record();
      await store.begin(key, "fp", 5_000, "el1.owner");
      expect(await store.finish(key, "el1.intruder", outcome(), 60_000)).toBe(false);
      expect(await store.renew(key, "el1.intruder", 5_000)).toBe(false);
      expect(await store.abandon(key, "el1.intruder")).toBe(false);
      expect(await store.renew(key, "el1.owner", 8_000)).toBe(true);
      const held = await store.begin(key, "fp", 5_000, "el1.other");
      expect(held.kind === "in-progress" && held.retryAfter > 5_000).toBe(true);
      expect(await store.finish(key, "el1.owner", outcome(), 60_000)).toBe(true);
      expect(await store.finish(key, "el1.owner", outcome(), 60_000)).toBe(true);
      expect(await store.renew(key, "el1.owner", 5_000)).toBe(false);
      expect(await store.abandon(key, "el1.owner")).toBe(false); // finished: not abandoned
      expect((await store.begin(key, "fp", 5_000, "el1.other")).kind).toBe("replay");
    });

    it("frees an abandoned record, and the next claim gets a greater fence", async () => {
      const key = await record();
      const first = await store.begin(key, "fp", 5_000, "el1.a");
      expect(await store.abandon(key, "el1.a")).toBe(true);
      const second = await store.begin(key, "fp", 5_000, "el1.b");
      expect(second.kind).toBe("claimed");
      if (first.kind === "claimed" && second.kind === "claimed") {
        expect(second.fence).toBeGreaterThan(first.fence);
      }
    });

    it("frees a record whose lease lapsed; the stale owner cannot finish it", async () => {
      const key = await record();
      await store.begin(key, "fp", 50, "el1.crashed");
      await sleep(100);
      expect((await store.begin(key, "fp", 5_000, "el1.retry")).kind).toBe("claimed");
      expect(await store.finish(key, "el1.crashed", outcome({ status: 418 }), 60_000)).toBe(false);
      expect(await store.finish(key, "el1.retry", outcome(), 60_000)).toBe(true);
      const replay = await store.begin(key, "fp", 5_000, "el1.later");
      expect(replay).toMatchObject({ kind: "replay", outcome: { status: 201 } });
    });

    it("runs a wrapped function once per key and replays its result", async () => {
      const adapter: LockAdapter = target.adapter;
      let runs = 0;
      const charge = withIdempotency(
        async (order: { id: string; amount: number }) => {
          runs++;
          await sleep(30);
          return { charged: order.amount, at: runs };
        },
        {
          adapter,
          key: (order) => order.id,
          fingerprint: (order) => order,
          prefix: `wi-${Date.now()}`,
          scope: "charge", // the wrapped function is anonymous
        },
      );
      const id = `order-${Math.random()}`;
      const outcomes = await Promise.allSettled([
        charge({ id, amount: 5 }),
        charge({ id, amount: 5 }),
      ]);
      // Either call may reach Redis first: one runs, the other is told it is in progress.
      expect(outcomes).toContainEqual({ status: "fulfilled", value: { charged: 5, at: 1 } });
      expect(outcomes.filter((o) => o.status === "rejected")).toMatchObject([
        { reason: { statusCode: 409 } },
      ]);
      expect(await charge({ id, amount: 5 })).toEqual({ charged: 5, at: 1 });
      await expect(charge({ id, amount: 6 })).rejects.toMatchObject({ statusCode: 422 });
      expect(runs).toBe(1);
    });
  });
}
