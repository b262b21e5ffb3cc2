/**
 * Where {@link RedisLock} connects: the configured connection and credentials, completed by the
 * discovery service and the credential store when `discovery_key` / `store_key` are set.
 *
 * @module
 */

import { LockConfigError } from "../errors.js";
import { type RedisLockSettings, readSettings } from "./config.js";
import { ask, findReference, param } from "./references.js";
import type { RedisTarget } from "./transport.js";

/** The Redis port when none is configured. */
const DEFAULT_PORT = 6379;

/**
 * Resolves the target of `settings`, asking the referenced discovery service and credential
 * store (pip-services 3 or 4) for what the configuration leaves to them.
 */
export async function resolveTarget(
  settings: RedisLockSettings,
  references: unknown,
  context: unknown,
): Promise<RedisTarget> {
  const connection = await discover(settings, references, context);
  const credential = await lookUp(settings, references, context);
  const { uri } = connection;
  const uriKey = connection.uriKey ?? "connection.uri";
  const target: RedisTarget = uri
    ? {
        protocol: uri.protocol,
        host: uri.hostname,
        port: uri.port === "" ? undefined : Number(uri.port),
        path: uri.pathname === "/" ? "" : uri.pathname,
        username: credential.username ?? decoded(uri.username, uriKey),
        password: credential.password ?? decoded(uri.password, uriKey),
        db: settings.dbNum ?? databaseIn(uri, uriKey),
      }
    : {
        protocol: "redis:",
        host: connectionHost(connection.host),
        port: connection.port ?? DEFAULT_PORT,
        path: "",
        username: credential.username,
        password: credential.password,
        db: settings.dbNum ?? 0,
      };
  checkDatabase(target.protocol, target.db);
  return target;
}

/**
 * Rejects a database number the transport cannot honour: REST endpoints serve one database.
 */
export function checkDatabase(protocol: string | undefined, db: number | undefined): void {
  if ((protocol === "http:" || protocol === "https:") && db !== undefined && db !== 0) {
    throw new LockConfigError(
      "options.db_num",
      `must be 0 over REST (HTTP) connections, which serve a single database; got ${db}`,
    );
  }
}

/**
 * The configured connection, or, when `discovery_key` is set and the discovery service knows it,
 * the discovered one (which then replaces the configured host, port and uri, as pip-services'
 * connection resolver does).
 */
async function discover(
  settings: RedisLockSettings,
  references: unknown,
  context: unknown,
): Promise<RedisLockSettings["connection"]> {
  const { connection } = settings;
  const key = connection.discoveryKey;
  if (key === undefined) return connection;
  const discovery = findReference(references, "discovery");
  const found = discovery ? await ask(discovery, "resolveOne", context, key) : undefined;
  if (!found) {
    if (connection.uri || connection.host) return connection;
    throw new LockConfigError(
      "connection.discovery_key",
      discovery
        ? `the discovery service knows no connection "${key}"`
        : "no discovery service (*:discovery:*:*:1.0) is referenced",
    );
  }
  // Discovered values are checked like configured ones.
  return readSettings({
    connection: {
      host: param(found, "host"),
      port: param(found, "port"),
      uri: param(found, "uri"),
    },
  }).connection;
}

/** The configured credentials, completed by the credential store when `store_key` is set. */
async function lookUp(
  settings: RedisLockSettings,
  references: unknown,
  context: unknown,
): Promise<{ username?: string | undefined; password?: string | undefined }> {
  const { credential } = settings;
  const key = credential.storeKey;
  if (key === undefined) return credential;
  const store = findReference(references, "credential-store");
  const found = store ? await ask(store, "lookup", context, key) : undefined;
  if (!found && credential.password === undefined) {
    throw new LockConfigError(
      "credential.store_key",
      store
        ? `the credential store knows no credentials "${key}"`
        : "no credential store (*:credential-store:*:*:1.0) is referenced",
    );
  }
  return {
    username: param(found, "username") ?? param(found, "user") ?? credential.username,
    password: param(found, "password") ?? param(found, "pass") ?? credential.password,
  };
}

function connectionHost(host: string | undefined): string {
  if (host) return host;
  throw new LockConfigError(
    "connection.host",
    "no connection configured: set connection.uri, connection.host or connection.discovery_key",
  );
}

/** The database in a `redis://host/2` URI, or 0. */
function databaseIn(uri: URL, uriKey: string): number {
  if (uri.protocol !== "redis:" && uri.protocol !== "rediss:") return 0;
  const path = uri.pathname.replace(/^\//, "");
  if (path === "") return 0;
  if (/^\d+$/.test(path)) return Number(path);
  throw new LockConfigError(uriKey, "the path must be a database number");
}

/** A percent-decoded user-info part of a URI (undefined when empty). */
function decoded(part: string, uriKey: string): string | undefined {
  try {
    return decodeURIComponent(part) || undefined;
  } catch {
    throw new LockConfigError(uriKey, "the user info has a malformed percent-escape");
  }
}
