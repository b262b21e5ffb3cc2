/**
 * The acceptance matrix of idempotency (from the IETF Idempotency-Key draft, AWS Powertools
 * Idempotency and Stripe's idempotent requests), run against every front end over one transport.
 * A row says what a user sees; each front end shows it in its own terms (a value or a thrown
 * error, a response), which the drivers in idempotency-front-ends.ts translate.
 */

import { InvalidArgumentError } from "edgelock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blocker, delay } from "../support/async.js";
import { failingScript } from "../support/script-faults.js";
import { type Call, FRONT_ENDS, type Setup } from "./idempotency-front-ends.js";
import type { ContractTarget } from "./lock-contract.js";

/** Registers the matrix for every front end over one transport. */
export function describeIdempotencyMatrix(name: string, open: () => Promise<ContractTarget>): void {
  describe(`idempotency matrix over ${name}`, () => {
    let target: ContractTarget;
    let test = 0;

    beforeAll(async () => {
      target = await open();
    });
    afterAll(async () => {
      await target?.close();
    });

    describe.each(FRONT_ENDS.map((frontEnd) => [frontEnd.name, frontEnd] as const))(
      "%s",
      (_, frontEnd) => {
        /** An operation over the transport, in a namespace of its own, counting the work's runs. */
        const build = (work: Setup["work"], options: Partial<Setup> = {}) => {
          const runs = { count: 0 };
          const operation = frontEnd.build({
            adapter: target.adapter,
            prefix: `m${Date.now()}-${++test}`,
            ...options,
            work: async (body) => {
              runs.count++;
              return work(body);
            },
          });
          return { operation, runs };
        };
        const key = () => `key-${crypto.randomUUID()}`;

        it("runs once per key and replays the result to a retry", async () => {
          const { operation, runs } = build((body) => ({ charged: body }));
          const call = { key: key(), body: { amount: 5 } };
          const first = await operation(call);
          expect(first).toMatchObject({ kind: "ok", value: { charged: { amount: 5 } } });
          if (frontEnd.reportsReplay) expect(first).toMatchObject({ replayed: false });
          const retry = await operation(call);
          expect(retry).toMatchObject({ kind: "ok", value: { charged: { amount: 5 } } });
          if (frontEnd.reportsReplay) expect(retry).toMatchObject({ replayed: true });
          expect(runs.count).toBe(1);
          expect(await operation({ key: key(), body: { amount: 5 } })).toMatchObject({
            kind: "ok",
          });
          expect(runs.count).toBe(2);
        });

        it("runs calls without a key every time", async () => {
          const { operation, runs } = build(() => "ran");
          await operation({ body: 1 });
          await operation({ body: 1 });
          expect(runs.count).toBe(2);
        });

        it("refuses a key over 255 characters or not ASCII with 400, before anything runs", async () => {
          const { operation, runs } = build(() => "ran");
          for (const invalid of ["k".repeat(256), "clé-42"]) {
            expect(await operation({ key: invalid })).toMatchObject({
              kind: "refused",
              status: 400,
            });
          }
          expect(await operation({ key: "k".repeat(255) })).toMatchObject({ kind: "ok" });
          expect(runs.count).toBe(1);
        });

        if (frontEnd.http) {
          it("refuses a request carrying two Idempotency-Key headers with 400", async () => {
            const { operation, runs } = build(() => "ran");
            const twice = await operation({ key: key(), moreKeys: [key()] });
            expect(twice).toMatchObject({ kind: "refused", status: 400 });
            expect(runs.count).toBe(0);
          });
        }

        it("refuses a duplicate while the first runs with 409 and Retry-After, then replays", async () => {
          const owner = blocker();
          const { operation, runs } = build(async () => {
            await owner.block();
            return "done";
          });
          const call = { key: key() };
          const first = operation(call);
          await owner.started;
          const duplicate = await operation(call);
          expect(duplicate).toMatchObject({ kind: "refused", status: 409 });
          expect(duplicate.kind === "refused" && duplicate.retryAfter).toBeGreaterThanOrEqual(1);
          owner.release();
          expect(await first).toMatchObject({ kind: "ok", value: "done" });
          expect(await operation(call)).toMatchObject({ kind: "ok", value: "done" });
          expect(runs.count).toBe(1);
        });

        it("tells a duplicate in progress when to retry from how long the work takes, not the lease", async () => {
          // Nothing seen yet, and the first has just started: 1 s, not the 30 s lease.
          const owner = blocker();
          const fresh = build(() => owner.block());
          const call = { key: key() };
          const first = fresh.operation(call);
          await owner.started;
          const early = await fresh.operation(call);
          expect(early).toMatchObject({ kind: "refused", status: 409, retryAfter: 1 });
          owner.release();
          await first;

          // Runs take 1.1 s here: a duplicate 50 ms into one is told 2 s (1.05 s, rounded up).
          const seen = build(() => delay(1_100));
          await seen.operation({ key: key() });
          const next = { key: key() };
          const running = seen.operation(next);
          await delay(50);
          expect(await seen.operation(next)).toMatchObject({ kind: "refused", retryAfter: 2 });
          await running;

          // Or what the retryAfter option says.
          const held = blocker();
          const fixed = build(() => held.block(), { retryAfter: 7_000 });
          const holding = fixed.operation(call);
          await held.started;
          expect(await fixed.operation(call)).toMatchObject({ kind: "refused", retryAfter: 7 });
          held.release();
          await holding;
        });

        it("does not store authentication failures (401, 403): a retry with credentials runs", async () => {
          let status = 401;
          const { operation, runs } = build(() => ({ statusCode: status, body: { status } }));
          const call = { key: key() };
          await operation(call);
          status = 403;
          await operation(call);
          status = 201;
          await operation(call);
          const replay = await operation(call);
          if (frontEnd.httpResults) {
            expect(runs.count).toBe(3);
            expect(replay).toMatchObject({ kind: "ok" });
          } else {
            // A plain function's value is no HTTP result: the first was stored as it is.
            expect(runs.count).toBe(1);
            expect(replay).toMatchObject({ kind: "ok", value: { statusCode: 401 } });
          }
        });

        it("replays a result up to the stored-body cap (1 MiB), whatever the transport's request limit", async () => {
          const large = "x".repeat(1_048_576 - 2); // 1 MiB once JSON-quoted
          const { operation, runs } = build(() => large);
          const call = { key: key() };
          expect(await operation(call)).toMatchObject({ kind: "ok" });
          const replay = await operation(call);
          expect(replay).toMatchObject({ kind: "ok" });
          expect(replay.kind === "ok" && replay.value === large).toBe(true);
          if (frontEnd.reportsReplay) expect(replay).toMatchObject({ replayed: true });
          expect(runs.count).toBe(1);
        });

        it("refuses the same key for a different payload with 422, checked first", async () => {
          const { operation, runs } = build((body) => body, { fingerprint: true });
          const id = key();
          expect(await operation({ key: id, body: { amount: 5 } })).toMatchObject({ kind: "ok" });
          const reused = await operation({ key: id, body: { amount: 6 } });
          expect(reused).toMatchObject({ kind: "refused", status: 422 });
          expect(await operation({ key: id, body: { amount: 5 } })).toMatchObject({
            kind: "ok",
            value: { amount: 5 },
          });
          expect(runs.count).toBe(1);
        });

        it("frees the key when the work throws, telling the caller; a retry runs again", async () => {
          let fail = true;
          const { operation, runs } = build(() => {
            if (fail) throw new Error("card declined by a flaky network");
            return "charged";
          });
          const call = { key: key() };
          expect(await operation(call)).toMatchObject({ kind: "threw" });
          fail = false;
          expect(await operation(call)).toMatchObject({ kind: "ok", value: "charged" });
          expect(runs.count).toBe(2);
        });

        it("frees the key when the work's own TimeoutError fails it (a fetch with AbortSignal.timeout)", async () => {
          let fail = true;
          const { operation, runs } = build(async () => {
            if (!fail) return "fetched";
            const signal = AbortSignal.timeout(1);
            await delay(20);
            throw signal.reason; // a DOMException named TimeoutError, as fetch rejects with it
          });
          const call = { key: key() };
          expect(await operation(call)).toMatchObject({ kind: "threw" });
          fail = false;
          expect(await operation(call)).toMatchObject({ kind: "ok", value: "fetched" });
          expect(runs.count).toBe(2);
        });

        // Only where something stops the work at the invocation's deadline (middy).
        if (frontEnd.deadline === "work") {
          it("keeps the key of a call timed out at its deadline while the work still runs", async () => {
            const hang = blocker();
            let run = 0;
            const work = async () => {
              const mine = ++run;
              if (mine === 1) await hang.block();
              return `run ${mine}`;
            };
            const { operation } = build(work, { lease: 400 });
            const call = { key: key() };
            // The invocation has 300 ms; middy answers at its deadline while the work goes on.
            expect(await operation(call)).toMatchObject({ kind: "threw" });
            expect(await operation(call)).toMatchObject({ kind: "refused", status: 409 });
            expect(run).toBe(1);
            hang.release();
            await delay(150); // the lease (deadline + safety) ends
            expect(await operation(call)).toMatchObject({ kind: "ok", value: "run 2" });
          });
        }

        it("gives the work's result when storing it fails, and reports the failure", async () => {
          const storeDown = failingScript(target.adapter, "idempotency-finish", "connection reset");
          const storeErrors: unknown[] = [];
          const { operation, runs } = build(() => ({ charged: 5 }), {
            adapter: storeDown,
            onStoreError: (error) => storeErrors.push(error),
          });
          expect(await operation({ key: key() })).toMatchObject({
            kind: "ok",
            value: { charged: 5 },
          });
          expect(runs.count).toBe(1);
          expect(storeErrors.length).toBeGreaterThanOrEqual(1);
          expect(storeErrors[0]).toMatchObject({ code: "LOCK_UNAVAILABLE" });
        });

        it("in wait mode, gives a duplicate the first call's result once it finishes", async () => {
          const work = async () => {
            await delay(150);
            return "slow";
          };
          const { operation, runs } = build(work, { wait: 2_000 });
          const call = { key: key() };
          const [a, b] = await Promise.all([
            operation(call),
            delay(20).then(() => operation(call)),
          ]);
          expect(a).toMatchObject({ kind: "ok", value: "slow" });
          expect(b).toMatchObject({ kind: "ok", value: "slow" });
          expect(runs.count).toBe(1);
        });

        it("keeps two callers' records apart", async () => {
          const { operation, runs } = build((body) => body);
          const id = key();
          await operation({ key: id, caller: "alice", body: "alice's order" });
          const bob = await operation({ key: id, caller: "bob", body: "bob's order" });
          expect(bob).toMatchObject({ kind: "ok", value: "bob's order" });
          expect(runs.count).toBe(2);
        });

        // Only where a function is wrapped: its name scopes its records.
        if (frontEnd.wraps) {
          it("keeps the records of two functions keyed the same way apart (by order id)", async () => {
            const prefix = `m${Date.now()}-functions-${++test}`;
            const options = { prefix, scope: "default" } as const;
            const charge = build(() => "charged", { ...options, name: "chargeCard" });
            const receipt = build(() => "receipt sent", { ...options, name: "sendReceipt" });
            const order = { key: `order-${crypto.randomUUID()}` };
            expect(await charge.operation(order)).toMatchObject({ kind: "ok", value: "charged" });
            expect(await receipt.operation(order)).toMatchObject({
              kind: "ok",
              value: "receipt sent",
            });
            expect(await charge.operation(order)).toMatchObject({ kind: "ok", value: "charged" });
            expect([charge.runs.count, receipt.runs.count]).toEqual([1, 1]);
          });

          it("refuses an anonymous function without a scope, before any call", () => {
            const anonymous = () => build(() => "ran", { scope: "default", name: "" });
            expect(anonymous).toThrow(InvalidArgumentError);
            expect(anonymous).toThrow(/no name .* pass scope/);
          });
        }

        // Only where the work's value is the stored result (HTTP front ends store responses).
        if (!frontEnd.http) {
          it("returns a result JSON cannot encode (a BigInt), reports it, and never runs it again", async () => {
            const storeErrors: unknown[] = [];
            const { operation, runs } = build(() => ({ total: 4_200n }), {
              onStoreError: (error) => storeErrors.push(error),
            });
            const call = { key: key() };
            expect(await operation(call)).toMatchObject({ kind: "ok", value: { total: 4_200n } });
            expect(storeErrors).toHaveLength(1);
            expect(String(storeErrors[0])).toMatch(/cannot be stored.*BigInt/);
            const retry = await operation(call);
            expect(retry).toMatchObject({ kind: "refused", status: 409 });
            expect(retry.kind === "refused" && retry.detail).toMatchObject({
              code: "IDEMPOTENCY_OUTCOME_UNKNOWN",
            });
            expect(runs.count).toBe(1);
          });

          it("never stores a result that serializes to nothing (a function, a Symbol, toJSON giving undefined)", async () => {
            const storeErrors: unknown[] = [];
            const results = [() => 1, Symbol("receipt"), { toJSON: () => undefined }];
            for (const result of results) {
              const { operation, runs } = build(() => result, {
                onStoreError: (error) => storeErrors.push(error),
              });
              const call = { key: key() };
              expect(await operation(call)).toMatchObject({ kind: "ok", value: result });
              expect(await operation(call)).toMatchObject({
                kind: "refused",
                status: 409,
                detail: { code: "IDEMPOTENCY_OUTCOME_UNKNOWN" },
              });
              expect(runs.count).toBe(1);
            }
            expect(storeErrors).toHaveLength(results.length);
            expect(String(storeErrors[0])).toMatch(/serialize gave .*, not text/);
          });

          it("answers a replay it cannot decode with 409 outcome unknown, not the decoder's error", async () => {
            const { operation, runs } = build(() => ({ total: 1 }), {
              deserialize: () => {
                throw new SyntaxError("written by another version");
              },
            });
            const call = { key: key() };
            await operation(call);
            const retry = await operation(call);
            expect(retry).toMatchObject({
              kind: "refused",
              status: 409,
              detail: { code: "IDEMPOTENCY_OUTCOME_UNKNOWN", cause: { name: "SyntaxError" } },
            });
            expect(runs.count).toBe(1);
          });

          it("replays what serialize and deserialize carry (BigInts)", async () => {
            const { operation, runs } = build(() => ({ total: 4_200n, at: "2025-01-01" }), {
              serialize: (result) =>
                JSON.stringify(result, (_, v) => (typeof v === "bigint" ? { $big: `${v}` } : v)),
              deserialize: (text) =>
                JSON.parse(text, (_, v) => (typeof v?.$big === "string" ? BigInt(v.$big) : v)),
            });
            const call = { key: key() };
            await operation(call);
            expect(await operation(call)).toMatchObject({
              kind: "ok",
              value: { total: 4_200n, at: "2025-01-01" },
            });
            expect(runs.count).toBe(1);
          });
        }

        it("frees the key of a run that stopped renewing once its lease ends; the stale run stores nothing", async () => {
          const real = target.adapter;
          const crashed = failingScript(real, "idempotency-renew", "crashed"); // nobody renews
          const hang = blocker();
          const lost: string[] = [];
          let run = 0;
          const work = async () => {
            const mine = ++run;
            if (mine === 1) await hang.block();
            return `run ${mine}`;
          };
          const prefix = `m${Date.now()}-crash-${++test}`;
          const options = { prefix, work, lease: 400, onLeaseLost: () => lost.push("lost") };
          const stale = frontEnd.build({ ...options, adapter: crashed });
          const retry = frontEnd.build({ ...options, adapter: real });
          const call: Call = { key: key() };
          const first = stale(call);
          await hang.started;
          expect(await retry(call)).toMatchObject({ kind: "refused", status: 409 });
          await delay(450);
          expect(await retry(call)).toMatchObject({ kind: "ok", value: "run 2" });
          hang.release();
          if (frontEnd.deadline === "work") {
            // middy timed the stale invocation out at its deadline: it never got to store.
            expect(await first).toMatchObject({ kind: "threw" });
            expect(lost).toEqual([]);
          } else if (frontEnd.deadline === "requests") {
            // Its result came after its deadline: nothing was sent to Redis.
            expect(await first).toMatchObject({ kind: "ok", value: "run 1" });
            expect(lost).toEqual([]);
          } else {
            expect(await first).toMatchObject({ kind: "ok", value: "run 1" });
            expect(lost).toEqual(["lost"]);
          }
          expect(await retry(call)).toMatchObject({ kind: "ok", value: "run 2" });
        });
      },
    );
  });
}
