import { InvalidArgumentError, lockNames, MAX_KEY_LENGTH } from "edgelock";
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
  "\ud800",
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
  it("names the lock, its fence, its line of waiters and its channel", () => {
    expect(lockNames("edgelock", "order:42")).toEqual({
      lock: "edgelock:{order:42}",
      fence: "edgelock:{order:42}:fence",
      queue: "edgelock:{order:42}:queue",
      waiters: "edgelock:{order:42}:waiters",
      channel: "edgelock:{order:42}:free",
    });
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
        const all = new Set([na.lock, na.fence, na.channel, nb.lock, nb.fence, nb.channel]);
        expect(all.size).toBe(6);
      }),
      { numRuns: 3_000 },
    );
  });

  it("the prefix separates namespaces", () => {
    expect(lockNames("a", "b:c").lock).not.toBe(lockNames("a:b", "c").lock);
  });
});
