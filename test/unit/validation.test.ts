import {
  createLocker,
  InvalidArgumentError,
  type LockAdapter,
  LockError,
  type Locker,
  MAX_DURATION,
  MAX_KEY_LENGTH,
  MIN_TTL,
} from "edgelock";
import { memoryAdapter } from "edgelock/memory";
import { describe, expect, it } from "vitest";
import { record } from "./helpers.js";

/** One bad call: which entry, which argument it must name, and what the message must show. */
interface Case {
  entry: string;
  argument: string;
  label: string;
  /** Text the message must contain (the rejected value, shown as the design says). */
  shows?: string | undefined;
  run: (locker: Locker, adapter: LockAdapter) => unknown;
}

const KEY = "k";
const TTL = 1_000;
const noop = async () => "done";

/** How the design shows a rejected value in a message. */
function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || value === undefined) return String(value);
  if (typeof value === "object" || typeof value === "function") return typeof value;
  return String(value);
}

function label(value: unknown): string {
  if (typeof value === "string") {
    return value.length > 12 ? `"${value.slice(0, 8)}…" (${value.length})` : JSON.stringify(value);
  }
  if (value instanceof AbortController) return "AbortController";
  if (typeof value === "object" && value !== null) return JSON.stringify(value);
  return String(value);
}

const badKeys: Array<{ value: unknown; shows?: string }> = [
  { value: 42, shows: "got 42" },
  { value: undefined, shows: "got undefined" },
  { value: null, shows: "got null" },
  { value: {}, shows: "got object" },
  { value: "" },
  { value: "x".repeat(MAX_KEY_LENGTH + 1), shows: `got ${MAX_KEY_LENGTH + 1}` },
  // Lone surrogates: UTF-8 would send each as U+FFFD, the bytes of another key.
  {
    value: "a\uD800",
    shows:
      'lone surrogate (U+D800 at index 1) would reach Redis as U+FFFD, the name of another key; got "a\\ud800"',
  },
  { value: "\uDC00b", shows: "U+DC00 at index 0" },
  { value: "ok\uD83D\uDD12\uDD12", shows: "U+DD12 at index 4" },
  { value: "\uDE00\uD83D", shows: "U+DE00 at index 0" },
];

const badTtls: unknown[] = [
  0,
  -1,
  1.5,
  Number.NaN,
  Infinity,
  "100",
  MIN_TTL - 1,
  2 ** 31,
  undefined,
];
const badTimeouts: unknown[] = [-1, 1.5, Number.NaN, "5", MAX_DURATION + 1];
const badRetryDelays: unknown[] = [0, -1, 1.5, "50"];
const badSignals: unknown[] = [{}, "abort", new AbortController(), null, 1];
const badFns: unknown[] = [undefined, null, "fn", 42, {}];
const badMaxHolds: unknown[] = [0, MIN_TTL - 1, 1.5, "100", -1, 2 ** 31];

const cases: Case[] = [];

// createLocker options.
for (const adapter of [undefined, null, {}, { name: "x" }, { name: "x", evalScript: "no" }]) {
  cases.push({
    entry: "createLocker",
    argument: "adapter",
    label: label(adapter),
    run: () => createLocker({ adapter } as never),
  });
}
cases.push({
  entry: "createLocker",
  argument: "adapter",
  label: "no options",
  run: () => createLocker(undefined as never),
});
for (const prefix of ["a{b", "a}b", "{x}", "}"]) {
  cases.push({
    entry: "createLocker",
    argument: "prefix",
    label: label(prefix),
    shows: prefix,
    run: (_l, adapter) => createLocker({ adapter, prefix }),
  });
}
for (const prefix of ["p\uD800", "\uDFFFp"]) {
  cases.push({
    entry: "createLocker",
    argument: "prefix",
    label: label(prefix),
    shows: "lone surrogate",
    run: (_l, adapter) => createLocker({ adapter, prefix }),
  });
}
for (const prefix of ["", 42, false, "p".repeat(257)]) {
  cases.push({
    entry: "createLocker",
    argument: "prefix",
    label: label(prefix),
    run: (_l, adapter) => createLocker({ adapter, prefix: prefix as never }),
  });
}
for (const retries of [-1, 1.5, 11, "2", Number.NaN, Infinity, true]) {
  cases.push({
    entry: "createLocker",
    argument: "retries",
    label: label(retries),
    shows: `got ${String(retries)}`,
    run: (_l, adapter) => createLocker({ adapter, retries: retries as never }),
  });
}
for (const name of ["retryDelay", "maxRetryDelay"] as const) {
  for (const value of [0, -1, 1.5, Number.NaN, Infinity, "50", 2 ** 31, false]) {
    cases.push({
      entry: "createLocker",
      argument: name,
      label: label(value),
      shows: `got ${shown(value)}`,
      run: (_l, adapter) => createLocker({ adapter, [name]: value as never }),
    });
  }
}
for (const driftFactor of [-0.01, 0.5, 1, Number.NaN, Infinity, "0.01", false]) {
  cases.push({
    entry: "createLocker",
    argument: "driftFactor",
    label: label(driftFactor),
    shows: `got ${String(driftFactor)}`,
    run: (_l, adapter) => createLocker({ adapter, driftFactor: driftFactor as never }),
  });
}

/** The lock entries, each called with one bad argument and otherwise valid ones. */
type Entry = "tryAcquire" | "acquire" | "using" | "withLock";
const entries: Entry[] = ["tryAcquire", "acquire", "using", "withLock"];

function call(
  locker: Locker,
  entry: Entry,
  key: unknown,
  ttl: unknown,
  options: unknown = {},
  ...rest: unknown[]
): unknown {
  const fn = rest.length === 0 ? noop : rest[0];
  switch (entry) {
    case "tryAcquire":
      return locker.tryAcquire(key as never, ttl as never);
    case "acquire":
      return locker.acquire(key as never, ttl as never, options as never);
    case "using":
      return locker.using(key as never, ttl as never, fn as never, options as never);
    case "withLock":
      return locker.withLock(key as never, ttl as never, fn as never, options as never)();
  }
}

for (const entry of entries) {
  for (const { value, shows } of badKeys) {
    cases.push({
      entry,
      argument: "key",
      label: label(value),
      shows,
      run: (locker) => call(locker, entry, value, TTL),
    });
  }
  for (const ttl of badTtls) {
    cases.push({
      entry,
      argument: "ttl",
      label: label(ttl),
      shows: `got ${shown(ttl)}`,
      run: (locker) => call(locker, entry, KEY, ttl),
    });
  }
  if (entry === "tryAcquire") continue;
  const optionCases: Array<[string, unknown[]]> = [
    ["timeout", badTimeouts],
    ["retryDelay", badRetryDelays],
    ["signal", badSignals],
  ];
  if (entry !== "acquire") optionCases.push(["maxHold", badMaxHolds]);
  for (const [argument, values] of optionCases) {
    for (const value of values) {
      cases.push({
        entry,
        argument,
        label: label(value),
        shows: `got ${shown(value)}`,
        run: (locker) => call(locker, entry, KEY, TTL, { [argument]: value }),
      });
    }
  }
  for (const options of [null, "fast", 5]) {
    cases.push({
      entry,
      argument: "options",
      label: label(options),
      run: (locker) => call(locker, entry, KEY, TTL, options),
    });
  }
  if (entry === "acquire") continue;
  for (const fn of badFns) {
    cases.push({
      entry,
      argument: "fn",
      label: label(fn),
      shows: `got ${shown(fn)}`,
      run: (locker) => call(locker, entry, KEY, TTL, {}, fn),
    });
  }
  cases.push({
    entry,
    argument: "onReleaseError",
    label: '"log"',
    shows: 'got "log"',
    run: (locker) => call(locker, entry, KEY, TTL, { onReleaseError: "log" }),
  });
}

// withLock's computed key: checked on each call, before any request.
for (const { value, shows } of badKeys) {
  cases.push({
    entry: "withLock(computed key)",
    argument: "key",
    label: label(value),
    shows,
    run: (locker) => locker.withLock((_id: number) => value as never, TTL, noop)(7),
  });
}

// inspect.
for (const { value, shows } of badKeys) {
  cases.push({
    entry: "inspect",
    argument: "key",
    label: label(value),
    shows,
    run: (locker) => locker.inspect(value as never),
  });
}
for (const { value, shows } of badKeys.filter((bad) => bad.value !== undefined)) {
  cases.push({
    entry: "inspect",
    argument: "token",
    label: label(value),
    shows,
    run: (locker) => locker.inspect(KEY, value as never),
  });
}

/** Runs `fn` and returns what it threw or rejected with; fails if it did neither. */
async function failure(fn: () => unknown): Promise<unknown> {
  let result: unknown;
  try {
    result = fn();
  } catch (error) {
    return error;
  }
  try {
    await result;
  } catch (error) {
    return error;
  }
  throw new Error(`expected a failure, got ${String(result)}`);
}

function expectInvalid(error: unknown, argument: string, shows?: string): void {
  expect(error).toBeInstanceOf(InvalidArgumentError);
  expect(error).toBeInstanceOf(LockError);
  expect(error).toBeInstanceOf(Error);
  const invalid = error as InvalidArgumentError;
  expect(invalid.code).toBe("INVALID_ARGUMENT");
  expect(invalid.name).toBe("InvalidArgumentError");
  expect(invalid.argument).toBe(argument);
  expect(invalid.message).toContain(argument);
  if (shows !== undefined) expect(invalid.message).toContain(shows);
}

describe("bad arguments are rejected before any request", () => {
  it.each(cases)("$entry: $argument = $label", async ({ argument, shows, run }) => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter });
    const error = await failure(() => run(locker, recording.adapter));
    expectInvalid(error, argument, shows);
    expect(recording.calls).toEqual([]);
    expect(recording.subscriptions).toEqual([]);
    // Nothing was left locked.
    const lease = await locker.tryAcquire(KEY, TTL);
    expect(lease).not.toBeNull();
    await lease?.release();
  });

  it("all of them in a row on one adapter send nothing, and leave the key free", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter });
    for (const { run, argument } of cases) {
      expectInvalid(await failure(() => run(locker, recording.adapter)), argument);
    }
    expect(recording.calls).toHaveLength(0);
    const other = createLocker({ adapter: recording.adapter });
    const lease = await other.tryAcquire(KEY, TTL);
    expect(lease).not.toBeNull();
    expect(await locker.inspect(KEY, lease?.token)).toMatchObject({ held: true, mine: true });
    await lease?.release();
  });

  it("a valid edge of every range is accepted", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({
      adapter: recording.adapter,
      prefix: "p".repeat(256),
      retries: 10,
      retryDelay: 1,
      maxRetryDelay: MAX_DURATION,
      driftFactor: 0,
    });
    const lease = await locker.tryAcquire("x".repeat(MAX_KEY_LENGTH), MIN_TTL * 100);
    expect(lease).not.toBeNull();
    await lease?.release();
    const big = await locker.acquire("k", MAX_DURATION, { timeout: 0, retryDelay: MAX_DURATION });
    await big.release();
    expect(recording.calls.length).toBeGreaterThan(0);
  });

  it.each([0, -1, 1.5, Number.NaN, Infinity, "100", MIN_TTL - 1, 2 ** 31, null])(
    "lease.extend(%s) rejects without a request",
    async (ttl) => {
      const recording = record(memoryAdapter());
      const locker = createLocker({ adapter: recording.adapter });
      const lease = await locker.tryAcquire(KEY, TTL);
      if (!lease) throw new Error("not acquired");
      const before = recording.calls.length;
      expectInvalid(await failure(() => lease.extend(ttl as never)), "ttl", `got ${shown(ttl)}`);
      expect(recording.calls).toHaveLength(before);
      expect(lease.held).toBe(true);
      expect(lease.ttl).toBe(TTL);
      expect(await lease.release()).toBe(true);
    },
  );
});

describe("lone surrogates", () => {
  const wellFormed = ["a\uFFFD", "🔒", "ключ:鍵", "\uD83D\uDD12x", "x\uD83D\uDD12", "\u0000"];
  const illFormed = ["a\uD800", "\uDC00", "\uDC00\uD800", "x\uDBFFy", "\uD83D\uDD12\uD83D"];

  /** Runs `fn` as a runtime without `String.prototype.isWellFormed` would (Node 18, older edges). */
  async function withoutIsWellFormed<T>(fn: () => Promise<T>): Promise<T> {
    const descriptor = Object.getOwnPropertyDescriptor(String.prototype, "isWellFormed");
    Reflect.deleteProperty(String.prototype, "isWellFormed");
    try {
      expect((String.prototype as { isWellFormed?: unknown }).isWellFormed).toBeUndefined();
      return await fn();
    } finally {
      if (descriptor) Object.defineProperty(String.prototype, "isWellFormed", descriptor);
    }
  }

  /** What each key gets from tryAcquire: "ok" or the refused argument's code. */
  async function verdicts(keys: readonly string[]): Promise<string[]> {
    const locker = createLocker({ adapter: memoryAdapter() });
    const out: string[] = [];
    for (const key of keys) {
      const lease = await locker.tryAcquire(key, TTL).catch((error: LockError) => error);
      if (lease instanceof LockError) out.push(lease.code);
      else out.push(lease ? "ok" : "held");
      if (lease && !(lease instanceof LockError)) await lease.release();
    }
    return out;
  }

  it("a key with one is refused, its U+FFFD twin and surrogate pairs are not", async () => {
    expect(await verdicts(wellFormed)).toEqual(wellFormed.map(() => "ok"));
    expect(await verdicts(illFormed)).toEqual(illFormed.map(() => "INVALID_ARGUMENT"));
  });

  it("the same verdicts without String.prototype.isWellFormed (the regular-expression fallback)", async () => {
    const without = await withoutIsWellFormed(() => verdicts([...wellFormed, ...illFormed]));
    expect(without).toEqual([
      ...wellFormed.map(() => "ok"),
      ...illFormed.map(() => "INVALID_ARGUMENT"),
    ]);
  });

  it("the message escapes the value, so it holds no lone surrogate itself", async () => {
    const error = await failure(() =>
      createLocker({ adapter: memoryAdapter() }).tryAcquire("a\uD800", TTL),
    );
    expectInvalid(error, "key", '"a\\ud800"');
    expect((error as Error).message).not.toMatch(/[\uD800-\uDFFF]/u);
  });
});
