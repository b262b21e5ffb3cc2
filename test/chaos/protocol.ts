/**
 * The messages between the chaos harness and its client processes (Node IPC, JSON), and the plan
 * a client process runs.
 */

import type { HistoryEvent } from "./history.js";

/** How a client process reaches Redis. */
export type Transport =
  /** ioredis over TCP (usually through the fault proxy). */
  | { kind: "ioredis"; url: string; commandTimeout: number }
  /** `@upstash/redis` over HTTP (through the HTTP fault proxy to the gateway), SDK retries on. */
  | { kind: "upstash"; url: string; token: string; requestTimeout: number };

/** What one client process does in one run: `iterations` critical sections on one key. */
export interface Plan {
  transport: Transport;
  /** The locker's key prefix (unique per run, so runs never share keys). */
  prefix: string;
  /** Locker options (`retries`, `maxRetryDelay`, `driftFactor`); defaults when absent. */
  retries?: number;
  maxRetryDelay?: number;
  driftFactor?: number;
  /** The lock key, which is also the fenced store's resource name. */
  key: string;
  /** Lease length, ms. */
  ttl: number;
  iterations: number;
  /** `using`: `locker.using(fn)` with auto-extension; `acquire`: acquire, work, `release()`. */
  api: "using" | "acquire";
  /** How long `acquire` waits for a held lock, ms. */
  timeout: number;
  /** Keep retrying an acquire that failed with LOCK_UNAVAILABLE for this long, ms (default 0). */
  retryFor?: number;
  /** Abort the acquire's signal this many ms after invoking it. */
  abortAfter?: number;
  /** Time spent inside the critical section between the read and the write, ms [min, max]. */
  work: [number, number];
  /** Spend `work` busy-waiting (blocking the event loop) instead of sleeping. */
  busy?: boolean;
  /** `after` ms into the work, call `lease.extend(ttl)` (api `acquire`: nothing else extends). */
  extend?: { after: number; ttl: number };
  /** After the write, throw from the critical section. */
  throwAfterWrite?: boolean;
  /**
   * Keep the connection open up to this many ms after the last iteration (or until `wrap-up`),
   * so the library's background cleanup of an abandoned or failed acquire can still reach Redis,
   * and a leaked extender would still be at work (default 0).
   */
  linger?: number;
  /** Pause between iterations, ms [min, max]. */
  gap: [number, number];
  /** Take and release a lock once before `ready`, so scripts are cached (default true). */
  warm?: boolean;
  /** Seed of the process's own random timings. */
  seed: number;
}

/** The marker message of the error a critical section throws with `throwAfterWrite`. */
export const THROWN = "chaos: the critical section failed";

/** A fenced-store request from a client process. */
export type StoreRequest =
  | { op: "read"; resource: string; fence: number }
  | {
      op: "write";
      resource: string;
      fence: number;
      value: number;
      /** The unfenced counter's new value; absent when the client knows it lost the lease. */
      plain: number | undefined;
    };

/** The fenced store's answer; a stale request gets `accepted: false`. */
export interface StoreReply {
  accepted: boolean;
  value: number;
  plain: number;
}

/** Harness → client process. */
export type ToWorker =
  | { type: "run"; plan: Plan }
  | { type: "go" }
  /** Stop lingering: the harness has seen what it waited for. */
  | { type: "wrap-up" }
  | { type: "store"; id: number; reply: StoreReply };

/** Client process → harness. */
export type FromWorker =
  /** Loaded and listening for a plan. */
  | { type: "hello" }
  /** Connected (and warmed up): the harness may inject faults, then send `go`. */
  | { type: "ready" }
  | { type: "event"; event: HistoryEvent }
  | { type: "store"; id: number; request: StoreRequest }
  /** The run is over; `timers` is how many more timers are active than before it began. */
  | { type: "done"; timers: number };
