/**
 * Releasing and extending on a quorum.
 *
 * @module
 */

import type { LockScript } from "edgelock";
import {
  type Cluster,
  decided,
  fanOut,
  isOne,
  isZero,
  noQuorum,
  tally,
  verdictOf,
} from "./fan-out.js";

/**
 * Runs a script that answers 1 or 0 (the core's release or extend, its KEYS and ARGV passed
 * through) on every instance: 1 when a quorum answered 1, 0 when too few could have, and a
 * rejection when failures leave it unknown. It answers as soon as the vote is decided; the
 * slower instances still get the script.
 */
export async function voteOnQuorum(
  cluster: Cluster,
  script: LockScript,
  keys: readonly string[],
  args: readonly string[],
): Promise<0 | 1> {
  const { instances, quorum, timeout } = cluster;
  const answers = await fanOut(
    instances,
    timeout,
    (instance) => instance.evalScript(script, keys, args),
    decided(quorum, isOne, isZero),
  );
  const votes = tally(answers, isOne, isZero);
  const verdict = verdictOf(votes, quorum);
  if (verdict === "unknown") throw noQuorum(script.name, votes, quorum);
  return verdict === "yes" ? 1 : 0;
}
