/**
 * Token authentication: `Authorization: Bearer <token>` or `?_token=<token>`, against several
 * configured tokens, each read-write or read-only.
 *
 * The comparison takes the same time whichever token matches and however much of it matches:
 * both sides are hashed with SHA-256 and every configured digest is compared in full, with no
 * early exit on the first difference, the first match or a length mismatch.
 *
 * @module
 */

import type { Access } from "./commands";

/** A token the gateway accepts: a string (read-write), or an object saying whether it is read-only. */
export type GatewayToken = string | { token: string; readOnly?: boolean };

interface Credential {
  digest: Uint8Array;
  access: Access;
}

/** Checks the token of a request; resolves its access, or `undefined` when it has none. */
export type Authenticator = (request: Request) => Promise<Access | undefined>;

const encoder = new TextEncoder();

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** Compares two SHA-256 digests in constant time. */
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  let difference = 0;
  for (let i = 0; i < 32; i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return difference === 0;
}

/** The token a request presents: the Bearer header first, else the `_token` query parameter. */
export function presentedToken(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  if (header !== null) {
    const match = /^bearer\s+(.+)$/i.exec(header.trim());
    return match?.[1]?.trim();
  }
  return new URL(request.url).searchParams.get("_token") ?? undefined;
}

/** Validates the configured tokens; the messages never show a token. */
function normalize(tokens: readonly GatewayToken[]): { token: string; access: Access }[] {
  if (!Array.isArray(tokens) || tokens.length === 0) {
    throw new TypeError("tokens must be a non-empty array of tokens");
  }
  const entries = tokens.map((entry, index) => {
    const token = typeof entry === "string" ? entry : entry?.token;
    if (typeof token !== "string" || token.length === 0 || token.trim() !== token) {
      throw new TypeError(
        `tokens[${index}] must be a non-empty string without surrounding whitespace`,
      );
    }
    const readOnly = typeof entry === "object" && entry.readOnly === true;
    return { token, access: readOnly ? ("read-only" as const) : ("read-write" as const) };
  });
  for (const [index, entry] of entries.entries()) {
    const clash = entries.findIndex((other) => other.token === entry.token);
    if (entries[clash]?.access !== entry.access) {
      throw new TypeError(
        `tokens[${clash}] and tokens[${index}] are the same token, once read-only and once not`,
      );
    }
  }
  return entries;
}

/**
 * Creates the token check for `tokens`. Throws a TypeError for an empty list, an empty token, or
 * a token listed both read-only and read-write.
 *
 * @example
 * ```ts
 * const authenticate = createAuthenticator(["s3cret", { token: "r3ad", readOnly: true }]);
 * await authenticate(new Request("http://gw/", { headers: { authorization: "Bearer r3ad" } }));
 * // "read-only"
 * ```
 */
export function createAuthenticator(tokens: readonly GatewayToken[]): Authenticator {
  const entries = normalize(tokens);
  const credentials: Promise<Credential[]> = Promise.all(
    entries.map(async ({ token, access }) => ({ digest: await sha256(token), access })),
  );
  return async (request) => {
    const presented = await sha256(presentedToken(request) ?? "");
    let readWrite = false;
    let readOnly = false;
    for (const credential of await credentials) {
      const match = sameDigest(presented, credential.digest);
      readWrite = (match && credential.access === "read-write") || readWrite;
      readOnly = (match && credential.access === "read-only") || readOnly;
    }
    if (readWrite) return "read-write";
    return readOnly ? "read-only" : undefined;
  };
}
