/**
 * Telling middy's early timeout from the handler's own errors, whatever the order of the
 * middlewares.
 *
 * When a handler runs into `timeoutEarlyInMillis`, middy throws a `TimeoutError` of its own,
 * marked `cause: { package: "@middy/core" }`, while the handler may still be running: the lock or
 * key must then stay held. A `TimeoutError` the handler throws itself (`AbortSignal.timeout` on a
 * `fetch`) is an error like any other, and frees them.
 *
 * An `onError` middleware does not always see the error middy threw: one that ran before it may
 * have replaced `request.error` (`@middy/http-error-handler` puts a plain `{ statusCode: 500 }`
 * there). So `before` starts watching the request, and every error assigned to it is seen.
 *
 * @module
 */

/** Requests whose `error` is watched. */
const watched = new WeakSet<object>();
/** Requests to which middy's early timeout was assigned as the error. */
const timedOut = new WeakSet<object>();

/**
 * True for the error middy throws at its early timeout (from `@middy/core` 6 on), and for
 * nothing else.
 *
 * @example
 * ```ts
 * isMiddyTimeout(request.error); // true only for middy's own TimeoutError
 * ```
 */
export function isMiddyTimeout(error: unknown): boolean {
  const candidate = error as { name?: unknown; cause?: { package?: unknown } } | null;
  return (
    candidate?.name === "TimeoutError" &&
    typeof candidate.cause === "object" &&
    candidate.cause?.package === "@middy/core"
  );
}

/**
 * Watches the errors assigned to `request` from now on, for {@link timedOutEarly}. Call it from
 * `before`; watching twice is harmless, and another watcher's accessor (a second copy of
 * edgelock) is kept working.
 */
export function watchForTimeout(request: { error: unknown }): void {
  if (watched.has(request)) return;
  watched.add(request);
  const previous = Object.getOwnPropertyDescriptor(request, "error");
  let value = request.error;
  Object.defineProperty(request, "error", {
    configurable: true,
    enumerable: true,
    get: previous?.get ?? (() => value),
    set(next: unknown) {
      if (isMiddyTimeout(next)) timedOut.add(request);
      if (previous?.set) previous.set.call(request, next);
      else value = next;
    },
  });
}

/**
 * True if middy timed the request's handler out early (it may still be running), whatever the
 * middlewares that handled the error before did to `request.error`.
 */
export function timedOutEarly(request: { error: unknown }): boolean {
  return timedOut.has(request) || isMiddyTimeout(request.error);
}
