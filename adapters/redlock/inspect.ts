/**
 * Inspecting a lock held on a quorum.
 *
 * @module
 */

import { inspectScript } from "edgelock";
import { type Cluster, fanOut, noQuorum, tally } from "./fan-out.js";

/** One instance's inspect reply: `[held, pttl, fence, mine]` (see the core's inspect script). */
type InspectReply = readonly [held: number, pttl: number, fence: number, mine: number];

/**
 * Runs the core's inspect script (its KEYS and ARGV passed through) on every instance and
 * answers as it does on one Redis, for the quorum:
 *
 * - `held` 1 when a quorum of instances hold the lock (an acquire would then be refused);
 * - `pttl` how long a quorum keeps holding it (-1 if that is forever, -2 when not held);
 * - `fence` the largest counter seen, which is at least the last fence handed out, since a quorum
 *   raised its counters to it and any quorum of answers includes one of them;
 * - `mine` 1 when a quorum hold it for the given token.
 *
 * Waits for every instance (at most the timeout) and rejects unless a quorum answered.
 */
export async function inspectOnQuorum(
  cluster: Cluster,
  keys: readonly string[],
  args: readonly string[],
): Promise<InspectReply> {
  const { instances, quorum, timeout } = cluster;
  const answers = await fanOut(
    instances,
    timeout,
    (instance) => instance.evalScript(inspectScript, keys, args),
    () => false,
  );
  const valid = (reply: unknown) => inspectReply(reply) !== undefined;
  const states = answers.flatMap((answer) => {
    const state = answer && "reply" in answer ? inspectReply(answer.reply) : undefined;
    return state ? [state] : [];
  });
  if (states.length < quorum)
    throw noQuorum(
      "inspect",
      tally(answers, valid, () => false),
      quorum,
    );
  const holding = states.filter(([held]) => held === 1);
  const held = holding.length >= quorum;
  const mine = states.filter(([, , , own]) => own === 1).length >= quorum;
  const fence = Math.max(...states.map(([, , minted]) => minted));
  return [held ? 1 : 0, held ? quorumLease(holding, quorum) : -2, fence, mine ? 1 : 0];
}

/** An inspect reply, or undefined for anything else (which then counts as a failure). */
function inspectReply(reply: unknown): InspectReply | undefined {
  const ok =
    Array.isArray(reply) &&
    reply.length === 4 &&
    reply.every((value) => typeof value === "number" && Number.isSafeInteger(value));
  return ok ? (reply as unknown as InspectReply) : undefined;
}

/**
 * How long at least `quorum` of the holding instances keep the lock: the quorum-th longest lease
 * (-1, no expiry, counts as the longest).
 */
function quorumLease(holding: readonly InspectReply[], quorum: number): number {
  const leases = holding
    .map(([, pttl]) => (pttl < 0 ? Number.POSITIVE_INFINITY : pttl))
    .sort((a, b) => b - a);
  const lease = leases[quorum - 1] ?? 0;
  return lease === Number.POSITIVE_INFINITY ? -1 : lease;
}
