/**
 * What a chaos scenario is: a fault, the guarantee that must survive it, and the code that
 * injects one random instance of the fault (one run).
 */

import type { StackName } from "./environment.js";
import type { RunContext } from "./run-context.js";

/**
 * What the checker must find, beyond what every scenario must show (no accepted stale write, no
 * overlap among accepted writes, no lost fenced update, no fence going down or shared, no lease
 * resurrected, no orphan lock held for more than twice its ttl, no crashed client, and the lock
 * obtainable once the faults heal).
 */
export interface Promises {
  /** Mutual exclusion without fencing: no overlapping critical sections, no lost plain update. */
  exclusive: boolean;
  /** Every lost lease is signalled before its server-side expiry. */
  timelySignals?: boolean;
  /** Fencing visibly at work: at least one stale request rejected over all runs. */
  staleRejections?: boolean;
  /** The clients end every run with no more timers than they began it with. */
  noLeakedTimers?: boolean;
  /** Orphan locks may stay held for more than twice their ttl (the reason goes in a comment). */
  lingeringOrphans?: boolean;
}

/** One scenario of design/reliability.md §3. */
export interface Scenario {
  /** `S6` */
  id: string;
  title: string;
  /** The fault injected, for the results table. */
  fault: string;
  /** The guarantee checked, for the results table. */
  guarantee: string;
  /** Runs per suite run (`CHAOS_ITERATIONS` overrides). */
  iterations: number;
  /** The Redis setup of run `iteration` (default `main`). */
  stack?: (iteration: number) => StackName;
  promises: Promises;
  /** Injects one instance of the fault and asserts what only this scenario knows. */
  run(context: RunContext): Promise<void>;
}
