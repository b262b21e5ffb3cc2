/**
 * Edge safety: the Workers bundle (edgelock's core, `edgelock/upstash` and the `edgelock/hono`
 * middleware, with `@upstash/redis` and `hono`), built by esbuild the way wrangler builds it
 * (browser platform, `workerd`/`worker`/`browser` conditions), imports no Node built-in and no
 * ioredis; and edgelock's own share of it stays small.
 */

import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { bundleForEdge, type EdgeBundle } from "../support/esbuild.js";

const CONDITIONS = ["workerd", "worker", "browser"];
const WORKER = "examples/cloudflare-workers/worker.ts";
/** What the Workers bundle uses of edgelock: the core, the REST transport, both middlewares. */
const EDGELOCK_SURFACE = `
export { createLocker } from "edgelock";
export { upstashAdapter } from "edgelock/upstash";
export { idempotency, lock } from "edgelock/hono";
`;
/**
 * edgelock's budget on top of `@upstash/redis` and `hono`, minified and gzipped: the core with its
 * FIFO hand-off (waiting rooms and the queue scripts, about 1 KiB, with the passing over of dead
 * waiters and the bounded line), a signal on every operation, the input checks, the REST
 * transport with its fast, explained failures, and both middlewares, which share one idempotency
 * flow with typed errors, run durations for `Retry-After`, and large bodies stored in parts
 * (14.1 KiB when this was set).
 */
const BUDGET = 14.5 * 1024;

const isEdgelock = (path: string) => path.startsWith("src/") || path.startsWith("adapters/");
const isUpstash = (path: string) => /node_modules\/(@upstash\/redis|uncrypto)\//.test(path);
const isHono = (path: string) => path.includes("node_modules/hono/");

const gzipped = (text: string) => gzipSync(Buffer.from(text)).length;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

/** Minified bytes each group of inputs contributes to the bundle's one output. */
function shares(bundle: EdgeBundle) {
  const [output] = Object.values(bundle.metafile.outputs);
  const totals = { edgelock: 0, upstash: 0, hono: 0, other: 0 };
  for (const [path, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    if (isEdgelock(path)) totals.edgelock += bytesInOutput;
    else if (isUpstash(path)) totals.upstash += bytesInOutput;
    else if (isHono(path)) totals.hono += bytesInOutput;
    else totals.other += bytesInOutput;
  }
  return totals;
}

let worker: EdgeBundle;
let edgelockOnly: EdgeBundle;

beforeAll(async () => {
  [worker, edgelockOnly] = await Promise.all([
    bundleForEdge({ entryPoints: [WORKER], conditions: CONDITIONS, minify: true }),
    bundleForEdge({
      stdin: {
        contents: EDGELOCK_SURFACE,
        resolveDir: ".",
        sourcefile: "surface.ts",
        loader: "ts",
      },
      conditions: CONDITIONS,
      minify: true,
      // edgelock's share alone: what it adds on top of the two libraries an edge app has anyway
      external: ["hono", "hono/*", "@upstash/redis", "@upstash/redis/*"],
    }),
  ]);
});

describe("the Workers bundle (core + edgelock/upstash + edgelock/hono)", () => {
  it("imports no Node built-in and no ioredis", () => {
    expect(worker.forbidden).toEqual([]);
    const inputs = Object.keys(worker.metafile.inputs);
    expect(inputs.filter((path) => /(^|\/)node_modules\/ioredis\//.test(path))).toEqual([]);
    expect(inputs.filter((path) => path.startsWith("node:"))).toEqual([]);
    expect(worker.code).not.toMatch(/\bfrom\s*["'](node:|ioredis)/);
    expect(worker.code).not.toMatch(/\b(require|import)\(\s*["'](node:|ioredis)/);
  });

  it("contains what it is meant to: edgelock's sources, @upstash/redis's web build and hono", () => {
    const inputs = Object.keys(worker.metafile.inputs);
    for (const source of [
      "src/locker.ts",
      "adapters/upstash.ts",
      "adapters/hono/lock.ts",
      "adapters/hono/idempotency.ts",
    ]) {
      expect(inputs).toContain(source);
    }
    expect(inputs.some((path) => path.includes("uncrypto/dist/crypto.web"))).toBe(true);
    expect(inputs.some((path) => path.includes("uncrypto/dist/crypto.node"))).toBe(false);
    expect(inputs.some(isHono)).toBe(true);
    expect(inputs.some((path) => path.startsWith("dist/"))).toBe(false); // sources, not a build
  });

  it("has edgelock's share use no Node globals (Workers without nodejs_compat have none)", () => {
    expect(edgelockOnly.forbidden).toEqual([]);
    const inputs = Object.keys(edgelockOnly.metafile.inputs);
    expect(inputs.filter((path) => !isEdgelock(path) && path !== "surface.ts")).toEqual([]);
    expect(edgelockOnly.code).not.toMatch(/\bBuffer\b|\bprocess\.|\b__dirname\b|\brequire\(/);
  });

  it(`keeps edgelock's share under ${kib(BUDGET)} min+gzip on top of @upstash/redis and hono`, () => {
    const share = gzipped(edgelockOnly.code);
    const parts = shares(worker);
    console.log(
      [
        "edge bundle (esbuild, minified; Workers example):",
        `  total      ${kib(worker.code.length)} min, ${kib(gzipped(worker.code))} min+gzip`,
        `  @upstash/redis (+ uncrypto) ${kib(parts.upstash)} min`,
        `  hono       ${kib(parts.hono)} min`,
        `  edgelock   ${kib(parts.edgelock)} min in the bundle; alone ` +
          `${kib(edgelockOnly.code.length)} min, ${kib(share)} min+gzip (budget ${kib(BUDGET)})`,
        `  example    ${kib(parts.other)} min`,
      ].join("\n"),
    );
    expect(share).toBeLessThan(BUDGET);
    // The two measures agree: the share alone is what the Workers bundle carries of edgelock.
    expect(edgelockOnly.code.length).toBeGreaterThan(parts.edgelock * 0.9);
  });
});
