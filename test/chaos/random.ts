/**
 * Seeded randomness for the chaos suite: every random timing and fault choice of a run comes
 * from one seed, so a failing run can be replayed with `CHAOS_SEED`.
 */

/** A seeded pseudo-random source (mulberry32: small, fast, good enough for test timings). */
export class Random {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** A 32-bit seed derived from a master seed and labels (FNV-1a over their text). */
export function deriveSeed(master: number, ...labels: (string | number)[]): number {
  let hash = 0x811c9dc5;
  for (const char of [master, ...labels].join("/")) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The master seed: `CHAOS_SEED` if set, else a fresh one (printed with every failure). */
export function masterSeed(): number {
  const given = process.env.CHAOS_SEED;
  if (given !== undefined && given !== "") {
    const seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0) {
      throw new Error(`CHAOS_SEED must be a non-negative integer, got ${given}`);
    }
    return seed >>> 0;
  }
  return Math.floor(Math.random() * 2 ** 32);
}
