/**
 * Idempotency keys: what a key may be (1 to 255 printable ASCII characters, as Stripe and the
 * IETF draft have it), and how one is read from an `Idempotency-Key` header value.
 *
 * @module
 */

import { IdempotencyKeyInvalidError } from "./errors.js";

/** The longest idempotency key accepted. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/**
 * Checks an idempotency key: 1 to 255 printable ASCII characters.
 *
 * @throws {IdempotencyKeyInvalidError} (400) for any other value, before any request.
 *
 * @example
 * ```ts
 * checkIdempotencyKey("order-42"); // "order-42"
 * checkIdempotencyKey("ключ"); // throws: not ASCII
 * ```
 */
export function checkIdempotencyKey(key: unknown): string {
  if (
    typeof key !== "string" ||
    key.length === 0 ||
    key.length > MAX_IDEMPOTENCY_KEY_LENGTH ||
    !PRINTABLE_ASCII.test(key)
  ) {
    throw new IdempotencyKeyInvalidError(
      `an idempotency key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters`,
    );
  }
  return key;
}

/**
 * The key in an `Idempotency-Key` header value: an RFC 8941 String (`"abc"`, with `\"` and `\\`
 * escapes) or, leniently, a bare value (`abc`). Undefined if it is not 1 to 255 printable ASCII
 * characters, a quoted string is malformed, or the value holds several fields (see
 * {@link isRepeatedField}).
 *
 * @example
 * ```ts
 * parseIdempotencyKey('"8e03978e-40d5"'); // "8e03978e-40d5"
 * parseIdempotencyKey("8e03978e-40d5"); // "8e03978e-40d5"
 * parseIdempotencyKey('"unterminated'); // undefined
 * parseIdempotencyKey("a, b"); // undefined: two fields
 * ```
 */
export function parseIdempotencyKey(value: string): string | undefined {
  if (isRepeatedField(value)) return undefined;
  const text = value.trim();
  const key = text.startsWith('"') ? parseSfString(text) : text;
  if (key === undefined || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    return undefined;
  }
  return PRINTABLE_ASCII.test(key) ? key : undefined;
}

/**
 * True when a header value holds more than one field: HTTP joins a repeated header's values
 * with commas (`a, b`; `"a", "b"`), and so do API Gateway and the Fetch `Headers`. A comma
 * inside a quoted string is part of it.
 */
export function isRepeatedField(value: string): boolean {
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const char = value[i];
    if (quoted && char === "\\") i++;
    else if (char === '"') quoted = !quoted;
    else if (char === "," && !quoted) return true;
  }
  return false;
}

/** An sf-string (RFC 8941 §4.2.5) that must span all of `text`; undefined if malformed. */
function parseSfString(text: string): string | undefined {
  let out = "";
  for (let i = 1; i < text.length; i++) {
    const char = text[i] as string;
    if (char === "\\") {
      const escaped = text[++i];
      if (escaped !== '"' && escaped !== "\\") return undefined;
      out += escaped;
    } else if (char === '"') {
      return i === text.length - 1 ? out : undefined; // nothing (no parameters) may follow
    } else if (char < " " || char > "~") {
      return undefined;
    } else {
      out += char;
    }
  }
  return undefined; // unterminated
}
