/// <reference types="node" />
/**
 * The `edgelock gateway` command as a child process (`tsx adapters/gateway/cli.ts gateway ...`),
 * for tests that must see it survive what they send, and read everything it prints.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** A running `edgelock gateway` child. */
export interface GatewayCli {
  /** The URL it printed as listening on. */
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** True while the process runs. */
  alive(): boolean;
  /** SIGTERM (it drains and exits 0), then waits for the exit; resolves the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `edgelock gateway --port 0` with `args` and the environment `env` (on top of PATH and
 * HOME only), and resolves once it prints the URL it listens on (15 s at most).
 */
export async function startGatewayCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<GatewayCli> {
  const child = spawn(
    `${root}node_modules/.bin/tsx`,
    [`${root}adapters/gateway/cli.ts`, "gateway", "--port", "0", ...args],
    {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let text = "";
  const exit = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`edgelock gateway did not start within 15 s:\n${text}`));
    }, 15_000);
    const collect = (chunk: Buffer) => {
      text += chunk.toString();
      const match = /listening on (https?:\/\/\S+)/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`edgelock gateway exited before listening:\n${text}`));
    });
  });
  return {
    url,
    child,
    output: () => text,
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: () => {
      child.kill("SIGTERM");
      return exit;
    },
  };
}
