/**
 * The small bridge between `node:http` and the Fetch API that {@link startGateway} serves the
 * Hono app with.
 *
 * - The request body is handed over as a stream with backpressure, never buffered here, so the
 *   app's size limit applies while reading.
 * - Once the response is written, whatever the app left unread of the body (a 413) is read and
 *   discarded, so the client, still uploading, gets the response on an open connection, and the
 *   next request on it is not stuck behind the rest of the body. Past {@link DISCARD_LIMIT}
 *   bytes the connection is closed instead.
 * - The response (small JSON) is written in one piece with its length.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";

/** Anything with the `fetch` of a Hono app. */
export interface FetchHandler {
  fetch(request: Request): Response | Promise<Response>;
}

/** How many bytes of an unread request body are discarded before closing the connection. */
export const DISCARD_LIMIT = 64 * 1024 * 1024;

/** A stream over `req`'s body, and a way to throw away what the app did not read. */
function bodyOf(req: IncomingMessage): { stream: ReadableStream<Uint8Array>; discard(): void } {
  let listening = false;
  let done = false;
  let discarding = false;
  let discarded = 0;
  const discard = () => {
    done = true;
    if (req.complete || discarding) return;
    discarding = true;
    req.on("data", (chunk: Buffer) => {
      discarded += chunk.byteLength;
      if (discarded > DISCARD_LIMIT) req.socket.destroy();
    });
    req.resume();
  };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!listening) {
        listening = true;
        req.on("data", (chunk: Buffer) => {
          if (done) return;
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 0) <= 0) req.pause();
        });
        req.on("end", () => {
          if (!done) controller.close();
          done = true;
        });
        req.on("close", () => {
          if (!done) controller.error(new Error("the connection closed before the body ended"));
          done = true;
        });
      }
      req.resume();
    },
    cancel: discard,
  });
  return { stream, discard };
}

/** A Fetch `Request` for `req`; throws a TypeError for a target that is not a path. */
function toRequest(req: IncomingMessage, origin: string, body: ReadableStream<Uint8Array>) {
  const target = req.url ?? "/";
  if (!target.startsWith("/")) throw new TypeError("the request target must be a path");
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  const init: RequestInit & { duplex?: "half" } = {
    method,
    headers,
    body: hasBody ? body : null,
    duplex: "half",
  };
  return new Request(`${origin}${target}`, init);
}

/** Writes `response` (small, so in one piece); with `close`, the connection closes after it. */
async function writeResponse(res: ServerResponse, response: Response, close: boolean) {
  const body = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  headers["content-length"] = String(body.byteLength);
  if (close) headers.connection = "close";
  res.writeHead(response.status, headers);
  res.end(body);
}

/**
 * Answers one `node:http` request with `app`. Never throws and always answers: a request that
 * cannot be turned into a Fetch `Request` (a bad target or header) gets a JSON 400, a failure
 * of the app a JSON 500. With `close`, the connection closes after the response.
 *
 * @param origin `http://host:port`, the origin of the request URLs the app sees.
 */
export async function answer(
  app: FetchHandler,
  req: IncomingMessage,
  res: ServerResponse,
  origin: string,
  close: boolean,
): Promise<void> {
  const body = bodyOf(req);
  let response: Response;
  try {
    response = await app.fetch(toRequest(req, origin, body.stream));
  } catch (error) {
    const status = error instanceof TypeError ? 400 : 500;
    const message = status === 400 ? "ERR bad request" : "ERR internal gateway error";
    response = Response.json({ error: message }, { status });
  }
  try {
    await writeResponse(res, response, close);
  } catch {
    res.destroy(); // the client is gone; nothing was lost that it could still receive
  }
  body.discard();
}
