/**
 * Keeping secrets out of ioredis errors: the failed command's arguments hold the lock token (or,
 * for the handshake, the password).
 *
 * @module
 */

/**
 * An ioredis error without the failed command's arguments: ioredis attaches them as
 * `command.args`, and Redis echoes them in "unknown command '…', with args beginning with: …". A
 * fresh Error with the same name and the message up to the echo; errors without either pass
 * through untouched.
 *
 * @example
 * ```ts
 * client.evalsha(sha1, 1, key, token).catch((error) => {
 *   throw withoutArguments(error);
 * });
 * ```
 */
export function withoutArguments<T>(error: T): T | Error {
  if (!(error instanceof Error)) return error;
  const echo = error.message.indexOf(", with args beginning with:");
  if (echo < 0 && !("command" in error)) return error;
  const clean = new Error(echo < 0 ? error.message : error.message.slice(0, echo));
  clean.name = error.name;
  return clean;
}
