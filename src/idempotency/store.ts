/**
 * The idempotency store: one hash per record, and every state change one Lua script on that one
 * key (so it is atomic, Cluster-safe and a single HTTP request over REST).
 *
 * A record is claimed by a request (state P, with a short renewable lease owned by a token), then
 * finished with its outcome (state C, or F for a stored failure) and kept for the retention
 * period, or abandoned so a retry runs afresh. The lease and the retention are separate, so a
 * crashed run frees the key after its lease, not after a day.
 *
 * @module
 */

import { raced } from "../abortable.js";
import type { LockAdapter, LockScript } from "../adapter.js";
import { InvalidArgumentError, LockUnavailableError } from "../errors.js";
import { retried } from "../retry.js";
import { newToken } from "../token.js";
import { checkWellFormed, describeValue } from "../validate.js";
import { sha256Hex } from "./digest.js";
import { type PART_BYTES, splitParts } from "./parts.js";
import { abandonScript } from "./scripts/abandon.js";
import { appendScript } from "./scripts/append.js";
import { beginScript } from "./scripts/begin.js";
import { finishScript } from "./scripts/finish.js";
import { renewScript } from "./scripts/renew.js";

/** A finished request's outcome, as stored for replay. */
export interface StoredOutcome {
  /** The HTTP status (0 for a function's result). */
  status: number;
  /** The replayed headers, as JSON text ("" when none). */
  headers: string;
  /** The body or serialized result. */
  body: string;
  /** How `body` is encoded: `"base64"`, `"json"`, `"undefined"`, ... (the writer's choice). */
  encoding: string;
  /** True when the body was too large to keep: the outcome cannot be replayed. */
  truncated: boolean;
  /** True for a stored failure (state F) rather than a completion. */
  failed: boolean;
}

/** What claiming a record found. */
export type BeginOutcome =
  | { kind: "claimed"; token: string; fence: number }
  | { kind: "reused" }
  | { kind: "replay"; outcome: StoredOutcome }
  /**
   * Claimed by another request: its lease ends in `retryAfter` ms (the latest the record can
   * change), and it has been running for `running` ms.
   */
  | { kind: "in-progress"; retryAfter: number; running: number };

/** Options of {@link IdempotencyStore}. */
export interface IdempotencyStoreOptions {
  /**
   * Namespace of the record keys.
   * @default "idem"
   */
  prefix?: string;
  /**
   * Retries of a failed request (every script is idempotent for its token).
   * @default 2
   */
  retries?: number;
}

/**
 * The records of idempotent executions over a transport.
 *
 * @example
 * ```ts
 * const store = new IdempotencyStore(memoryAdapter());
 * const record = await store.recordKey(["tenant-1", "POST", "/orders", key]);
 * const begun = await store.begin(record, fingerprint, 30_000);
 * ```
 */
export class IdempotencyStore {
  readonly #adapter: LockAdapter;
  readonly #prefix: string;
  readonly #retries: number;

  constructor(adapter: LockAdapter, options: IdempotencyStoreOptions = {}) {
    if (typeof adapter?.evalScript !== "function") {
      throw new InvalidArgumentError("adapter", "adapter must be a LockAdapter (with evalScript)");
    }
    this.#adapter = adapter;
    this.#prefix = checkPrefix(options.prefix ?? "idem");
    this.#retries = options.retries ?? 2;
  }

  /**
   * The record key for a scoped idempotency key: the prefix and a SHA-256 of the parts, so
   * client-chosen bytes never reach key names and cannot collide across scopes.
   *
   * @param parts the scope first, then what else tells requests apart, the idempotency key last.
   * @throws {InvalidArgumentError} for a part with a lone surrogate (named `scope` if it is the
   *   first part, `key` otherwise), which could not be told from its U+FFFD twin.
   */
  async recordKey(parts: readonly string[]): Promise<string> {
    for (const [index, part] of parts.entries()) {
      checkWellFormed(part, index === 0 ? "scope" : "key");
    }
    return `${this.#prefix}:v1:${await sha256Hex(parts.map(encodeURIComponent).join("|"))}`;
  }

  /**
   * Claims `record` for a new token, or reports what became of the request that claimed it.
   * Every method takes a `signal`: a deadline, at which the request is given up and the call
   * fails with {@link LockUnavailableError} (its cause the signal's reason).
   */
  async begin(
    record: string,
    fingerprint: string,
    lease: number,
    token: string = newToken(),
    signal?: AbortSignal,
  ): Promise<BeginOutcome> {
    const args = [token, fingerprint, String(lease)];
    const reply = await this.#run(beginScript, record, args, signal);
    const [kind, ...rest] = Array.isArray(reply) ? reply : [];
    if (kind === 1) return { kind: "claimed", token, fence: Number(rest[0]) };
    if (kind === 2) return { kind: "reused" };
    if (kind === 4) {
      const [pttl, running] = rest.map((value) => Math.max(0, Number(value ?? 0) || 0));
      return { kind: "in-progress", retryAfter: pttl ?? 0, running: running ?? 0 };
    }
    if (kind === 3) {
      const [status, headers, body, encoding, truncated, state] = rest.map((v) => String(v ?? ""));
      return {
        kind: "replay",
        outcome: {
          status: Number(status),
          headers: headers ?? "",
          body: body ?? "",
          encoding: encoding ?? "",
          truncated: truncated === "1",
          failed: state === "F",
        },
      };
    }
    throw new LockUnavailableError(
      beginScript.name,
      undefined,
      new TypeError("unexpected reply from the idempotency script"),
    );
  }

  /** Renews the lease of `token`'s record in progress; false if the lease was lost. */
  async renew(record: string, token: string, lease: number): Promise<boolean> {
    return (await this.#run(renewScript, record, [token, String(lease)])) === 1;
  }

  /**
   * Stores the outcome and keeps the record for `retention` ms; false if the lease was lost, in
   * which case nothing is overwritten. A body larger than {@link PART_BYTES} goes in parts, one
   * request each, joined by the last.
   */
  async finish(
    record: string,
    token: string,
    outcome: StoredOutcome,
    retention: number,
    signal?: AbortSignal,
  ): Promise<boolean> {
    // A large body goes in parts first, so no request is larger than a transport carries.
    const parts = splitParts(outcome.body);
    const last = parts.pop() ?? "";
    for (const [index, part] of parts.entries()) {
      const args = [token, String(index + 1), part];
      if ((await this.#run(appendScript, record, args, signal)) !== 1) return false;
    }
    const args = [
      token,
      outcome.failed ? "F" : "C",
      String(outcome.status),
      outcome.headers,
      last,
      outcome.encoding,
      outcome.truncated ? "1" : "0",
      String(retention),
      String(parts.length),
    ];
    return (await this.#run(finishScript, record, args, signal)) === 1;
  }

  /** Deletes `token`'s record in progress so a retry runs afresh; false if it was not its own. */
  async abandon(record: string, token: string, signal?: AbortSignal): Promise<boolean> {
    return (await this.#run(abandonScript, record, [token], signal)) === 1;
  }

  /**
   * Runs a script on the record, retrying failures, until `signal` aborts; the token never shows
   * in the error.
   */
  async #run(
    script: LockScript,
    record: string,
    args: string[],
    signal?: AbortSignal,
  ): Promise<unknown> {
    const request = () => this.#adapter.evalScript(script, [record], args);
    const bounded = signal ? () => raced(request(), signal) : request;
    try {
      return await retried(this.#retries, bounded, undefined, signal);
    } catch (error) {
      throw new LockUnavailableError(script.name, undefined, error, args[0]);
    }
  }
}

/** Checks the record keys' namespace: a non-empty, well-formed string. */
function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== "string" || prefix.length === 0) {
    throw new InvalidArgumentError(
      "prefix",
      `prefix must be a non-empty string, got ${describeValue(prefix)}`,
    );
  }
  return checkWellFormed(prefix, "prefix");
}
