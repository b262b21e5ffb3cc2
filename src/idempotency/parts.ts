/**
 * Cutting a large stored body into parts small enough for any transport: over REST, every
 * script call is one HTTP request whose body is the JSON of its arguments, and endpoints limit
 * its size (1 MiB by default for edgelock's gateway).
 *
 * @module
 */

/** The most a part may weigh once in a request: its UTF-8 bytes with JSON's escapes. */
export const PART_BYTES = 512 * 1024;

/**
 * `text` cut into parts of at most `max` bytes each, counted as a request carries them (UTF-8,
 * JSON-escaped), never between the two halves of a surrogate pair; one part when it fits.
 *
 * @example
 * ```ts
 * splitParts("x".repeat(1_200_000)); // three parts: 524288, 524288 and 151424 characters
 * ```
 */
export function splitParts(text: string, max = PART_BYTES): string[] {
  const parts: string[] = [];
  let start = 0;
  let size = 0;
  for (let i = 0; i < text.length; ) {
    const code = text.charCodeAt(i);
    const pair = code >= 0xd800 && code <= 0xdbff && isLow(text.charCodeAt(i + 1));
    const width = pair ? 2 : 1;
    const bytes = pair ? 4 : weight(code);
    if (size + bytes > max && i > start) {
      parts.push(text.slice(start, i));
      start = i;
      size = 0;
    }
    size += bytes;
    i += width;
  }
  parts.push(text.slice(start));
  return parts;
}

/** Bytes one UTF-16 unit (not half of a pair) takes in a JSON string, as UTF-8. */
function weight(code: number): number {
  if (code === 0x22 || code === 0x5c) return 2; // \" and \\
  if (code < 0x20) return 6; // \u00XX (at most)
  if (code < 0x80) return 1;
  if (code < 0x800) return 2;
  if (code >= 0xd800 && code <= 0xdfff) return 6; // a lone surrogate: \uXXXX
  return 3;
}

function isLow(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
