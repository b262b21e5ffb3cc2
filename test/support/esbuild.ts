/// <reference types="node" />
/**
 * Bundles edge code with esbuild the way edge platforms do (browser platform, their export
 * conditions), resolving the package's own names to its sources as vitest.config.ts does, and
 * recording every import of a Node built-in or ioredis instead of failing on it, so a test can
 * say exactly what leaked.
 */
import { builtinModules } from "node:module";
import { fileURLToPath } from "node:url";
import { type BuildOptions, build, type Metafile, type Plugin } from "esbuild";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** The repository root. */
export const ROOT = here("../../");

/** `edgelock`, `edgelock/hono`, `edgelock/gateway`, `edgelock/<adapter>` → their sources. */
function sourceOf(specifier: string): string | undefined {
  if (specifier === "edgelock") return here("../../src/index.ts");
  if (specifier === "edgelock/gateway") return here("../../adapters/gateway/index.ts");
  if (specifier === "edgelock/hono") return here("../../adapters/hono/index.ts");
  const adapter = /^edgelock\/([\w-]+)$/.exec(specifier)?.[1];
  return adapter === undefined ? undefined : here(`../../adapters/${adapter}.ts`);
}

/** Names that must never reach an edge bundle: Node built-ins (bare or `node:`) and ioredis. */
const NODE_BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
const isForbidden = (specifier: string) =>
  specifier.startsWith("node:") ||
  NODE_BUILTINS.has(specifier) ||
  NODE_BUILTINS.has(specifier.split("/")[0] ?? "") ||
  specifier === "ioredis" ||
  specifier.startsWith("ioredis/");

/** A forbidden import the bundle asked for: what, and from which file. */
export interface ForbiddenImport {
  specifier: string;
  importer: string;
}

/** What {@link bundleForEdge} produced. */
export interface EdgeBundle {
  code: string;
  metafile: Metafile;
  /** Node built-ins and ioredis imports met while bundling (left external, so listed here). */
  forbidden: ForbiddenImport[];
}

/** Options of {@link bundleForEdge}: esbuild's, minus what the helper sets. */
export type EdgeBundleOptions = Omit<BuildOptions, "bundle" | "write" | "metafile" | "plugins">;

/**
 * Bundles `options.entryPoints` (or `stdin`) in memory with edgelock's sources, the
 * `browser` platform and the given export `conditions`; returns the one output's text, the
 * metafile and the forbidden imports it met.
 */
export async function bundleForEdge(options: EdgeBundleOptions): Promise<EdgeBundle> {
  const forbidden: ForbiddenImport[] = [];
  const plugin: Plugin = {
    name: "edgelock-sources-and-guard",
    setup(build) {
      build.onResolve({ filter: /^edgelock(\/.*)?$/ }, (args) => {
        const path = sourceOf(args.path);
        return path === undefined ? undefined : { path };
      });
      build.onResolve({ filter: /.*/ }, (args) => {
        if (!isForbidden(args.path)) return undefined;
        forbidden.push({ specifier: args.path, importer: args.importer });
        return { path: args.path, external: true };
      });
    },
  };
  const result = await build({
    absWorkingDir: ROOT,
    platform: "browser",
    format: "esm",
    target: "es2022",
    logLevel: "silent",
    ...options,
    bundle: true,
    write: false,
    metafile: true,
    plugins: [plugin],
  });
  const [output] = result.outputFiles;
  if (output === undefined || result.outputFiles.length !== 1) {
    throw new Error(`expected one output file, got ${result.outputFiles.length}`);
  }
  return { code: output.text, metafile: result.metafile, forbidden };
}
