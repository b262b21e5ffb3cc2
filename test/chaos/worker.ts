/// <reference types="node" />
/**
 * A chaos client process: runs the critical sections of a {@link Plan} with edgelock's public API
 * and reports every step to the harness over IPC. Started by the worker pool as
 * `node --unhandled-rejections=strict --import tsx test/chaos/worker.ts`, so an unhandled
 * rejection anywhere (the library's timers included) kills the process and fails the scenario.
 *
 * A critical section is a read-modify-write of the fenced store under the lock: read the counters
 * with the lease's fence, work (sleep or busy-wait), write counter + 1 with the same fence. The
 * fenced write is sent even after the lease is known lost (the store must reject it); the
 * unfenced counter is written only while `lease.signal` has not aborted.
 */

import { Redis as Upstash } from "@upstash/redis";
import { createLocker, type Lease, type Locker } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { upstashAdapter } from "edgelock/upstash";
import { Redis } from "ioredis";
import { type HistoryEvent, monotonicMs } from "./history.js";
import {
  type FromWorker,
  type Plan,
  type StoreReply,
  type StoreRequest,
  THROWN,
  type ToWorker,
} from "./protocol.js";
import { Random } from "./random.js";

const pending = new Map<number, (reply: StoreReply) => void>();
let nextRequest = 0;
let started: (() => void) | undefined;
/** Ends the current run's linger (sticky: a wrap-up may arrive before the linger starts). */
let wrapUp = () => {};

function send(message: FromWorker): void {
  process.send?.(message);
}

process.on("disconnect", () => process.exit(0));
process.on("message", (message: ToWorker) => {
  if (message.type === "run") {
    run(message.plan).catch((error: unknown) => {
      // A harness bug, not a finding: say so loudly and die.
      console.error("chaos worker failed:", error);
      process.exit(70);
    });
  } else if (message.type === "go") {
    started?.();
  } else if (message.type === "wrap-up") {
    wrapUp();
  } else {
    pending.get(message.id)?.(message.reply);
    pending.delete(message.id);
  }
});
send({ type: "hello" });

/** Runs a plan: connect, warm up, say ready, wait for go, run the iterations, report done. */
async function run(plan: Plan): Promise<void> {
  const timersBefore = activeTimers();
  const go = new Promise<void>((resolve) => {
    started = resolve;
  });
  let lingerTimer: ReturnType<typeof setTimeout> | undefined;
  const lingering = new Promise<void>((resolve) => {
    wrapUp = resolve;
  }).then(() => clearTimeout(lingerTimer));
  const { locker, close } = connect(plan);
  const rng = new Random(plan.seed);
  const emit = (event: Omit<HistoryEvent, "t" | "p" | "key">) =>
    send({ type: "event", event: { t: monotonicMs(), p: process.pid, key: plan.key, ...event } });
  try {
    if (plan.warm !== false) await warmUp(locker);
    send({ type: "ready" });
    await go;
    for (let i = 0; i < plan.iterations; i++) {
      const deadline = monotonicMs() + (plan.retryFor ?? 0);
      while ((await iteration(locker, plan, rng, emit)) === "unavailable") {
        if (monotonicMs() > deadline) break;
        await sleep(50);
      }
      await sleep(rng.between(...plan.gap));
    }
    lingerTimer = setTimeout(wrapUp, plan.linger ?? 0);
    await lingering;
  } finally {
    await close();
  }
  await sleep(50); // sockets closed just now may still hold a timer for a tick
  send({ type: "done", timers: activeTimers() - timersBefore });
}

type Emit = (event: Omit<HistoryEvent, "t" | "p" | "key">) => void;

/** One attempt at a critical section; "unavailable" if the acquire failed with LOCK_UNAVAILABLE. */
async function iteration(
  locker: Locker,
  plan: Plan,
  rng: Random,
  emit: Emit,
): Promise<"done" | "unavailable"> {
  const controller = new AbortController();
  const abortTimer =
    plan.abortAfter === undefined
      ? undefined
      : setTimeout(() => controller.abort(), plan.abortAfter);
  const options = { timeout: plan.timeout, signal: controller.signal };
  let lease: Lease | undefined;
  // A loss counts while this iteration holds the lease; once it is over (say its release failed
  // and the lease later runs out), the event would land in another run's history.
  let stopListening = () => {};
  const entered = (held: Lease) => {
    clearTimeout(abortTimer);
    lease = held;
    emit({ op: "acquire", type: "ok", fence: held.fence });
    const onAbort = () => {
      emit({ op: "lost", type: "info", fence: held.fence, code: codeOf(held.signal.reason) });
    };
    held.signal.addEventListener("abort", onAbort);
    stopListening = () => held.signal.removeEventListener("abort", onAbort);
  };
  const section = async (held: Lease) => {
    try {
      await criticalSection(held, plan, rng, emit);
    } finally {
      emit({ op: "release", type: "invoke", fence: held.fence });
    }
  };
  emit({ op: "acquire", type: "invoke", ttl: plan.ttl });
  try {
    if (plan.api === "using") {
      await locker.using(
        plan.key,
        plan.ttl,
        async (held) => {
          entered(held);
          await section(held);
        },
        {
          ...options,
          onReleaseError: (error) =>
            emit({ op: "release", type: "fail", fence: lease?.fence, code: codeOf(error) }),
        },
      );
      emit({ op: "hold", type: "ok", fence: lease?.fence });
    } else {
      const held = await locker.acquire(plan.key, plan.ttl, options);
      entered(held);
      await section(held).catch((error: unknown) => {
        emit({ op: "hold", type: "fail", fence: held.fence, code: codeOf(error) });
      });
      await held.release().then(
        (released) => emit({ op: "release", type: "ok", fence: held.fence, released }),
        (error: unknown) =>
          emit({ op: "release", type: "fail", fence: held.fence, code: codeOf(error) }),
      );
    }
    return "done";
  } catch (error) {
    clearTimeout(abortTimer);
    const code = codeOf(error);
    const detail = error instanceof Error ? error.message : String(error);
    if (lease !== undefined) {
      emit({ op: "hold", type: "fail", fence: lease.fence, code, detail });
      return "done";
    }
    // LOCK_UNAVAILABLE is indeterminate on the wire (the library cleans up after it): `info`.
    const type = code === "LOCK_UNAVAILABLE" ? "info" : "fail";
    emit({ op: "acquire", type, code, detail });
    return code === "LOCK_UNAVAILABLE" ? "unavailable" : "done";
  } finally {
    stopListening();
  }
}

/** Read, work, (extend,) write: a read-modify-write of the fenced store under the lease. */
async function criticalSection(lease: Lease, plan: Plan, rng: Random, emit: Emit): Promise<void> {
  const read = await store({ op: "read", resource: plan.key, fence: lease.fence });
  if (!read.accepted) return; // a newer holder has been here: give up, as a fenced client must
  const work = rng.between(...plan.work);
  const { extend } = plan;
  if (extend === undefined) {
    await spend(work, plan.busy);
  } else {
    await spend(Math.min(extend.after, work), plan.busy);
    emit({ op: "extend", type: "invoke", fence: lease.fence, ttl: extend.ttl });
    await lease.extend(extend.ttl).then(
      () => emit({ op: "extend", type: "ok", fence: lease.fence }),
      (error: unknown) =>
        emit({ op: "extend", type: "fail", fence: lease.fence, code: codeOf(error) }),
    );
    await spend(work - extend.after, plan.busy);
  }
  await store({
    op: "write",
    resource: plan.key,
    fence: lease.fence,
    value: read.value + 1,
    // Without fencing, a careful client can only stop once it knows the lease is lost.
    plain: lease.signal.aborted ? undefined : read.plain + 1,
  });
  if (plan.throwAfterWrite) throw new Error(THROWN);
}

/** A locker over the plan's transport, and how to close what was opened for it. */
function connect(plan: Plan): { locker: Locker; close: () => Promise<void> } {
  const options = {
    prefix: plan.prefix,
    ...(plan.retries === undefined ? {} : { retries: plan.retries }),
    ...(plan.maxRetryDelay === undefined ? {} : { maxRetryDelay: plan.maxRetryDelay }),
    ...(plan.driftFactor === undefined ? {} : { driftFactor: plan.driftFactor }),
  };
  const { transport } = plan;
  if (transport.kind === "upstash") {
    const client = new Upstash({ url: transport.url, token: transport.token });
    const adapter = upstashAdapter(client, { requestTimeout: transport.requestTimeout });
    return { locker: createLocker({ adapter, ...options }), close: async () => {} };
  }
  // As an application would configure it: reconnect quickly, fail queued commands soon.
  const client = new Redis(transport.url, { retryStrategy: () => 50, maxRetriesPerRequest: 2 });
  client.on("error", () => {});
  const adapter = ioredisAdapter(client, { commandTimeout: transport.commandTimeout });
  return { locker: createLocker({ adapter, ...options }), close: async () => client.disconnect() };
}

/** Takes, extends and releases a private lock once, so every script is cached before faults. */
async function warmUp(locker: Locker): Promise<void> {
  const lease = await locker.tryAcquire(`warm-up-${process.pid}`, 1_000);
  await lease?.extend(1_000);
  await lease?.release();
  await locker.inspect(`warm-up-${process.pid}`);
}

/** Sends a request to the fenced store (in the harness process) and waits for its answer. */
function store(request: StoreRequest): Promise<StoreReply> {
  const id = nextRequest++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    send({ type: "store", id, request });
  });
}

/** The `code` of a LockError, else the error's name (`AbortError`, `Error`). */
function codeOf(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const { code, name } = error as { code?: unknown; name?: unknown };
    if (typeof code === "string") return code;
    if (typeof name === "string") return name;
  }
  return String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Spends `ms` milliseconds sleeping, or busy (blocking the event loop, as CPU-bound code would). */
async function spend(ms: number, busy = false): Promise<void> {
  if (ms <= 0) return;
  if (!busy) return sleep(ms);
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

/** How many timers this process has active. */
function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === "Timeout").length;
}
