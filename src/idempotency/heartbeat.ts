/**
 * Keeping an idempotency lease alive while the work runs: a chain of timers that renews the lease
 * about every third of its length.
 *
 * @module
 */

/**
 * Calls `renew` about every `lease / 3` ms until the returned function is called. When `renew`
 * resolves false (the lease is gone), `onLost` is called once and renewing stops; a failed
 * renewal is retried sooner. Never throws or rejects into the caller.
 *
 * @returns stop: clears the pending timer.
 */
export function heartbeat(
  renew: () => Promise<boolean>,
  lease: number,
  onLost: () => void,
): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const schedule = (delay: number) => {
    if (!stopped) timer = setTimeout(beat, Math.max(1, delay));
  };
  const beat = () => {
    renew().then(
      (held) => {
        if (held) schedule(lease / 3);
        else if (!stopped) {
          stopped = true;
          onLost();
        }
      },
      () => schedule(lease / 10),
    );
  };
  schedule(lease / 3);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
