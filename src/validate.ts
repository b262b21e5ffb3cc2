/**
 * Argument checks that run before any network call. Each throws {@link InvalidArgumentError} with a
 * message that names the argument and shows the rejected value.
 *
 * @module
 */

import { InvalidArgumentError } from "./errors.js";

/** The longest lock key accepted, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 1024;

/** The shortest lease accepted, in milliseconds: shorter ones expire before a round trip ends. */
export const MIN_TTL = 10;

/** The longest duration accepted anywhere, in milliseconds (2^31 − 1, about 24.8 days: the timer limit). */
export const MAX_DURATION = 2_147_483_647;

/**
 * Checks a lock key: a non-empty, well-formed (see {@link checkWellFormed}) string of at most
 * {@link MAX_KEY_LENGTH} characters.
 */
export function checkKey(key: unknown, argument = "key"): string {
  if (typeof key !== "string") {
    throw new InvalidArgumentError(
      argument,
      `${argument} must be a string, got ${describeValue(key)}`,
    );
  }
  if (key.length === 0) {
    throw new InvalidArgumentError(argument, `${argument} must not be empty`);
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw new InvalidArgumentError(
      argument,
      `${argument} must be at most ${MAX_KEY_LENGTH} characters, got ${key.length}`,
    );
  }
  return checkWellFormed(key, argument);
}

/**
 * Checks that a string that will name something in Redis is well-formed UTF-16: no lone
 * surrogate. Strings travel as UTF-8, where a lone surrogate becomes U+FFFD, so `"a\uD800"` and
 * `"a\uFFFD"` would name the same key: the first is refused instead. The message shows the value
 * with the surrogate escaped.
 *
 * @example
 * ```ts
 * checkWellFormed("a\uD800", "key"); // throws: key must be well-formed Unicode: a lone surrogate ...
 * ```
 */
export function checkWellFormed(value: string, argument: string): string {
  if (isWellFormed(value)) return value;
  const at = LONE_SURROGATE.exec(value)?.index ?? 0;
  const unit = value.charCodeAt(at).toString(16).toUpperCase();
  throw new InvalidArgumentError(
    argument,
    `${argument} must be well-formed Unicode: a lone surrogate (U+${unit} at index ${at}) would ` +
      `reach Redis as U+FFFD, the name of another key; got ${describeValue(value)}`,
  );
}

/**
 * A lone surrogate: with the `u` flag a well-formed pair is read as one code point outside this
 * range, so only unpaired halves match.
 */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * True if `value` has no lone surrogate: `String.prototype.isWellFormed` where the runtime has it
 * (Node 20, workerd), a regular expression on older ones.
 */
function isWellFormed(value: string): boolean {
  const native = (value as { isWellFormed?: () => boolean }).isWellFormed;
  return typeof native === "function" ? native.call(value) : !LONE_SURROGATE.test(value);
}

/**
 * Checks a duration in integer milliseconds within `[min, MAX_DURATION]`.
 *
 * @example
 * ```ts
 * checkDuration(1.5, "ttl", MIN_TTL); // throws: ttl must be an integer number of milliseconds ...
 * ```
 */
export function checkDuration(value: unknown, argument: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new InvalidArgumentError(
      argument,
      `${argument} must be an integer number of milliseconds, got ${describeValue(value)}`,
    );
  }
  if (value < min || value > MAX_DURATION) {
    throw new InvalidArgumentError(
      argument,
      `${argument} must be between ${min} and ${MAX_DURATION} milliseconds, got ${value}`,
    );
  }
  return value;
}

/** Checks that `value` is a function. */
export function checkFunction<F extends (...args: never[]) => unknown>(
  value: unknown,
  argument: string,
): F {
  if (typeof value !== "function") {
    throw new InvalidArgumentError(
      argument,
      `${argument} must be a function, got ${describeValue(value)}`,
    );
  }
  return value as F;
}

/**
 * Checks an optional AbortSignal. Signals are recognised by shape, not class: sandboxes such as
 * Vercel's edge runtime hand out request signals from another realm.
 */
export function checkSignal(value: unknown, argument = "signal"): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  const candidate = value as Partial<AbortSignal> | null;
  if (
    typeof candidate?.aborted === "boolean" &&
    typeof candidate.addEventListener === "function" &&
    typeof candidate.removeEventListener === "function"
  ) {
    return value as AbortSignal;
  }
  throw new InvalidArgumentError(
    argument,
    `${argument} must be an AbortSignal, got ${describeValue(value)}`,
  );
}

/**
 * Shows a rejected value in a message without dumping large objects: strings quoted (cut at 40
 * characters), numbers and booleans as they are, objects by their type.
 *
 * @example
 * ```ts
 * `ttl must be a number, got ${describeValue("100")}`; // ttl must be a number, got "100"
 * ```
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string")
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  if (value === null || value === undefined) return String(value);
  return typeof value;
}
