/// <reference types="node" />
/**
 * The client processes of the chaos suite: a few long-lived Node children (starting one costs
 * about a second of CPU, so they are reused across runs), each running one {@link Plan} at a
 * time. The harness can SIGSTOP, SIGCONT and SIGKILL them; a killed child is replaced on next use.
 * A child that exits on its own (an unhandled rejection under `--unhandled-rejections=strict`, a
 * crash) fails its run with the tail of its output.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FencedStore } from "./fenced-store.js";
import { type History, monotonicMs } from "./history.js";
import type { FromWorker, Plan, ToWorker } from "./protocol.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const ENTRY = fileURLToPath(new URL("./worker.ts", import.meta.url));
const HELLO_TIMEOUT_MS = 30_000;
const OUTPUT_TAIL_CHARS = 4_000;

/** How a run ended: the plan completed, or the harness killed the process. */
export type RunOutcome = { kind: "done"; timers: number } | { kind: "killed" };

/** A plan running in a client process. */
export interface RunHandle {
  /** The process's pid: its `p` in the history. */
  readonly pid: number;
  /** Resolves when the process has connected (and warmed up) and waits for {@link go}. */
  readonly ready: Promise<void>;
  go(): void;
  /** Ends the plan's `linger` early. */
  wrapUp(): void;
  /** Settles when the run ends; rejects if the process died on its own. */
  readonly done: Promise<RunOutcome>;
  /** SIGSTOP: the process freezes (timers, sockets and all) until {@link resume}. */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
  /** SIGKILL, as a crashed host or an evicted function would die (no-op once the run is over). */
  kill(): void;
}

interface Run {
  history: History;
  store: FencedStore;
  ready: () => void;
  finish: (outcome: RunOutcome) => void;
  crash: (error: Error) => void;
}

/** One client process. */
class Worker {
  readonly #child: ChildProcess;
  #output = "";
  #run: Run | undefined;
  #killed = false;
  readonly hello: Promise<void>;
  readonly exited: Promise<void>;

  /** @param crashed told when the process dies on its own between runs. */
  constructor(private readonly crashed: (error: Error) => void) {
    this.#child = spawn(
      process.execPath,
      ["--unhandled-rejections=strict", "--import", "tsx", ENTRY],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe", "ipc"] },
    );
    const collect = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
    };
    this.#child.stdout?.on("data", collect);
    this.#child.stderr?.on("data", collect);
    this.exited = new Promise((resolve) => this.#child.once("exit", () => resolve()));
    this.hello = new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`chaos worker did not start:\n${this.#output}`)),
        HELLO_TIMEOUT_MS,
      );
      this.#child.on("message", (message: FromWorker) => {
        if (message.type === "hello") {
          clearTimeout(timer);
          resolve();
        } else {
          this.#receive(message);
        }
      });
      this.#child.once("exit", () => clearTimeout(timer));
    });
    this.#child.once("exit", (code, signal) => this.#exit(code, signal));
  }

  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  /** Starts `plan`; its events and store requests go to `history` and `store`. */
  start(plan: Plan, history: History, store: FencedStore): RunHandle {
    if (this.#run) throw new Error(`chaos worker ${this.pid} is already running a plan`);
    let ready = () => {};
    const readiness = new Promise<void>((resolve) => {
      ready = resolve;
    });
    let run: Run | undefined;
    const done = new Promise<RunOutcome>((finish, crash) => {
      run = { history, store, ready, finish, crash };
      this.#run = run;
    });
    done.catch(() => {}); // observed by the scenario; never unhandled here
    this.#send({ type: "run", plan });
    return {
      pid: this.pid,
      ready: readiness,
      go: () => this.#send({ type: "go" }),
      wrapUp: () => this.#send({ type: "wrap-up" }),
      done,
      pause: () => this.#signal("SIGSTOP"),
      resume: () => this.#signal("SIGCONT"),
      kill: () => {
        if (this.#run === run) this.kill(); // a finished run leaves its process to the next one
      },
    };
  }

  /** SIGKILL; the run (if any) ends as "killed" and the death is recorded now. */
  kill(): void {
    if (!this.alive) return;
    this.#killed = true;
    this.#run?.history.record({
      t: monotonicMs(),
      p: this.pid,
      op: "exit",
      type: "info",
      detail: "killed",
    });
    this.#child.kill("SIGKILL");
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.alive) this.#child.kill(signal);
  }

  #send(message: ToWorker): void {
    if (this.alive && this.#child.connected) this.#child.send(message);
  }

  #receive(message: FromWorker): void {
    const run = this.#run;
    if (!run) return;
    if (message.type === "ready") run.ready();
    else if (message.type === "event") run.history.record(message.event);
    else if (message.type === "store") {
      const reply = run.store.handle(this.pid, message.request);
      this.#send({ type: "store", id: message.id, reply });
    } else if (message.type === "done") {
      this.#run = undefined;
      run.finish({ kind: "done", timers: message.timers });
    }
  }

  #exit(code: number | null, signal: NodeJS.Signals | null): void {
    const run = this.#run;
    this.#run = undefined;
    if (this.#killed) {
      run?.finish({ kind: "killed" });
      return;
    }
    const how = signal ?? `code ${code}`;
    const error = new Error(`client process ${this.pid} died (${how}):\n${this.#output}`);
    if (run) {
      run.history.record({ t: monotonicMs(), p: this.pid, op: "exit", type: "info", detail: how });
      run.crash(error);
    } else {
      this.crashed(error); // a timer of a finished run, say
    }
  }
}

/** A fixed number of client process slots. */
export class WorkerPool {
  readonly #slots: Worker[];
  /** Processes that died on their own between runs, not yet reported. */
  readonly #crashes: Error[] = [];

  private constructor(size: number) {
    this.#slots = Array.from({ length: size }, () => this.#spawn());
    process.on("exit", () => {
      for (const worker of this.#slots) worker.kill();
    });
  }

  /** Starts `size` client processes and waits until each is listening. */
  static async start(size: number): Promise<WorkerPool> {
    const pool = new WorkerPool(size);
    await Promise.all(pool.#slots.map((worker) => worker.hello));
    return pool;
  }

  /** The processes that died on their own between runs since the last call. */
  takeCrashes(): Error[] {
    return this.#crashes.splice(0);
  }

  get size(): number {
    return this.#slots.length;
  }

  /** The process of slot `index`, replaced first if it died. */
  async worker(index: number): Promise<Worker> {
    const current = this.#slots[index];
    if (current === undefined) throw new Error(`no chaos worker slot ${index}`);
    if (current.alive) return current;
    const fresh = this.#spawn();
    this.#slots[index] = fresh;
    await fresh.hello;
    return fresh;
  }

  #spawn(): Worker {
    return new Worker((error) => this.#crashes.push(error));
  }

  /** Kills every process and waits until they are gone. */
  async close(): Promise<void> {
    for (const worker of this.#slots) worker.kill();
    await Promise.all(this.#slots.map((worker) => worker.exited));
  }
}
