/**
 * An HTTP proxy on a free loopback port that sits between a REST client and its server, counts
 * requests, and injects faults on demand: a response dropped after the server executed the
 * command, a canned error page, or a request that never gets an answer.
 */

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** What the proxy does with the next requests. */
export type Fault =
  /** Forward, wait for the server's answer, then cut the connection without answering. */
  | { kind: "drop-response" }
  /** Answer with this status and body without forwarding. */
  | { kind: "respond"; status: number; body: string; contentType?: string }
  /** Forward nothing and never answer (until the proxy closes). */
  | { kind: "hang" };

/** A running proxy. */
export interface HttpFaultProxy {
  /** The proxy's base URL (same path layout as the target). */
  readonly url: string;
  /**
   * Every request seen, in order: method, path, parsed JSON body (or the raw text), and whether
   * the proxy has finished with it (answered it, or dropped or left it as its fault says).
   */
  readonly requests: { method: string; path: string; body: unknown; done: boolean }[];
  /** Applies `fault` to the next `count` requests (default 1), then goes back to forwarding. */
  inject(fault: Fault, count?: number): void;
  close(): Promise<void>;
}

/** Starts a proxy in front of `target` (an http://host:port base URL). */
export async function startHttpFaultProxy(target: string): Promise<HttpFaultProxy> {
  const requests: HttpFaultProxy["requests"] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = await readBody(req);
    const request = {
      method: req.method ?? "",
      path: req.url ?? "",
      body: parse(raw),
      done: false,
    };
    requests.push(request);
    const fault = faults.shift();
    if (fault?.kind === "hang") {
      request.done = true;
      return;
    }
    if (fault?.kind === "respond") {
      res.writeHead(fault.status, { "content-type": fault.contentType ?? "text/html" });
      res.end(fault.body);
      request.done = true;
      return;
    }
    const upstream = await fetch(new URL(req.url ?? "/", target), {
      method: req.method ?? "POST",
      headers: forwardable(req),
      body: req.method === "GET" || req.method === "HEAD" ? undefined : new Uint8Array(raw),
    });
    const body = Buffer.from(await upstream.arrayBuffer());
    request.done = true; // the target has executed it
    if (fault?.kind === "drop-response") {
      req.socket.destroy();
      return;
    }
    res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "" });
    res.end(body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    inject(fault, count = 1) {
      for (let i = 0; i < count; i++) faults.push(fault);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parse(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    return raw.toString("utf8");
  }
}

/** The request headers worth forwarding (hop-by-hop ones dropped). */
function forwardable(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (["host", "connection", "content-length", "transfer-encoding"].includes(name)) continue;
    if (typeof value === "string") headers[name] = value;
  }
  return headers;
}
