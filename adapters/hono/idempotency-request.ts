/**
 * The request side of the Idempotency-Key middleware: fingerprinting the request (method, path,
 * sorted query, content type, chosen headers and the raw body bytes, hashed with Web Crypto).
 *
 * @module
 */

import { sha256Hex } from "edgelock";
import type { Context } from "hono";

/**
 * The default fingerprint: SHA-256 (hex) of the method, path, sorted query, content type, the
 * values of `headers`, and the raw body bytes. Undefined if the body is over `maxBodyBytes`
 * (by its `Content-Length`, or as read). The body stays readable by the handler: Hono caches it,
 * and a body read here from the stream is put back on `c.req.raw`.
 */
export async function requestFingerprint(
  c: Context,
  headers: readonly string[],
  maxBodyBytes: number,
): Promise<string | undefined> {
  const body = await readBody(c, maxBodyBytes);
  if (body === undefined) return undefined;
  const pairs: string[] = [];
  new URL(c.req.url).searchParams.forEach((value, name) => {
    pairs.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  });
  const query = pairs.sort().join("&");
  const lines = [c.req.method, c.req.path, query, c.req.header("content-type") ?? ""];
  for (const name of headers) lines.push(`${name}:${c.req.header(name) ?? ""}`);
  const head = new TextEncoder().encode(`${lines.join("\n")}\n`);
  const bytes = new Uint8Array(head.byteLength + body.byteLength);
  bytes.set(head);
  bytes.set(body, head.byteLength);
  return sha256Hex(bytes);
}

/**
 * The request body's bytes, or undefined if there are more than `max`. A declared
 * `Content-Length` over `max` is refused without reading; otherwise the body is read only up to
 * `max + 1` bytes. `c.req.raw` is then replaced by a copy with the same body, so the handler can
 * still read it any way it likes.
 */
async function readBody(c: Context, max: number): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const raw = c.req.raw;
  const declared = raw.headers.get("content-length");
  if (declared !== null && !raw.headers.has("transfer-encoding") && Number(declared) > max) {
    return undefined;
  }
  if (raw.body === null) return new Uint8Array(0);
  let bytes: Uint8Array<ArrayBuffer>;
  if (raw.bodyUsed || Object.keys(c.req.bodyCache).length > 0) {
    // An earlier middleware read it through c.req, which cached it.
    bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.byteLength > max) return undefined;
  } else {
    const reader = raw.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > max) {
        await reader.cancel().catch(() => {});
        return undefined;
      }
      chunks.push(value);
    }
    bytes = concat(chunks, size);
  }
  c.req.raw = new Request(raw, { body: bytes });
  return bytes;
}

/** The chunks joined into one array of `size` bytes. */
export function concat(chunks: readonly Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
