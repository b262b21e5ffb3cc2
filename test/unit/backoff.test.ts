import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type BackoffInput, backoffDelay } from "../../src/backoff.js";

afterEach(() => {
  vi.restoreAllMocks();
});

const input = fc.record({
  attempt: fc.integer({ min: 1, max: 100 }),
  base: fc.integer({ min: 1, max: 10_000 }),
  cap: fc.integer({ min: 1, max: 2_147_483_647 }),
  holderTtl: fc.oneof(fc.constantFrom(-2, -1, 0, 1), fc.integer({ min: -2, max: 2_147_483_647 })),
  remaining: fc.oneof(fc.constantFrom(-5, 0, 1), fc.integer({ min: -1_000, max: 2_147_483_647 })),
  notified: fc.boolean(),
});

/** The largest sleep the jitter may draw: the exponential step, capped. */
function step({ attempt, base, cap }: BackoffInput): number {
  return Math.min(cap, base * 2 ** (attempt - 1));
}

/** Checks every bound the design promises for one input and one drawn delay. */
function checkBounds(args: BackoffInput, delay: number): void {
  expect(Number.isFinite(delay)).toBe(true);
  expect(delay).toBeGreaterThanOrEqual(0);
  if (args.holderTtl >= 0) expect(delay).toBeLessThanOrEqual(args.holderTtl + 1);
  expect(delay).toBeLessThanOrEqual(Math.max(0, args.remaining));
  if (!args.notified) expect(delay).toBeLessThanOrEqual(step(args));
}

describe("backoffDelay", () => {
  it("property: never negative, never past the holder's lease + 1, the deadline, or the step", () => {
    fc.assert(
      fc.property(input, (args) => {
        checkBounds(args, backoffDelay(args));
      }),
      { numRuns: 2_000 },
    );
  });

  it("property: the bounds hold at both ends of the jitter", () => {
    fc.assert(
      fc.property(input, fc.constantFrom(0, 0.5, 1 - Number.EPSILON), (args, random) => {
        vi.spyOn(Math, "random").mockReturnValue(random);
        checkBounds(args, backoffDelay(args));
        vi.restoreAllMocks();
      }),
      { numRuns: 1_000 },
    );
  });

  it("polling uses full jitter over the exponential step", () => {
    const args = {
      attempt: 3,
      base: 50,
      cap: 1_000,
      holderTtl: -1,
      remaining: 60_000,
      notified: false,
    };
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect(backoffDelay(args)).toBe(0);
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    expect(backoffDelay(args)).toBe(100); // half of 50 · 2²
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    expect(backoffDelay({ ...args, attempt: 10 })).toBe(500); // half of the 1000 ms cap
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    expect(backoffDelay({ ...args, attempt: 1 })).toBe(25);
  });

  it("polling delays actually vary (jitter) and grow with the attempt", () => {
    vi.restoreAllMocks();
    const draw = (attempt: number) =>
      Array.from({ length: 200 }, () =>
        backoffDelay({
          attempt,
          base: 10,
          cap: 100_000,
          holderTtl: -1,
          remaining: 1e9,
          notified: false,
        }),
      );
    const early = draw(1);
    const late = draw(8);
    expect(new Set(late).size).toBeGreaterThan(100);
    expect(Math.max(...early)).toBeLessThanOrEqual(10);
    expect(Math.max(...late)).toBeGreaterThan(10 * 2 ** 6);
  });

  it("the holder's remaining lease and the deadline cut the sleep", () => {
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    const args = { attempt: 20, base: 50, cap: 1_000, remaining: 60_000, notified: false };
    expect(backoffDelay({ ...args, holderTtl: 120 })).toBeLessThanOrEqual(121);
    expect(backoffDelay({ ...args, holderTtl: 0 })).toBeLessThanOrEqual(1);
    expect(backoffDelay({ ...args, holderTtl: -1, remaining: 7 })).toBeLessThanOrEqual(7);
    expect(backoffDelay({ ...args, holderTtl: -1, remaining: -30 })).toBe(0);
  });

  it("notified: sleeps to the end of the lease (or the deadline), without jitter", () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    const args = { attempt: 1, base: 50, cap: 1_000, holderTtl: -1, remaining: 60_000 };
    expect(backoffDelay({ ...args, notified: true })).toBe(60_000); // the room polls meanwhile
    expect(backoffDelay({ ...args, notified: true, holderTtl: 300 })).toBe(301);
    expect(backoffDelay({ ...args, notified: true, holderTtl: 5_000 })).toBe(5_001);
    expect(backoffDelay({ ...args, notified: true, remaining: 40 })).toBe(40);
    expect(backoffDelay({ ...args, notified: true, remaining: 0 })).toBe(0);
    fc.assert(
      fc.property(input, (args) => {
        const expected = Math.max(
          0,
          Math.min(args.holderTtl >= 0 ? args.holderTtl + 1 : Infinity, args.remaining),
        );
        expect(backoffDelay({ ...args, notified: true })).toBe(expected);
      }),
    );
  });
});
