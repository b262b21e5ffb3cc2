import {
  IdempotencyKeyInvalidError,
  InvalidArgumentError,
  isRepeatedField,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  parseIdempotencyKey,
  describeValue as show,
} from "edgelock";

/**
 * The HTTP events a Lambda function receives, as far as keys go: API Gateway REST (payload 1.0)
 * and HTTP APIs (payload 2.0), Application Load Balancers and function URLs.
 */
export interface HttpEvent {
  headers?: Readonly<Record<string, string | undefined>> | null;
  multiValueHeaders?: Readonly<Record<string, readonly string[] | undefined>> | null;
  httpMethod?: string;
  path?: string;
  rawPath?: string;
  requestContext?: { http?: { method?: string; path?: string } } | object;
}

/** The key functions made by {@link headerKey}: their keys come from clients. */
const CLIENT_KEYS = new WeakSet<object>();

/**
 * A `key` for {@link lambdaWithIdempotency} and {@link idempotencyMiddleware} that reads the
 * `Idempotency-Key` header (or `header`) of an HTTP event: an RFC 8941 String (`"abc"`) or a
 * bare value; undefined when there is none (the request then runs without idempotency).
 *
 * A key clients choose must be scoped to the caller, or another caller presenting the same key
 * gets the first one's response: pass a `scope` function (the authorizer's principal); without
 * one, a warning is printed once. Records are also scoped by method and path.
 *
 * @throws {IdempotencyKeyInvalidError} (400) for a key that is not 1 to 255 printable ASCII
 *   characters, or a request with several such headers, before any request to Redis.
 *
 * @example
 * ```ts
 * export const handler = middy(createOrder)
 *   .use(httpErrorHandler())
 *   .use(
 *     idempotencyMiddleware({
 *       adapter,
 *       key: headerKey(),
 *       scope: (event) => event.requestContext.authorizer.jwt.claims.sub,
 *     }),
 *   );
 * ```
 */
export function headerKey<E extends HttpEvent>(
  header = "Idempotency-Key",
): (event: E) => string | undefined {
  if (typeof header !== "string" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header)) {
    throw new InvalidArgumentError("header", `header must be a header name, got ${show(header)}`);
  }
  const name = header.toLowerCase();
  const key = (event: E): string | undefined => {
    const values = headerValues(event, name);
    const [value] = values;
    if (value === undefined) return undefined;
    if (values.length > 1 || isRepeatedField(value)) {
      throw new IdempotencyKeyInvalidError(
        `a request must carry one ${header} header, not several`,
      );
    }
    const parsed = parseIdempotencyKey(value);
    if (parsed === undefined) {
      throw new IdempotencyKeyInvalidError(
        `the ${header} header must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII ` +
          "characters, bare or as a quoted string",
      );
    }
    return parsed;
  };
  CLIENT_KEYS.add(key);
  return key;
}

/** True for a `key` made by {@link headerKey}: clients choose its keys. */
export function isClientKey(key: unknown): boolean {
  return typeof key === "function" && CLIENT_KEYS.has(key);
}

/** The method and path of an HTTP event, which scope the records of its client's keys. */
export function requestTarget(event: HttpEvent): [method: string, path: string] {
  const http = (event.requestContext as { http?: { method?: string; path?: string } } | undefined)
    ?.http;
  const method = http?.method ?? event.httpMethod ?? "";
  const path = event.rawPath ?? http?.path ?? event.path ?? "";
  return [method.toUpperCase(), path];
}

/** The values of header `name` (lowercase) in the event, one per field the client sent. */
function headerValues(event: HttpEvent, name: string): string[] {
  const multi = findHeader(event.multiValueHeaders, name);
  if (multi !== undefined) return [...multi];
  const single = findHeader(event.headers, name);
  return single === undefined ? [] : [single];
}

function findHeader<T>(
  headers: Readonly<Record<string, T | undefined>> | null | undefined,
  name: string,
): T | undefined {
  if (!headers) return undefined;
  for (const [field, value] of Object.entries(headers)) {
    if (value !== undefined && field.toLowerCase() === name) return value;
  }
  return undefined;
}
