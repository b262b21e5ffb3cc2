/**
 * The TypeScript twins of the core's scripts, by script, for the in-memory backend. Only
 * `edgelock/memory` imports this, so bundles that talk to Redis carry none of it.
 *
 * @module
 */

import type { LockScript, ScriptEmulation } from "./adapter.js";
import { abandonScript, emulateAbandon } from "./idempotency/scripts/abandon.js";
import { appendScript, emulateAppend } from "./idempotency/scripts/append.js";
import { beginScript, emulateBegin } from "./idempotency/scripts/begin.js";
import { emulateFinish, finishScript } from "./idempotency/scripts/finish.js";
import { emulateRenew, renewScript } from "./idempotency/scripts/renew.js";
import { acquireScript, emulateAcquire } from "./scripts/acquire.js";
import { emulateExtend, extendScript } from "./scripts/extend.js";
import { emulateInspect, inspectScript } from "./scripts/inspect.js";
import { emulateRelease, releaseScript } from "./scripts/release.js";

const EMULATIONS = new Map<string, ScriptEmulation>([
  [acquireScript.sha1, emulateAcquire],
  [releaseScript.sha1, emulateRelease],
  [extendScript.sha1, emulateExtend],
  [inspectScript.sha1, emulateInspect],
  [beginScript.sha1, emulateBegin],
  [renewScript.sha1, emulateRenew],
  [finishScript.sha1, emulateFinish],
  [appendScript.sha1, emulateAppend],
  [abandonScript.sha1, emulateAbandon],
]);

/**
 * The emulation of `script`; throws for a script it does not know (the in-memory backend runs
 * the core's scripts only).
 *
 * @example
 * ```ts
 * emulationOf(acquireScript)(store, keys, args);
 * ```
 */
export function emulationOf(script: LockScript): ScriptEmulation {
  const emulation = EMULATIONS.get(script.sha1);
  if (!emulation) throw new Error(`the in-memory backend has no emulation of "${script.name}"`);
  return emulation;
}
