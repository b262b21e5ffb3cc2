/**
 * What a failure to reach Redis must look like to a caller: which ways of taking a lock to try,
 * how long one took to fail, and the checks on its error (class and code, the reason in the
 * message and in the cause chain, no secret anywhere).
 */

import { type Locker, LockUnavailableError } from "edgelock";
import { expect } from "vitest";
import { expectNoSecret, exposure } from "./secrets.js";

/** The ways of taking a lock, each with a wait long enough to outlast any deadline. */
export const TAKES: [name: string, take: (locker: Locker) => Promise<unknown>][] = [
  ["tryAcquire", (locker) => locker.tryAcquire("job", 5_000)],
  ["acquire", (locker) => locker.acquire("job", 5_000, { timeout: 5_000 })],
  ["using", (locker) => locker.using("job", 5_000, async () => "ran", { timeout: 5_000 })],
];

/** What `run` failed with and how long that took, in ms; fails the test if it succeeds. */
export async function timedFailure(
  run: () => Promise<unknown>,
): Promise<{ error: unknown; elapsed: number }> {
  const started = performance.now();
  try {
    await run();
  } catch (error) {
    return { error, elapsed: performance.now() - started };
  }
  throw new Error("expected the operation to fail");
}

/** The messages and codes of `error` and of every cause under it, one per line. */
export function causeChain(error: unknown): string {
  const lines: string[] = [];
  let current = error as { message?: unknown; code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 8; depth++, current = current.cause as typeof current) {
    lines.push(`${String(current.message)} [${String(current.code ?? "")}]`);
  }
  return lines.join("\n");
}

/**
 * Checks that `error` is a LOCK_UNAVAILABLE about `key`, whose message and causes (beyond the
 * error itself) give `reason`, with `code` somewhere in the cause chain when given, and that no
 * secret shows anywhere in it.
 */
export function expectUnavailable(
  error: unknown,
  expected: { operation: string; key?: string; reason: RegExp; code?: string; secrets?: string[] },
): void {
  expect(error).toBeInstanceOf(LockUnavailableError);
  const { operation, key, reason, code, secrets = [] } = expected;
  expect(error).toMatchObject({ code: "LOCK_UNAVAILABLE", operation, key });
  const what = key === undefined ? "" : ` lock "${key}"`;
  expect((error as Error).message.startsWith(`cannot ${operation}${what}: `)).toBe(true);
  expect((error as Error).message).toMatch(reason);
  const causes = causeChain((error as Error).cause);
  expect(causes).toMatch(reason);
  if (code !== undefined) expect(causes).toContain(`[${code}]`);
  expectNoSecret(exposure(error), secrets, "the error");
}
