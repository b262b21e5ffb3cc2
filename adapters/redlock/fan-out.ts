/**
 * Sending one script to every instance at once, each with its own deadline, and counting the
 * answers as votes.
 *
 * @module
 */

import type { LockAdapter } from "edgelock";

/** What one instance answered: its reply, or why there was none. */
export type Answer = { readonly reply: unknown } | { readonly error: unknown };

/** The answers of a fan-out, by instance; `undefined` for an instance that has not answered yet. */
export type Answers = readonly (Answer | undefined)[];

/**
 * The independent Redis instances and the rules they vote by.
 */
export interface Cluster {
  readonly instances: readonly LockAdapter[];
  /** ⌊N/2⌋ + 1: any two quorums share an instance. */
  readonly quorum: number;
  /** How long one instance may take to answer one script, in ms. */
  readonly timeout: number;
}

/**
 * How a vote came out: `"yes"` when a quorum said yes, `"no"` when too few could still say yes
 * even if every silent instance did, `"unknown"` otherwise.
 */
export type Verdict = "yes" | "no" | "unknown";

/**
 * Runs `run` on every instance in parallel and resolves with the answers so far as soon as
 * `settled(answers)` is true, or once all have answered. An instance that is slower than
 * `timeout` ms answers with an error; one still running when the fan-out settles goes on alone
 * and its answer is dropped (never left as an unhandled rejection).
 */
export function fanOut(
  instances: readonly LockAdapter[],
  timeout: number,
  run: (instance: LockAdapter) => Promise<unknown>,
  settled: (answers: Answers) => boolean,
): Promise<Answers> {
  return new Promise((resolve) => {
    const answers: (Answer | undefined)[] = instances.map(() => undefined);
    let left = instances.length;
    instances.forEach((instance, index) => {
      void ask(instance, timeout, run).then((answer) => {
        answers[index] = answer;
        left -= 1;
        if (left === 0 || settled(answers)) resolve([...answers]);
      });
    });
  });
}

/** A vote's count: instances that said yes, said no, or failed, timed out or gave a bad reply. */
export interface Tally {
  readonly yes: number;
  readonly no: number;
  readonly silent: number;
  /** The first failure, if any, for messages. */
  readonly failure: unknown;
}

/**
 * Counts the answers of a fan-out: `isYes` picks the replies that say yes and `isNo` those that
 * say no; any other reply, a failure or no answer yet counts as silent.
 */
export function tally(
  answers: Answers,
  isYes: (reply: unknown) => boolean,
  isNo: (reply: unknown) => boolean,
): Tally {
  let yes = 0;
  let no = 0;
  let failure: unknown;
  for (const answer of answers) {
    if (answer && "reply" in answer && isYes(answer.reply)) yes += 1;
    else if (answer && "reply" in answer && isNo(answer.reply)) no += 1;
    else if (answer && "error" in answer) failure ??= answer.error;
  }
  return { yes, no, silent: answers.length - yes - no, failure };
}

/**
 * A script's reply of 1: yes (released, extended, raised). A release that also handed the lock
 * to a waiter answers the announcement instead, which is a yes too.
 */
export const isOne = (reply: unknown): boolean => reply === 1 || typeof reply === "string";

/** A script's reply of 0: no (this token does not hold the lock there). */
export const isZero = (reply: unknown): boolean => reply === 0;

/** What a tally means: see {@link Verdict}. */
export function verdictOf({ yes, silent }: Tally, quorum: number): Verdict {
  if (yes >= quorum) return "yes";
  return yes + silent < quorum ? "no" : "unknown";
}

/**
 * A `settled` test for {@link fanOut} that stops waiting as soon as the vote is decided either
 * way: a quorum said yes, or too few are left who could.
 */
export function decided(
  quorum: number,
  isYes: (reply: unknown) => boolean,
  isNo: (reply: unknown) => boolean,
): (answers: Answers) => boolean {
  return (answers) => verdictOf(tally(answers, isYes, isNo), quorum) !== "unknown";
}

/** The failure of a vote that came out unknown, saying why (the cause is the first failure). */
export function noQuorum(what: string, tally: Tally, quorum: number): Error {
  const { yes, no, silent, failure } = tally;
  const reason = failure instanceof Error ? `; first failure: ${failure.message}` : "";
  return new Error(
    `${what}: no quorum of ${quorum} among ${yes + no + silent} instances (${yes} agreed, ${no} refused, ${silent} failed or did not answer)${reason}`,
    { cause: failure },
  );
}

/** Runs `run` on one instance within `timeout` ms; never rejects. */
async function ask(
  instance: LockAdapter,
  timeout: number,
  run: (instance: LockAdapter) => Promise<unknown>,
): Promise<Answer> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
  });
  try {
    return { reply: await Promise.race([run(instance), late]) };
  } catch (error) {
    return { error };
  } finally {
    clearTimeout(timer);
  }
}
