/**
 * Reading and validating request bodies.
 *
 * - The body is read as a stream and counted as it arrives; past the limit, reading stops and the
 *   request gets 413. A `Content-Length` over the limit is refused before reading anything.
 * - The body is parsed as JSON whatever the `Content-Type`.
 * - A command is a non-empty array of strings, numbers and booleans. Numbers become `String(n)`,
 *   booleans `"true"`/`"false"`. `null`, objects and nested arrays are refused: the client sends
 *   `null` only for an `undefined` argument, and serializes objects to JSON strings itself.
 *
 * @module
 */

import type { Command } from "./commands";
import { GatewayError } from "./errors";

/** The default limit on a request body, in bytes: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

const tooLarge = (maxBytes: number) =>
  new GatewayError(413, `ERR request body too large: the limit is ${maxBytes} bytes`);

/**
 * Reads `request`'s body as UTF-8 text, at most `maxBytes` bytes of it.
 *
 * @throws {GatewayError} 413 past the limit; 400 if the body cannot be read.
 */
export async function readBody(request: Request, maxBytes: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  if (request.body === null) return "";

  const reader = request.body.getReader();
  const decoder = new TextDecoder();
  let received = 0;
  let text = "";
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (cause) {
      throw new GatewayError(400, "ERR the request body could not be read", { cause });
    }
    if (chunk.done) return text + decoder.decode();
    received += chunk.value.byteLength;
    if (received > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    text += decoder.decode(chunk.value, { stream: true });
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new GatewayError(400, "ERR the request body is not valid JSON");
  }
}

/** A short description of a JSON value for error messages, never its content. */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? "an empty array" : "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** Validates one command and converts its arguments to strings; `where` prefixes errors. */
function toCommand(value: unknown, where: string): Command {
  if (!Array.isArray(value) || value.length === 0) {
    throw new GatewayError(400, `ERR ${where} must be a non-empty array, got ${kindOf(value)}`);
  }
  const args = value.map((arg: unknown, index) => {
    if (typeof arg === "string") return arg;
    if (typeof arg === "number" || typeof arg === "boolean") return String(arg);
    throw new GatewayError(
      400,
      `ERR ${where}: argument ${index} must be a string, number or boolean, got ${kindOf(arg)}`,
    );
  });
  const [name, ...rest] = args as [string, ...string[]];
  return [name, ...rest];
}

/**
 * Parses the body of a single-command request: `["set", "k", "v", "px", 30000]`.
 *
 * @throws {GatewayError} 400 when the body is not such an array.
 * @example
 * ```ts
 * parseCommand('["set","k",1.5,true]'); // ["set", "k", "1.5", "true"]
 * ```
 */
export function parseCommand(text: string): Command {
  return toCommand(parseJson(text), "the request body");
}

/**
 * Parses the body of a `/pipeline` or `/multi-exec` request: a non-empty array of commands.
 *
 * @throws {GatewayError} 400 when the body or any command in it is malformed.
 * @example
 * ```ts
 * parseCommands('[["incr","n"],["get","n"]]'); // [["incr", "n"], ["get", "n"]]
 * ```
 */
export function parseCommands(text: string): Command[] {
  const body = parseJson(text);
  if (!Array.isArray(body) || body.length === 0) {
    throw new GatewayError(
      400,
      `ERR the request body must be a non-empty array of commands, got ${kindOf(body)}`,
    );
  }
  return body.map((command: unknown, index) => toCommand(command, `command ${index}`));
}
