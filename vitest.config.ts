import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** Resolve the package's own names to the sources, as tsconfig.json's `paths` do. */
const alias = [
  { find: /^edgelock$/, replacement: here("./src/index.ts") },
  { find: /^edgelock\/gateway$/, replacement: here("./adapters/gateway/index.ts") },
  { find: /^edgelock\/hono$/, replacement: here("./adapters/hono/index.ts") },
  { find: /^edgelock\/lambda$/, replacement: here("./adapters/lambda/index.ts") },
  { find: /^edgelock\/redlock$/, replacement: here("./adapters/redlock/index.ts") },
  { find: /^edgelock\/(.+)$/, replacement: here("./adapters/$1.ts") },
];

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: { name: "unit", include: ["test/unit/**/*.test.ts", "test/contract/**/*.test.ts"] },
      },
      {
        resolve: { alias },
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "chaos",
          include: ["test/chaos/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
