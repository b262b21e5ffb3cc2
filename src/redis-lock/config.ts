/**
 * Reading {@link RedisLock}'s configuration: a pip-services `ConfigParams` (a flat map with dotted
 * keys), a plain nested object, or a plain flat dotted object, with the seed's keys and defaults.
 * Every malformed value fails here with a {@link LockConfigError} naming its key.
 *
 * @module
 */

import { LockConfigError } from "../errors.js";
import { MIN_FENCE_RETENTION } from "../fence-retention.js";
import { MAX_DURATION } from "../validate.js";

/** The URI schemes a connection may use. */
export const SUPPORTED_SCHEMES = ["redis:", "rediss:", "http:", "https:", "memory:"] as const;

/** What the configuration says, checked and with defaults applied. */
export interface RedisLockSettings {
  connection: {
    discoveryKey?: string | undefined;
    host?: string | undefined;
    port?: number | undefined;
    uri?: URL | undefined;
    /** The key the uri was configured under, as spelled (for messages). */
    uriKey?: string | undefined;
  };
  credential: {
    storeKey?: string | undefined;
    username?: string | undefined;
    password?: string | undefined;
  };
  /** `options.retry_timeout`: the pause between attempts of `acquireLock`, in ms. */
  retryTimeout: number;
  /** `options.retries`: how often a failed request is retried. */
  retries: number;
  /** `options.db_num`: the Redis database, when configured. */
  dbNum?: number | undefined;
  /** `options.fence_retention`: how long fencing counters are kept, in ms, when configured. */
  fenceRetention?: number | undefined;
}

/** The seed's defaults. */
export const DEFAULT_RETRY_TIMEOUT = 100;
export const DEFAULT_RETRIES = 3;

/**
 * Reads the configuration. Accepts `ConfigParams.fromTuples("connection.host", "localhost")`,
 * `{ connection: { host: "localhost" } }` and `{ "connection.host": "localhost" }` alike, with
 * `connection.`/`connections.` and `credential.`/`credentials.` prefixes; connection keys may also
 * stand at the root, as in the seed's example (`"host", "localhost", "port", 6379`).
 *
 * @example
 * ```ts
 * readSettings({ connection: { uri: "redis://localhost:6379" }, options: { retry_timeout: 50 } });
 * ```
 */
export function readSettings(config: unknown): RedisLockSettings {
  const values = flatten(config);
  const read = (section: string[], name: string) => find(values, section, name);
  const connection = (name: string) => read(["connection", "connections", ""], name);
  const credential = (name: string) => read(["credential", "credentials"], name);
  const option = (name: string) => read(["options"], name);

  const retryTimeout = option("retry_timeout");
  const retries = option("retries");
  const dbNum = option("db_num");
  const fenceRetention = option("fence_retention");
  return {
    connection: {
      discoveryKey: text(connection("discovery_key")),
      host: text(connection("host")),
      port: integer(connection("port"), 1, 65_535),
      uri: uri(connection("uri")),
      uriKey: connection("uri")?.key,
    },
    credential: {
      storeKey: text(credential("store_key")),
      username: text(credential("username")),
      password: credential("password")?.value,
    },
    retryTimeout: integer(retryTimeout, 1, MAX_DURATION) ?? DEFAULT_RETRY_TIMEOUT,
    retries: integer(retries, 0, 10) ?? DEFAULT_RETRIES,
    dbNum: integer(dbNum, 0, 2 ** 31 - 1),
    fenceRetention: integer(fenceRetention, MIN_FENCE_RETENTION, MAX_DURATION),
  };
}

/** One configured value and the key it was found under (for messages). */
interface Found {
  key: string;
  value: string;
}

/** Flattens any object into lower-cased dotted keys with string values. */
function flatten(config: unknown, prefix = "", into = new Map<string, string>()) {
  if (config === null || config === undefined) return into;
  if (typeof config !== "object" || Array.isArray(config)) {
    throw new LockConfigError("config", "must be a ConfigParams or an object");
  }
  for (const [key, value] of Object.entries(config)) {
    const path = `${prefix}${key.toLowerCase()}`;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      flatten(value, `${path}.`, into);
    } else if (value !== null && value !== undefined) {
      into.set(path, String(value));
    }
  }
  return into;
}

/** The first of `section.name` (for each section; "" means the root) that is configured. */
function find(values: Map<string, string>, sections: string[], name: string): Found | undefined {
  for (const section of sections) {
    const key = section === "" ? name : `${section}.${name}`;
    const value = values.get(key);
    if (value !== undefined && value !== "") return { key, value };
  }
  return undefined;
}

function text(found: Found | undefined): string | undefined {
  return found?.value.trim() || undefined;
}

/** An integer within `[min, max]`, or a {@link LockConfigError} naming the key. */
function integer(found: Found | undefined, min: number, max: number): number | undefined {
  if (!found) return undefined;
  const value = Number(found.value.trim());
  if (/^-?\d+$/.test(found.value.trim()) && value >= min && value <= max) return value;
  throw new LockConfigError(
    found.key,
    `must be an integer from ${min} to ${max}, got ${JSON.stringify(found.value)}`,
  );
}

/**
 * A parsed URI with a supported scheme, a host (for network schemes) and no port 0, or a
 * {@link LockConfigError} naming the key. (`redis:///` and `redis://host:0` parse, but would
 * connect to a default host or port the configuration never named.)
 */
function uri(found: Found | undefined): URL | undefined {
  if (!found) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(found.value.trim());
  } catch {
    throw new LockConfigError(found.key, "is not a valid URI");
  }
  if (!(SUPPORTED_SCHEMES as readonly string[]).includes(parsed.protocol)) {
    throw new LockConfigError(
      found.key,
      `must use one of ${SUPPORTED_SCHEMES.join(" ")}, got ${parsed.protocol}`,
    );
  }
  if (parsed.hostname === "" && parsed.protocol !== "memory:") {
    throw new LockConfigError(found.key, `has no host (${parsed.protocol}//<host>:<port>)`);
  }
  if (parsed.port === "0") {
    throw new LockConfigError(found.key, "must have a port from 1 to 65535, got 0");
  }
  return parsed;
}
