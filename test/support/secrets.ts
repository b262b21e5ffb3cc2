/// <reference types="node" />
/**
 * Tools for showing that a secret (a lock token, a Redis password, a REST token) never shows up
 * in what edgelock reports: errors with their whole cause chain, hook arguments, HTTP responses
 * and console output.
 */
import { inspect } from "node:util";
import type { LockAdapter, LockTransport } from "edgelock";
import { describe, expect, it, vi } from "vitest";

/**
 * Everything `value` shows when it is thrown, logged, inspected or serialized: `String()`, the
 * message and stack, `util.inspect` with hidden properties (what `console.log` prints), JSON, and
 * the same for every value reachable through its own properties (the `cause` chain, `errors`,
 * `details`, anything a transport attached).
 */
export function exposure(value: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  const visit = (current: unknown, depth: number) => {
    if (typeof current === "string") {
      parts.push(current);
      return;
    }
    if (current instanceof Uint8Array) {
      parts.push(Buffer.from(current).toString("utf8"));
      return;
    }
    if (current === null || typeof current !== "object" || seen.has(current) || depth > 12) return;
    seen.add(current);
    if (current instanceof Error) parts.push(String(current), current.message, current.stack ?? "");
    parts.push(inspect(current, { depth: 12, showHidden: true }));
    try {
      parts.push(JSON.stringify(current) ?? "");
    } catch {
      // circular: inspect has it
    }
    for (const name of Reflect.ownKeys(current)) {
      try {
        visit((current as Record<PropertyKey, unknown>)[name], depth + 1);
      } catch {
        // a throwing getter shows nothing
      }
    }
  };
  visit(value, 0);
  return parts.join("\n");
}

/**
 * The parts of `secret` that must not appear: the whole of it and, for a lock token (`el1.` and
 * 27 random characters), its first 12 random characters, since a server may echo a cut-off token.
 */
function fragmentsOf(secret: string): string[] {
  return secret.startsWith("el1.") ? [secret, secret.slice(4, 16)] : [secret];
}

/** Fails, naming the secret and where it showed, if any of `secrets` appears in `text`. */
export function expectNoSecret(text: string, secrets: Iterable<string>, where: string): void {
  const shown: string[] = [];
  for (const secret of secrets) {
    for (const fragment of fragmentsOf(secret)) {
      const at = text.indexOf(fragment);
      if (at >= 0) shown.push(`${fragment} in …${text.slice(Math.max(0, at - 80), at + 40)}…`);
    }
  }
  expect(shown, `${where} shows a secret`).toEqual([]);
}

/** Collects the lock tokens that adapters are asked to run scripts with (always `args[0]`). */
export class TokenRecorder {
  readonly tokens = new Set<string>();

  /** `adapter`, recording the token of every script it runs. */
  adapter(adapter: LockAdapter): LockAdapter {
    return {
      ...adapter,
      evalScript: (script, keys, args) => {
        if (args[0]) this.tokens.add(args[0]);
        return adapter.evalScript(script, keys, args);
      },
    };
  }

  /** `transport`, whose adapters record as {@link TokenRecorder.adapter} does. */
  transport(transport: LockTransport): LockTransport {
    return {
      protocols: transport.protocols,
      connect: async (target) => {
        const connection = await transport.connect(target);
        return { ...connection, adapter: this.adapter(connection.adapter) };
      },
    };
  }
}

/** Console and stdout/stderr output, captured (and still passed through) until `restore()`. */
export function captureOutput(): { text(): string; restore(): void } {
  const spies = [
    vi.spyOn(console, "log"),
    vi.spyOn(console, "info"),
    vi.spyOn(console, "warn"),
    vi.spyOn(console, "error"),
    vi.spyOn(console, "debug"),
    vi.spyOn(console, "trace"),
    vi.spyOn(process.stdout, "write"),
    vi.spyOn(process.stderr, "write"),
  ];
  return {
    text: () =>
      spies.flatMap((spy) => spy.mock.calls.map((call) => exposure([...call]))).join("\n"),
    restore: () => {
      for (const spy of spies) spy.mockRestore();
    },
  };
}

/** A fresh random lock key, so scenarios never meet each other's locks. */
export const freshKey = (): string => `k${Math.floor(Math.random() * 1e9)}`;

/**
 * A redaction scenario provokes one failure path and returns everything edgelock reported;
 * `locks` says whether it gets as far as drawing lock tokens (a failed `open` does not).
 */
export type RedactionScenario = [name: string, locks: boolean, provoke: () => Promise<unknown[]>];

/**
 * Registers the redaction sweep: each scenario provokes its failure, must report something (and
 * draw lock tokens where it says it does), and nothing it reports may show a secret; nor may
 * anything written to the console meanwhile.
 */
export function describeNoSecret(
  title: string,
  scenarios: readonly RedactionScenario[],
  seen: { recorder: TokenRecorder; output: { text(): string }; secrets: () => string[] },
): void {
  const { recorder, output, secrets } = seen;
  describe(title, () => {
    it.each(scenarios)("%s", async (name, locks, provoke) => {
      const tokensBefore = recorder.tokens.size;
      const reported = await provoke();
      expect(reported.length).toBeGreaterThan(0);
      if (locks) expect(recorder.tokens.size, "lock tokens drawn").toBeGreaterThan(tokensBefore);
      expectNoSecret(exposure(reported), secrets(), name);
    });

    it("nothing written to the console, stdout or stderr shows a secret", () => {
      expect(recorder.tokens.size).toBeGreaterThan(10);
      expectNoSecret(output.text(), secrets(), "the console");
    });
  });
}
