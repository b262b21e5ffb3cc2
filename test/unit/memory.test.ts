/**
 * `memoryAdapter`'s own arguments (its semantics are the conformance suite's, in
 * test/contract/memory.test.ts).
 */

import { InvalidArgumentError } from "edgelock";
import { memoryAdapter } from "edgelock/memory";
import { describe, expect, it } from "vitest";

describe("memoryAdapter options", () => {
  it.each([
    ["options", null],
    ["options", 42],
    ["options", "fast"],
    ["clock", { clock: 42 }],
    ["clock", { clock: null }],
    ["clock", { clock: "performance.now" }],
    ["clock", { clock: {} }],
  ])("rejects a bad %s (%j) with INVALID_ARGUMENT", (argument, options) => {
    let thrown: unknown;
    try {
      memoryAdapter(options as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect(thrown).toMatchObject({ code: "INVALID_ARGUMENT", argument });
    expect((thrown as Error).message).toContain(argument);
  });
});
