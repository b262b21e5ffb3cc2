/**
 * Acquiring on a quorum: the acquire script runs on every instance at once; the lock is taken when
 * a quorum granted it and then acknowledged the fence. Anything less is undone everywhere before
 * the caller hears of it, so a failed attempt never leaves a partial lock behind.
 *
 * The acquire waits for every instance, up to the timeout: an unresponsive (not refusing)
 * instance costs each acquisition that much time, as in the original algorithm, and in return
 * the fence is the largest of all the grants, so every instance's counter ends at the fence
 * handed out.
 *
 * @module
 */

import { acquireScript, type LockAdapter, releaseScript } from "edgelock";
import {
  type Answers,
  type Cluster,
  decided,
  fanOut,
  isOne,
  isZero,
  noQuorum,
  type Tally,
  tally,
  verdictOf,
} from "./fan-out.js";
import { raiseFenceScript } from "./raise-fence.js";

/** One instance's acquire reply: `[status, fence, pttl]` (see the core's acquire script). */
type AcquireReply = readonly [status: 0 | 1 | 2, fence: number, pttl: number];

/**
 * Runs the core's acquire script (its KEYS and ARGV passed through as they are) on a quorum, and
 * answers as the script does on one Redis:
 *
 * - `[1, fence, ttl]` when a quorum granted it (`[2, ...]` if every grant was a renewal of this
 *   token's hold). `fence` is the largest any of them minted, now the floor of the counter of
 *   every granting instance, a quorum of which confirmed it still held the lock; `ttl` the
 *   shortest lease granted, counted from when each instance ran the script (the locker counts
 *   it from before the request and subtracts the drift, so the whole round is accounted for).
 * - `[0, 0, pttl]` when the holders of other tokens leave no quorum; `pttl` is the shortest
 *   lease among them (-1 if unknown), the earliest the answer could change.
 *
 * Rejects when failures leave the outcome unknown. In both failure cases this token has been
 * released on every instance first (waiting at most the timeout for each).
 */
export async function acquireOnQuorum(
  cluster: Cluster,
  keys: readonly string[],
  args: readonly string[],
): Promise<AcquireReply> {
  const { instances, quorum, timeout } = cluster;
  // No line of waiters: a quorum has no single place to keep one, and no announcements reach its
  // waiters (they poll). A caller asking to wait in line (ARGV[4], with its inbox in ARGV[5])
  // just makes an attempt.
  const attempt = [...args.slice(0, 3), "0"];
  // Every instance gets its say (up to the timeout), so the fence is the largest any of them
  // minted; only a lost cause ends the wait early.
  const answers = await fanOut(
    instances,
    timeout,
    (instance) => instance.evalScript(acquireScript, keys, attempt),
    (sofar) => verdictOf(tally(sofar, isGrant, isRefusal), quorum) === "no",
  );
  const votes = tally(answers, isGrant, isRefusal);
  const verdict = verdictOf(votes, quorum);
  if (verdict === "yes") {
    const grants = grantsIn(answers, instances, Number(args[2]));
    const fence = Math.max(...grants.map((grant) => grant.reply[1]));
    const raised = await raiseFence(cluster, grants, keys, args, fence);
    const confirmed = verdictOf(raised, quorum);
    if (confirmed === "yes") {
      const renewed = grants.every((grant) => grant.reply[0] === 2);
      return [renewed ? 2 : 1, fence, Math.min(...grants.map((grant) => grant.reply[2]))];
    }
    await releaseEverywhere(cluster, keys, args);
    if (confirmed === "no") return [0, 0, -1]; // the grants ran out before the fence was set
    throw noQuorum("acquire (raising the fence)", raised, quorum);
  }
  await releaseEverywhere(cluster, keys, args);
  if (verdict === "no") return [0, 0, shortestHold(answers)];
  throw noQuorum("acquire", votes, quorum);
}

/**
 * An acquire reply, or undefined for anything else (which then counts as a failure). A bare fence
 * (the script's answer when it granted the lease asked for) becomes `[1, fence, ttl]`.
 */
function acquireReply(reply: unknown, ttl = 0): AcquireReply | undefined {
  if (typeof reply === "number") {
    return Number.isSafeInteger(reply) && reply > 0 ? [1, reply, ttl] : undefined;
  }
  if (!Array.isArray(reply) || reply.length !== 3) return undefined;
  if (!reply.every((value) => typeof value === "number" && Number.isSafeInteger(value))) {
    return undefined;
  }
  return [0, 1, 2].includes(reply[0]) ? (reply as unknown as AcquireReply) : undefined;
}

const isGrant = (reply: unknown) => (acquireReply(reply)?.[0] ?? 0) > 0;
const isRefusal = (reply: unknown) => acquireReply(reply)?.[0] === 0;

/** The instances that granted the lock, with their replies (`ttl`: the lease asked for). */
function grantsIn(
  answers: Answers,
  instances: readonly LockAdapter[],
  ttl: number,
): { instance: LockAdapter; reply: AcquireReply }[] {
  return answers.flatMap((answer, index) => {
    const reply = answer && "reply" in answer ? acquireReply(answer.reply, ttl) : undefined;
    const instance = instances[index];
    return reply && reply[0] > 0 && instance ? [{ instance, reply }] : [];
  });
}

/**
 * Raises the fencing counter to `fence` on every granting instance that still holds the lock for
 * this token, and counts those that did. A counter that lost its expiry gets the one the locker
 * asked the acquire for (its `fenceRetention`, or the lease if longer: ARGV[2]).
 */
async function raiseFence(
  cluster: Cluster,
  grants: readonly { instance: LockAdapter }[],
  keys: readonly string[],
  args: readonly string[],
  fence: number,
): Promise<Tally> {
  const raise = [tokenOf(args), String(fence), retentionOf(args)];
  const answers = await fanOut(
    grants.map((grant) => grant.instance),
    cluster.timeout,
    (instance) => instance.evalScript(raiseFenceScript, keys.slice(0, 2), raise),
    decided(cluster.quorum, isOne, isZero),
  );
  return tally(answers, isOne, isZero);
}

/**
 * Runs the core's release script (a compare-and-delete: it removes only this token's lock) on
 * every instance, waiting at most the timeout for each. Failures are ignored: a lock left behind
 * on an unreachable instance expires with its lease.
 */
async function releaseEverywhere(
  cluster: Cluster,
  keys: readonly string[],
  args: readonly string[],
): Promise<void> {
  const release = args.slice(0, 2); // an acquire's first two arguments are its release's
  await fanOut(
    cluster.instances,
    cluster.timeout,
    (instance) => instance.evalScript(releaseScript, keys, release),
    () => false,
  );
}

/** The token: ARGV[1] of every lock script. */
function tokenOf(args: readonly string[]): string {
  return args[0] ?? "";
}

/** How long the counter is kept, in ms: ARGV[2] of the acquire script. */
function retentionOf(args: readonly string[]): string {
  return args[1] ?? "";
}

/** The shortest lease among the instances held by other tokens; -1 if none is known. */
function shortestHold(answers: Answers): number {
  const leases = answers.flatMap((answer) => {
    const reply = answer && "reply" in answer ? acquireReply(answer.reply) : undefined;
    return reply && reply[0] === 0 && reply[2] >= 0 ? [reply[2]] : [];
  });
  return leases.length > 0 ? Math.min(...leases) : -1;
}
