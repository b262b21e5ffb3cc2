/**
 * What the Hono middlewares share about answering: RFC 9457 problem responses, and handing work
 * to the runtime's `waitUntil` so it finishes after the response.
 *
 * @module
 */

import type { Context, Env } from "hono";

/** A refusal, before it is rendered. */
export interface Problem {
  /** The HTTP status. */
  status: 400 | 409 | 413 | 422 | 503;
  /** The status's reason phrase. */
  title: string;
  /** What happened, for machines (`lock_held`, `idempotency_key_reused`, ...). */
  code: string;
  /** What happened and what to do, for people. */
  detail: string;
  /** When to try again, in whole seconds (the `Retry-After` header), if it makes sense. */
  retryAfter?: number;
}

/**
 * Renders a problem as `application/problem+json` with `type: "about:blank"` (the status says
 * what happened, so `title` is its reason phrase), and `Retry-After` when it has one. Headers
 * set by earlier middleware are kept.
 */
export function problemResponse<E extends Env>(c: Context<E>, problem: Problem): Response {
  const { status, title, detail, code } = problem;
  const body = { type: "about:blank", title, status, detail, code };
  const headers: Record<string, string> = { "Content-Type": "application/problem+json" };
  if (problem.retryAfter !== undefined) headers["Retry-After"] = String(problem.retryAfter);
  return c.body(JSON.stringify(body), status, headers);
}

/**
 * Hands `task` to the runtime's `waitUntil`, so it finishes after the response. Returns false
 * where there is none (`c.executionCtx` throws under Node servers and `hono/vercel`), or if it
 * refuses the task: the caller then awaits it.
 */
export function handedToRuntime(c: Context, task: Promise<void>): boolean {
  try {
    const runtime = c.executionCtx;
    if (typeof runtime?.waitUntil !== "function") return false;
    runtime.waitUntil(task);
    return true;
  } catch {
    return false;
  }
}
