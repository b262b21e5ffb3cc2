/**
 * Vercel's `waitUntil`, as an `ExecutionContext` for `app.fetch(request, env, ctx)`, so Hono
 * middleware (edgelock's idempotency among them) can finish its work after the response.
 *
 * Vercel hands each request a context with `waitUntil` through a global symbol, which
 * `@vercel/functions` reads (`import { waitUntil } from "@vercel/functions"`); this file does the
 * same lookup, so the example needs no extra package. `hono/vercel`'s `handle(app)` passes no
 * execution context at all: the middleware then awaits its storage before answering, which is
 * correct but slower.
 *
 * @module
 */

import type { ExecutionContext } from "hono";

type WaitUntil = (promise: Promise<unknown>) => void;

/** Where Next.js and Vercel publish the current request's context. */
const CONTEXT_SYMBOLS = [
  Symbol.for("@next/request-context"),
  Symbol.for("@vercel/request-context"),
];

/** The current request's `waitUntil`, or undefined outside a Vercel (or Next.js) request. */
export function vercelWaitUntil(): WaitUntil | undefined {
  const global = globalThis as Record<symbol, { get?: () => { waitUntil?: unknown } | undefined }>;
  for (const symbol of CONTEXT_SYMBOLS) {
    const waitUntil = global[symbol]?.get?.()?.waitUntil;
    if (typeof waitUntil === "function") return (promise) => waitUntil(promise);
  }
  return undefined;
}

/**
 * An execution context whose `waitUntil` is Vercel's, or undefined where there is none (`next
 * dev`, plain Node): Hono's `c.executionCtx` then throws, and edgelock's middleware awaits its
 * work before the response instead.
 */
export function vercelExecutionContext(): ExecutionContext | undefined {
  const waitUntil = vercelWaitUntil();
  if (!waitUntil) return undefined;
  return { waitUntil, passThroughOnException() {}, props: {} };
}
