/// <reference types="node" />
/**
 * Spawns throwaway `redis-server` processes on free loopback ports for integration tests.
 * Every child is SIGKILLed (and its temp dir removed) when the test process exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

const HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const PORT_ATTEMPTS = 5;
const OUTPUT_TAIL_CHARS = 4_000;

const NOT_FOUND =
  "redis-server was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install -y " +
  "redis-server`; macOS: `brew install redis`) or point REDIS_URL at an existing Redis " +
  "(standalone suites only).";

/** A redis-server child process started by {@link startRedisServer}. */
export interface RedisProcess {
  readonly host: "127.0.0.1";
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Pid of the current child; `undefined` while stopped or killed. */
  readonly pid: number | undefined;
  /** SIGTERM (SIGKILL after 5 s), wait for exit, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit; the temp dir is kept so that {@link restart} can follow. */
  kill(): Promise<void>;
  /** Start again (stopping first if running) on the same port with the same args; data is lost. */
  restart(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing until {@link resume}. */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
}

/** A Redis to run standalone suites against, from {@link useStandaloneRedis}. */
export interface RedisTarget {
  url: string;
  stop(): Promise<void>;
}

/** Children still alive and temp dirs still present, reaped synchronously on process exit. */
const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let reaperInstalled = false;

function reap(): void {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

/**
 * Makes sure `child` dies with us. The 'exit' handler covers a normal exit, but Vitest ends its
 * workers without running it (signals for forks, `terminate()` for threads), so each child also
 * gets a watchdog shell reading a pipe from this process: when the process goes away for any
 * reason the pipe hits EOF and the watchdog SIGKILLs the child and removes its dir.
 */
function track(child: ChildProcess, dir: string): void {
  if (!reaperInstalled) {
    process.on("exit", reap);
    reaperInstalled = true;
  }
  children.add(child);
  if (child.pid === undefined) return;
  const script = 'read _; kill -9 "$1" 2>/dev/null; rm -rf "$2"';
  const watchdog = spawn("/bin/sh", ["-c", script, "watchdog", String(child.pid), dir], {
    stdio: ["pipe", "ignore", "ignore"],
  });
  watchdog.on("error", () => {}); // no /bin/sh: the 'exit' handler still applies
  child.once("exit", () => {
    children.delete(child);
    watchdog.kill("SIGKILL");
  });
}

/** Path of the `redis-server` executable on PATH; throws an Error saying how to install it. */
export function findRedisServer(): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "redis-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw new Error(NOT_FOUND);
}

/** A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, HOST, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP address bound");
  return address.port;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

function waitForExit(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

async function killHard(child: ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  await waitForExit(child);
}

async function terminate(child: ChildProcess): Promise<void> {
  child.kill("SIGCONT"); // a paused server would not act on SIGTERM
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
  await waitForExit(child);
  clearTimeout(timer);
}

/**
 * Sends `PING` and `INFO server` over a raw socket and resolves the answering server's pid, or
 * `undefined` if nothing (or something else) answers. Checking the pid makes sure we are not
 * talking to another test worker's server that took the same port.
 */
function pingForPid(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    let reply = "";
    const done = (pid?: number) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(1_000, () => done());
    socket.on("error", () => done());
    socket.on("close", () => done());
    socket.on("connect", () => socket.write("PING\r\nINFO server\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (!"+PONG\r\n".startsWith(reply.slice(0, 7))) return done();
      const match = /process_id:(\d+)/.exec(reply);
      if (match) done(Number(match[1]));
    });
  });
}

/** Failure to start; `output` is the tail of what redis-server printed. */
class StartError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(`${message}\n--- redis-server output (tail) ---\n${output}`);
  }
}

/** Spawns redis-server and resolves once it answers PING; kills it and throws otherwise. */
async function spawnReady(
  bin: string,
  args: string[],
  port: number,
  dir: string,
): Promise<ChildProcess> {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  track(child, dir);
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  let spawnError: Error | undefined;
  child.on("error", (error) => {
    spawnError = error;
  });

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (spawnError) throw new StartError(`cannot spawn ${bin}: ${spawnError.message}`, output);
    if (hasExited(child)) {
      const status = child.signalCode ?? `code ${child.exitCode}`;
      throw new StartError(`redis-server on port ${port} exited (${status}) before PING`, output);
    }
    const pid = await pingForPid(port);
    if (pid !== undefined && pid === child.pid) return child;
    if (Date.now() > deadline) {
      await killHard(child);
      throw new StartError(
        `redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms`,
        output,
      );
    }
    await sleep(pid === undefined ? 25 : 250); // another server answering: ours should exit soon
  }
}

const isAddressInUse = (error: unknown) =>
  error instanceof StartError && error.output.includes("Address already in use");

/**
 * Starts `redis-server` on a free 127.0.0.1 port with no persistence, a fresh temp `--dir` and
 * `DEBUG` enabled for local clients, plus `options.args`; resolves once it answers PING (10 s
 * max). Retries on another port if the chosen one got taken. With `--cluster-enabled yes` (and no
 * `--cluster-port`), a free cluster bus port is picked too: the default port + 10000 may be
 * taken or exceed 65535.
 */
export async function startRedisServer(options: { args?: string[] } = {}): Promise<RedisProcess> {
  const extra = options.args ?? [];
  const clustered = extra.join(" ").includes("--cluster-enabled yes");
  const needsBusPort = clustered && !extra.includes("--cluster-port");
  return startRedisProcess(async (port, dir) => [
    ...["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
    ...["--daemonize", "no", "--dir", dir, "--enable-debug-command", "local"],
    ...(needsBusPort ? ["--cluster-port", String(await freePort())] : []),
    ...extra,
  ]);
}

function handle(
  bin: string,
  args: string[],
  port: number,
  dir: string,
  first: ChildProcess,
): RedisProcess {
  let child: ChildProcess | undefined = first;
  const running = (): ChildProcess => {
    if (child === undefined) throw new Error(`redis-server on port ${port} is not running`);
    return child;
  };
  return {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    get pid() {
      return child?.pid;
    },
    async stop() {
      if (child !== undefined) await terminate(child);
      child = undefined;
      await rm(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
    async kill() {
      if (child !== undefined) await killHard(child);
      child = undefined;
    },
    async restart() {
      if (child !== undefined) await terminate(child);
      child = undefined;
      await mkdir(dir, { recursive: true });
      dirs.add(dir);
      child = await spawnReady(bin, args, port, dir);
    },
    pause() {
      running().kill("SIGSTOP");
    },
    resume() {
      running().kill("SIGCONT");
    },
  };
}

/** `REDIS_URL` if set (stop() is then a no-op), else a fresh {@link startRedisServer}. */
export async function useStandaloneRedis(): Promise<RedisTarget> {
  const url = process.env.REDIS_URL;
  if (url) return { url, stop: async () => {} };
  const server = await startRedisServer();
  return { url: server.url, stop: () => server.stop() };
}

/**
 * Like {@link startRedisServer}, but runs `redis-server` with exactly the arguments `argsFor`
 * returns for the chosen free port and a fresh temp dir (called again if the port got taken), for
 * modes that need a config file on disk such as Sentinel: `argsFor` writes it into the dir, which
 * is removed, with the process, by `stop()` or when the test process exits.
 */
export async function startRedisProcess(
  argsFor: (port: number, dir: string) => Promise<string[]>,
): Promise<RedisProcess> {
  const bin = findRedisServer();
  const dir = await mkdtemp(join(tmpdir(), "edgelock-redis-"));
  dirs.add(dir);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const args = await argsFor(port, dir);
      const child = await spawnReady(bin, args, port, dir);
      return handle(bin, args, port, dir, child);
    } catch (error) {
      if (attempt < PORT_ATTEMPTS && isAddressInUse(error)) continue;
      await rm(dir, { recursive: true, force: true });
      dirs.delete(dir);
      throw error;
    }
  }
}
