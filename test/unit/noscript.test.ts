import { acquireScript, evalWithFallback, isNoScriptError } from "edgelock";
import { describe, expect, it, vi } from "vitest";

describe("isNoScriptError", () => {
  it.each([
    [new Error("NOSCRIPT No matching script. Please use EVAL."), true],
    [new Error("NOSCRIPT"), true],
    [new Error("ERR connection lost while sending EVALSHA (NOSCRIPT?)"), false],
    [new Error("noscript No matching script"), false],
    [new Error(" NOSCRIPT leading space"), false],
    ["NOSCRIPT No matching script", false],
    [{ message: "NOSCRIPT No matching script" }, false],
    [null, false],
    [undefined, false],
  ])("%o → %s", (error, expected) => {
    expect(isNoScriptError(error)).toBe(expected);
  });
});

describe("evalWithFallback", () => {
  it("uses EVALSHA with the script's sha1 and nothing else when it works", async () => {
    const evalsha = vi.fn(async (_sha1: string) => "reply");
    const evalSource = vi.fn(async (_lua: string) => "other");
    expect(await evalWithFallback(acquireScript, evalsha, evalSource)).toBe("reply");
    expect(evalsha).toHaveBeenCalledWith(acquireScript.sha1);
    expect(evalSource).not.toHaveBeenCalled();
  });

  it("falls back to EVAL with the full source once, only on NOSCRIPT", async () => {
    const evalsha = vi.fn(async (_sha1: string) => {
      throw new Error("NOSCRIPT No matching script. Please use EVAL.");
    });
    const evalSource = vi.fn(async (_lua: string) => "reply");
    expect(await evalWithFallback(acquireScript, evalsha, evalSource)).toBe("reply");
    expect(evalSource).toHaveBeenCalledTimes(1);
    expect(evalSource).toHaveBeenCalledWith(acquireScript.lua);
  });

  it("passes every other failure through untouched, without EVAL", async () => {
    const failure = new Error("ERR timeout while sending EVALSHA; NOSCRIPT unknown");
    const evalSource = vi.fn(async (_lua: string) => "reply");
    const outcome = evalWithFallback(
      acquireScript,
      async () => {
        throw failure;
      },
      evalSource,
    );
    await expect(outcome).rejects.toBe(failure);
    expect(evalSource).not.toHaveBeenCalled();
  });

  it("a failing EVAL after NOSCRIPT rejects with EVAL's error", async () => {
    const failure = new Error("ERR Error compiling script");
    const outcome = evalWithFallback(
      acquireScript,
      async () => {
        throw new Error("NOSCRIPT No matching script");
      },
      async () => {
        throw failure;
      },
    );
    await expect(outcome).rejects.toBe(failure);
  });
});
