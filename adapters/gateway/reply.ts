/**
 * Turns what ioredis returns for a `callBuffer` command (RESP2: Buffers, integers, nil, arrays)
 * into the JSON values of the Upstash REST protocol.
 *
 * - Integers stay JSON numbers, nil becomes `null`, arrays are converted element by element.
 * - Strings (bulk and status replies, at any depth) become base64 of their raw bytes when the
 *   request asked for `Upstash-Encoding: base64`, else UTF-8 text (invalid bytes become U+FFFD).
 *   Only a top-level `OK` stays plain in base64 mode, as Upstash does; the client keeps it as is.
 * - An error nested in an array (a Lua script can return one) becomes its message, as a string.
 * - Never a JSON boolean or object: the client turns those into `null` or a thrown TypeError.
 *
 * @module
 */

/** A reply as JSON: what `{"result": ...}` may hold. */
export type ReplyValue = null | number | string | ReplyValue[];

/** How strings in a reply are written: per request, from the `Upstash-Encoding` header. */
export type ReplyEncoding = "base64" | "utf8";

/**
 * The reply encoding a request asks for: `"base64"` when its `Upstash-Encoding` header is
 * `base64` (any case), else `"utf8"`.
 *
 * @example
 * ```ts
 * replyEncodingOf(new Headers({ "upstash-encoding": "BASE64" })); // "base64"
 * ```
 */
export function replyEncodingOf(headers: Headers): ReplyEncoding {
  return headers.get("upstash-encoding")?.trim().toLowerCase() === "base64" ? "base64" : "utf8";
}

const OK = Buffer.from("OK");

function encodeBytes(bytes: Buffer, encoding: ReplyEncoding, topLevel: boolean): string {
  if (encoding === "utf8") return bytes.toString("utf8");
  if (topLevel && bytes.equals(OK)) return "OK";
  return bytes.toString("base64");
}

function encode(value: unknown, encoding: ReplyEncoding, topLevel: boolean): ReplyValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  if (Buffer.isBuffer(value)) return encodeBytes(value, encoding, topLevel);
  if (Array.isArray(value)) return value.map((item) => encode(item, encoding, false));
  if (value instanceof Error) return encodeBytes(Buffer.from(value.message), encoding, topLevel);
  return encodeBytes(Buffer.from(String(value)), encoding, topLevel);
}

/**
 * Converts one ioredis reply into its JSON value. Each command's reply, including each item of a
 * pipeline or transaction, counts as top level.
 *
 * @example
 * ```ts
 * encodeReply([Buffer.from("a"), 1, null, [Buffer.from("OK")]], "base64");
 * // ["YQ==", 1, null, ["T0s="]]
 * encodeReply(Buffer.from("OK"), "base64"); // "OK"
 * ```
 */
export function encodeReply(reply: unknown, encoding: ReplyEncoding): ReplyValue {
  return encode(reply, encoding, true);
}
