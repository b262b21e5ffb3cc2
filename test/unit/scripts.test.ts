/// <reference types="node" />
import { createHash } from "node:crypto";
import {
  acquireScript,
  emulationOf,
  extendScript,
  HAND_OFF_BUDGET,
  inspectScript,
  type LockScript,
  releaseScript,
  type ScriptHost,
} from "edgelock";
import { beforeEach, describe, expect, it } from "vitest";
import { abandonScript } from "../../src/idempotency/scripts/abandon.js";
import { appendScript } from "../../src/idempotency/scripts/append.js";
import { beginScript } from "../../src/idempotency/scripts/begin.js";
import { finishScript } from "../../src/idempotency/scripts/finish.js";
import { renewScript } from "../../src/idempotency/scripts/renew.js";
import { handOffLua } from "../../src/scripts/hand-off.js";

const scripts: LockScript[] = [
  acquireScript,
  releaseScript,
  extendScript,
  inspectScript,
  beginScript,
  renewScript,
  finishScript,
  abandonScript,
  appendScript,
];

describe("script hashes", () => {
  it.each(scripts.map((script) => [script.name, script] as const))(
    "%s: sha1 is the SHA-1 of its lua",
    (name, script) => {
      const actual = createHash("sha1").update(script.lua, "utf8").digest("hex");
      expect(script.sha1, `${name}.sha1 is stale: the SHA-1 of its lua is ${actual}`).toBe(actual);
      expect(script.sha1).toMatch(/^[0-9a-f]{40}$/);
    },
  );

  it("every script has a distinct name and source", () => {
    expect(new Set(scripts.map((script) => script.name)).size).toBe(scripts.length);
    expect(new Set(scripts.map((script) => script.sha1)).size).toBe(scripts.length);
  });
});

interface Entry {
  value: string | Map<string, string> | string[];
  expiresAt: number;
}

/** A tiny ScriptHost with Redis semantics, a settable clock, and a log of every command. */
class FakeHost implements ScriptHost {
  now = 1_000;
  micros = 0;
  readonly entries = new Map<string, Entry>();
  readonly published: Array<[string, string]> = [];
  readonly log: string[] = [];
  /** Channels nobody subscribes to (the inboxes of processes that died); others have one. */
  readonly unheard = new Set<string>();

  #live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= this.now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  get(key: string): string | null {
    this.log.push(`get ${key}`);
    const value = this.#live(key)?.value;
    if (value !== undefined && typeof value !== "string") throw new Error("WRONGTYPE");
    return value ?? null;
  }
  set(key: string, value: string, ttl: number): void {
    this.log.push(`set ${key} ${value} ${ttl}`);
    this.entries.set(key, { value, expiresAt: this.now + ttl });
  }
  del(key: string): boolean {
    this.log.push(`del ${key}`);
    return this.#live(key) !== undefined && this.entries.delete(key);
  }
  pexpire(key: string, ttl: number): boolean {
    this.log.push(`pexpire ${key} ${ttl}`);
    const entry = this.#live(key);
    if (entry) entry.expiresAt = this.now + ttl;
    return entry !== undefined;
  }
  pttl(key: string): number {
    this.log.push(`pttl ${key}`);
    const entry = this.#live(key);
    if (!entry) return -2;
    if (entry.expiresAt === Number.POSITIVE_INFINITY) return -1;
    return Math.ceil(entry.expiresAt - this.now);
  }
  timeMicros(): number {
    return this.micros;
  }
  publish(channel: string, message: string): void {
    this.published.push([channel, message]);
  }
  hget(key: string, field: string): string | null {
    this.log.push(`hget ${key} ${field}`);
    return this.#hash(key)?.get(field) ?? null;
  }
  hset(key: string, fields: Readonly<Record<string, string>>): void {
    this.log.push(`hset ${key}`);
    const hash = this.#hash(key) ?? new Map<string, string>();
    for (const [field, value] of Object.entries(fields)) hash.set(field, value);
    if (!this.entries.has(key)) this.entries.set(key, { value: hash, expiresAt: Infinity });
  }
  hdel(key: string, field: string): boolean {
    this.log.push(`hdel ${key} ${field}`);
    const hash = this.#hash(key);
    const deleted = hash?.delete(field) ?? false;
    if (hash?.size === 0) this.entries.delete(key);
    return deleted;
  }
  lpush(key: string, value: string): void {
    this.log.push(`lpush ${key} ${value}`);
    const list = this.#live(key)?.value;
    if (Array.isArray(list)) list.unshift(value);
    else this.entries.set(key, { value: [value], expiresAt: Infinity });
  }
  lrem(key: string, value: string): void {
    this.log.push(`lrem ${key} ${value}`);
    const list = this.#live(key)?.value;
    if (!Array.isArray(list)) return;
    const at = list.indexOf(value);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.entries.delete(key);
  }
  subscribers(channel: string): number {
    this.log.push(`numsub ${channel}`);
    return this.unheard.has(channel) ? 0 : 1;
  }
  rpush(key: string, value: string): void {
    this.log.push(`rpush ${key} ${value}`);
    const list = this.#live(key)?.value;
    if (Array.isArray(list)) list.push(value);
    else this.entries.set(key, { value: [value], expiresAt: Infinity });
  }
  lpop(key: string): string | null {
    this.log.push(`lpop ${key}`);
    const list = this.#live(key)?.value;
    if (!Array.isArray(list)) return null;
    const first = list.shift() ?? null;
    if (list.length === 0) this.entries.delete(key);
    return first;
  }
  #hash(key: string): Map<string, string> | undefined {
    const value = this.#live(key)?.value;
    return value instanceof Map ? value : undefined;
  }

  /** Test-side helpers (not logged). */
  put(key: string, value: string, ttl = Number.POSITIVE_INFINITY): void {
    this.entries.set(key, { value, expiresAt: this.now + ttl });
  }
  value(key: string): string | undefined {
    const value = this.#live(key)?.value;
    return typeof value === "string" ? value : undefined;
  }
  /** The line's entries, oldest first. */
  lineEntries(): string[] {
    const value = this.#live(QUEUE)?.value;
    return Array.isArray(value) ? [...value] : [];
  }
  /** The tokens in line, oldest first (entries of waiters who left included). */
  line(): string[] {
    return this.lineEntries().map((entry) => entry.split(" ")[0] ?? "");
  }
  ttl(key: string): number | undefined {
    const entry = this.#live(key);
    return entry && entry.expiresAt - this.now;
  }
  snapshot(): string {
    const plain = (value: Entry["value"]) => (value instanceof Map ? [...value] : value);
    return JSON.stringify(
      [...this.entries].map(([k, e]) => [k, plain(e.value), e.expiresAt]).sort(),
    );
  }
}

const LOCK = "p:{k}";
const FENCE = "p:{k}:fence";
const QUEUE = "p:{k}:queue";
const WAITERS = "p:{k}:waiters";
/** Each waiter's client listens on its own inbox. */
const inboxOf = (token: string) => `p:inbox:${token.slice(0, 6)}`;
const KEYS = [LOCK, FENCE, QUEUE, WAITERS];
const RETENTION = 604_800_000;

let host: FakeHost;
beforeEach(() => {
  host = new FakeHost();
});

function acquire(
  token: string,
  ttl: number,
  retention = RETENTION,
  wait = 0,
  counted = "1",
): unknown {
  const args = [token, String(retention), String(ttl), String(wait)];
  if (wait > 0) args.push(inboxOf(token), counted);
  return emulationOf(acquireScript)(host, KEYS, args);
}

function release(token: string): unknown {
  return emulationOf(releaseScript)(host, KEYS, [token, String(RETENTION)]);
}

describe("acquire emulate", () => {
  it("takes a free lock: answers the bare fence, with the lock and counter set", () => {
    host.micros = 5;
    expect(acquire("t1", 3_000)).toBe(5);
    expect(host.value(LOCK)).toBe("t1");
    expect(host.ttl(LOCK)).toBe(3_000);
    expect(host.value(FENCE)).toBe("5");
    expect(host.ttl(FENCE)).toBe(RETENTION);
  });

  it.each([
    { counter: undefined, micros: 0, fence: 1 },
    { counter: "41", micros: 7, fence: 42 },
    { counter: "41", micros: 1_000_000, fence: 1_000_000 },
    { counter: "1700000000000000", micros: 1_699_999_999_999_999, fence: 1_700_000_000_000_001 },
    { counter: "1700000000000000", micros: 1_700_000_000_000_000, fence: 1_700_000_000_000_001 },
    { counter: "1700000000000000", micros: 1_700_000_000_000_002, fence: 1_700_000_000_000_002 },
  ])("fence = max(counter + 1, timeMicros): counter $counter, clock $micros", (c) => {
    if (c.counter !== undefined) host.put(FENCE, c.counter);
    host.micros = c.micros;
    expect(acquire("t1", 100)).toBe(c.fence);
    expect(host.value(FENCE)).toBe(String(c.fence));
    expect(host.value(FENCE)).toMatch(/^[1-9]\d*$/);
  });

  it("the same token retried gets {2, sameFence, ttl} and renews both keys without minting", () => {
    host.micros = 10;
    const fence = acquire("t1", 1_000);
    host.now += 600;
    host.micros = 99_999;
    expect(acquire("t1", 2_000, 5_000)).toEqual([2, fence, 2_000]);
    expect(host.value(FENCE)).toBe(String(fence));
    expect(host.value(LOCK)).toBe("t1");
    expect(host.ttl(LOCK)).toBe(2_000);
    expect(host.ttl(FENCE)).toBe(5_000);
    expect(host.log.filter((command) => command.startsWith("set"))).toHaveLength(2); // the first take only
  });

  it("a lock held by another token gives {0, 0, pttl} and changes nothing", () => {
    host.micros = 10;
    acquire("t1", 1_000);
    host.now += 250;
    const before = host.snapshot();
    expect(acquire("t2", 5_000)).toEqual([0, 0, 750]);
    expect(host.snapshot()).toBe(before);
    expect(host.log.filter((command) => command.startsWith("pexpire"))).toEqual([]);
  });

  it("a holder without expiry reports pttl -1", () => {
    host.put(LOCK, "other");
    expect(acquire("t2", 5_000)).toEqual([0, 0, -1]);
    expect(host.value(LOCK)).toBe("other");
  });

  it("an expired holder is replaced, with a fence above the old one", () => {
    host.micros = 50;
    const first = acquire("t1", 100);
    host.now += 100; // exactly at expiry: gone
    host.micros = 0; // a clock that went backwards must not lower the fence
    expect(acquire("t2", 100)).toBe(Number(first) + 1);
    expect(host.value(LOCK)).toBe("t2");
  });
});

describe("release emulate", () => {
  it("deletes the holder's lock and returns 1; with nobody waiting nothing is published", () => {
    host.micros = 1;
    acquire("t1", 1_000);
    expect(release("t1")).toBe(1);
    expect(host.value(LOCK)).toBeUndefined();
    expect(host.value(FENCE)).toBe("1"); // the counter survives the release
    expect(host.published).toEqual([]);
  });

  it("returns 0 for another token: the lock stays and nothing is published", () => {
    acquire("t1", 1_000);
    const before = host.snapshot();
    expect(release("t2")).toBe(0);
    expect(host.snapshot()).toBe(before);
    expect(host.published).toEqual([]);
  });

  it("returns 0 for a missing or expired lock without publishing", () => {
    expect(release("t1")).toBe(0);
    acquire("t1", 100);
    host.now += 100;
    expect(release("t1")).toBe(0);
    expect(host.published).toEqual([]);
    expect(host.log.some((command) => command.startsWith("del"))).toBe(false);
  });
});

describe("hand-off emulate", () => {
  const A = "el1.AAAAAAAAAAAAsecret-a";
  const B = "el1.BBBBBBBBBBBBsecret-b";

  it("a waiter that will wait joins the line once, with its ttl and the end of its wait", () => {
    host.micros = 1_000;
    acquire("holder", 1_000);
    expect(acquire(A, 2_000, RETENTION, 5_000)).toEqual([0, 0, 1_000]);
    host.micros = 2_000;
    expect(acquire(A, 2_000, RETENTION, 5_000)).toEqual([0, 0, 1_000]); // a retry keeps its place
    // One entry: token, lease, end of the wait in µs (from the first join), whether this Redis
    // counts its client's subscription, and its inbox; the same entry is the waiter's value.
    const entry = `${A} 2000 5001000 1 ${inboxOf(A)}`;
    expect(host.lineEntries()).toEqual([entry]);
    expect(host.snapshot()).toContain(JSON.stringify([A, entry]));
    expect(host.ttl(QUEUE)).toBe(5_000);
    expect(host.ttl(WAITERS)).toBe(5_000);
  });

  it("a caller that will not wait stays out of the line", () => {
    acquire("holder", 1_000);
    expect(acquire(A, 2_000)).toEqual([0, 0, 1_000]);
    expect(host.line()).toEqual([]);
  });

  it("release hands the lock to the oldest waiter with its own ttl and a new fence, and names it", () => {
    host.micros = 1_000;
    acquire("holder", 1_000);
    acquire(A, 2_000, RETENTION, 5_000);
    acquire(B, 3_000, RETENTION, 5_000);
    host.micros = 2_000;
    expect(release("holder")).toBe("AAAAAAAAAAAA 2000"); // released, and to whom
    expect(host.value(LOCK)).toBe(A);
    expect(host.ttl(LOCK)).toBe(2_000);
    expect(host.value(FENCE)).toBe("2000");
    expect(host.published).toEqual([[inboxOf(A), "AAAAAAAAAAAA 2000"]]); // to A's client only
    expect(host.line()).toEqual([B]);
    expect(acquire(A, 2_000, RETENTION, 5_000)).toEqual([2, 2_000, 2_000]); // the claim
  });

  it("skips waiters whose wait ended or who left the line", () => {
    host.micros = 1_000;
    acquire("holder", 1_000);
    acquire(A, 2_000, RETENTION, 1); // waits 1 ms: 1,000 µs
    acquire("gone", 2_000, RETENTION, 5_000);
    acquire(B, 2_000, RETENTION, 5_000);
    expect(release("gone")).toBe(0); // a waiter giving up leaves the line
    host.micros = 2_000;
    release("holder");
    expect(host.value(LOCK)).toBe(B);
    expect(host.published).toEqual([[inboxOf(B), "BBBBBBBBBBBB 2000"]]);
    expect(host.line()).toEqual([]);
  });

  it("a waiter who leaves takes its entry out of the line, so the line holds only waiters", () => {
    host.micros = 1_000;
    acquire("holder", 1_000);
    for (const token of [A, "gone-1", B, "gone-2"]) acquire(token, 2_000, RETENTION, 5_000);
    expect(release("gone-1")).toBe(0);
    expect(release("gone-2")).toBe(0);
    expect(host.line()).toEqual([A, B]);
    expect(release(A)).toBe(0);
    expect(release(B)).toBe(0);
    expect(host.entries.has(QUEUE)).toBe(false);
    expect(host.entries.has(WAITERS)).toBe(false);
    expect(release("holder")).toBe(1);
  });

  it("passes over waiters nobody listens for (their process died), in one release", () => {
    host.micros = 1_000;
    acquire("holder", 1_000);
    const dead = ["el1.DEAD00000001x", "el1.DEAD00000002x", "el1.DEAD00000003x"];
    for (const token of dead) {
      acquire(token, 2_000, RETENTION, 5_000);
      host.unheard.add(inboxOf(token));
    }
    acquire(B, 2_000, RETENTION, 5_000);
    host.micros = 2_000;
    expect(release("holder")).toBe("BBBBBBBBBBBB 2000");
    expect(host.value(LOCK)).toBe(B);
    expect(host.published).toEqual([[inboxOf(B), "BBBBBBBBBBBB 2000"]]);
    expect(host.line()).toEqual([]);
    expect(host.entries.has(WAITERS)).toBe(false);
    // The three dead waiters were one process's (one inbox): each inbox is counted once per call.
    expect(host.log.filter((command) => command.startsWith("numsub"))).toEqual([
      `numsub ${inboxOf(dead[0] ?? "")}`,
      `numsub ${inboxOf(B)}`,
    ]);
  });

  it("grants as before a waiter whose subscription this Redis may not count (Cluster)", () => {
    host.micros = 1_000;
    acquire("holder", 1_000);
    acquire(A, 2_000, RETENTION, 5_000, "0");
    host.unheard.add(inboxOf(A));
    expect(release("holder")).toBe("AAAAAAAAAAAA 1001");
    expect(host.log.some((command) => command.startsWith("numsub"))).toBe(false);
  });

  it("looks at no more than the budget of entries per call, then asks to be called again", () => {
    expect(handOffLua).toContain(`for _ = 1, ${HAND_OFF_BUDGET} do`); // the Lua's own bound
    host.micros = 1_000;
    acquire("holder", 1_000);
    host.unheard.add("p:inbox:dead");
    const dead = Array.from({ length: HAND_OFF_BUDGET + 10 }, (_, i) => `el1.dead-${i}`);
    for (const token of dead) {
      emulationOf(acquireScript)(host, KEYS, [
        token,
        String(RETENTION),
        "2000",
        "5000",
        "p:inbox:dead",
        "1",
      ]);
    }
    acquire(B, 2_000, RETENTION, 5_000);
    expect(release("holder")).toBe(-1);
    expect(host.value(LOCK)).toBe("holder"); // still held: nobody overtakes the line meanwhile
    expect(host.line()).toHaveLength(11);
    expect(release("holder")).toBe("BBBBBBBBBBBB 1001");
    expect(host.value(LOCK)).toBe(B);
  });

  it("a free lock goes to the head of the line, not to a newcomer; the head takes it itself", () => {
    host.micros = 1_000;
    acquire("holder", 100);
    acquire(A, 2_000, RETENTION, 5_000);
    acquire(B, 2_000, RETENTION, 5_000);
    host.now += 100; // the holder's lease ran out: nobody released
    host.micros = 3_000;
    expect(acquire("newcomer", 2_000)).toEqual([0, 0, 2_000]);
    expect(host.value(LOCK)).toBe(A);
    expect(host.published).toEqual([[inboxOf(A), "AAAAAAAAAAAA 3000"]]);
    host.now += 2_000;
    host.micros = 4_000;
    expect(acquire(B, 2_000, RETENTION, 5_000)).toEqual([1, 4_000, 2_000]);
    expect(host.published).toHaveLength(1); // the head that takes it is not told
  });
});

describe("extend emulate", () => {
  function extend(token: string, ttl: number, retention = RETENTION): unknown {
    return emulationOf(extendScript)(host, [LOCK, FENCE], [token, String(ttl), String(retention)]);
  }

  it("renews the holder's lease and the counter's retention: 1", () => {
    acquire("t1", 1_000, 2_000);
    host.now += 900;
    expect(extend("t1", 5_000, 9_000)).toBe(1);
    expect(host.ttl(LOCK)).toBe(5_000);
    expect(host.ttl(FENCE)).toBe(9_000);
    expect(host.value(LOCK)).toBe("t1");
  });

  it("never recreates a missing key: 0, and nothing is written", () => {
    host.put(FENCE, "7", 50_000);
    expect(extend("t1", 5_000)).toBe(0);
    expect(host.entries.has(LOCK)).toBe(false);
    expect(host.ttl(FENCE)).toBe(50_000);
    expect(host.log.filter((command) => !command.startsWith("get"))).toEqual([]);
  });

  it("never recreates an expired key", () => {
    acquire("t1", 100);
    host.now += 100;
    expect(extend("t1", 5_000)).toBe(0);
    expect(host.value(LOCK)).toBeUndefined();
    expect(host.entries.has(LOCK)).toBe(false);
  });

  it("returns 0 for another token and leaves its lease alone", () => {
    acquire("t1", 1_000);
    host.now += 100;
    expect(extend("t2", 5_000)).toBe(0);
    expect(host.value(LOCK)).toBe("t1");
    expect(host.ttl(LOCK)).toBe(900);
  });
});

describe("inspect emulate", () => {
  function inspect(token: string): unknown {
    return emulationOf(inspectScript)(host, [LOCK, FENCE], [token]);
  }

  it("free and never fenced: {0, -2, 0, 0}", () => {
    expect(inspect("")).toEqual([0, -2, 0, 0]);
  });

  it("free after a release: {0, -2, lastFence, 0}", () => {
    host.micros = 77;
    acquire("t1", 1_000);
    release("t1");
    expect(inspect("t1")).toEqual([0, -2, 77, 0]);
  });

  it("held: {1, pttl, fence, mine}, without changing anything", () => {
    host.micros = 77;
    acquire("t1", 1_000);
    host.now += 400;
    host.log.length = 0;
    const before = host.snapshot();
    expect(inspect("t1")).toEqual([1, 600, 77, 1]);
    expect(inspect("t2")).toEqual([1, 600, 77, 0]);
    expect(inspect("")).toEqual([1, 600, 77, 0]);
    expect(host.snapshot()).toBe(before);
    expect(host.log.filter((command) => /^(set|del|pexpire)/.test(command))).toEqual([]);
  });

  it("held without expiry: pttl -1", () => {
    host.put(LOCK, "t1");
    expect(inspect("t1")).toEqual([1, -1, 0, 1]);
  });
});
