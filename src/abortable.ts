/**
 * Racing a request against an AbortSignal without losing track of the request.
 *
 * @module
 */

/**
 * Resolves as `promise` does, or rejects with `signal.reason` as soon as `signal` aborts. A request
 * cannot be recalled once sent, so when the signal wins, `abandoned` receives the promise to
 * clean up after (for example, to release a lock the request took anyway).
 *
 * @example
 * ```ts
 * const lease = await abortable(attempt(), signal, (late) => late.then((l) => l?.release()));
 * ```
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  abandoned: (late: Promise<T>) => void,
): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      abandoned(promise);
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
