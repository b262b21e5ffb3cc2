/// <reference types="node" />
/**
 * Security of the Lua scripts, checked on their text: every script's source is a constant (no
 * interpolation, nothing computed at run time), and data reaches it only through KEYS and ARGV.
 * Every key a script touches is literally `KEYS[n]`, never a name built from ARGV or by string
 * concatenation, and within the keys its caller declares (Redis Cluster routes by them). The
 * scripts are found by scanning the sources for `LockScript` values, so a new one is checked
 * without being listed here.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import {
  acquireScript,
  extendScript,
  inspectScript,
  type LockScript,
  releaseScript,
} from "edgelock";
import { describe, expect, it } from "vitest";
import { KEY_ARGUMENTS } from "../support/lua-keys.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** One script as found in the sources: its file, its exported value and its literal Lua. */
interface FoundScript {
  file: string;
  script: LockScript;
  /** The text of the template literal its `lua` was declared with. */
  literal: string;
}

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourcesUnder(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

const isScript = (value: unknown): value is LockScript =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as LockScript).lua === "string" &&
  typeof (value as LockScript).sha1 === "string" &&
  typeof (value as LockScript).name === "string";

/** Every exported LockScript in src/ and adapters/, with the literal its Lua came from. */
async function findScripts(): Promise<FoundScript[]> {
  const files = [...sourcesUnder(join(root, "src")), ...sourcesUnder(join(root, "adapters"))];
  const found: FoundScript[] = [];
  for (const path of files) {
    const text = readFileSync(path, "utf8");
    if (!/:\s*LockScript\s*=/.test(text)) continue;
    const file = relative(root, path);
    const literals = [...text.matchAll(/\bconst lua = `([^`]*)`;/g)];
    expect(literals, `${file}: declare the Lua once, as const lua = \`...\`;`).toHaveLength(1);
    const literal = literals[0]?.[1] ?? "";
    const module: Record<string, unknown> = await import(path);
    for (const script of Object.values(module).filter(isScript)) {
      found.push({ file, script, literal });
    }
  }
  return found;
}

const found = await findScripts();

/** A shared fragment of Lua in hand-off.ts, as its source spells it, and how often it is defined. */
function fragment(name: string): { literal: string; count: number } {
  const text = readFileSync(join(root, "src/scripts/hand-off.ts"), "utf8");
  const literals = [...text.matchAll(new RegExp(`\\bexport const ${name} = \`([^\`]*)\`;`, "g"))];
  return { literal: literals[0]?.[1] ?? "", count: literals.length };
}

const fragments = { handOffLua: fragment("handOffLua"), mintLua: fragment("mintLua") };

describe.each(Object.entries(fragments))("the fragment %s", (_, shared) => {
  it("is one plain literal, without interpolation or escapes", () => {
    expect(shared.count).toBe(1);
    expect(shared.literal).toContain("local function ");
    expect(shared.literal).not.toContain("${");
    expect(shared.literal).not.toContain("\\");
  });
});

/**
 * The keys each script's caller passes, by script name: the lock operations pass the lock and its
 * fencing counter, the idempotency store the record alone. A script not listed here fails below,
 * so a new one gets its caller checked too.
 */
const DECLARED_KEYS: Record<string, number> = {
  acquire: 4,
  release: 4,
  extend: 2,
  inspect: 2,
  "redlock-raise-fence": 2,
  "idempotency-begin": 1,
  "idempotency-renew": 1,
  "idempotency-finish": 1,
  "idempotency-abandon": 1,
  "idempotency-append": 1,
};

/** One `redis.call(...)` or `redis.pcall(...)` of a script, its arguments as Lua source text. */
interface Call {
  text: string;
  args: string[];
}

/** The Lua without comments; string literals are kept (their content is data, not code). */
function withoutComments(lua: string): string {
  let out = "";
  for (let i = 0; i < lua.length; ) {
    const c = lua[i] as string;
    if (c === "'" || c === '"') {
      const end = endOfString(lua, i);
      out += lua.slice(i, end);
      i = end;
    } else if (lua.startsWith("--[[", i)) {
      const close = lua.indexOf("]]", i);
      i = close < 0 ? lua.length : close + 2;
    } else if (lua.startsWith("--", i)) {
      const newline = lua.indexOf("\n", i);
      i = newline < 0 ? lua.length : newline;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The index just past the quoted string that starts at `start`. */
function endOfString(lua: string, start: number): number {
  const quote = lua[start];
  for (let i = start + 1; i < lua.length; i++) {
    if (lua[i] === "\\") i++;
    else if (lua[i] === quote) return i + 1;
  }
  throw new Error(`unterminated string at ${start}`);
}

/** Every redis.call / redis.pcall with its top-level arguments. */
function callsIn(lua: string): Call[] {
  const code = withoutComments(lua);
  const calls: Call[] = [];
  for (const match of code.matchAll(/redis\.p?call\s*\(/g)) {
    const open = (match.index ?? 0) + match[0].length;
    const args: string[] = [];
    let depth = 0;
    let current = "";
    let i = open;
    for (; i < code.length; i++) {
      const c = code[i] as string;
      if (c === "'" || c === '"') {
        const end = endOfString(code, i);
        current += code.slice(i, end);
        i = end - 1;
      } else if (c === "(" || c === "{" || c === "[") {
        depth++;
        current += c;
      } else if ((c === ")" || c === "}" || c === "]") && depth > 0) {
        depth--;
        current += c;
      } else if (c === ")") {
        break;
      } else if (c === "," && depth === 0) {
        args.push(current.trim());
        current = "";
      } else {
        current += c;
      }
    }
    args.push(current.trim());
    calls.push({ text: code.slice(match.index, i + 1), args });
  }
  return calls;
}

/**
 * What is wrong with the Redis calls of `lua`, as messages (none when all is well), given the
 * number of keys its caller declares.
 */
function problemsOf(lua: string, declaredKeys: number): string[] {
  const problems: string[] = [];
  const code = withoutComments(lua);
  for (const word of ["loadstring", "load(", "dofile", "setfenv", "getfenv", "_G"]) {
    if (code.includes(word)) problems.push(`runs code it was not written with (${word})`);
  }
  const calls = callsIn(lua);
  if (calls.length === 0) problems.push("calls Redis nowhere (the parser found no call)");
  for (const { text, args } of calls) {
    const name = /^'([A-Za-z]+)'$/.exec(args[0] ?? "")?.[1]?.toUpperCase();
    if (name === undefined) {
      problems.push(`${text}: the command must be a string literal`);
      continue;
    }
    const keyArguments = KEY_ARGUMENTS[name];
    if (keyArguments === undefined) {
      problems.push(`${text}: ${name} is not a command the scripts may use (see KEY_ARGUMENTS)`);
      continue;
    }
    const keys =
      keyArguments === "all" ? args.slice(1) : keyArguments === "first" ? args.slice(1, 2) : [];
    if (keyArguments !== "none" && keys.length === 0) problems.push(`${text}: no key`);
    for (const key of keys) {
      const index = /^KEYS\[(\d+)\]$/.exec(key)?.[1];
      if (index === undefined) problems.push(`${text}: the key ${key} is not KEYS[n]`);
      else if (Number(index) < 1 || Number(index) > declaredKeys) {
        problems.push(`${text}: KEYS[${index}] is beyond the ${declaredKeys} key(s) declared`);
      }
    }
  }
  return problems;
}

describe("finding the scripts", () => {
  it("finds every script the core and the idempotency store run", () => {
    const names = found.map(({ script }) => script.name).sort();
    expect(names).toEqual(Object.keys(DECLARED_KEYS).sort());
    for (const script of [acquireScript, releaseScript, extendScript, inspectScript]) {
      expect(found.map((entry) => entry.script)).toContain(script);
    }
  });
});

describe.each(found.map((entry) => [entry.script.name, entry] as const))("%s", (_, entry) => {
  const { file, script, literal } = entry;

  it("is a constant: one template literal, composed only of constant fragments, used as is", () => {
    // The only interpolations allowed are the shared constant fragments of Lua (the hand-off and
    // the mint), themselves plain literals (checked above).
    let text = literal;
    for (const [name, shared] of Object.entries(fragments)) {
      text = text.replaceAll(`$\{${name}}`, shared.literal);
    }
    expect(text, `${file} interpolates into its Lua`).not.toContain("${");
    expect(text, `${file}: the Lua must be plain text (no escapes to decode)`).not.toContain("\\");
    expect(script.lua).toBe(text);
  });

  it("touches only KEYS[n] within the keys its caller declares, never a built name", () => {
    const declared = DECLARED_KEYS[script.name];
    expect(declared, `declare how many keys ${script.name}'s caller passes`).toBeDefined();
    expect(problemsOf(script.lua, declared ?? 0)).toEqual([]);
  });
});

describe("the checker itself", () => {
  it.each([
    ["redis.call('GET', ARGV[1])", /ARGV\[1\] is not KEYS\[n\]/],
    ["redis.call('SET', 'edgelock:' .. ARGV[1], 1)", /is not KEYS\[n\]/],
    ["redis.call('GET', KEYS[1] .. ':x')", /is not KEYS\[n\]/],
    ["local k = KEYS[1]\nreturn redis.call('GET', k)", /the key k is not KEYS\[n\]/],
    ["redis.call('DEL', KEYS[1], ARGV[2])", /ARGV\[2\] is not KEYS\[n\]/],
    ["redis.call('DEL', KEYS[1], unpack(ARGV))", /unpack\(ARGV\) is not KEYS\[n\]/],
    ["redis.call(ARGV[1], KEYS[1])", /the command must be a string literal/],
    ["redis.pcall('KEYS', '*')", /KEYS is not a command the scripts may use/],
    ["redis.call('GET', KEYS[3])", /KEYS\[3\] is beyond the 2 key\(s\) declared/],
    ["redis.call('GET', KEYS[0])", /KEYS\[0\] is beyond/],
    ["redis.call('GET')", /no key/],
    ["return loadstring(ARGV[1])()", /runs code/],
    ["return 1", /calls Redis nowhere/],
  ])("flags %j", (lua, problem) => {
    expect(problemsOf(lua, 2).join("\n")).toMatch(problem);
  });

  it("passes what the scripts do, comments and strings included", () => {
    const lua = `-- redis.call('GET', ARGV[1]) in a comment
--[[ redis.call('KEYS', '*') ]]
local v = redis.call('GET', KEYS[1]) -- ok
redis.call('HSET', KEYS[2], 'f', ARGV[1], 'g', 'a,b)c')
redis.call('PUBLISH', ARGV[2], '1')
redis.call('DEL', KEYS[1], KEYS[2])
return redis.call('TIME')`;
    expect(problemsOf(lua, 2)).toEqual([]);
    expect(callsIn(lua).map((call) => call.args.length)).toEqual([2, 6, 3, 3, 1]);
  });
});
