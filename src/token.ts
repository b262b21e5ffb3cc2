/**
 * Lease tokens: the secret that proves ownership of a lock. A fresh one is drawn for every
 * acquisition, so two acquisitions never share ownership, even in one process.
 *
 * @module
 */

/** Bytes of randomness in a token: 216 bits, of which the first 72 also name it publicly. */
const TOKEN_BYTES = 27;

/** Characters after `"el1."` that form a token's public waiter id (72 of its bits). */
const ID_LENGTH = 12;

/** Random bytes drawn 64 tokens at a time (one `getRandomValues` call per 64 tokens); each byte is used once. */
const pool = new Uint8Array(TOKEN_BYTES * 64);
let used = pool.length;

/** The base64url alphabet's character codes: six bits per character, no padding. */
const BASE64URL = Array.from(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
  (char) => char.charCodeAt(0),
);

/**
 * The character codes of the token being drawn: `"el1."`, then 36 characters (27 bytes in
 * base64url). Reused, so each token allocates only its final string, not a chain of partial ones.
 */
const codes = Array.from(`el1.${"A".repeat((TOKEN_BYTES / 3) * 4)}`, (char) => char.charCodeAt(0));

/**
 * Draws a fresh token: `"el1."` followed by 216 random bits from `crypto.getRandomValues`, in
 * base64url. The prefix keeps it from parsing as JSON, so REST clients that JSON-parse replies
 * cannot turn it into a number or boolean.
 *
 * @example
 * ```ts
 * newToken(); // "el1.q8Jx0V2d6S9lH3r0yF0w6t1bX7oaZ9kLm2Qe"
 * ```
 */
export function newToken(): string {
  if (used === pool.length) {
    globalThis.crypto.getRandomValues(pool);
    used = 0;
  }
  for (let at = 4, end = used + TOKEN_BYTES; used < end; used += 3) {
    const bits =
      ((pool[used] as number) << 16) |
      ((pool[used + 1] as number) << 8) |
      (pool[used + 2] as number);
    codes[at++] = BASE64URL[bits >>> 18] as number;
    codes[at++] = BASE64URL[(bits >>> 12) & 63] as number;
    codes[at++] = BASE64URL[(bits >>> 6) & 63] as number;
    codes[at++] = BASE64URL[bits & 63] as number;
  }
  return String.fromCharCode.apply(null, codes);
}

/**
 * The public part of a token that names its waiter when the lock is handed over (the hand-off
 * script announces `string.sub(token, 5, 16)`). The other 144 bits stay secret, so the
 * announcement cannot be used to release or extend the lock.
 *
 * @example
 * ```ts
 * waiterId("el1.q8Jx0V2d6S9lH3r0yF0w6t1bX7oaZ9kLm2Qe"); // "q8Jx0V2d6S9l"
 * ```
 */
export function waiterId(token: string): string {
  return token.slice(4, 4 + ID_LENGTH);
}
