/**
 * Selection baselines for the selector ablation (does guided selection beat simple rules at the
 * same ⌈ρ·N⌉?): 'random' (seeded by the image's pixels, so reruns agree), 'grid' (a uniform
 * lattice) and 'norm' (largest L2 norm of the ViT feature), as strategies for step 2 of the image
 * path (src/maven/patch-selection.ts), beside the model's own 'selector'. They rank nothing
 * across images, so none can spend a visual-token budget. Evaluation names them in its settings
 * and reports; `patchStrategy` turns a name into the strategy the model takes.
 */

import { type PatchStrategy, type SelectionOptions, selectorStrategy } from '../maven/patch-selection.ts';
import { topKInOrder } from '../maven/patch-selector.ts';
import type { EncodingMode } from '../maven/sequence.ts';
import { uniformSource } from '../models/init.ts';

export const PATCH_SELECTIONS = ['selector', 'random', 'grid', 'norm'] as const;
export type PatchSelection = (typeof PATCH_SELECTIONS)[number];

/** k distinct patches of n drawn uniformly (partial Fisher–Yates, seeded), raster order. */
export function randomPatches(n: number, k: number, seed: number): number[] {
  if (!Number.isInteger(k) || k < 0 || k > n) throw new Error(`cannot keep ${k} of ${n} patches`);
  const rand = uniformSource(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (n - i));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order.slice(0, k).sort((a, b) => a - b);
}

/**
 * k patches on a uniform lattice over a rows × cols grid, raster order: kr × kc lattice points
 * (kr ≈ √k, cell centres), thinned evenly to exactly k when the lattice has more. ρ = 1/4 on a
 * 12 × 12 grid gives every other row and column.
 */
export function gridPatches(rows: number, cols: number, k: number): number[] {
  if (!Number.isInteger(k) || k < 0 || k > rows * cols)
    throw new Error(`cannot keep ${k} of ${rows}×${cols} patches`);
  if (k === 0) return [];
  let kr = Math.min(rows, Math.max(1, Math.round(Math.sqrt((k * rows) / cols))));
  let kc = Math.min(cols, Math.ceil(k / kr));
  while (kr * kc < k) kr++; // kc hit cols: add rows (kr ≤ rows because k ≤ rows·cols)
  kc = Math.min(cols, Math.ceil(k / kr));
  const at = (i: number, of: number, size: number) => Math.floor(((i + 0.5) * size) / of);
  const lattice: number[] = [];
  for (let r = 0; r < kr; r++)
    for (let c = 0; c < kc; c++) lattice.push(at(r, kr, rows) * cols + at(c, kc, cols));
  // Evenly spaced picks from the lattice keep the coverage uniform when it has more than k points.
  return Array.from({ length: k }, (_, t) => lattice[at(t, k, lattice.length)]);
}

/** The k patches whose features [N, dv] have the largest L2 norm (an attention-free saliency), raster order. */
export function normPatches(features: Float32Array, dv: number, k: number): number[] {
  const n = features.length / dv;
  const norms = Array.from({ length: n }, (_, p) => {
    let s = 0;
    for (let d = p * dv; d < (p + 1) * dv; d++) s += features[d] * features[d];
    return Math.sqrt(s);
  });
  return topKInOrder(norms, k);
}

export const randomStrategy: PatchStrategy = {
  name: 'random',
  usesScores: false,
  keep: (images, counts) => images.map((e, i) => randomPatches(e.totalPatches, counts[i], e.contentSeed)),
};

export const gridStrategy: PatchStrategy = {
  name: 'grid',
  usesScores: false,
  keep: (images, counts) => images.map((e, i) => gridPatches(e.grid, e.grid, counts[i])),
};

export const normStrategy: PatchStrategy = {
  name: 'norm',
  usesScores: false,
  keep: (images, counts) =>
    images.map((e, i) => normPatches(e.features!.data as Float32Array, e.features!.shape[1], counts[i])),
};

const STRATEGIES: Record<PatchSelection, PatchStrategy> = {
  selector: selectorStrategy,
  random: randomStrategy,
  grid: gridStrategy,
  norm: normStrategy,
};

/** The strategy a selection name stands for; unknown names are an error that lists the known ones. */
export function patchStrategy(selection: PatchSelection): PatchStrategy {
  if (!PATCH_SELECTIONS.includes(selection))
    throw new Error(
      `selection must be one of ${PATCH_SELECTIONS.join(', ')}, got ${JSON.stringify(selection)}`,
    );
  return STRATEGIES[selection];
}

/** An evaluation's encoding settings, by name (as its reports and JSON give them). */
export interface EncodingSettings {
  mode?: EncodingMode;
  keepRatio?: number;
  visualTokenBudget?: number;
  /** Default 'selector'. */
  selection?: PatchSelection;
}

/** Only the settings that change how images are encoded, as the model's step-2 options. */
export function selectionOptions(s: EncodingSettings): SelectionOptions {
  const { mode, keepRatio, visualTokenBudget, selection } = s;
  return { mode, keepRatio, visualTokenBudget, strategy: patchStrategy(selection ?? 'selector') };
}
