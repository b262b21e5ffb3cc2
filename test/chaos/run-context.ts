/**
 * One run of one scenario: its seed, history, fenced store and observer, the client processes it
 * started, and the faults it injected, with the helpers scenarios are written with.
 */

import { type CheckInput, check, type Metrics } from "./checker.js";
import type { ChaosEnvironment, Stack } from "./environment.js";
import { FencedStore } from "./fenced-store.js";
import { type EventType, History, type HistoryEvent, monotonicMs, type Op } from "./history.js";
import { expiryLowerBound, Observer } from "./observer.js";
import type { Plan, Transport } from "./protocol.js";
import { Random } from "./random.js";
import type { RunHandle, RunOutcome } from "./worker-pool.js";

/** How long the client processes of a run may take to finish once the scenario is over. */
const FINISH_TIMEOUT_MS = 20_000;

/** Command deadline of the clients' ioredis adapters: short, so faults surface quickly. */
export const COMMAND_TIMEOUT_MS = 200;

/** The state and helpers of one run. */
export class RunContext {
  readonly history = new History();
  readonly store = new FencedStore(this.history);
  readonly rng: Random;
  /** The locker prefix of this run: no other run sees its keys. */
  readonly prefix: string;
  /** The lock key (and store resource) the scenario's clients contend for. */
  readonly key = "resource";
  readonly observer: Observer;
  readonly #handles: RunHandle[] = [];

  constructor(
    readonly environment: ChaosEnvironment,
    readonly stack: Stack,
    readonly scenario: string,
    readonly iteration: number,
    readonly seed: number,
  ) {
    this.rng = new Random(seed);
    environment.random = new Random(seed ^ 0x5bd1e995);
    this.prefix = `chaos-${scenario}-${iteration}-${seed.toString(36)}`;
    this.observer = new Observer(stack.redis.url, this.prefix, this.key);
  }

  /** ioredis straight to redis-server, bypassing the fault proxy. */
  get direct(): Transport {
    return { kind: "ioredis", url: this.stack.redis.url, commandTimeout: COMMAND_TIMEOUT_MS };
  }

  /** A plan with this run's defaults (through the proxy, `using`, ttl 800 ms), overridden. */
  plan(overrides: Partial<Plan> = {}): Plan {
    return {
      transport: { kind: "ioredis", url: this.stack.proxy.url, commandTimeout: COMMAND_TIMEOUT_MS },
      prefix: this.prefix,
      maxRetryDelay: 200,
      key: this.key,
      ttl: 800,
      iterations: 1,
      api: "using",
      timeout: 3_000,
      work: [5, 20],
      gap: [0, 5],
      seed: this.rng.between(0, 2 ** 31),
      ...overrides,
    };
  }

  /** Starts a plan in client process `slot` and waits until it is ready for `go`. */
  async start(slot: number, overrides: Partial<Plan> = {}): Promise<RunHandle> {
    const worker = await this.environment.pool.worker(slot);
    const handle = worker.start(this.plan(overrides), this.history, this.store);
    this.#handles.push(handle);
    await Promise.race([handle.ready, handle.done]);
    return handle;
  }

  /** Records a fault (or its healing) in the history, then applies it. */
  async nemesis(detail: string, fault: () => unknown): Promise<void> {
    this.history.nemesis(detail);
    await fault();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** The first event of `handle`'s process with this op (and type), waiting up to `timeout` ms. */
  next(handle: RunHandle, op: Op, type?: EventType, timeout = 10_000): Promise<HistoryEvent> {
    return this.history.waitFor(
      (event) => event.p === handle.pid && event.op === op && (!type || event.type === type),
      timeout,
      `${op}${type ? ` ${type}` : ""} from process ${handle.pid}`,
    );
  }

  /** The outcome (`ok`, `fail` or `info`) of `handle`'s first acquire. */
  outcome(handle: RunHandle): Promise<HistoryEvent> {
    return this.history.waitFor(
      (e) => e.p === handle.pid && e.op === "acquire" && e.type !== "invoke",
      10_000,
      `the outcome of process ${handle.pid}'s acquire`,
    );
  }

  /** The events of `handle`'s process with this op (and type), so far. */
  events(handle: RunHandle, op: Op, type?: EventType): HistoryEvent[] {
    return this.history
      .of(handle.pid)
      .filter((event) => event.op === op && (!type || event.type === type));
  }

  /** The last event of `handle`'s process with this op; throws if there is none. */
  last(handle: RunHandle, op: Op, type?: EventType): HistoryEvent {
    const event = this.events(handle, op, type).at(-1);
    if (!event) throw new Error(`process ${handle.pid} recorded no ${op} ${type ?? ""}`);
    return event;
  }

  /** The observer's lower bound of when the lease with `fence` ended on the server. */
  expiryOf(fence: number | undefined): number {
    const bound = expiryLowerBound(this.observer.samples, fence ?? 0);
    if (bound === undefined) throw new Error(`the observer never saw fence ${fence} held`);
    return bound;
  }

  /**
   * Waits until the lock is free; fails if it is still held at monotonic time `deadline`. Call it
   * while the client lingers, so that a leaked extender would still be at work.
   */
  async untilFree(deadline: number): Promise<void> {
    while ((await this.observer.inspect()).held) {
      if (monotonicMs() > deadline) throw new Error("the lock is still held after its ttl");
      await this.sleep(20);
    }
  }

  /** Waits until every client process of the run is done (or was killed). */
  finish(): Promise<RunOutcome[]> {
    return withTimeout(
      Promise.all(this.#handles.map((handle) => handle.done)),
      FINISH_TIMEOUT_MS,
      "the client processes did not finish (a stuck waiter?)",
    );
  }

  /**
   * Liveness after the faults: a harness-side `acquire` through the healed proxy must get the
   * lock within the longest ttl of the run plus `slack` ms. Resolves how long it took.
   */
  async probe(slack = 3_000): Promise<number> {
    const locker = await this.environment.prober(this.stack.name, this.prefix);
    const started = performance.now();
    const lease = await locker.acquire(this.key, 1_000, { timeout: this.#longestTtl() + slack });
    const waited = performance.now() - started;
    await lease.release();
    return waited;
  }

  /** Ends every fault left: proxy healed and aimed at Redis, Redis resumed (or restarted). */
  async heal(): Promise<void> {
    const { proxy, redis } = this.stack;
    proxy.heal();
    if (proxy.target !== redis.port) proxy.retarget(redis.port);
    if (this.stack.redis.pid === undefined) await this.stack.redis.restart();
    else this.stack.redis.resume();
  }

  /** Undoes whatever is left: unfinished processes killed, faults healed, observer stopped. */
  async cleanup(): Promise<void> {
    for (const handle of this.#handles) handle.kill();
    await this.heal();
    await this.observer.stop();
  }

  /** What the checker finds in the run so far. */
  metrics(): Metrics {
    return check(this.checkInput());
  }

  /** What the checker reads. */
  checkInput(): CheckInput {
    return {
      events: this.history.events,
      samples: new Map([[this.key, this.observer.samples]]),
      finals: new Map([[this.key, this.store.final(this.key)]]),
    };
  }

  #longestTtl(): number {
    return Math.max(
      0,
      ...this.history.events.filter((event) => event.ttl !== undefined).map((e) => e.ttl ?? 0),
    );
  }
}

/** Rejects with `message` if `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} (after ${ms} ms)`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
