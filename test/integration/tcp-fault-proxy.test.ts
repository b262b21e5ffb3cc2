/**
 * The TCP fault proxy in front of an echo server: each fault does what the chaos suite relies on.
 */

import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTcpFaultProxy, type TcpFaultProxy } from "../support/tcp-fault-proxy.js";

let echo: Server;
let echoPort: number;
const sockets: Socket[] = [];

beforeAll(async () => {
  echo = createServer((socket) => {
    socket.on("error", () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
  echoPort = (echo.address() as { port: number }).port;
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => echo.close(resolve));
});

/** A client of the proxy that collects what comes back and notes when it is closed. */
async function client(proxy: TcpFaultProxy) {
  const socket = connect({ host: "127.0.0.1", port: proxy.port });
  sockets.push(socket);
  const state = { received: "", closed: false };
  socket.on("data", (chunk) => {
    state.received += chunk.toString();
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    state.closed = true;
  });
  await new Promise((resolve) => {
    socket.once("connect", resolve);
    socket.once("close", resolve); // a refused connection may never report "connect"
  });
  return { socket, state };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (up to 2 s) until `check` holds. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await sleep(10);
  expect(check()).toBe(true);
}

describe("TCP fault proxy", () => {
  it("forwards both ways, delays with latency and keeps the order", async () => {
    const proxy = await startTcpFaultProxy(echoPort);
    const { socket, state } = await client(proxy);
    socket.write("a");
    await until(() => state.received === "a");
    proxy.latency(40, 30);
    const sent = performance.now();
    for (const letter of "bcdefg") socket.write(letter);
    await until(() => state.received === "abcdefg");
    expect(performance.now() - sent).toBeGreaterThanOrEqual(20); // at least 10 ms each way
    await proxy.close();
  });

  it("holds bytes in a blackhole and delivers them on heal", async () => {
    const proxy = await startTcpFaultProxy(echoPort);
    const { socket, state } = await client(proxy);
    proxy.blackhole();
    socket.write("held");
    await sleep(100);
    expect(state.received).toBe("");
    proxy.heal();
    await until(() => state.received === "held");
    expect(state.closed).toBe(false);
    await proxy.close();
  });

  it("loses replies until heal, which resets the connections that lost one", async () => {
    const proxy = await startTcpFaultProxy(echoPort);
    const losing = await client(proxy);
    proxy.dropReplies();
    losing.socket.write("lost");
    await sleep(100);
    const idle = await client(proxy); // connected during the fault but never answered
    proxy.heal();
    await until(() => losing.state.closed);
    expect(losing.state.received).toBe("");
    idle.socket.write("fine");
    await until(() => idle.state.received === "fine");
    expect(idle.state.closed).toBe(false);
    await proxy.close();
  });

  it("resets connections: all at once, refused ones, and at random", async () => {
    const proxy = await startTcpFaultProxy(echoPort, { random: () => 0 });
    const open = await client(proxy);
    proxy.reset();
    await until(() => open.state.closed);
    proxy.refuse();
    const refused = await client(proxy);
    await until(() => refused.state.closed);
    proxy.heal();
    const dropped = await client(proxy);
    proxy.dropProbability(0.5); // random() is 0: every chunk resets its connection
    dropped.socket.write("x");
    await until(() => dropped.state.closed);
    expect(dropped.state.received).toBe("");
    await proxy.close();
  });

  it("sends new connections to another port", async () => {
    const proxy = await startTcpFaultProxy(echoPort);
    const before = await client(proxy);
    const nothing = createServer();
    await new Promise<void>((resolve) => nothing.listen(0, "127.0.0.1", resolve));
    const port = (nothing.address() as { port: number }).port;
    await new Promise((resolve) => nothing.close(resolve));
    proxy.retarget(port);
    expect(proxy.target).toBe(port);
    await until(() => before.state.closed);
    const after = await client(proxy);
    await until(() => after.state.closed); // nothing listens there
    await proxy.close();
  });
});
