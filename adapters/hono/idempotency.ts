/**
 * Idempotency-Key middleware for Hono: a request retried with the same `Idempotency-Key` runs
 * its handler once; the retries get the first response back, byte for byte, marked
 * `Idempotent-Replayed: true`. Web-standard APIs only: it runs on Workers, Vercel Edge, Deno, Bun
 * and Node.
 *
 * Every state change is one Lua script on one Redis key (see `IdempotencyStore`), so it is atomic
 * over TCP (ioredis), HTTP (Upstash REST) and in memory alike.
 *
 * @module
 */

import {
  type Begun,
  canonicalJson,
  IdempotencyFlow,
  isRepeatedField,
  type LockError,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  parseIdempotencyKey,
  type StoredOutcome,
  sha256Hex,
} from "edgelock";
import type { Context, Env, MiddlewareHandler } from "hono";
import type { ContentfulStatusCode, StatusCode } from "hono/utils/http-status";
import { checkOptions, type IdempotencyMiddlewareOptions } from "./idempotency-options.js";
import { type IdempotencyProblem, idempotencyProblem, problemOf } from "./idempotency-problem.js";
import { requestFingerprint } from "./idempotency-request.js";
import {
  captureBody,
  outcomeOf,
  relay,
  replayParts,
  storedHeaders,
} from "./idempotency-response.js";
import { handedToRuntime } from "./respond.js";

export type { StoreResponsesPolicy } from "edgelock";
export type { IdempotencyMiddlewareOptions, OnThrowPolicy } from "./idempotency-options.js";

/** What the middleware tells the handler (and later middleware): `c.var.idempotency`. */
export interface IdempotencyInfo {
  /** The request's idempotency key (unquoted); undefined when it came without one. */
  key: string | undefined;
  /** True when the response is a replay of the first request's (the handler did not run). */
  replayed: boolean;
  /**
   * The fencing token of this execution, increasing with every claim of the key: pass it to
   * what you write so a stale run (whose lease lapsed) can be refused downstream.
   */
  fence: number | undefined;
}

/** The context variables {@link idempotency} sets: `c.get("idempotency")` / `c.var.idempotency`. */
export type IdempotencyVariables = {
  idempotency: IdempotencyInfo;
};

/** The Hono environment {@link idempotency}'s handler adds: `{ Variables: IdempotencyVariables }`. */
export type IdempotencyEnv = {
  Variables: IdempotencyVariables;
};

/**
 * Idempotency-Key middleware (the IETF httpapi draft, with Stripe's replay marker).
 *
 * - Requests with another method, or for which `skip` says so, pass through. Without a key they
 *   run as usual (or get 400 if `required`); a malformed key gets 400.
 * - The key is scoped by `getScope(c)`, method and path, and the request is fingerprinted (413
 *   if the body is too large to read). The first request claims the key with a short lease,
 *   renewed while its handler runs; `c.var.idempotency` holds the key and a fencing token.
 * - A duplicate while the first still runs gets 409 with `Retry-After` (or waits up to `wait`
 *   ms for its response). The same key with a different fingerprint gets 422, checked first.
 *   Neither ever disturbs the first request's claim.
 * - When the handler is done, its response is stored per `storeResponses` (default: anything but
 *   5xx and transient 4xx), with its status, allow-listed headers and body; otherwise, or if the
 *   handler threw (per `onThrow`), the key is freed so a retry runs again. The handler's error
 *   still reaches `app.onError` unchanged. A 504 from `hono/timeout` is not an outcome: the
 *   handler may still be running, so the key stays claimed until its lease lapses.
 * - Retries get the stored response, byte for byte, with `Idempotent-Replayed: true`; the
 *   handler does not run. A body over `maxStoredBodyBytes` streams to the client but is not
 *   replayable (409 `idempotency_outcome_unknown`); event streams are never stored.
 * - The body is stored from a tee of the stream, after the response: in the runtime's
 *   `waitUntil` where there is one, otherwise before the body's end reaches the client.
 * - If the store cannot be reached: 503 with `Retry-After` (or no idempotency, with `failOpen`).
 *
 * Not exactly-once: if a lease lapses while its handler still runs (a freeze, a crash in the
 * middle), a retry runs the handler again. Pass `c.var.idempotency.key` downstream where that
 * matters. Place it after authentication (for `getScope`) and `bodyLimit`, and any `timeout`
 * inside it.
 *
 * @see {@link https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/} the IETF draft
 * @see {@link https://docs.stripe.com/api/idempotent_requests} Stripe's idempotent requests
 * @see {@link IdempotencyStore} the records and their scripts
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { idempotency, type IdempotencyVariables } from "edgelock/hono";
 * import { upstashAdapter } from "edgelock/upstash";
 *
 * const app = new Hono<{ Variables: IdempotencyVariables & { userId: string } }>();
 *
 * app.post(
 *   "/payments",
 *   idempotency({ adapter: upstashAdapter(redis), getScope: (c) => c.var.userId }),
 *   async (c) => {
 *     const payment = await payments.create(await c.req.json(), {
 *       idempotencyKey: c.var.idempotency.key,
 *     });
 *     return c.json(payment, 201, { Location: `/payments/${payment.id}` });
 *   },
 * );
 * ```
 */
export const idempotency = <E extends Env = Env>(
  options: IdempotencyMiddlewareOptions<E>,
): MiddlewareHandler<E & IdempotencyEnv> => {
  const settings = checkOptions(options);
  const { lease, retention } = settings;
  const flow = new IdempotencyFlow({
    adapter: options.adapter,
    prefix: options.prefix,
    retention,
    onStoreError: options.onStoreError,
    retryAfter: settings.retryAfter,
  });
  if (!options.getScope && !options.allowGlobalKeys) {
    console.warn(
      "edgelock idempotency(): no getScope, so users share keys; pass getScope or allowGlobalKeys",
    );
  }

  return async function idempotencyMiddleware(c, next) {
    // The handler's context is the app's plus IdempotencyVariables; the hooks take the app's.
    const context = c as unknown as Context<E>;
    if (!settings.methods.has(c.req.method) || (await options.skip?.(context))) return next();
    const refuse = (problem: IdempotencyProblem) => settings.onProblem(context, problem);

    const header = c.req.header(settings.header);
    if (header === undefined) {
      if (settings.required) {
        return refuse(
          idempotencyProblem(
            400,
            "idempotency_key_missing",
            `This request needs an ${settings.header} header.`,
          ),
        );
      }
      c.set("idempotency", { key: undefined, replayed: false, fence: undefined });
      return next();
    }
    if (isRepeatedField(header)) {
      const detail = `This request carries several ${settings.header} headers: send one.`;
      return refuse(idempotencyProblem(400, "idempotency_key_invalid", detail));
    }
    const key = parseIdempotencyKey(header);
    if (key === undefined || key.length < settings.minLength || !settings.validate(key)) {
      const detail =
        `The ${settings.header} header must be ${settings.minLength} to ` +
        `${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters, bare or as a quoted string.`;
      return refuse(idempotencyProblem(400, "idempotency_key_invalid", detail));
    }

    const scope = options.getScope ? await options.getScope(context) : undefined;
    const fingerprint = await fingerprintOf(context);
    if (fingerprint === undefined) {
      const detail = `The body is over ${settings.maxBodyBytes} bytes, too large to fingerprint.`;
      return refuse(idempotencyProblem(413, "idempotency_body_too_large", detail));
    }
    const parts = [scope ?? "", c.req.method, c.req.path, key];
    const leaseLost = () => options.onLeaseLost?.(context, { key });
    let begun: Begun;
    try {
      begun = await flow.begin({
        parts,
        key,
        fingerprint,
        lease: () => lease,
        renew: true,
        wait: settings.wait,
        signal: c.req.raw.signal,
        onLeaseLost: leaseLost,
      });
    } catch (error) {
      const code = (error as Partial<LockError>).code;
      if (code === "LOCK_UNAVAILABLE" && settings.failOpen) {
        c.set("idempotency", { key, replayed: false, fence: undefined });
        return next();
      }
      const problem = problemOf(error, settings.header);
      if (problem === undefined) throw error;
      return refuse(problem);
    }

    if (begun.kind === "replay") {
      const { outcome } = begun;
      c.set("idempotency", { key, replayed: true, fence: undefined });
      options.onReplay?.(context, { key, status: outcome.status });
      const { status, headers, body } = replayParts(outcome);
      const replayed: Record<string, string[]> = {};
      for (const [name, value] of headers) replayed[name] = [...(replayed[name] ?? []), value];
      replayed[settings.replayedHeader] = ["true"];
      replayed[settings.header] = [header];
      return body === null
        ? c.body(null, status as StatusCode, replayed)
        : c.body(body, status as ContentfulStatusCode, replayed);
    }

    // Claimed: run the handler under a renewed lease, then store or free the outcome. If the
    // outcome cannot be stored (a body too large for the transport, say), the claim stores
    // "ran, not replayable" instead, so a retry is not run again.
    const { claim } = begun;
    const { fence } = claim;
    c.set("idempotency", { key, replayed: false, fence });
    const release = () => claim.release();
    const finish = (outcome: StoredOutcome, keep?: number) =>
      claim.finish(outcome, keep).then(noop);
    /** Lets `task` finish after the response where the runtime allows, or awaits it. */
    const settle = async (task: Promise<void>) => {
      if (!handedToRuntime(c, task)) await task;
    };

    try {
      options.onExecute?.(context, { key, fence });
      await next();
    } catch (error) {
      // Hono's compose hands an Error to app.onError (it shows up as c.error below); anything
      // else is rethrown through next(). Either way the error goes on unchanged.
      if (settings.onThrow === "hold") await settle(finish(unknownOutcome(500), lease));
      else await settle(release());
      throw error;
    }

    if (isGatewayTimeout(c.error)) {
      // hono/timeout answered 504 but the handler may still be running: keep the key claimed
      // (no release, no record) until the lease lapses.
      claim.keep();
      return;
    }
    const res = c.res;
    if (c.error !== undefined) {
      if (settings.onThrow === "release") return settle(release());
      if (settings.onThrow === "hold") return settle(finish(unknownOutcome(res.status), lease));
    } else if (!settings.stores(res.status)) {
      c.res = withHeader(res, res.body, settings.header, header);
      return settle(release());
    }

    if (res.body !== null && settings.bypassed(res.headers.get("content-type"))) {
      // An event stream: hold the key while it flows, then free it (never stored).
      let ended = noop;
      const streamed = new Promise<void>((resolve) => {
        ended = resolve;
      });
      const task = streamed.then(release);
      const handed = handedToRuntime(c, task);
      const body = relay(res.body, { end: ended, ...(handed ? {} : { beforeClose: () => task }) });
      c.res = withHeader(res, body, settings.header, header);
      return;
    }

    // Store it: the body is teed, one branch to the client and one read (up to the cap) here.
    const failed = c.error !== undefined;
    const headers = storedHeaders(res.headers, settings.replayHeaders);
    if (res.body === null) {
      c.res = withHeader(res, null, settings.header, header);
      const empty = { kind: "whole" as const, bytes: new Uint8Array(0) };
      return settle(finish(outcomeOf(res.status, headers, empty, failed)));
    }
    const [toClient, toStore] = res.body.tee();
    const task = captureBody(toStore, settings.maxStoredBodyBytes).then((body) =>
      body.kind === "failed" ? release() : finish(outcomeOf(res.status, headers, body, failed)),
    );
    const handed = handedToRuntime(c, task);
    const body = handed ? toClient : relay(toClient, { beforeClose: () => task });
    c.res = withHeader(res, body, settings.header, header);
  };

  /** The request's fingerprint: "" when not checked, undefined when the body is too large. */
  async function fingerprintOf(c: Context<E>): Promise<string | undefined> {
    const custom = options.fingerprint;
    if (custom === false) return "";
    if (custom === undefined) {
      return requestFingerprint(c, settings.fingerprintHeaders, settings.maxBodyBytes);
    }
    const value = await custom(c);
    return sha256Hex(typeof value === "string" ? value : canonicalJson(value));
  }
};

/** A record that says "ran, outcome unknown": it replays as 409 `idempotency_outcome_unknown`. */
function unknownOutcome(status: number): StoredOutcome {
  return { status, headers: "", body: "", encoding: "base64", truncated: true, failed: true };
}

/**
 * True for the `HTTPException(504)` that `hono/timeout` throws (compared by shape: it may come
 * from another copy of Hono).
 */
function isGatewayTimeout(error: unknown): boolean {
  const candidate = error as { status?: unknown; getResponse?: unknown } | undefined;
  return (
    error instanceof Error &&
    candidate?.status === 504 &&
    typeof candidate.getResponse === "function"
  );
}

/** `res` with `body` (the original's is spent) and the key echoed in `name`. */
function withHeader(
  res: Response,
  body: ReadableStream<Uint8Array> | null,
  name: string,
  value: string,
): Response {
  const headers = new Headers(res.headers);
  headers.set(name, value);
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
}

function noop(): void {}
