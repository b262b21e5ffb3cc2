/**
 * Lease tokens: the secret that proves ownership of a lock. A fresh one is drawn for every
 * acquisition, so two acquisitions never share ownership, even in one process.
 *
 * @module
 */

/** Bytes of randomness in a token: 160 bits, as the Redis documentation suggests. */
const TOKEN_BYTES = 20;

/**
 * Draws a fresh token: `"el1."` followed by 160 random bits from `crypto.getRandomValues`, in
 * base64url. The prefix keeps it from parsing as JSON, so REST clients that JSON-parse replies
 * cannot turn it into a number or boolean.
 *
 * @example
 * ```ts
 * newToken(); // "el1.q8Jx0V2d6S9lH3r0yF0w6t1bX7o"
 * ```
 */
export function newToken(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(TOKEN_BYTES));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `el1.${btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")}`;
}
