/// <reference types="node" />
/**
 * Where the figures came from: CPU, cores, Node, Redis, library versions, the edgelock commit.
 */

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  redis: string;
  /** Package name → installed version. */
  libraries: Record<string, string>;
  /** `git describe` of the edgelock checkout, with "+ local changes" when src/ is edited. */
  edgelock: string;
  date: string;
}

/** The packages whose versions the report lists. */
const PACKAGES = [
  "ioredis",
  "@upstash/redis",
  "redlock5",
  "redlock4",
  "redis-semaphore",
  "redlock-universal",
  "@upstash/lock",
];

const root = new URL("../../", import.meta.url);

function versionOf(name: string): string {
  try {
    const manifest = new URL(`node_modules/${name}/package.json`, root);
    const { version } = JSON.parse(readFileSync(manifest, "utf8")) as { version?: string };
    return (version ?? "?").replace(/^v/, "");
  } catch {
    return "not installed";
  }
}

function edgelockRevision(): string {
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
  try {
    const commit = git("rev-parse", "--short", "HEAD");
    const edited = git("status", "--porcelain", "--", "src", "adapters") !== "";
    return edited ? `${commit} + local changes in src/ or adapters/` : commit;
  } catch {
    return "unknown";
  }
}

export function describeMachine(redisVersion: string): Machine {
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    redis: redisVersion,
    libraries: Object.fromEntries(PACKAGES.map((name) => [name, versionOf(name)])),
    edgelock: edgelockRevision(),
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
}
