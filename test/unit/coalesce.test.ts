import { describe, expect, it } from "vitest";
import { coalescer } from "../../adapters/coalesce.js";

/** A socket that records cork and uncork calls. */
function fakeSocket() {
  const log: string[] = [];
  return { log, socket: { cork: () => log.push("cork"), uncork: () => log.push("uncork") } };
}

const nextTick = () => new Promise<void>((resolve) => process.nextTick(resolve));

describe("coalescer", () => {
  it("leaves a request alone when nothing else is pending", () => {
    const { log, socket } = fakeSocket();
    const coalesce = coalescer(
      () => socket,
      () => 0,
    );
    coalesce();
    expect(log).toEqual([]);
  });

  it("corks once per turn while requests are pending, and uncorks on the next tick", async () => {
    const { log, socket } = fakeSocket();
    let pending = 3;
    const coalesce = coalescer(
      () => socket,
      () => pending,
    );
    coalesce();
    coalesce();
    coalesce();
    expect(log).toEqual(["cork"]);
    await nextTick();
    expect(log).toEqual(["cork", "uncork"]);
    coalesce(); // a later turn corks again
    pending = 0;
    coalesce();
    await nextTick();
    expect(log).toEqual(["cork", "uncork", "cork", "uncork"]);
  });

  it("does nothing for a connection without a socket to cork (a Cluster)", async () => {
    const coalesce = coalescer(
      () => undefined,
      () => 5,
    );
    expect(() => coalesce()).not.toThrow();
    const partial = coalescer(
      () => ({ cork: () => {} }),
      () => 5,
    );
    expect(() => partial()).not.toThrow();
  });
});
