import {
  createLocker,
  IdempotencyStore,
  InvalidArgumentError,
  inboxName,
  lockNames,
  MAX_KEY_LENGTH,
  withIdempotency,
} from "edgelock";
import { memoryAdapter } from "edgelock/memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

/** CRC16/XMODEM (poly 0x1021, init 0), as Redis Cluster uses for key slots. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }

/**
 * Redis Cluster's HASH_SLOT: if the name has a `{` followed later by a `}` with at least one byte
 * between them, only the bytes between the first `{` and the first `}` after it are hashed.
 */
function keySlot(name: string): number {
  const bytes = new TextEncoder().encode(name);
  const open = bytes.indexOf(OPEN);
  if (open !== -1) {
    const close = bytes.indexOf(CLOSE, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % 16384;
  }
  return crc16(bytes) % 16384;
}

/** Undoes the key escaping, to show it loses nothing. */
function unescapeTag(tag: string): string {
  return tag.replace(/%(25|7B|7D)/g, (_match, hex: string) =>
    String.fromCharCode(parseInt(hex, 16)),
  );
}

/** The hash tag of a lock name: what lies between its first `{` and the following `}`. */
function tagOf(name: string): string | undefined {
  const open = name.indexOf("{");
  const close = name.indexOf("}", open + 1);
  return open === -1 || close === -1 ? undefined : name.slice(open + 1, close);
}

const TRICKY = [
  "}x",
  "{a}",
  "a{b}c",
  "{",
  "}",
  "{}",
  "}{",
  "{{}}",
  "%",
  "%7B",
  "%7b",
  "%25",
  "a%b",
  "x:fence",
  "}:fence",
  "order:42",
  "ключ",
  "鍵{🔒}",
  "🔒",
  "\u0000",
  "\ufffd",
  " ",
  "a".repeat(1024),
];

const PREFIXES = ["edgelock", "p", "app:locks", "ünï", "a:b:c"];

describe("the key-slot function itself", () => {
  it("matches Redis's documented slots", () => {
    expect(crc16(new TextEncoder().encode("123456789"))).toBe(0x31c3);
    expect(keySlot("123456789")).toBe(12739);
    expect(keySlot("somekey")).toBe(11058);
    expect(keySlot("foo{hash_tag}")).toBe(2515);
    expect(keySlot("{user1000}.following")).toBe(keySlot("{user1000}.followers"));
    expect(keySlot("foo{}{bar}")).toBe(crc16(new TextEncoder().encode("foo{}{bar}")) % 16384);
    expect(keySlot("foo{{bar}}zap")).toBe(keySlot("{bar"));
    expect(keySlot("foo{bar}{zap}")).toBe(keySlot("bar"));
  });
});

describe("lockNames", () => {
  it("names the lock, its fence and its line of waiters", () => {
    expect(lockNames("edgelock", "order:42")).toEqual({
      lock: "edgelock:{order:42}",
      fence: "edgelock:{order:42}:fence",
      queue: "edgelock:{order:42}:queue",
      waiters: "edgelock:{order:42}:waiters",
    });
  });

  it("names a locker's inbox (a channel, so it needs no hash tag) under its prefix", () => {
    expect(inboxName("edgelock", "Xq3v0cJ9aLmT")).toBe("edgelock:inbox:Xq3v0cJ9aLmT");
  });

  it.each([
    ["{a}", "p:{%7Ba%7D}"],
    ["}x", "p:{%7Dx}"],
    ["a{b}c", "p:{a%7Bb%7Dc}"],
    ["%", "p:{%25}"],
    ["%7B", "p:{%257B}"],
  ])("escapes %s", (key, lock) => {
    expect(lockNames("p", key).lock).toBe(lock);
  });

  it.each(TRICKY.map((key) => [JSON.stringify(key).slice(0, 30), key]))(
    "%s: all of a lock's keys share a slot, and the tag is the whole escaped key",
    (_label, key) => {
      for (const prefix of PREFIXES) {
        const names = lockNames(prefix, key);
        expect(keySlot(names.fence)).toBe(keySlot(names.lock));
        expect(keySlot(names.queue)).toBe(keySlot(names.lock));
        expect(keySlot(names.waiters)).toBe(keySlot(names.lock));
        const tag = tagOf(names.lock);
        expect(tag).toBeDefined();
        expect(unescapeTag(tag ?? "")).toBe(key);
        expect(names.lock).toBe(`${prefix}:{${tag}}`);
      }
    },
  );

  // An empty key would give "<prefix>:{}", whose empty hash tag Redis ignores (it then hashes the
  // whole name), putting the lock and its fence in different slots: lockNames refuses it.
  it('"" (empty key) is refused, since "{}" is no hash tag', () => {
    expect(keySlot("edgelock:{}:fence")).not.toBe(keySlot("edgelock:{}"));
    expect(() => lockNames("edgelock", "")).toThrow(InvalidArgumentError);
    expect(() => lockNames("edgelock", "")).toThrow(expect.objectContaining({ argument: "key" }));
    expect(() => lockNames("edgelock", "x".repeat(MAX_KEY_LENGTH + 1))).toThrow(
      InvalidArgumentError,
    );
  });

  it("property: lock and fence share a slot for any non-empty key", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ minLength: 1, unit: "binary" }),
          fc.string({
            minLength: 1,
            unit: fc.constantFrom("{", "}", "%", "7", "B", "D", "a", ":"),
          }),
        ),
        fc.constantFrom(...PREFIXES),
        (key, prefix) => {
          const names = lockNames(prefix, key);
          expect(keySlot(names.fence)).toBe(keySlot(names.lock));
          expect(keySlot(names.queue)).toBe(keySlot(names.lock));
          expect(keySlot(names.waiters)).toBe(keySlot(names.lock));
          expect(keySlot(names.lock)).toBe(
            crc16(new TextEncoder().encode(tagOf(names.lock))) % 16384,
          );
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("property: escaping is injective, and no name of one key is a name of another", () => {
    const alphabet = fc.constantFrom("{", "}", "%", "2", "5", "7", "B", "D", "b", "d", ":", "é");
    const key = fc.oneof(
      fc.string({ unit: alphabet, minLength: 1 }),
      fc.string({ unit: "grapheme", minLength: 1 }),
    );
    fc.assert(
      fc.property(key, key, (a, b) => {
        const na = lockNames("p", a);
        const nb = lockNames("p", b);
        expect(unescapeTag(tagOf(na.lock) ?? "")).toBe(a);
        if (a === b) return;
        const all = new Set([...Object.values(na), ...Object.values(nb)]);
        expect(all.size).toBe(8);
      }),
      { numRuns: 3_000 },
    );
  });

  // Redis names travel as UTF-8, which has no encoding for a lone surrogate: it is sent as
  // U+FFFD, so "a\uD800" and "a\uFFFD" would be one lock. lockNames refuses the first.
  it("a key with a lone surrogate is refused: on the wire it would be its U+FFFD twin", () => {
    const bytes = (text: string) => [...new TextEncoder().encode(text)];
    expect(bytes("a\uD800")).toEqual(bytes("a\uFFFD"));
    for (const key of ["a\uD800", "\uDC00", "x\uDBFF:fence", "\uDE00\uD83D"]) {
      expect(() => lockNames("edgelock", key)).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT", argument: "key" }),
      );
    }
    expect(lockNames("edgelock", "a\uFFFD").lock).toBe("edgelock:{a\uFFFD}");
    expect(lockNames("edgelock", "\uD83D\uDD12").lock).toBe("edgelock:{🔒}");
  });

  it("the prefix separates namespaces", () => {
    expect(lockNames("a", "b:c").lock).not.toBe(lockNames("a:b", "c").lock);
  });

  it("refuses a prefix with a lone surrogate, which would name its U+FFFD twin's keys", () => {
    for (const prefix of ["p\uD800", "\uDC00", "a:\uDBFF:b"]) {
      expect(() => createLocker({ adapter: memoryAdapter(), prefix })).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT", argument: "prefix" }),
      );
    }
    expect(() => createLocker({ adapter: memoryAdapter(), prefix: "p\uFFFD" })).not.toThrow();
  });

  it("refuses a prefix with braces, which would put a hash tag outside the key's", () => {
    for (const prefix of ["{p}", "a{", "}b", "x:{y}:z"]) {
      expect(() => createLocker({ adapter: memoryAdapter(), prefix })).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT", argument: "prefix" }),
      );
    }
  });
});

/**
 * Any (prefix, key) pair the locker accepts, drawn from the characters that could confuse the
 * layout: the separators, the escape, the suffix words, braces in keys (never in prefixes, which
 * the locker refuses).
 */
const pairs = (() => {
  const tricky = fc.constantFrom(":", "%", "7", "B", "D", "2", "5", "f", "e", "n", "c", "r", "a");
  const prefix = fc.oneof(
    fc.string({ unit: tricky, minLength: 1, maxLength: 12 }),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }).filter((p) => !/[{}]/.test(p)),
  );
  const key = fc.oneof(
    fc.string({ unit: fc.oneof(tricky, fc.constantFrom("{", "}")), minLength: 1, maxLength: 16 }),
    fc.string({ unit: "binary", minLength: 1, maxLength: 16 }),
    fc.constantFrom(...TRICKY),
  );
  return fc.tuple(prefix, key);
})();

/** The prefix and key a lock name was made from, read back from the name alone. */
function parseLockName(name: string): [prefix: string, key: string] | undefined {
  const match = /^([^{}]*):\{([^{}]*)\}$/.exec(name);
  return match ? [match[1] as string, unescapeTag(match[2] as string)] : undefined;
}

describe("lockNames across prefixes (namespacing)", () => {
  it("property: a lock's four keys share one slot, the hash of its escaped key", () => {
    fc.assert(
      fc.property(pairs, ([prefix, key]) => {
        const { lock, fence, queue, waiters } = lockNames(prefix, key);
        const slot = keySlot(lock);
        expect(keySlot(fence)).toBe(slot);
        expect(keySlot(queue)).toBe(slot);
        expect(keySlot(waiters)).toBe(slot);
        expect(slot).toBe(crc16(new TextEncoder().encode(tagOf(lock))) % 16384);
      }),
      { numRuns: 2_000 },
    );
  });

  it("property: the pair can be read back from the lock name, so distinct pairs never share a name", () => {
    fc.assert(
      fc.property(pairs, pairs, ([p1, k1], [p2, k2]) => {
        const a = lockNames(p1, k1);
        const b = lockNames(p2, k2);
        expect(parseLockName(a.lock)).toEqual([p1, k1]);
        expect(a.fence).toBe(`${a.lock}:fence`);
        expect(a.queue).toBe(`${a.lock}:queue`);
        expect(a.waiters).toBe(`${a.lock}:waiters`);
        const names = new Set([...Object.values(a), ...Object.values(b)]);
        expect(names.size).toBe(p1 === p2 && k1 === k2 ? 4 : 8);
      }),
      { numRuns: 3_000 },
    );
  });

  it("property: no key is another key's fence or line, whatever it spells", () => {
    fc.assert(
      fc.property(pairs, ([prefix, key]) => {
        const { fence, queue, waiters } = lockNames(prefix, key);
        // A caller trying to name the fence or the line of `key` as a lock key of its own:
        const attempts = [`${key}}:fence`, `${key}:fence`, `${key}}:queue`, fence, queue, waiters];
        for (const attempt of attempts.filter((a) => a.length <= MAX_KEY_LENGTH)) {
          const names = Object.values(lockNames(prefix, attempt));
          for (const theirs of [fence, queue, waiters]) expect(names).not.toContain(theirs);
        }
      }),
      { numRuns: 800 },
    );
  });

  it("property: every name stays under its prefix and inside its own hash tag", () => {
    fc.assert(
      fc.property(pairs, ([prefix, key]) => {
        for (const name of Object.values(lockNames(prefix, key))) {
          expect(name.startsWith(`${prefix}:{`)).toBe(true);
          expect(name.split("{")).toHaveLength(2); // one tag: the key cannot open another
          expect(name.split("}")).toHaveLength(2);
        }
      }),
      { numRuns: 1_000 },
    );
  });

  it("property: idempotency records never share a name with a lock, even under one prefix", async () => {
    await fc.assert(
      fc.asyncProperty(
        pairs,
        fc.array(fc.string(), { maxLength: 4 }),
        async ([prefix, key], parts) => {
          const record = await new IdempotencyStore(memoryAdapter(), { prefix }).recordKey(parts);
          expect(record.startsWith(`${prefix}:v1:`)).toBe(true);
          expect(record.slice(prefix.length + 4)).toMatch(/^[0-9a-f]{64}$/);
          expect(Object.values(lockNames(prefix, key))).not.toContain(record);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("idempotency record names", () => {
  it("refuse a scope or key part with a lone surrogate, before hashing it", async () => {
    const store = new IdempotencyStore(memoryAdapter());
    for (const [parts, argument] of [
      [["tenant\uD800", "k"], "scope"],
      [["", "POST", "/orders", "\uDC00"], "key"],
    ] as const) {
      await expect(store.recordKey(parts)).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        argument,
      });
    }
    expect(await store.recordKey(["tenant\uFFFD", "k"])).toMatch(/^idem:v1:[0-9a-f]{64}$/);
  });

  it("refuse a prefix that is empty, not a string, or has a lone surrogate", () => {
    for (const prefix of ["", 42, "idem\uD800"]) {
      expect(() => new IdempotencyStore(memoryAdapter(), { prefix: prefix as string })).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT", argument: "prefix" }),
      );
    }
  });

  it("withIdempotency refuses a scope with a lone surrogate, and runs nothing", async () => {
    let runs = 0;
    const run = withIdempotency(async () => ++runs, {
      adapter: memoryAdapter(),
      key: () => "order-1",
      scope: () => "tenant\uD800",
    });
    await expect(run()).rejects.toMatchObject({ code: "INVALID_ARGUMENT", argument: "scope" });
    expect(runs).toBe(0);
  });
});
