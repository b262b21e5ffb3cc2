/**
 * Every chaos scenario, in the order of design/reliability.md §3.
 */

import type { Scenario } from "../scenario.js";
import {
  abortDuringAcquire,
  cpuHogDuringHold,
  eventLoopBlocked,
  holderKilled,
  holderPaused,
  releaseFailsToo,
} from "./client-faults.js";
import {
  ambiguousAcquireHttp,
  ambiguousAcquireTcp,
  blackholeDuringAcquire,
  blackholeDuringHold,
  latency,
  resetStorm,
} from "./network-faults.js";
import { contention, extensionEdges, staleRelease } from "./semantics.js";
import { redisPaused, redisRestarted, redisUnavailable } from "./server-faults.js";

/** The scenarios the suite runs. */
export const scenarios: readonly Scenario[] = [
  contention,
  staleRelease,
  extensionEdges,
  holderPaused,
  eventLoopBlocked,
  abortDuringAcquire,
  releaseFailsToo,
  ambiguousAcquireTcp,
  ambiguousAcquireHttp,
  blackholeDuringAcquire,
  blackholeDuringHold,
  resetStorm,
  latency,
  redisPaused,
  redisRestarted,
  holderKilled,
  redisUnavailable,
  cpuHogDuringHold,
];
