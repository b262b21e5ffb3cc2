/**
 * Running commands on the shared ioredis connection and sorting out what came back.
 *
 * - Commands go out through `callBuffer` with the name upper-cased: ioredis keys its reply
 *   transformers (which turn `hgetall` into an object, `zrange ... withscores` into pairs, ...)
 *   by the lower-case name, so this returns Redis's own RESP2 shapes, with strings as Buffers.
 *   Only ASCII letters are upper-cased, as Redis folds them, so the name Redis runs is the name
 *   the gateway checked (`"ſelect"` stays an unknown command instead of becoming `SELECT`).
 * - A Redis error reply is an outcome like any other (`{error}`, status 400 for one command).
 *   Anything else (connection down, command timeout) is a {@link GatewayError} 503: the command
 *   may or may not have run, and the client must not take it for a Redis answer.
 * - Transactions use ioredis `multi()`, which writes MULTI, the commands and EXEC in one write,
 *   so no other request's command can land inside them.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { watchConnection } from "../connection-watch";
import { asciiUpperCase, type Command } from "./commands";
import { GatewayError } from "./errors";

/** What one command produced: its raw reply, or the text of a Redis error reply. */
export type Outcome = { reply: unknown } | { error: string };

/** True for an error reply from Redis (ioredis `ReplyError`), as opposed to a transport failure. */
function isRedisError(error: unknown): error is Error {
  return error instanceof Error && error.name === "ReplyError";
}

/**
 * The 503 for a failure that is not a Redis reply. While the connection cannot be made again, it
 * says why (`connect ECONNREFUSED …`) instead of what ioredis says of the command ("Stream isn't
 * writeable…").
 */
function unavailable(redis: Redis, error: unknown): GatewayError {
  const cause = watchConnection(redis)?.failure ?? error;
  const detail = cause instanceof Error ? cause.message : String(cause);
  const message = /timed out/i.test(detail)
    ? "ERR redis command timed out; it may or may not have been applied"
    : `ERR redis is unavailable: ${detail}`;
  return new GatewayError(503, message, { cause });
}

function settle(redis: Redis, result: PromiseSettledResult<unknown>): Outcome {
  if (result.status === "fulfilled") return { reply: result.value };
  if (isRedisError(result.reason)) return { error: result.reason.message };
  throw unavailable(redis, result.reason);
}

const send = (redis: Redis, [name, ...args]: Command) =>
  redis.callBuffer(asciiUpperCase(name), ...args);

/**
 * Runs one command.
 *
 * @throws {GatewayError} 503 when Redis did not answer.
 */
export async function runCommand(redis: Redis, command: Command): Promise<Outcome> {
  try {
    return { reply: await send(redis, command) };
  } catch (error) {
    if (isRedisError(error)) return { error: error.message };
    throw unavailable(redis, error);
  }
}

/**
 * Runs commands in order, not atomically; `skip[i]` set means "answer this error instead of
 * running command i". Every command gets an outcome, in order.
 *
 * @throws {GatewayError} 503 when Redis did not answer any one of them: the client treats a
 * failed batch as a whole, and reporting part of it as Redis errors would be wrong.
 */
export async function runPipeline(
  redis: Redis,
  commands: readonly Command[],
  skip: readonly (string | undefined)[],
): Promise<Outcome[]> {
  const results = await Promise.allSettled(
    commands.map((command, index) =>
      skip[index] === undefined ? send(redis, command) : Promise.resolve(null),
    ),
  );
  return results.map((result, index) => {
    const refusal = skip[index];
    return refusal === undefined ? settle(redis, result) : { error: refusal };
  });
}

/**
 * Runs commands as one MULTI/EXEC transaction.
 *
 * @throws {GatewayError} 400 with Redis's text when the transaction was discarded (EXECABORT);
 * 503 when Redis did not answer.
 */
export async function runTransaction(
  redis: Redis,
  commands: readonly Command[],
): Promise<Outcome[]> {
  const transaction = redis.multi();
  for (const [name, ...args] of commands) transaction.callBuffer(asciiUpperCase(name), ...args);
  let replies: [error: Error | null, reply: unknown][] | null;
  try {
    replies = await transaction.exec();
  } catch (error) {
    if (isRedisError(error)) throw new GatewayError(400, error.message, { cause: error });
    throw unavailable(redis, error);
  }
  if (replies === null) throw new GatewayError(400, "EXECABORT Transaction discarded");
  return replies.map(([error, reply]) => {
    if (error === null) return { reply };
    if (isRedisError(error)) return { error: error.message };
    throw unavailable(redis, error);
  });
}
