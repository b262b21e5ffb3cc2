/**
 * Adapter wrappers shared by the unit tests: they record every script call and let a test delay,
 * fail or reorder what the wrapped adapter does.
 */

import type { LockAdapter, LockScript, Unsubscribe } from "edgelock";

/** One `evalScript` call as a wrapper saw it. */
export interface ScriptCall {
  readonly script: string;
  readonly keys: readonly string[];
  readonly args: readonly string[];
  /** The reply, once it is known (undefined while in flight or after a failure). */
  reply?: unknown;
  /** The failure, if the call rejected. */
  error?: unknown;
  /** True once the call settled. */
  settled: boolean;
}

/**
 * Decides how one call runs: `run` executes it on the wrapped adapter. The default runs it at once.
 */
export type Around = (call: ScriptCall, run: () => Promise<unknown>) => Promise<unknown>;

/** A wrapped adapter and what it recorded. */
export interface Recording {
  readonly adapter: LockAdapter;
  readonly calls: ScriptCall[];
  readonly subscriptions: string[];
  /** Every message the subscriptions delivered, with its channel. */
  readonly messages: [channel: string, message: string][];
  /** How many subscriptions are active (subscribed and not yet unsubscribed). */
  active(): number;
  /** The calls of one script, by name. */
  of(script: string): ScriptCall[];
}

/** Wraps `inner`, recording every call and running each through `around`. */
export function record(inner: LockAdapter, around: Around = (_call, run) => run()): Recording {
  const calls: ScriptCall[] = [];
  const subscriptions: string[] = [];
  const messages: [channel: string, message: string][] = [];
  let active = 0;
  const subscribe = inner.subscribe?.bind(inner);
  const adapter: LockAdapter = {
    name: `recorded(${inner.name})`,
    ...(inner.subscriptions && { subscriptions: inner.subscriptions }),
    evalScript: async (script: LockScript, keys: readonly string[], args: readonly string[]) => {
      const call: ScriptCall = {
        script: script.name,
        keys: [...keys],
        args: [...args],
        settled: false,
      };
      calls.push(call);
      try {
        call.reply = await around(call, () => inner.evalScript(script, keys, args));
        return call.reply;
      } catch (error) {
        call.error = error;
        throw error;
      } finally {
        call.settled = true;
      }
    },
    ...(subscribe && {
      subscribe: async (
        channel: string,
        listener: (message: string) => void,
      ): Promise<Unsubscribe> => {
        subscriptions.push(channel);
        const unsubscribe = await subscribe(channel, (message) => {
          messages.push([channel, message]);
          listener(message);
        });
        active++;
        let done = false;
        return () => {
          if (!done) active--;
          done = true;
          unsubscribe();
        };
      },
    }),
  };
  return {
    adapter,
    calls,
    subscriptions,
    messages,
    active: () => active,
    of: (script) => calls.filter((call) => call.script === script),
  };
}

/** The number of active timers in this process. */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length;
}

/** What `promise` rejects with; fails if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

export { delay, gate } from "../support/async.js";
