import { createLocker, type Lease, type LockAdapter, LockLostError } from "edgelock";
import { memoryAdapter } from "edgelock/memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

describe("mutual exclusion", () => {
  it("property: never two holders, fences increase, under random interleavings", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 2, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        async (s, workers, rounds) => {
          const inner = memoryAdapter();
          // Each request reaches the store, and each reply comes back, when the scheduler says.
          const adapter: LockAdapter = {
            name: "scheduled",
            evalScript: async (script, keys, args) => {
              const tag = args[0]?.slice(-4) ?? "";
              await s.schedule(Promise.resolve(), `${script.name} request ${tag}`);
              const reply = await inner.evalScript(script, keys, args);
              return s.schedule(Promise.resolve(reply), `${script.name} reply ${tag}`);
            },
          };
          let holders = 0;
          let mostHolders = 0;
          const fences: number[] = [];
          const worker = async (id: number) => {
            const locker = createLocker({ adapter, retries: 0 });
            for (let round = 0; round < rounds; round++) {
              const lease = await locker.tryAcquire("shared", 60_000);
              if (!lease) {
                await s.schedule(Promise.resolve(), `worker ${id} idle`);
                continue;
              }
              holders++;
              mostHolders = Math.max(mostHolders, holders);
              fences.push(lease.fence);
              await s.schedule(Promise.resolve(), `worker ${id} critical section`);
              expect(holders).toBe(1);
              holders--;
              expect(await lease.release()).toBe(true);
            }
          };
          await s.waitFor(Promise.all(Array.from({ length: workers }, (_, id) => worker(id))));
          expect(mostHolders).toBe(1);
          expect(fences.length).toBeGreaterThanOrEqual(1);
          for (let i = 1; i < fences.length; i++) {
            expect(fences[i], `fences ${fences.join(", ")}`).toBeGreaterThan(fences[i - 1] ?? 0);
          }
          const check = createLocker({ adapter: inner });
          expect(await check.inspect("shared")).toMatchObject({ held: false });
        },
      ),
      { numRuns: 150 },
    );
  });
});

type Command =
  | { kind: "try"; client: number; key: number; ttl: number }
  | { kind: "extend"; client: number; key: number; ttl: number }
  | { kind: "release"; client: number; key: number }
  | { kind: "advance"; ms: number };

const CLIENTS = 3;
const KEYS = ["a", "b"];

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant("try" as const),
    client: fc.nat(CLIENTS - 1),
    key: fc.nat(KEYS.length - 1),
    ttl: fc.integer({ min: 1_000, max: 5_000 }),
  }),
  fc.record({
    kind: fc.constant("extend" as const),
    client: fc.nat(CLIENTS - 1),
    key: fc.nat(KEYS.length - 1),
    ttl: fc.integer({ min: 1_000, max: 5_000 }),
  }),
  fc.record({
    kind: fc.constant("release" as const),
    client: fc.nat(CLIENTS - 1),
    key: fc.nat(KEYS.length - 1),
  }),
  fc.record({
    kind: fc.constant("advance" as const),
    ms: fc.oneof(fc.integer({ min: 0, max: 6_000 }), fc.constantFrom(1, 999, 1_000, 1_001)),
  }),
);

/** The model of one key: which lease holds it, and until when on the fake clock. */
interface Holder {
  lease: Lease;
  until: number;
}

describe("lease lifecycle against a model", () => {
  it("property: tryAcquire/extend/release/time agree with a simple model", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 40 }), async (commands) => {
        let time = 0;
        const adapter = memoryAdapter({ clock: () => time });
        const lockers = Array.from({ length: CLIENTS }, () => createLocker({ adapter }));
        const observer = createLocker({ adapter });
        const holders = new Map<string, Holder>();
        const leases = new Map<string, Lease>(); // each client's latest lease per key
        const everyLease: Lease[] = [];
        let lastFence = 0;

        const holderOf = (key: string): Holder | undefined => {
          const holder = holders.get(key);
          return holder && holder.until > time ? holder : undefined;
        };

        try {
          for (const step of commands) {
            if (step.kind === "advance") {
              time += step.ms;
            } else {
              const key = KEYS[step.key] ?? "a";
              const slot = `${step.client}/${key}`;
              const locker = lockers[step.client];
              if (!locker) throw new Error("no such client");
              const lease = leases.get(slot);
              const holder = holderOf(key);
              if (step.kind === "try") {
                const got = await locker.tryAcquire(key, step.ttl);
                expect(got !== null, `tryAcquire ${key} at ${time}`).toBe(holder === undefined);
                if (got) {
                  expect(got.fence).toBeGreaterThan(lastFence);
                  lastFence = got.fence;
                  holders.set(key, { lease: got, until: time + step.ttl });
                  leases.set(slot, got);
                  everyLease.push(got);
                }
              } else if (step.kind === "extend" && lease) {
                const mine = holder?.lease === lease;
                const outcome = await lease.extend(step.ttl).then(
                  () => "extended",
                  (error: unknown) => error,
                );
                if (mine) {
                  expect(outcome).toBe("extended");
                  holders.set(key, { lease, until: time + step.ttl });
                } else {
                  expect(outcome).toBeInstanceOf(LockLostError);
                  expect(lease.signal.aborted || lease.remaining() === 0).toBe(true);
                }
              } else if (step.kind === "release" && lease) {
                const mine = holder?.lease === lease;
                expect(await lease.release()).toBe(mine);
                if (mine) holders.delete(key);
              }
            }
            // After every step the store agrees with the model, for every key and every lease.
            for (const key of KEYS) {
              const holder = holderOf(key);
              const state = await observer.inspect(key);
              expect(state.held, `${key} held at ${time}`).toBe(holder !== undefined);
              expect(state.ttl).toBe(holder ? holder.until - time : 0);
              expect(state.fence).toBeLessThanOrEqual(lastFence);
            }
            let owners = 0;
            for (const lease of everyLease) {
              const state = await observer.inspect(lease.key, lease.token);
              const mine = holderOf(lease.key)?.lease === lease;
              expect(state.mine).toBe(mine);
              if (state.mine) owners++;
            }
            expect(owners).toBe(KEYS.filter((key) => holderOf(key) !== undefined).length);
          }
        } finally {
          await Promise.all(everyLease.map((lease) => lease.release()));
        }
      }),
      { numRuns: 200 },
    );
  });
});
