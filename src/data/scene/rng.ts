/**
 * Seeded randomness for the scene generator and the tasks: every scene, statement and example is
 * a pure function of its key (e.g. split, task, index), so data are reproducible and any example
 * can be regenerated on its own without replaying a stream. sfc32 (small, fast, 128-bit state)
 * seeded by cyrb128 of the key's text.
 *
 * Pure math: no Node I/O.
 */

/** cyrb128: four 32-bit hashes of a string, well mixed; seeds sfc32's 128-bit state. */
function cyrb128(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** A 32-bit hash of a string (the first word of cyrb128), for bucketing content keys. */
export function hash32(text: string): number {
  return cyrb128(text)[0];
}

/** The parts of a key joined unambiguously (a '/' inside a part cannot fake a boundary). */
function keyText(parts: readonly (string | number)[]): string {
  return parts.map((p) => `${typeof p === 'number' ? 'n' : 's'}${String(p).length}:${p}`).join('/');
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  private constructor(state: [number, number, number, number]) {
    [this.a, this.b, this.c, this.d] = state;
    // A few rounds so that nearby seeds diverge before the first draw.
    for (let i = 0; i < 12; i++) this.uint32();
  }

  /** A generator determined by its key parts, e.g. `Rng.fromKey('train', 'nlvr', 17)`. */
  static fromKey(...parts: (string | number)[]): Rng {
    for (const p of parts) {
      if (typeof p === 'number' && !Number.isFinite(p))
        throw new Error(`Rng.fromKey: key part ${p} is not finite`);
    }
    return new Rng(cyrb128(keyText(parts)));
  }

  /** sfc32 step: a uniform 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform on [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) {
      throw new Error(`Rng.int: need integers lo ≤ hi, got [${lo}, ${hi}]`);
    }
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A uniformly chosen element. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick: nothing to pick from (empty list)');
    return items[Math.floor(this.next() * items.length)];
  }

  /** An element chosen with probability proportional to its weight. */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [item, w] of items) {
      if (!(w >= 0) || !Number.isFinite(w))
        throw new Error(`Rng.weighted: weight of ${String(item)} is ${w}`);
      total += w;
    }
    if (total <= 0) throw new Error('Rng.weighted: the weights sum to zero');
    let r = this.next() * total;
    for (const [item, w] of items) {
      r -= w;
      if (r < 0) return item;
    }
    return items[items.length - 1][0];
  }

  /** A shuffled copy (Fisher–Yates). */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** An independent child stream, so a sub-step's draws do not shift the caller's. */
  fork(label: string): Rng {
    return Rng.fromKey(label, this.uint32(), this.uint32());
  }
}
