/// <reference types="node" />
import { describe, expect, it } from "vitest";
import { newToken, waiterId } from "../../src/token.js";

const FORMAT = /^el1\.[A-Za-z0-9_-]+$/;

function decode(token: string): Buffer {
  return Buffer.from(token.slice("el1.".length), "base64url");
}

describe("newToken", () => {
  it("is el1. followed by unpadded base64url of 27 bytes (216 bits)", () => {
    for (let i = 0; i < 1_000; i++) {
      const token = newToken();
      expect(token).toMatch(FORMAT);
      expect(token).toHaveLength(4 + 36);
      const bytes = decode(token);
      expect(bytes.length).toBe(27);
      // base64url round-trips: nothing was lost or mangled in the encoding.
      expect(`el1.${bytes.toString("base64url")}`).toBe(token);
    }
  });

  it("draws every one of the 216 bits at random", () => {
    const ones = new Array<number>(216).fill(0);
    const n = 2_000;
    for (let i = 0; i < n; i++) {
      const bytes = decode(newToken());
      for (let bit = 0; bit < 216; bit++) {
        if (((bytes[bit >> 3] ?? 0) >> (bit & 7)) & 1) ones[bit] = (ones[bit] ?? 0) + 1;
      }
    }
    // Each bit is set in about half the tokens (binomial, sd ≈ 22: 40% to 60% is > 8 sd).
    for (const count of ones) {
      expect(count).toBeGreaterThan(n * 0.4);
      expect(count).toBeLessThan(n * 0.6);
    }
  });

  it("200 000 tokens without a collision", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++) seen.add(newToken());
    expect(seen.size).toBe(200_000);
  });

  it("does not parse as JSON", () => {
    for (let i = 0; i < 1_000; i++) {
      const token = newToken();
      expect(() => JSON.parse(token), token).toThrow(SyntaxError);
    }
  });

  it("names its waiter by its first 72 bits and keeps the other 144 secret", () => {
    const token = newToken();
    const id = waiterId(token);
    expect(id).toHaveLength(12);
    expect(token.startsWith(`el1.${id}`)).toBe(true);
    expect(Buffer.from(id, "base64url")).toEqual(decode(token).subarray(0, 9));
  });
});
