/**
 * The chart in docs/benchmarks.svg, written by hand (no chart library): one group of horizontal
 * bars per key ratio, each group on its own scale with the floor (1.0×) marked.
 */

import { type Entry, medRatio, type Results } from "./results.js";

interface Bar {
  label: string;
  value: number;
  highlight: boolean;
}

interface Group {
  title: string;
  bars: Bar[];
  /** The performance target for edgelock, drawn as a dotted line, if it is a ratio. */
  target?: number;
}

const WIDTH = 820;
const LABEL_WIDTH = 330;
const BAR_AREA = 380;
const ROW = 20;
const TITLE = 30;
const PAD = 16;
/** Bars longer than this ratio are clipped (their label still shows the value). */
const CLIP = 3;

const xml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** Bars of `entries` (the floor itself left out) as ratios to the floor entry. */
function ratios<T>(entries: readonly Entry<T>[], pick: (value: T) => number): Bar[] {
  const floor = entries.find((entry) => entry.id === "floor")?.series;
  return entries
    .filter((entry) => entry.id !== "floor")
    .map((entry) => ({
      label: entry.label,
      value: medRatio(entry.series, floor, pick),
      highlight: entry.id.startsWith("edgelock"),
    }))
    .filter((bar) => Number.isFinite(bar.value));
}

function groups(results: Results): Group[] {
  return [
    {
      title: "1 · sequential acquire+release, pairs/s ÷ raw floor",
      bars: ratios(results.sequential, (r) => r.pairsPerSec),
      target: 0.95,
    },
    {
      title: "2 · 200 in flight on one connection, pairs/s ÷ raw floor",
      bars: ratios(results.inflight, (r) => r.pairsPerSec),
      target: 0.92,
    },
    {
      title: "3b · 10 workers, 5 ms think: critical sections/s ÷ raw floor polling every 10 ms",
      bars: ratios(results.contention.think, (r) => r.sectionsPerSec),
      target: 2,
    },
    {
      title: "3a · 10 workers, greedy: owner changes/s ÷ raw floor polling every 10 ms",
      bars: ratios(results.contention.greedy, (r) => r.ownerChangesPerSec),
    },
    {
      title: "4 · REST acquire+release pairs/s ÷ raw @upstash/redis",
      bars: ratios(results.rest, (r) => r.pairsPerSec),
    },
  ].filter((group) => group.bars.length > 0);
}

function drawGroup(group: Group, top: number): { svg: string; height: number } {
  const largest = Math.max(1.2, group.target ?? 0, ...group.bars.map((bar) => bar.value));
  const max = Math.min(CLIP, largest) * 1.05;
  const x = (value: number) => LABEL_WIDTH + (Math.min(value, max) / max) * BAR_AREA;
  const parts = [`<text x="${PAD}" y="${top + 20}" class="title">${xml(group.title)}</text>`];
  group.bars.forEach((bar, index) => {
    const y = top + TITLE + index * ROW;
    const width = Math.max(1, x(bar.value) - LABEL_WIDTH);
    const clipped = bar.value > max ? " ▸" : "";
    parts.push(
      `<text x="${LABEL_WIDTH - 8}" y="${y + 14}" class="label">${xml(bar.label)}</text>`,
      `<rect x="${LABEL_WIDTH}" y="${y + 3}" width="${width.toFixed(1)}" height="${ROW - 6}" ` +
        `class="${bar.highlight ? "edgelock" : "peer"}"/>`,
      `<text x="${(LABEL_WIDTH + width + 6).toFixed(1)}" y="${y + 14}" class="value">` +
        `${bar.value.toFixed(2)}×${clipped}</text>`,
    );
  });
  const bottom = top + TITLE + group.bars.length * ROW;
  const line = (value: number, cls: string) => {
    const at = x(value).toFixed(1);
    return `<line x1="${at}" y1="${top + TITLE - 2}" x2="${at}" y2="${bottom + 2}" class="${cls}"/>`;
  };
  parts.push(line(1, "floor"));
  if (group.target !== undefined) parts.push(line(group.target, "target"));
  return { svg: parts.join("\n"), height: bottom - top + 10 };
}

/** The whole SVG document. */
export function chart(results: Results): string {
  let top = PAD + 34;
  const drawn: string[] = [];
  for (const group of groups(results)) {
    const { svg, height } = drawGroup(group, top);
    drawn.push(svg);
    top += height;
  }
  const height = top + PAD;
  const { machine, config } = results;
  const caption = [
    "edgelock (green) vs peers: ratios to the raw floor measured in the same run. " +
      "Red dashed: the floor (1.0×); green dotted: the target.",
    `${config.repetitions > 1 ? `Medians of ${config.repetitions} runs` : "One run"}; ` +
      `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, Redis ${machine.redis}, ` +
      `${machine.date.slice(0, 10)}. Bars past ${CLIP}× are clipped (▸).`,
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
      `viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    "<style>",
    ".title { font-weight: 600; font-size: 13px; fill: #222 }",
    ".label { text-anchor: end; fill: #333 }",
    ".value { fill: #333 }",
    ".edgelock { fill: #2f7d4f }",
    ".peer { fill: #9aa5b1 }",
    ".floor { stroke: #c0392b; stroke-dasharray: 4 3 }",
    ".target { stroke: #2f7d4f; stroke-width: 1.5; stroke-dasharray: 1 3 }",
    ".caption { fill: #555; font-size: 11px }",
    "</style>",
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    ...caption.map(
      (line, index) =>
        `<text x="${PAD}" y="${PAD + 4 + index * 15}" class="caption">${xml(line)}</text>`,
    ),
    ...drawn,
    "</svg>",
    "",
  ].join("\n");
}
