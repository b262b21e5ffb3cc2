/**
 * Counts the HTTP requests (and the Redis commands inside them) that REST clients send, by
 * wrapping the global `fetch` that `@upstash/redis` calls. A pipelined request carries several
 * commands in one body; every other request carries one.
 */

export class FetchCounter {
  requests = 0;
  commands = 0;
  /** Request paths seen (`/`, `/pipeline`, ...), with counts. */
  readonly paths = new Map<string, number>();

  reset(): void {
    this.requests = 0;
    this.commands = 0;
    this.paths.clear();
  }

  /** Wraps `globalThis.fetch`; returns the function that puts the original back. */
  install(): () => void {
    const original = globalThis.fetch;
    const counted: typeof fetch = (input, init) => {
      this.requests++;
      this.commands += commandsIn(init?.body);
      const url = new URL(input instanceof Request ? input.url : String(input));
      this.paths.set(url.pathname, (this.paths.get(url.pathname) ?? 0) + 1);
      return original(input, init);
    };
    globalThis.fetch = counted;
    return () => {
      globalThis.fetch = original;
    };
  }
}

/** 1 for a single command, n for a pipeline or transaction of n, 0 for an unreadable body. */
function commandsIn(body: unknown): number {
  if (typeof body !== "string") return 0;
  try {
    const parsed: unknown = JSON.parse(body);
    if (!Array.isArray(parsed)) return 0;
    return Array.isArray(parsed[0]) ? parsed.length : 1;
  } catch {
    return 0;
  }
}
