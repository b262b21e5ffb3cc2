/**
 * The response side of the Idempotency-Key middleware: capturing a response for storage (its
 * status, allow-listed headers and body bytes, the body teed off the stream with a size cap) and
 * rebuilding a stored one for replay, byte for byte.
 *
 * @module
 */

import type { StoredOutcome } from "edgelock";
import { concat } from "./idempotency-request.js";

/** Headers replayed by default: those that describe the stored body or the created resource. */
export const DEFAULT_REPLAY_HEADERS: readonly string[] = [
  "content-type",
  "content-encoding",
  "content-language",
  "content-disposition",
  "location",
  "etag",
  "last-modified",
  "cache-control",
];

/**
 * Headers never stored, whatever the options say: `set-cookie` would hand one user's session to
 * another; the others describe one transfer, not the resource.
 */
export const NEVER_REPLAYED: ReadonlySet<string> = new Set([
  "set-cookie",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
]);

/** Statuses whose responses have no body (a replay must not invent one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** What reading the stored branch of a body gave. */
export type Captured =
  | { kind: "whole"; bytes: Uint8Array<ArrayBuffer> }
  | { kind: "truncated" }
  | { kind: "failed"; error: unknown };

/**
 * Reads `stream` to its end, keeping at most `max` bytes. Over `max`, stops reading (cancels
 * this branch only: a tee's other branch keeps flowing to the client) and reports `truncated`.
 * A stream that errors reports `failed`. Never rejects.
 */
export async function captureBody(
  stream: ReadableStream<Uint8Array>,
  max: number,
): Promise<Captured> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { kind: "whole", bytes: concat(chunks, size) };
      const chunk = typeof value === "string" ? new TextEncoder().encode(value) : value;
      size += chunk.byteLength;
      if (size > max) {
        reader.cancel().catch(() => {});
        return { kind: "truncated" };
      }
      chunks.push(chunk);
    }
  } catch (error) {
    return { kind: "failed", error };
  }
}

/**
 * Passes `stream` through unchanged, calling `end` once when it is done: read to its end, errored
 * or cancelled by the reader. With `beforeClose`, the end of the stream is held back until that
 * promise settles, so a reader who saw the whole body also sees what was done after it.
 */
export function relay(
  stream: ReadableStream<Uint8Array>,
  hooks: { end?: () => void; beforeClose?: () => Promise<unknown> },
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    hooks.end?.();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        end();
        controller.error(error);
        return;
      }
      if (!chunk.done) {
        controller.enqueue(chunk.value);
        return;
      }
      end();
      await hooks.beforeClose?.().catch(() => {});
      controller.close();
    },
    async cancel(reason) {
      end();
      await reader.cancel(reason);
    },
  });
}

/** The allow-listed headers of `headers` as stored: JSON `[[name, value], ...]`. */
export function storedHeaders(headers: Headers, allowed: ReadonlySet<string>): string {
  const kept: [string, string][] = [];
  headers.forEach((value, name) => {
    if (allowed.has(name) && !NEVER_REPLAYED.has(name)) kept.push([name, value]);
  });
  return JSON.stringify(kept);
}

/** The outcome to store for a response with `status`, `headers` (stored form) and a captured body. */
export function outcomeOf(
  status: number,
  headers: string,
  body: Captured & { kind: "whole" | "truncated" },
  failed: boolean,
): StoredOutcome {
  const whole = body.kind === "whole";
  return {
    status,
    headers,
    body: whole ? toBase64(body.bytes) : "",
    encoding: "base64",
    truncated: !whole,
    failed,
  };
}

/** The parts of a stored outcome a replay is built from. */
export function replayParts(outcome: StoredOutcome): {
  status: number;
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer> | null;
} {
  const status = outcome.status;
  const body = NULL_BODY.has(status) ? null : fromBase64(outcome.body);
  return { status, headers: parseHeaders(outcome.headers), body };
}

function parseHeaders(text: string): [string, string][] {
  if (text === "") return [];
  try {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (pair): pair is [string, string] =>
        Array.isArray(pair) &&
        typeof pair[0] === "string" &&
        typeof pair[1] === "string" &&
        !NEVER_REPLAYED.has(pair[0].toLowerCase()),
    );
  } catch {
    return [];
  }
}

/** Base64 of `bytes`, built in slices so large bodies do not overflow the argument list. */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.byteLength; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** The bytes of base64 `text`. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
