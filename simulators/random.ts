/**
 * A tiny seeded PRNG (mulberry32) and helpers. Simulations must be reproducible: the same seed gives the same
 * resident, the same day and the same payloads, so tests can assert on them and a demo can be replayed.
 */

/** mulberry32: 32-bit state, good enough statistics for simulation, one multiply per number. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over the string's UTF-16 units: turns ids ("h-0101", "wb-17") into seeds. */
export function hashSeed(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  const s = parts.join('\u0000');
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** [0, 1) */
  float(): number {
    return this.next();
  }
  /** [min, max) */
  range(min: number, max: number): number {
    return min + (max - min) * this.next();
  }
  /** integer in [min, max] */
  int(min: number, max: number): number {
    return min + Math.floor((max - min + 1) * this.next());
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)] as T;
  }
  /** Normal distribution (Box–Muller), clamped to ±3 sd so a rare draw never leaves the plausible range. */
  normal(mean: number, sd: number): number {
    const u = 1 - this.next();
    const v = this.next();
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    return mean + sd * Math.max(-3, Math.min(3, z));
  }
}
