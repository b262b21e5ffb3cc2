/**
 * Small tools for ordering asynchronous steps in tests: pauses, gates, a handler that blocks
 * until released, and a Workers-style execution context that collects `waitUntil` work.
 */

import type { ExecutionContext } from "hono";

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A promise with its resolve function exposed. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/**
 * A handler step that says when it started and then waits to be let go, so a test can send the
 * duplicate only once the first request surely holds the key.
 */
export function blocker() {
  const started = gate();
  const released = gate();
  return {
    started: started.promise,
    release: released.open,
    block: async () => {
      started.open();
      await released.promise;
    },
  };
}

/** A fake Workers-style execution context that collects what `waitUntil` is given. */
export function fakeExecutionContext() {
  const pending: Promise<unknown>[] = [];
  const ctx: ExecutionContext = {
    waitUntil(promise) {
      pending.push(promise);
    },
    passThroughOnException() {},
    props: {},
  };
  return { ctx, pending };
}
