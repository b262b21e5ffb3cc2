import { defineConfig } from "tsup";

/**
 * One entry per public path. The adapters import the core as "edgelock" (external), so every
 * entry shares a single copy of the core and its error classes.
 */
export default defineConfig({
  entry: {
    index: "src/index.ts",
    ioredis: "adapters/ioredis.ts",
    memory: "adapters/memory.ts",
  },
  format: ["esm", "cjs"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "es2022",
  external: ["edgelock", "ioredis", "@upstash/redis", "hono"],
});
