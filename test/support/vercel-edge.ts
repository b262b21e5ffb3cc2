/// <reference types="node" />
/**
 * Runs a Next.js App Router route module in Vercel's Edge Runtime sandbox (`edge-runtime`, the
 * package Vercel publishes for this), the way Vercel does: bundled for the `edge-light`
 * condition, `process.env` from the deployment, and each request's `waitUntil` published under
 * `Symbol.for("@vercel/request-context")` (what `@vercel/functions` reads), backed by the
 * sandbox's `FetchEvent.waitUntil` so `response.waitUntil()` settles when that work is done.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { EdgeRuntime } from "edge-runtime";
import { bundleForEdge, type EdgeBundle } from "./esbuild.js";

/** The global the route's exports are assigned to inside the sandbox. */
const ROUTE_GLOBAL = "__route";

/** Bundles a route module as a script for the sandbox (an IIFE assigning its exports). */
export function bundleRoute(entry: string): Promise<EdgeBundle> {
  return bundleForEdge({
    entryPoints: [entry],
    format: "iife",
    globalName: ROUTE_GLOBAL,
    conditions: ["edge-light", "worker", "browser"],
  });
}

/** Options of {@link startRoute}. */
export interface RouteOptions {
  /** The bundle from {@link bundleRoute}. */
  bundle: EdgeBundle;
  /** `process.env` inside the sandbox. */
  env: Record<string, string>;
  /**
   * Publish a Vercel request context with `waitUntil`, as a deployment does; without it the
   * route runs as under `next dev`, with no `waitUntil` to find.
   * @default true
   */
  requestContext?: boolean;
}

/** A response from the sandbox, with the work the request handed to `waitUntil`. */
export type EdgeResponse = Response & { waitUntil(): Promise<unknown[]> };

/** A route module loaded in an edge-runtime sandbox, from {@link startRoute}. */
export interface EdgeRoute {
  /** Calls the route's exported handler for `method` with a request for `url`. */
  dispatch(url: string, init?: RequestInit): Promise<EdgeResponse>;
  /** How many promises the route handed to the request context's `waitUntil` so far. */
  readonly waitUntilCalls: number;
}

/** Loads the bundled route into a fresh sandbox. */
export function startRoute(options: RouteOptions): EdgeRoute {
  const context = new AsyncLocalStorage<{ waitUntil(promise: Promise<unknown>): void }>();
  let calls = 0;
  const publish = options.requestContext ?? true;
  const runtime = new EdgeRuntime({
    extend: (sandbox) => {
      Object.assign(sandbox, {
        process: { env: { ...options.env } },
        __requestContext: context,
        __countWaitUntil: () => {
          calls++;
        },
      });
      if (publish) {
        Object.defineProperty(sandbox, Symbol.for("@vercel/request-context"), {
          value: { get: () => context.getStore() },
        });
      }
      return sandbox;
    },
    initialCode: `${options.bundle.code}
addEventListener("fetch", (event) => {
  const handler = ${ROUTE_GLOBAL}[event.request.method];
  const store = {
    waitUntil(promise) {
      __countWaitUntil();
      event.waitUntil(promise);
    },
  };
  event.respondWith(
    typeof handler === "function"
      ? __requestContext.run(store, () => handler(event.request, { params: Promise.resolve({}) }))
      : new Response(null, { status: 405 }),
  );
});`,
  });
  return {
    dispatch: (url, init) => runtime.dispatchFetch(url, init) as Promise<EdgeResponse>,
    get waitUntilCalls() {
      return calls;
    },
  };
}
