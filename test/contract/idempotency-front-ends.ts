/// <reference types="node" />
/**
 * The front ends of idempotency, each driven the way its users call it, behind one interface, so
 * the conformance suite can run the same acceptance matrix against all of them:
 *
 * - `withIdempotency` around a plain function;
 * - `lambdaWithIdempotency` around a per-record function (an SQS-style consumer);
 * - middy's `idempotencyMiddleware` on an API Gateway handler, with `@middy/http-error-handler`
 *   used before it and after it;
 * - Hono's `idempotency()` middleware, through `app.request()`.
 *
 * A call carries a key, a payload and a caller; its outcome is a value (run or replayed), a
 * refusal with its HTTP status, or the work's own failure.
 */

import middy from "@middy/core";
import httpErrorHandler from "@middy/http-error-handler";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { type LockAdapter, withIdempotency } from "edgelock";
import { idempotency } from "edgelock/hono";
import { headerKey, idempotencyMiddleware, lambdaWithIdempotency } from "edgelock/lambda";
import { Hono } from "hono";
import { lambdaContext } from "../support/lambda-context.js";

/** One call of an idempotent operation. */
export interface Call {
  /** The idempotency key; none when undefined. */
  key?: string;
  /** For the HTTP front ends: further `Idempotency-Key` headers, sent after the first. */
  moreKeys?: readonly string[];
  /** The request's payload. */
  body?: unknown;
  /** Who calls: callers never share records. */
  caller?: string;
}

/** What a call came to, whatever the front end. */
export type Outcome =
  /** The work's value: run now, or replayed (undefined where the front end does not say). */
  | { kind: "ok"; value: unknown; replayed: boolean | undefined }
  /** Refused by idempotency: the HTTP status it maps to, and `Retry-After` in seconds. */
  | { kind: "refused"; status: number; retryAfter: number | undefined; detail: unknown }
  /** The work failed, and the caller was told. */
  | { kind: "threw"; detail: unknown };

/** What every front end is built from. */
export interface Setup {
  adapter: LockAdapter;
  /** The records' namespace (one per test, so tests never meet). */
  prefix: string;
  /** The work an idempotent call runs: its value is stored and replayed. */
  work: (body: unknown) => unknown;
  /** Refuse a key reused for another payload. */
  fingerprint?: boolean;
  /** How long a duplicate waits for the first call, in ms. */
  wait?: number;
  /** The in-progress lease, in ms. */
  lease?: number;
  /** Told when the lease was lost: the result was not stored. */
  onLeaseLost?: () => void;
  /**
   * Whose records: each caller's (a scope of the caller), or the front end's default scope.
   * @default "caller"
   */
  scope?: "caller" | "default";
  /** The wrapped function's name, where the front end wraps one. @default "charge" */
  name?: string;
  /** Told when a result could not be stored, or a key not freed. */
  onStoreError?: (error: unknown) => void;
  /** How results are stored and replayed, where the work's value is the result. */
  serialize?: (result: unknown) => string;
  deserialize?: (text: string) => unknown;
  /** What a duplicate in progress is told, in ms. */
  retryAfter?: number;
}

/** An idempotent operation as a front end serves it. */
export type Operation = (call: Call) => Promise<Outcome>;

/** A front end: its name and how to build an operation with it. */
export interface FrontEnd {
  name: string;
  /** True for the HTTP front ends (responses rather than values and thrown errors). */
  http: boolean;
  /** True for the front ends that wrap a function, whose name scopes its records by default. */
  wraps: boolean;
  /**
   * True where the work's value may be an HTTP result (`{ statusCode, body }`) whose status the
   * front end stores by its policy: the HTTP front ends answer with it.
   */
  httpResults: boolean;
  /** True where the caller learns whether the value was replayed. */
  reportsReplay: boolean;
  /**
   * What the invocation's deadline bounds: nothing; the Redis requests (the Lambda wrappers); or
   * the work too (middy times the handler out).
   */
  deadline: "none" | "requests" | "work";
  build(setup: Setup): Operation;
}

/** The Lambda lease's safety margin in these drivers: the lease is the remaining time + this. */
const SAFETY = 100;
const DEFAULT_LEASE = 30_000;

/** The work as the function the function front ends wrap, named `setup.name`. */
function workOf(setup: Setup): (call: Call) => Promise<unknown> {
  const work = async (call: Call) => setup.work(call.body);
  return Object.defineProperty(work, "name", { value: setup.name ?? "charge" });
}

/** The options the function front ends share, the lease aside. */
function functionOptions(setup: Setup) {
  return {
    adapter: setup.adapter,
    prefix: setup.prefix,
    key: (call: Call) => call.key,
    ...(setup.scope === "default" ? {} : { scope: (call: Call) => `charge:${call.caller ?? ""}` }),
    fingerprint: setup.fingerprint ? (call: Call) => call.body : (false as const),
    wait: setup.wait,
    onLeaseLost: setup.onLeaseLost,
    onStoreError: setup.onStoreError,
    serialize: setup.serialize,
    deserialize: setup.deserialize,
    retryAfter: setup.retryAfter,
  };
}

/** The HTTP response of a value: its own status and body if it is an HTTP result, else 200. */
function responseOf(value: unknown): { statusCode: number; body: string } {
  const { statusCode, body } = (value ?? {}) as { statusCode?: unknown; body?: unknown };
  if (typeof statusCode === "number") return { statusCode, body: JSON.stringify(body ?? null) };
  return { statusCode: 200, body: JSON.stringify(value ?? null) };
}

/** The outcome of a call that resolved with `value` or threw `error`, for non-HTTP front ends. */
async function settled(
  call: () => Promise<{ result: unknown; replayed?: boolean }>,
): Promise<Outcome> {
  try {
    const { result, replayed } = await call();
    return { kind: "ok", value: result, replayed };
  } catch (error) {
    const status = (error as { statusCode?: unknown }).statusCode;
    if (typeof status !== "number") return { kind: "threw", detail: error };
    const header = (error as { headers?: Record<string, string> }).headers?.["Retry-After"];
    const retryAfter = header === undefined ? undefined : Number(header);
    return { kind: "refused", status, retryAfter, detail: error };
  }
}

/** The outcome of an HTTP response. */
function answered(status: number, header: (name: string) => string | undefined, body: string) {
  const retryAfter = header("retry-after");
  if (status >= 200 && status < 300) {
    const replayed = header("idempotent-replayed") === "true";
    return { kind: "ok", value: body === "" ? undefined : JSON.parse(body), replayed } as const;
  }
  if (status === 500) return { kind: "threw", detail: body } as const;
  const after = retryAfter === undefined ? undefined : Number(retryAfter);
  return { kind: "refused", status, retryAfter: after, detail: body } as const;
}

const plainFunction: FrontEnd = {
  name: "withIdempotency",
  http: false,
  wraps: true,
  httpResults: false,
  reportsReplay: true,
  deadline: "none",
  build(setup) {
    const charge = withIdempotency(workOf(setup), {
      ...functionOptions(setup),
      lease: setup.lease,
    });
    return (call) => settled(() => charge.detailed(call));
  },
};

const lambdaRecords: FrontEnd = {
  name: "lambdaWithIdempotency",
  http: false,
  wraps: true,
  httpResults: true,
  reportsReplay: false,
  deadline: "requests",
  build(setup) {
    const lease = setup.lease ?? DEFAULT_LEASE;
    const handler = lambdaWithIdempotency(workOf(setup), {
      ...functionOptions(setup),
      lease: { safety: SAFETY },
    });
    return (call) =>
      settled(async () => ({ result: await handler(call, lambdaContext(lease - SAFETY)) }));
  },
};

/** An API Gateway HTTP API (payload 2.0) event for `POST /orders`. */
function httpEvent(call: Call): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = { "content-type": "application/json" };
  // API Gateway joins a repeated header's values with commas.
  const keys = [...(call.key === undefined ? [] : [call.key]), ...(call.moreKeys ?? [])];
  if (keys.length > 0) headers["idempotency-key"] = keys.join(",");
  return {
    version: "2.0",
    routeKey: "POST /orders",
    rawPath: "/orders",
    rawQueryString: "",
    headers,
    requestContext: {
      accountId: "123456789012",
      apiId: "api",
      domainName: "api.example.com",
      domainPrefix: "api",
      http: {
        method: "POST",
        path: "/orders",
        protocol: "HTTP/1.1",
        sourceIp: "203.0.113.7",
        userAgent: "test",
      },
      requestId: crypto.randomUUID(),
      routeKey: "POST /orders",
      stage: "$default",
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
      authorizer: { lambda: { caller: call.caller ?? "" } },
    } as APIGatewayProxyEventV2["requestContext"],
    body: JSON.stringify(call.body ?? null),
    isBase64Encoded: false,
  };
}

/** The caller an API Gateway authorizer vouched for. */
const callerOf = (event: APIGatewayProxyEventV2) =>
  String(
    (event.requestContext as { authorizer?: { lambda?: { caller?: string } } }).authorizer?.lambda
      ?.caller,
  );

/**
 * The middy middleware on an API Gateway handler, with `@middy/http-error-handler` used before
 * it (outside: its `onError` runs last) or after it (inside: its `onError` runs first).
 */
function middyHttp(errorHandler: "before" | "after"): FrontEnd {
  return {
    name: `idempotencyMiddleware (middy, http-error-handler ${errorHandler})`,
    http: true,
    wraps: false,
    httpResults: true,
    reportsReplay: true,
    deadline: "work",
    build(setup) {
      const lease = setup.lease ?? DEFAULT_LEASE;
      const idempotent = idempotencyMiddleware<
        APIGatewayProxyEventV2,
        APIGatewayProxyStructuredResultV2
      >({
        adapter: setup.adapter,
        prefix: setup.prefix,
        key: headerKey(),
        scope: (event) => `orders:${callerOf(event)}`,
        fingerprint: setup.fingerprint ? (event) => event.body : false,
        wait: setup.wait,
        lease: { safety: SAFETY },
        onLeaseLost: setup.onLeaseLost,
        onStoreError: setup.onStoreError,
        retryAfter: setup.retryAfter,
      });
      const errors = httpErrorHandler({ logger: false });
      const handler = middy(
        async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => ({
          ...responseOf(await setup.work(JSON.parse(event.body ?? "null"))),
          headers: { "content-type": "application/json" },
        }),
      ).use(errorHandler === "before" ? [errors, idempotent] : [idempotent, errors]);
      return async (call) => {
        const response = await handler(httpEvent(call), lambdaContext(lease - SAFETY));
        const headers = response.headers ?? {};
        const header = (name: string) => {
          const found = Object.entries(headers).find(([key]) => key.toLowerCase() === name);
          return found === undefined ? undefined : String(found[1]);
        };
        return answered(response.statusCode ?? 200, header, String(response.body ?? ""));
      };
    },
  };
}

const honoMiddleware: FrontEnd = {
  name: "idempotency (Hono)",
  http: true,
  wraps: false,
  httpResults: true,
  reportsReplay: true,
  deadline: "none",
  build(setup) {
    const app = new Hono();
    app.onError((error, c) => c.text(error.message, 500));
    app.post(
      "/orders",
      idempotency({
        adapter: setup.adapter,
        prefix: setup.prefix,
        getScope: (c) => c.req.header("x-caller") ?? "",
        fingerprint: setup.fingerprint ? undefined : false,
        wait: setup.wait,
        lease: setup.lease,
        onLeaseLost: () => setup.onLeaseLost?.(),
        onStoreError: setup.onStoreError,
        retryAfter: setup.retryAfter,
      }),
      async (c) => {
        const { statusCode, body } = responseOf(await setup.work(await c.req.json()));
        return c.body(body, statusCode as 200, { "content-type": "application/json" });
      },
    );
    return async (call) => {
      const headers = new Headers({ "content-type": "application/json" });
      if (call.key !== undefined) headers.append("idempotency-key", call.key);
      for (const more of call.moreKeys ?? []) headers.append("idempotency-key", more);
      if (call.caller !== undefined) headers.set("x-caller", call.caller);
      const body = JSON.stringify(call.body ?? null);
      const res = await app.request("/orders", { method: "POST", headers, body });
      const text = await res.text();
      return answered(res.status, (name) => res.headers.get(name) ?? undefined, text);
    };
  },
};

/** Every front end, in the order the suite runs them. */
export const FRONT_ENDS: readonly FrontEnd[] = [
  plainFunction,
  lambdaRecords,
  middyHttp("before"),
  middyHttp("after"),
  honoMiddleware,
];
