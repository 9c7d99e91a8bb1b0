/**
 * Codebook usage and dead-code restarts for vector quantisation.
 *
 * A VQ codebook trained by gradient alone collapses: a code that is nobody's nearest neighbour
 * gets no gradient and never moves, so a few codes end up holding every input. The usual cure
 * (Dhariwal et al. 2020, Jukebox; Zeghidour et al. 2021, SoundStream) is to watch which codes
 * the encoder actually picks and move a code that has gone unused for a while onto a recent
 * encoder output, where it will be picked again. This file does the bookkeeping on the host,
 * between training steps: it sees the ids and encoder outputs z a step produced, and rewrites
 * rows of the codebook (and of its optimizer moments) in place.
 *
 * Pure math: no Node I/O, no engine. Deterministic given (seed, step).
 */
import { uniformSource } from '../models/init.ts';

export interface DeadCodeOptions {
  codebookSize: number;
  codebookDim: number;
  /**
   * Steps a code may go unpicked before it counts as dead and is restarted (default 25). Long
   * enough that a rarely needed code survives (256 codes × 25 steps of 256 ids each is 25 picks
   * per code on average), short enough to act many times in a run of a few thousand steps.
   */
  window?: number;
  /** Recent encoder outputs kept as restart targets, in rows (default 2048: several steps' worth). */
  bufferRows?: number;
  /**
   * Noise added to a restarted code, as a fraction of the buffered outputs' RMS (default 0.01):
   * two codes restarted onto the same output must not stay identical, or one stays dead.
   */
  noise?: number;
  /** Seeds the choice of targets and the noise; with the step number, makes restarts reproducible. */
  seed?: number;
}

export interface UsageStats {
  /** Distinct codes picked within the window. */
  used: number;
  /** exp(entropy) of the code frequencies within the window: K for uniform use, 1 for collapse. */
  perplexity: number;
}

/** Tracks which codes the encoder picks and restarts the dead ones. */
export class CodebookUsage {
  readonly codebookSize: number;
  readonly codebookDim: number;
  readonly window: number;
  private readonly noise: number;
  private readonly seed: number;
  /** Step at which each code was last picked (or restarted, or the tracker started). */
  private readonly lastUsed: Float64Array;
  /** Per-step histograms of the last `window` steps, and their sum. */
  private readonly history: { step: number; counts: Int32Array }[] = [];
  private readonly windowCounts: Int32Array;
  /** Ring buffer of recent z rows. */
  private readonly buffer: Float32Array;
  private bufferFill = 0;
  private bufferNext = 0;
  private started: number | null = null;

  constructor(options: DeadCodeOptions) {
    const { codebookSize: k, codebookDim: d } = options;
    const window = options.window ?? 25;
    const rows = options.bufferRows ?? 2048;
    for (const [name, v] of [
      ['codebookSize', k],
      ['codebookDim', d],
      ['window', window],
      ['bufferRows', rows],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0)
        throw new Error(`CodebookUsage: ${name} must be a positive integer, got ${v}`);
    }
    this.noise = options.noise ?? 0.01;
    if (!(this.noise >= 0)) throw new Error(`CodebookUsage: noise must be >= 0, got ${this.noise}`);
    this.codebookSize = k;
    this.codebookDim = d;
    this.window = window;
    this.seed = options.seed ?? 0;
    this.lastUsed = new Float64Array(k);
    this.windowCounts = new Int32Array(k);
    this.buffer = new Float32Array(rows * d);
  }

  /**
   * Record one step: the ids it picked (any shape, flattened) and the encoder outputs z they
   * were picked for ([..., codebookDim], same row order).
   */
  observe(step: number, ids: ArrayLike<number | bigint>, z: Float32Array): void {
    const { codebookSize: k, codebookDim: d } = this;
    if (z.length !== ids.length * d) {
      throw new Error(
        `CodebookUsage.observe: ${ids.length} ids need ${ids.length} × ${d} = ${ids.length * d} z values, got ${z.length}`,
      );
    }
    if (this.started === null) {
      this.started = step - 1;
      this.lastUsed.fill(step - 1);
    }
    const counts = new Int32Array(k);
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]);
      if (!Number.isInteger(id) || id < 0 || id >= k) {
        throw new Error(`CodebookUsage.observe: id ${ids[i]} at ${i} is outside the codebook [0, ${k})`);
      }
      counts[id]++;
      this.lastUsed[id] = step;
    }
    this.history.push({ step, counts });
    for (let c = 0; c < k; c++) this.windowCounts[c] += counts[c];
    while (this.history.length > 0 && this.history[0].step <= step - this.window) {
      const old = this.history.shift()!;
      for (let c = 0; c < k; c++) this.windowCounts[c] -= old.counts[c];
    }
    // Newest rows overwrite the oldest.
    const rows = this.buffer.length / d;
    for (let i = 0; i < ids.length; i++) {
      this.buffer.set(z.subarray(i * d, (i + 1) * d), this.bufferNext * d);
      this.bufferNext = (this.bufferNext + 1) % rows;
      this.bufferFill = Math.min(this.bufferFill + 1, rows);
    }
  }

  /** Codes not picked in the last `window` steps, as of `step`. */
  dead(step: number): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.codebookSize; c++) if (step - this.lastUsed[c] >= this.window) out.push(c);
    return out;
  }

  /** Usage over the window. */
  stats(): UsageStats {
    let total = 0;
    let used = 0;
    for (const n of this.windowCounts) {
      total += n;
      if (n > 0) used++;
    }
    let entropy = 0;
    for (const n of this.windowCounts) {
      if (n > 0) entropy -= (n / total) * Math.log(n / total);
    }
    return { used, perplexity: total > 0 ? Math.exp(entropy) : 0 };
  }

  /**
   * Move every dead code onto a randomly chosen recent encoder output (plus a little noise),
   * in place in `codebook` [K, d] (row-major), and zero those rows of each `moments` array (the
   * optimizer's running averages, so the restarted code starts fresh). Each dead code gets
   * another `window` steps to be picked. Returns the restarted codes.
   */
  restart(step: number, codebook: Float32Array, moments: readonly Float32Array[] = []): number[] {
    const { codebookSize: k, codebookDim: d } = this;
    for (const [what, a] of [
      ['codebook', codebook],
      ...moments.map((m, i) => [`moments[${i}]`, m] as const),
    ] as const) {
      if (a.length !== k * d) {
        throw new Error(
          `CodebookUsage.restart: ${what} has ${a.length} values, expected ${k} × ${d} = ${k * d}`,
        );
      }
    }
    const dead = this.dead(step);
    if (dead.length === 0 || this.bufferFill === 0) return [];
    const rand = uniformSource(Math.imul(this.seed ^ 0x9e3779b9, 0x85ebca6b) ^ step);
    let sumSq = 0;
    for (let i = 0; i < this.bufferFill * d; i++) sumSq += this.buffer[i] ** 2;
    const std = this.noise * Math.sqrt(sumSq / (this.bufferFill * d));
    // Distinct targets while there are enough buffered rows (a partial Fisher–Yates shuffle).
    const order = Array.from({ length: this.bufferFill }, (_, i) => i);
    dead.forEach((code, j) => {
      const slot = j % this.bufferFill;
      const pick = slot + Math.floor(rand() * (this.bufferFill - slot));
      [order[slot], order[pick]] = [order[pick], order[slot]];
      const row = order[slot];
      for (let e = 0; e < d; e++) {
        const gaussian = Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
        codebook[code * d + e] = this.buffer[row * d + e] + std * gaussian;
      }
      for (const m of moments) m.fill(0, code * d, (code + 1) * d);
      this.lastUsed[code] = step;
    });
    return dead;
  }
}
