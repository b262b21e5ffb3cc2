/**
 * Coalescing the writes of concurrent requests on one ioredis connection: while requests are in
 * flight, the socket is corked for the rest of the current turn of the event loop, so every
 * command issued in that turn (by any of the concurrent callers) leaves in one `writev` instead of
 * one system call each. A request sent while nothing else is pending is written at once, so a
 * caller that works one request at a time sees no delay.
 *
 * Node-only (`process.nextTick`, `net.Socket#cork`), like ioredis itself.
 *
 * @module
 */

/** The part of a socket this uses: Node's `cork`/`uncork`. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Returns a function to call before each request is sent: it corks `socket()` (the connection's
 * current socket, if it has one) when `pending()` says other requests are in flight, and uncorks
 * it once the current turn's callbacks and promise reactions have run.
 *
 * @example
 * ```ts
 * const coalesce = coalescer(() => client.stream, () => deadlines.pending);
 * coalesce();
 * const reply = await client.evalsha(sha1, 1, key);
 * ```
 */
export function coalescer(
  socket: () => Partial<Corkable> | undefined,
  pending: () => number,
): () => void {
  let corked = false;
  const uncork = (stream: Corkable) => {
    corked = false;
    stream.uncork();
  };
  return () => {
    if (corked || pending() === 0) return;
    const stream = socket();
    if (typeof stream?.cork !== "function" || typeof stream.uncork !== "function") return;
    corked = true;
    stream.cork();
    process.nextTick(uncork, stream as Corkable);
  };
}
