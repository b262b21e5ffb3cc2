/**
 * Cutting large stored bodies into parts a request can carry: sizes counted as they travel
 * (UTF-8, JSON-escaped), surrogate pairs never split, and the parts joining back to the text.
 */

import { describe, expect, it } from "vitest";
import { PART_BYTES, splitParts } from "../../src/idempotency/parts.js";

/** The bytes a part weighs in a JSON request body. */
const weight = (part: string) => new TextEncoder().encode(JSON.stringify(part)).length - 2;

describe("splitParts", () => {
  it("keeps a body that fits whole, empty included", () => {
    expect(splitParts("")).toEqual([""]);
    expect(splitParts("x".repeat(PART_BYTES))).toHaveLength(1);
    expect(splitParts("x".repeat(PART_BYTES + 1))).toHaveLength(2);
  });

  it("weighs every part as the request carries it, and the parts join back to the text", () => {
    const texts = [
      "a".repeat(3_000),
      '"\\'.repeat(1_000), // escaped: two bytes each
      "\u0001\n".repeat(800), // control characters: up to six
      "é€".repeat(900), // two and three bytes
      "🔒".repeat(700), // surrogate pairs: four bytes per pair
      "x\uD800y".repeat(500), // lone surrogates, escaped as \uXXXX
    ];
    for (const text of texts) {
      const parts = splitParts(text, 1_000);
      expect(parts.join("")).toBe(text);
      for (const part of parts) expect(weight(part)).toBeLessThanOrEqual(1_000);
      expect(parts.length).toBeGreaterThan(1);
    }
  });

  it("never cuts a surrogate pair in two", () => {
    const text = `${"a".repeat(999)}🔒${"b".repeat(10)}`;
    const [first, second] = splitParts(text, 1_000);
    expect(first).toBe("a".repeat(999));
    expect(second?.startsWith("🔒")).toBe(true);
  });
});
