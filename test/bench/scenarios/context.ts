/**
 * What every scenario gets: the settings, the Redis under test, and a way to count wire commands.
 */

import type { BenchConfig } from "../config.js";
import { CommandCounter } from "../monitor.js";
import type { BenchRedis } from "../server.js";

export interface BenchContext {
  readonly config: BenchConfig;
  readonly redis: BenchRedis;
  /** Progress lines go to stderr, so stdout carries only the tables. */
  log(message: string): void;
}

/** A measurement, or why a library could not be measured. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

/** Runs `measure`, turning a failure into an {@link Outcome} that the tables show. */
export async function attempt<T>(measure: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await measure() };
  } catch (error) {
    return { ok: false, error: describeError(error) };
  }
}

export function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.split("\n")[0]?.slice(0, 160) ?? "error";
}

/**
 * Runs `count` with a MONITOR connection open and returns its result with the wire commands
 * Redis received meanwhile (scripts' inner commands excluded). MONITOR is closed afterwards, so
 * timed work outside `count` runs at full speed.
 */
export async function withCommandCount<T>(
  context: BenchContext,
  count: (counter: CommandCounter) => Promise<T>,
): Promise<{ result: T; commands: number }> {
  const counter = await CommandCounter.open(context.redis.port);
  try {
    await counter.sync(context.redis.admin);
    counter.reset();
    const result = await count(counter);
    await counter.sync(context.redis.admin);
    return { result, commands: counter.count };
  } finally {
    counter.close();
  }
}
