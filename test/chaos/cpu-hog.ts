/// <reference types="node" />
/**
 * Load for the chaos suite: busy-looping Node processes, as a busy host would have, so the client
 * processes compete for the CPU and their timers fire late. A hog stops when told, and on its own
 * after `maxMs` or as soon as the harness that started it is gone, so none is ever left behind.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { availableParallelism } from "node:os";

/** What a hog runs: spin, looking now and then whether it should stop. */
const HOG = `
const end = Date.now() + Number(process.argv[1]);
const parent = process.ppid;
for (let i = 1; ; i++) {
  if (i % 1e6 === 0 && (Date.now() > end || process.ppid !== parent)) process.exit(0);
}`;

/** Running hogs. */
export interface CpuHogs {
  readonly count: number;
  /** How many of them were still running when asked (before any was stopped). */
  running(): number;
  /** Kills every hog and waits until each has exited. */
  stop(): Promise<void>;
}

/** Starts `count` hogs (default: one per core), each stopping by itself after `maxMs`. */
export function startCpuHogs(maxMs: number, count = availableParallelism()): CpuHogs {
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    children.push(spawn(process.execPath, ["-e", HOG, String(maxMs)], { stdio: "ignore" }));
  }
  const exited = children.map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once("exit", () => resolve());
      }),
  );
  return {
    count,
    running: () => children.filter((c) => c.exitCode === null && c.signalCode === null).length,
    async stop() {
      for (const child of children) child.kill("SIGKILL");
      await Promise.all(exited);
    },
  };
}
