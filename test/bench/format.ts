/**
 * Number formatting and markdown tables for the report.
 */

/** A markdown table; the first column left-aligned, the others right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const align = headers.map((_, index) => (index === 0 ? ":--" : "--:"));
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(headers), line(align), ...rows.map(line)].join("\n");
}

/** `n` with `digits` decimals, thousands separated; "–" when missing. */
export function num(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A ratio as `0.97×`. */
export function times(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(2)}×` : "–";
}

/** A share as `12 %`. */
export function percent(n: number): string {
  return Number.isFinite(n) ? `${(n * 100).toFixed(0)} %` : "–";
}

/** Milliseconds with sensible precision: 0.31, 4.2, 118. */
export function ms(n: number): string {
  if (!Number.isFinite(n)) return "–";
  if (n < 10) return n.toFixed(2);
  if (n < 100) return n.toFixed(1);
  return n.toFixed(0);
}

/** Table-safe text (no pipes or newlines). */
export function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}
