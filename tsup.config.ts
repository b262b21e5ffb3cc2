import { defineConfig } from "tsup";

export default defineConfig([
  /**
   * The library: one entry per public path. The adapters import the core as "edgelock"
   * (external), so every entry shares a single copy of the core and its error classes; the
   * transports' client libraries are peer dependencies.
   */
  {
    entry: {
      index: "src/index.ts",
      ioredis: "adapters/ioredis.ts",
      memory: "adapters/memory.ts",
      upstash: "adapters/upstash.ts",
      gateway: "adapters/gateway/index.ts",
      hono: "adapters/hono/index.ts",
      lambda: "adapters/lambda/index.ts",
      redlock: "adapters/redlock/index.ts",
    },
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    target: "es2022",
    external: ["edgelock", "ioredis", "@upstash/redis", "hono"],
  },
  /**
   * The `edgelock` command: self-contained (Hono and ioredis bundled in), so
   * `npx edgelock gateway` works from a clean install without the optional peers.
   */
  {
    entry: { cli: "adapters/gateway/cli.ts" },
    format: ["cjs"],
    platform: "node",
    target: "node18",
    noExternal: ["hono", "ioredis"],
  },
]);
