/// <reference types="node" />
/**
 * The README's copy of the latest results: the machine and versions the run came from, and issue
 * 6's targets table, written between two markers in README.md so the README never shows figures
 * from another run than docs/benchmarks.md.
 */

import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const readme = new URL("../../README.md", import.meta.url);
const START = "<!-- bench:results:start (written by npm run bench; do not edit) -->";
const END = "<!-- bench:results:end -->";

/**
 * Replaces the block between the markers with `block`, then lets Biome lay the README out (it
 * pads tables), so the written README passes `npm run lint`. Throws if README.md has lost its
 * markers, rather than appending figures somewhere nobody looks.
 */
export async function updateReadme(block: string): Promise<void> {
  const text = await readFile(readme, "utf8");
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) {
    throw new Error(`README.md needs the markers ${START} and ${END} around the bench results`);
  }
  const next = `${text.slice(0, start + START.length)}\n\n${block}\n\n${text.slice(end)}`;
  await writeFile(readme, next);
  await promisify(execFile)("npx", ["biome", "format", "--write", fileURLToPath(readme)]);
}
