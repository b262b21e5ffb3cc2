/**
 * `upstashAdapter`'s own arguments, checked before any request (its behaviour over HTTP is in
 * test/integration/upstash*.test.ts).
 */

import { InvalidArgumentError } from "edgelock";
import { upstashAdapter } from "edgelock/upstash";
import { describe, expect, it } from "vitest";

/** The least `@upstash/redis` client shape: a requester that counts its requests. */
function fakeClient() {
  const sent: unknown[] = [];
  const client = {
    client: {
      request: async (request: { body: unknown }) => {
        sent.push(request.body);
        return { result: 1 };
      },
    },
  };
  return { client, sent };
}

/** What `fn` threw (fails if it did not throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("upstashAdapter arguments", () => {
  it.each([
    ["null", null, "got null"],
    ["undefined", undefined, "got undefined"],
    ["a number", 42, "got 42"],
    ["an empty object", {}, "got object"],
    ["an object whose client has no request()", { client: {} }, "got object"],
  ])("refuses %s as the client with INVALID_ARGUMENT", (_name, redis, shows) => {
    const error = thrown(() => upstashAdapter(redis as never));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ code: "INVALID_ARGUMENT", argument: "redis" });
    expect((error as Error).message).toContain("@upstash/redis");
    expect((error as Error).message).toContain(shows);
  });

  it.each([
    ["options", null],
    ["options", 5000],
    ["options", "fast"],
  ])("refuses a bad %s (%j) with INVALID_ARGUMENT, sending nothing", (argument, options) => {
    const { client, sent } = fakeClient();
    const error = thrown(() => upstashAdapter(client, options as never));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ code: "INVALID_ARGUMENT", argument });
    expect(sent).toEqual([]);
  });
});
