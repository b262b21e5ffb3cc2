/// <reference types="node" />
/**
 * Bundles the Workers example the way a deploy would: `wrangler deploy --dry-run --outdir`, which
 * runs offline and leaves the exact script Cloudflare would receive.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, where wrangler.toml is. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The result of {@link wranglerDryRun}. */
export interface WorkerBundle {
  /** The bundled module's path (`<outdir>/worker.js`). */
  path: string;
  /** Its text. */
  code: string;
  /** Wrangler's report, e.g. `Total Upload: 323.42 KiB / gzip: 58.62 KiB`. */
  summary: string;
}

/**
 * Runs `wrangler deploy --dry-run --outdir <outdir>` in the repository root (telemetry off),
 * rejecting with wrangler's output if it fails or takes over `timeout` ms.
 */
export async function wranglerDryRun(outdir: string, timeout = 60_000): Promise<WorkerBundle> {
  const wrangler = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
  const args = [wrangler, "deploy", "--dry-run", "--outdir", outdir];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", CI: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeout);
  const status = await new Promise<number | string | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve(signal ?? code));
  }).finally(() => clearTimeout(timer));
  if (status !== 0) throw new Error(`wrangler deploy --dry-run failed (${status}):\n${output}`);
  const path = join(outdir, "worker.js");
  const summary = /Total Upload:[^\n]*/.exec(output)?.[0] ?? "";
  return { path, code: await readFile(path, "utf8"), summary };
}
