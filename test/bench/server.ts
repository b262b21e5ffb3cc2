/// <reference types="node" />
/**
 * The Redis under test as the benchmark sees it: the spawned redis-server, an admin connection
 * for INFO and CLIENT LIST, and a factory for the connections the libraries use.
 */

import { Redis } from "ioredis";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

export interface BenchRedis {
  readonly process: RedisProcess;
  readonly url: string;
  readonly port: number;
  /** A connection for the benchmark's own queries; never given to a library. */
  readonly admin: Redis;
  /** A new client connection, connected and answering PING. */
  connection(): Promise<Redis>;
  /** The server's version (`INFO server`). */
  version(): Promise<string>;
  /** Calls per command from `INFO commandstats` (`evalsha`, `subscribe`, ...). */
  commandCalls(): Promise<Map<string, number>>;
  /** Time spent per command so far, in µs, by command name (`INFO commandstats`). */
  commandMicros(): Promise<Map<string, number>>;
  /** A counter from `INFO stats`, such as `total_connections_received`. */
  stat(name: string): Promise<number>;
  /** How many clients are connected, and how many of them are in pub/sub mode. */
  clients(): Promise<{ total: number; pubsub: number }>;
  /** Drops every key and script, so scenarios start alike. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Spawns redis-server on a free loopback port (no persistence). */
export async function startBenchRedis(): Promise<BenchRedis> {
  const process = await startRedisServer();
  const admin = new Redis(process.url);
  await admin.ping();
  const open = new Set<Redis>();
  return {
    process,
    url: process.url,
    port: process.port,
    admin,
    async connection() {
      const client = new Redis(process.url);
      client.on("error", () => {}); // failures surface through the commands that meet them
      open.add(client);
      client.once("end", () => open.delete(client));
      await client.ping();
      return client;
    },
    async version() {
      const info = await admin.info("server");
      return /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
    },
    async commandCalls() {
      const info = await admin.info("commandstats");
      const calls = new Map<string, number>();
      for (const match of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
        calls.set(match[1] ?? "", Number(match[2]));
      }
      return calls;
    },
    async commandMicros() {
      const info = await admin.info("commandstats");
      const micros = new Map<string, number>();
      for (const match of info.matchAll(/cmdstat_([^:]+):calls=\d+,usec=(\d+)/g)) {
        micros.set(match[1] ?? "", Number(match[2]));
      }
      return micros;
    },
    async stat(name) {
      const info = await admin.info("stats");
      return Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? Number.NaN);
    },
    async clients() {
      const all = String(await admin.call("CLIENT", "LIST"));
      const pubsub = String(await admin.call("CLIENT", "LIST", "TYPE", "pubsub"));
      const lines = (text: string) => text.split("\n").filter((line) => line.trim()).length;
      return { total: lines(all), pubsub: lines(pubsub) };
    },
    async reset() {
      await admin.flushall();
      await admin.script("FLUSH");
      await admin.config("RESETSTAT");
    },
    async stop() {
      for (const client of open) client.disconnect();
      admin.disconnect();
      await process.stop();
    },
  };
}

/** Calls of `names` between two {@link BenchRedis.commandCalls} snapshots. */
export function callsBetween(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
  names: readonly string[],
): number {
  return names.reduce((sum, name) => sum + (after.get(name) ?? 0) - (before.get(name) ?? 0), 0);
}
