/// <reference types="node" />
/**
 * A TCP proxy on a free loopback port between clients and a server (redis-server), with faults
 * switched at runtime: latency with jitter, random connection resets, a blackhole, lost replies,
 * refused connections, and heal.
 *
 * A TCP stream cannot lose bytes without corrupting what follows, so the faults keep streams
 * whole: a "dropped packet" resets the connection it belonged to (an RST storm at 30 % is
 * `dropProbability(0.3)`), a blackhole holds the bytes back until healed (as TCP retransmission
 * would deliver them), and lost replies are discarded only until heal, which then resets every
 * connection that lost one (request applied, reply lost, connection reset).
 */

import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

/** A running proxy. */
export interface TcpFaultProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Client connections currently open. */
  readonly connections: number;
  /** The port new connections are forwarded to. */
  readonly target: number;
  /** Delays every chunk by `ms` ± `jitter` ms (uniform), keeping each direction in order. */
  latency(ms: number, jitter?: number): void;
  /** Each chunk (and each new connection) resets its connection with probability `p`. */
  dropProbability(p: number): void;
  /** Accepts connections but forwards nothing, either way, until {@link heal}. */
  blackhole(): void;
  /** Forwards requests but discards the server's replies until {@link heal}. */
  dropReplies(): void;
  /** Resets every open connection and every new one until {@link heal}. */
  refuse(): void;
  /** Resets every open connection once (new ones are forwarded). */
  reset(): void;
  /** Sends new connections to another port (open ones are reset). */
  retarget(port: number): void;
  /**
   * Back to plain forwarding: no latency or drops; bytes held by a blackhole are delivered;
   * connections that lost replies are reset.
   */
  heal(): void;
  close(): Promise<void>;
}

type Direction = "up" | "down";
type Mode = "forward" | "blackhole" | "drop-replies" | "refuse";

/** Faults in force, read by every link. */
interface Faults {
  mode: Mode;
  latency: number;
  jitter: number;
  dropProbability: number;
  random: () => number;
}

/** One client connection and its connection to the server. */
class Link {
  readonly #faults: Faults;
  readonly #ends: Record<Direction, Socket>;
  readonly #queues: Record<Direction, { at: number; chunk: Buffer }[]> = { up: [], down: [] };
  readonly #timers: Record<Direction, ReturnType<typeof setTimeout> | undefined> = {
    up: undefined,
    down: undefined,
  };
  /** Bytes a blackhole held back, in arrival order. */
  readonly #held: { direction: Direction; chunk: Buffer }[] = [];
  lostReplies = false;
  closed = false;

  constructor(client: Socket, server: Socket, faults: Faults, onClose: () => void) {
    this.#faults = faults;
    this.#ends = { up: server, down: client };
    for (const socket of [client, server]) {
      socket.on("error", () => this.cut());
      socket.on("close", () => {
        this.cut();
        onClose();
      });
    }
    client.on("data", (chunk: Buffer) => this.carry("up", chunk));
    server.on("data", (chunk: Buffer) => this.carry("down", chunk));
  }

  /** Passes a chunk on, subject to the faults in force. */
  carry(direction: Direction, chunk: Buffer): void {
    const faults = this.#faults;
    if (this.closed) return;
    if (faults.dropProbability > 0 && faults.random() < faults.dropProbability) {
      this.cut();
    } else if (faults.mode === "blackhole") {
      this.#held.push({ direction, chunk });
    } else if (faults.mode === "drop-replies" && direction === "down") {
      this.lostReplies = true;
    } else {
      this.#forward(direction, chunk);
    }
  }

  /** Delivers what a blackhole held back, in order, under the faults now in force. */
  release(): void {
    for (const { direction, chunk } of this.#held.splice(0)) this.carry(direction, chunk);
  }

  /** Resets both connections (RST where possible). */
  cut(): void {
    if (this.closed) return;
    this.closed = true;
    for (const direction of ["up", "down"] as const) {
      clearTimeout(this.#timers[direction]);
      const socket = this.#ends[direction];
      try {
        socket.resetAndDestroy();
      } catch {
        socket.destroy();
      }
    }
  }

  /** Writes a chunk after the latency in force, behind the chunks already waiting. */
  #forward(direction: Direction, chunk: Buffer): void {
    const faults = this.#faults;
    const delay = Math.max(0, faults.latency + (faults.random() * 2 - 1) * faults.jitter);
    const queue = this.#queues[direction];
    if (delay === 0 && queue.length === 0) {
      this.#ends[direction].write(chunk);
      return;
    }
    const last = queue.at(-1)?.at ?? 0;
    queue.push({ at: Math.max(performance.now() + delay, last), chunk });
    if (queue.length === 1) this.#schedule(direction);
  }

  /** Writes the due chunks of a direction's queue, then waits for the next one. */
  #schedule(direction: Direction): void {
    const queue = this.#queues[direction];
    const head = queue[0];
    if (head === undefined || this.closed) return;
    this.#timers[direction] = setTimeout(
      () => {
        while (queue.length > 0 && (queue[0]?.at ?? 0) <= performance.now()) {
          const next = queue.shift();
          if (next) this.#ends[direction].write(next.chunk);
        }
        this.#schedule(direction);
      },
      Math.max(0, head.at - performance.now()),
    );
  }
}

/** Starts a proxy in front of `127.0.0.1:targetPort`; `random` drives jitter and drops. */
export async function startTcpFaultProxy(
  targetPort: number,
  options: { random?: () => number } = {},
): Promise<TcpFaultProxy> {
  const faults: Faults = {
    mode: "forward",
    latency: 0,
    jitter: 0,
    dropProbability: 0,
    random: options.random ?? Math.random,
  };
  let target = targetPort;
  const links = new Set<Link>();
  const cutAll = () => {
    for (const link of links) link.cut();
  };

  const server: Server = createServer((client) => {
    if (faults.mode === "refuse" || faults.random() < faults.dropProbability) {
      client.on("error", () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = tcpConnect({ host: "127.0.0.1", port: target });
    const link: Link = new Link(client, upstream, faults, () => links.delete(link));
    links.add(link);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address bound");

  return {
    port: address.port,
    url: `redis://127.0.0.1:${address.port}`,
    get connections() {
      return links.size;
    },
    get target() {
      return target;
    },
    latency(ms, jitter = 0) {
      faults.latency = ms;
      faults.jitter = jitter;
    },
    dropProbability(p) {
      faults.dropProbability = p;
    },
    blackhole() {
      faults.mode = "blackhole";
    },
    dropReplies() {
      faults.mode = "drop-replies";
    },
    refuse() {
      faults.mode = "refuse";
      cutAll();
    },
    reset: cutAll,
    retarget(port) {
      target = port;
      cutAll();
    },
    heal() {
      faults.mode = "forward";
      faults.latency = 0;
      faults.jitter = 0;
      faults.dropProbability = 0;
      for (const link of links) {
        if (link.lostReplies) link.cut();
        else link.release();
      }
    },
    async close() {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
