/**
 * How {@link RedisLock} reaches Redis: a transport per URI scheme, which turns a resolved target
 * into a connected adapter. The transports live with their adapters (`edgelock/ioredis`,
 * `edgelock/upstash`, `edgelock/memory`) and are loaded on first use, so the package root pulls
 * no Node-only code into edge bundles.
 *
 * @module
 */

import type { LockAdapter } from "../adapter.js";
import { LockConfigError } from "../errors.js";

/** Where to connect, once configuration, discovery and credentials are resolved. */
export interface RedisTarget {
  /** `redis:`, `rediss:` (TLS), `http:`, `https:` or `memory:`. */
  readonly protocol: string;
  readonly host: string;
  /** The port, or `undefined` for the scheme's default. */
  readonly port: number | undefined;
  /** The URL path (REST endpoints may have a base path); "" when none. */
  readonly path: string;
  readonly username: string | undefined;
  /** The Redis password, or the REST token. */
  readonly password: string | undefined;
  /** The Redis database number. */
  readonly db: number;
}

/** An open connection: the adapter to lock with, a health check, and how to close it. */
export interface LockConnection {
  readonly adapter: LockAdapter;
  /** Checks that the server answers (PING); rejects otherwise. */
  ping(): Promise<void>;
  /** Closes what the transport created; never the caller's own clients. */
  close(): Promise<void>;
}

/**
 * A way to connect for some URI schemes.
 *
 * @example
 * ```ts
 * import { RedisLock } from "edgelock";
 * import { upstashTransport } from "edgelock/upstash";
 *
 * // In a bundle (Workers, bundled Lambda), name the transports you use:
 * const lock = new RedisLock({ transports: [upstashTransport] });
 * ```
 */
export interface LockTransport {
  /** The URI schemes it serves, with the colon: `["redis:", "rediss:"]`. */
  readonly protocols: readonly string[];
  connect(target: RedisTarget): Promise<LockConnection>;
}

/** The module (subpath of this package) that holds each scheme's transport, and its export. */
const BUILT_IN: Record<string, [module: string, name: string]> = {
  "redis:": ["edgelock/ioredis", "ioredisTransport"],
  "rediss:": ["edgelock/ioredis", "ioredisTransport"],
  "http:": ["edgelock/upstash", "upstashTransport"],
  "https:": ["edgelock/upstash", "upstashTransport"],
  "memory:": ["edgelock/memory", "memoryTransport"],
};

/**
 * The transport for `protocol`: one of `given` if any serves it, else the built-in one, imported
 * on demand. The module name is computed, so bundlers leave it out; bundled apps pass
 * `transports` instead.
 */
export async function transportFor(
  protocol: string,
  given: readonly LockTransport[],
): Promise<LockTransport> {
  const chosen = given.find((transport) => transport.protocols.includes(protocol));
  if (chosen) return chosen;
  const [module, name] = BUILT_IN[protocol] ?? [];
  if (!module || !name) {
    throw new LockConfigError("connection.uri", `no transport for ${protocol}`);
  }
  const loaded: Record<string, unknown> = await import(/* @vite-ignore */ module);
  return loaded[name] as LockTransport;
}
