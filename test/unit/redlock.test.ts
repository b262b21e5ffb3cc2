/// <reference types="node" />
/**
 * The quorum adapter's rules, over scripted instances (no Redis): input checks, how replies are
 * combined, what is undone on failure, and that the locker on top never returns an expired grant.
 * test/integration/redlock.test.ts runs it against real redis-servers.
 */
import { createHash } from "node:crypto";
import {
  acquireScript,
  createLocker,
  extendScript,
  inspectScript,
  type LockAdapter,
  type LockScript,
  lockNames,
  releaseScript,
} from "edgelock";
import { redlockAdapter } from "edgelock/redlock";
import { describe, expect, it } from "vitest";
import { raiseFenceScript } from "../../adapters/redlock/raise-fence.js";
import { beginScript } from "../../src/idempotency/scripts/begin.js";

const names = lockNames("t", "job");
const KEYS = [names.lock, names.fence, names.queue, names.waiters];
const TOKEN = "el1.unit-token";
const ACQUIRE_ARGS = [TOKEN, "604800000", "1000", "0"];

/** One call an instance received. */
interface Call {
  script: string;
  keys: readonly string[];
  args: readonly string[];
}

/** What a scripted instance answers to one call: a reply, a failure, or never. */
type Script = (call: Call) => unknown;

const NEVER = Symbol("never answers");
const FAIL = Symbol("fails");

/** An instance that answers each script by name from `replies` (1 for scripts not listed). */
function instance(replies: Partial<Record<string, unknown>> = {}): LockAdapter & { calls: Call[] } {
  const calls: Call[] = [];
  const answer: Script = (call) => (call.script in replies ? replies[call.script] : 1);
  return {
    name: "scripted",
    calls,
    evalScript: (script: LockScript, keys, args) => {
      const call = { script: script.name, keys, args };
      calls.push(call);
      const reply = answer(call);
      if (reply === NEVER) return new Promise(() => {});
      if (reply === FAIL) return Promise.reject(new Error("ECONNREFUSED"));
      return Promise.resolve(reply);
    },
  };
}

const scriptsSent = (instances: { calls: Call[] }[]) =>
  instances.map((one) => one.calls.map((call) => call.script));

describe("redlockAdapter: input", () => {
  const a = instance();
  const b = instance();
  const c = instance();

  it.each([
    ["no array", undefined, "instances"],
    ["an empty array", [], "instances"],
    ["a client instead of adapters", { evalsha: () => 0 }, "instances"],
    ["an even count", [a, b], "instances"],
    ["four instances", [a, b, c, instance()], "instances"],
    ["a non-adapter entry", [a, b, { evalsha: () => 0 }], "instances[2]"],
    ["a null entry", [a, null, c], "instances[1]"],
    ["the same adapter twice", [a, b, a], "instances[2]"],
  ])("rejects %s with INVALID_ARGUMENT", (_, instances, argument) => {
    const error = (() => {
      try {
        redlockAdapter(instances as LockAdapter[]);
      } catch (thrown) {
        return thrown;
      }
    })();
    expect(error).toMatchObject({ code: "INVALID_ARGUMENT", argument });
  });

  it.each([0, -5, 1.5, Number.NaN, "100"])("rejects a timeout of %s", (timeout) => {
    expect(() => redlockAdapter([a, b, c], { timeout: timeout as number })).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT", argument: "timeout" }),
    );
  });

  it("sends nothing while checking, and accepts one or three instances", () => {
    expect(() => redlockAdapter([a, b, c], null as unknown as object)).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT", argument: "options" }),
    );
    expect(redlockAdapter([a]).name).toBe("redlock(1)");
    expect(redlockAdapter([a, b, c], { timeout: 50 }).name).toBe("redlock(3)");
    expect(scriptsSent([a, b, c])).toEqual([[], [], []]);
  });

  it("refuses scripts other than the lock's, without sending them", async () => {
    const adapter = redlockAdapter([a, b, c]);
    await expect(adapter.evalScript(beginScript, ["k"], [])).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      argument: "script",
    });
    expect(scriptsSent([a, b, c])).toEqual([[], [], []]);
  });

  it("offers no release notifications (waiters poll)", () => {
    expect(redlockAdapter([a, b, c]).subscribe).toBeUndefined();
  });

  it("raise-fence script: sha1 is the SHA-1 of its lua", () => {
    const actual = createHash("sha1").update(raiseFenceScript.lua, "utf8").digest("hex");
    expect(raiseFenceScript.sha1).toBe(actual);
  });
});

describe("redlockAdapter: acquire", () => {
  it("keeps no line of waiters: a request to wait in line is sent as a plain attempt", async () => {
    const instances = [1, 2, 3].map(() => instance({ acquire: [0, 0, 500] }));
    const inLine = [...ACQUIRE_ARGS.slice(0, 3), "5000", "t:inbox:unit"];
    expect(await redlockAdapter(instances).evalScript(acquireScript, KEYS, inLine)).toEqual([
      0, 0, 500,
    ]);
    for (const one of instances) expect(one.calls[0]?.args).toEqual(ACQUIRE_ARGS);
  });

  it("reads bare fences (a fresh grant's reply) as grants of the lease asked for", async () => {
    const refusal = [0, 0, 500]; // the third instance is held by another token
    const instances = [10, 30, refusal].map((reply) => instance({ acquire: reply }));
    const adapter = redlockAdapter(instances);
    expect(await adapter.evalScript(acquireScript, KEYS, ACQUIRE_ARGS)).toEqual([1, 30, 1000]);
    expect(scriptsSent(instances).slice(0, 2)).toEqual(
      Array(2).fill(["acquire", "redlock-raise-fence"]),
    );
  });

  it("takes the largest fence and raises every granting counter to it first", async () => {
    const instances = [10, 30, 20].map((fence) => instance({ acquire: [1, fence, 1000] }));
    const adapter = redlockAdapter(instances);
    expect(await adapter.evalScript(acquireScript, KEYS, ACQUIRE_ARGS)).toEqual([1, 30, 1000]);
    expect(scriptsSent(instances)).toEqual(Array(3).fill(["acquire", "redlock-raise-fence"]));
    for (const one of instances) {
      expect(one.calls[0]).toMatchObject({ keys: KEYS, args: ACQUIRE_ARGS });
      expect(one.calls[1]).toMatchObject({
        keys: KEYS.slice(0, 2),
        args: [TOKEN, "30", "604800000"],
      });
    }
  });

  it("keeps a raised counter as the locker keeps counters: its fenceRetention, or the lease", async () => {
    for (const [ttl, kept] of [
      [1_000, "60000"],
      [90_000, "90000"],
    ] as const) {
      const instances = [10, 30, 20].map((fence) => instance({ acquire: fence }));
      const locker = createLocker({ adapter: redlockAdapter(instances), fenceRetention: 60_000 });
      expect(await locker.tryAcquire("job", ttl)).not.toBeNull();
      for (const one of instances) {
        expect(one.calls[0]?.args[1]).toBe(kept);
        expect(one.calls[1]).toMatchObject({ script: "redlock-raise-fence" });
        expect(one.calls[1]?.args[2]).toBe(kept);
      }
    }
  });

  it("needs a quorum of grants, raises only the granters, and answers 2 for renewals", async () => {
    const refusing = instance({ acquire: [0, 0, 900] });
    const renewing = [instance({ acquire: [2, 7, 1000] }), instance({ acquire: [2, 5, 800] })];
    const adapter = redlockAdapter([refusing, ...renewing]);
    expect(await adapter.evalScript(acquireScript, KEYS, ACQUIRE_ARGS)).toEqual([2, 7, 800]);
    expect(scriptsSent([refusing, ...renewing])).toEqual([
      ["acquire"],
      ["acquire", "redlock-raise-fence"],
      ["acquire", "redlock-raise-fence"],
    ]);
  });

  it("answers 'held' with the shortest holder lease, after releasing its own grants everywhere", async () => {
    const instances = [
      instance({ acquire: [1, 3, 1000] }),
      instance({ acquire: [0, 0, 300] }),
      instance({ acquire: [0, 0, 200] }),
    ];
    const adapter = redlockAdapter(instances);
    expect(await adapter.evalScript(acquireScript, KEYS, ACQUIRE_ARGS)).toEqual([0, 0, 200]);
    expect(scriptsSent(instances)).toEqual(Array(3).fill(["acquire", "release"]));
    expect(instances[1]?.calls[1]).toMatchObject({ keys: KEYS, args: ACQUIRE_ARGS.slice(0, 2) });
  });

  it("rejects when failures leave the outcome unknown, after releasing everywhere", async () => {
    const instances = [
      instance({ acquire: [1, 3, 1000] }),
      instance({ acquire: FAIL, release: FAIL }),
      instance({ acquire: ["1", "3", "1000"] }), // a mangled reply counts as a failure
    ];
    const adapter = redlockAdapter(instances);
    const error = await adapter.evalScript(acquireScript, KEYS, ACQUIRE_ARGS).catch((e) => e);
    expect(String(error)).toMatch(
      /acquire: no quorum of 2 among 3 instances \(1 agreed, 0 refused, 2 failed/,
    );
    expect(String(error)).toContain("ECONNREFUSED");
    expect(scriptsSent(instances)).toEqual(Array(3).fill(["acquire", "release"]));
  });

  it("does not count grants whose fence a quorum did not take (expired meanwhile)", async () => {
    const instances = [
      instance({ acquire: [1, 3, 1000], "redlock-raise-fence": 0 }),
      instance({ acquire: [1, 4, 1000], "redlock-raise-fence": 0 }),
      instance({ acquire: [1, 5, 1000] }),
    ];
    const adapter = redlockAdapter(instances);
    expect(await adapter.evalScript(acquireScript, KEYS, ACQUIRE_ARGS)).toEqual([0, 0, -1]);
    expect(scriptsSent(instances)).toEqual(
      Array(3).fill(["acquire", "redlock-raise-fence", "release"]),
    );
  });

  it("waits up to the timeout for a silent instance, then acquires with the quorum", async () => {
    const grant = { acquire: [1, 9, 1000] };
    const silent = instance({ acquire: NEVER });
    const adapter = redlockAdapter([instance(grant), silent, instance(grant)], { timeout: 50 });
    const started = performance.now();
    expect(await adapter.evalScript(acquireScript, KEYS, ACQUIRE_ARGS)).toEqual([1, 9, 1000]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(49);
    expect(scriptsSent([silent])).toEqual([["acquire"]]); // no fence to raise there
  });

  it("answers 'held' without waiting once a quorum is out of reach", async () => {
    const refuse = { acquire: [0, 0, 500], release: 0 };
    const adapter = redlockAdapter(
      [instance(refuse), instance({ acquire: NEVER, release: 0 }), instance(refuse)],
      { timeout: 60_000 },
    );
    const started = performance.now();
    expect(await adapter.evalScript(acquireScript, KEYS, ACQUIRE_ARGS)).toEqual([0, 0, 500]);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("counts an instance slower than the timeout as failed", async () => {
    const adapter = redlockAdapter(
      [instance({ acquire: NEVER, release: NEVER }), instance({ acquire: NEVER }), instance()],
      { timeout: 30 },
    );
    const started = performance.now();
    await expect(adapter.evalScript(acquireScript, KEYS, ACQUIRE_ARGS)).rejects.toThrow(
      /no answer within 30 ms/,
    );
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe("redlockAdapter: release, extend, inspect", () => {
  it.each([
    [[1, 1, 0], 1],
    [[1, 0, 0], 0],
    [[0, FAIL, 0], 0],
  ])("release/extend replies %j → %s", async (replies, expected) => {
    const instances = replies.map((reply) => instance({ release: reply, extend: reply }));
    const adapter = redlockAdapter(instances);
    expect(await adapter.evalScript(releaseScript, KEYS, [TOKEN, ""])).toBe(expected);
    expect(await adapter.evalScript(extendScript, KEYS, ACQUIRE_ARGS)).toBe(expected);
  });

  it("counts a release that also handed the lock over (its announcement) as released", async () => {
    const instances = ["AAAAAAAAAAAA 7", 1, 0].map((reply) => instance({ release: reply }));
    expect(await redlockAdapter(instances).evalScript(releaseScript, KEYS, [TOKEN, ""])).toBe(1);
  });

  it("rejects a release whose outcome is unknown", async () => {
    const adapter = redlockAdapter([
      instance(),
      instance({ release: FAIL }),
      instance({ release: 0 }),
    ]);
    await expect(adapter.evalScript(releaseScript, KEYS, [TOKEN, ""])).rejects.toThrow(
      /release: no quorum of 2/,
    );
  });

  it("inspects what a quorum holds, with the largest fence seen", async () => {
    const adapter = redlockAdapter([
      instance({ inspect: [1, 900, 40, 1] }),
      instance({ inspect: [1, 700, 41, 1] }),
      instance({ inspect: [0, -2, 12, 0] }),
    ]);
    expect(await adapter.evalScript(inspectScript, KEYS, [TOKEN])).toEqual([1, 700, 41, 1]);
    const split = redlockAdapter([
      instance({ inspect: [1, 900, 40, 1] }),
      instance({ inspect: FAIL }),
      instance({ inspect: [0, -2, 12, 0] }),
    ]);
    expect(await split.evalScript(inspectScript, KEYS, [TOKEN])).toEqual([0, -2, 40, 0]);
    const lost = redlockAdapter([
      instance({ inspect: FAIL }),
      instance({ inspect: FAIL }),
      instance(),
    ]);
    await expect(lost.evalScript(inspectScript, KEYS, [""])).rejects.toThrow(/inspect: no quorum/);
  });
});

describe("redlockAdapter under the locker", () => {
  it("releases a grant that arrives with no validity left instead of returning it", async () => {
    const slow = () => {
      const one = instance({ acquire: [1, 5, 50] });
      const inner = one.evalScript;
      one.evalScript = async (script, keys, args) => {
        if (script === acquireScript) await new Promise((resolve) => setTimeout(resolve, 80));
        return inner(script, keys, args);
      };
      return one;
    };
    const instances = [slow(), slow(), slow()];
    const locker = createLocker({ adapter: redlockAdapter(instances), retries: 0 });
    const started = performance.now();
    expect(await locker.tryAcquire("job", 50)).toBeNull();
    expect(performance.now() - started).toBeGreaterThanOrEqual(79);
    for (const sent of scriptsSent(instances)) expect(sent.at(-1)).toBe("release");
    expect(
      scriptsSent(instances)
        .flat()
        .filter((name) => name === "release"),
    ).toHaveLength(3);
  });
});
