import { describe, expect, it } from "vitest";
import { isTimeout, retried } from "../../src/retry.js";

/** A request that fails with `errors` in turn, then resolves "ok"; counts its calls. */
function failing(...errors: Error[]) {
  let calls = 0;
  const request = () => {
    const error = errors[calls++];
    return error ? Promise.reject(error) : Promise.resolve("ok");
  };
  return { request, calls: () => calls };
}

function named(name: string, message = name): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

describe("retried", () => {
  it("retries a failure with unknown outcome, up to `retries` times", async () => {
    const flaky = failing(new Error("ECONNRESET"), new Error("ECONNRESET"));
    await expect(retried(2, flaky.request)).resolves.toBe("ok");
    expect(flaky.calls()).toBe(3);
    const dead = failing(...Array.from({ length: 5 }, () => new Error("ECONNRESET")));
    await expect(retried(2, dead.request, (e) => new Error(`wrapped: ${e}`))).rejects.toThrow(
      "wrapped: Error: ECONNRESET",
    );
    expect(dead.calls()).toBe(3);
  });

  it("never resends a request that ran out its transport's deadline", async () => {
    for (const timeout of [named("TimeoutError"), new DOMException("late", "TimeoutError")]) {
      expect(isTimeout(timeout)).toBe(true);
      const slow = failing(timeout);
      await expect(retried(2, slow.request)).rejects.toBe(timeout);
      expect(slow.calls()).toBe(1);
    }
    expect(isTimeout(new Error("TimeoutError"))).toBe(false);
    expect(isTimeout(undefined)).toBe(false);
  });

  it("stops at once when the signal aborts, with its reason", async () => {
    const reason = new Error("caller gave up");
    const before = failing();
    await expect(retried(2, before.request, undefined, AbortSignal.abort(reason))).rejects.toBe(
      reason,
    );
    expect(before.calls()).toBe(0);
    const controller = new AbortController();
    const dead = failing(...Array.from({ length: 5 }, () => new Error("ECONNRESET")));
    const started = performance.now();
    const pending = retried(10, dead.request, undefined, controller.signal);
    setTimeout(() => controller.abort(reason), 30);
    await expect(pending).rejects.toBe(reason);
    expect(performance.now() - started).toBeLessThan(200); // the pauses alone would take ~20 s
    expect(dead.calls()).toBeLessThan(5);
  });
});
