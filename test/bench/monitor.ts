/// <reference types="node" />
/**
 * Counts the commands clients send to Redis, from `MONITOR` on a side connection. Commands that
 * scripts run inside Redis (`[0 lua]` lines) are not wire commands and are not counted; nor are
 * the counter's own sync markers.
 *
 * `INFO commandstats` cannot tell the two apart (a SET inside a script counts like a SET from a
 * client), which is why this reads MONITOR. MONITOR costs the server a little per command, so
 * it is switched on only while commands are being counted.
 */

import { randomUUID } from "node:crypto";
import { connect, type Socket } from "node:net";
import type { Redis } from "ioredis";

const SYNC_PREFIX = "bench-sync-";

export class CommandCounter {
  readonly #socket: Socket;
  #partial = "";
  #count = 0;
  readonly #clients = new Map<string, number>();
  readonly #commands = new Map<string, number>();
  readonly #markers = new Map<string, () => void>();

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.#read(chunk));
  }

  /** Opens a MONITOR connection to `port` on loopback; resolves once Redis has said OK. */
  static async open(port: number): Promise<CommandCounter> {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.once("connect", () => resolve());
    });
    const counter = new CommandCounter(socket);
    const ok = new Promise<void>((resolve) => counter.#markers.set("+OK", resolve));
    socket.write("MONITOR\r\n");
    await ok;
    return counter;
  }

  /** Commands counted since the last {@link reset}. */
  get count(): number {
    return this.#count;
  }

  /** Commands per client address (`127.0.0.1:port`) since the last {@link reset}. */
  get byClient(): ReadonlyMap<string, number> {
    return this.#clients;
  }

  /** Commands per command name (`evalsha`, `subscribe`, ...) since the last {@link reset}. */
  get byCommand(): ReadonlyMap<string, number> {
    return this.#commands;
  }

  reset(): void {
    this.#count = 0;
    this.#clients.clear();
    this.#commands.clear();
  }

  /**
   * Resolves once every command Redis ran before this call has been counted: sends a marker with
   * `ECHO` over `admin` and waits for MONITOR to show it.
   */
  async sync(admin: Redis): Promise<void> {
    const marker = `${SYNC_PREFIX}${randomUUID()}`;
    const seen = new Promise<void>((resolve) => this.#markers.set(marker, resolve));
    await admin.echo(marker);
    await seen;
  }

  close(): void {
    this.#socket.destroy();
  }

  #read(chunk: string): void {
    const lines = (this.#partial + chunk).split("\r\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.#line(line);
  }

  /** One MONITOR line: `+1700000000.123456 [0 127.0.0.1:50000] "set" "k" ...`. */
  #line(line: string): void {
    if (line === "+OK") {
      this.#markers.get("+OK")?.();
      return;
    }
    const open = line.indexOf("[");
    const close = line.indexOf("]", open);
    if (open < 0 || close < 0) return;
    const client = line.slice(line.indexOf(" ", open) + 1, close);
    if (client === "lua") return;
    const marker = line.indexOf(SYNC_PREFIX, close);
    if (marker >= 0) {
      const name = line.slice(marker, line.indexOf('"', marker));
      this.#markers.get(name)?.();
      this.#markers.delete(name);
      return;
    }
    this.#count++;
    this.#clients.set(client, (this.#clients.get(client) ?? 0) + 1);
    const name = line.slice(close + 3, line.indexOf('"', close + 3)).toLowerCase();
    this.#commands.set(name, (this.#commands.get(name) ?? 0) + 1);
  }
}
