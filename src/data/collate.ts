/**
 * Collation: from examples to the padded tensors a training step takes.
 * - Token sequences → ids, attention mask and next-token targets, with the loss only where it
 *   belongs (answers, not prompts or padding: `ignoreIndex`, PyTorch's −100).
 * - Selector examples (stage 1) → preprocessed pixels and per-patch 0/1 labels from the object
 *   masks (text-guided: only the objects the statement is about).
 */
import { HostTensor } from '../engine/index.ts';
import { fitToSquare, type ImagePreprocessConfig, normalizeImage } from '../models/image.ts';
import { patchLabels } from './patch-labels.ts';
import { unionMasks } from './shapes.ts';
import type { SelectorExample } from './tasks/stage-datasets.ts';

export const IGNORE_INDEX = -100;

export interface TokenSequence {
  ids: readonly number[];
  /** Index of the first token that is a prediction target (e.g. the answer's first token); default 1. */
  lossFrom?: number;
}

export interface TokenBatch {
  /** [B, T] int64, right-padded with `padId`. */
  ids: HostTensor<'int64'>;
  /** [B, T] int64, 1 on real tokens. */
  attentionMask: HostTensor<'int64'>;
  /** [B, T] int64: targets[t] = ids[t + 1] where that token is a target, else IGNORE_INDEX. */
  targets: HostTensor<'int64'>;
  /** Number of target tokens (the loss's denominator). */
  targetCount: number;
}

export function collateTokens(
  sequences: readonly TokenSequence[],
  padId: number,
  maxLength?: number,
): TokenBatch {
  if (sequences.length === 0) throw new Error('collateTokens: empty batch');
  const longest = Math.max(...sequences.map((s) => s.ids.length));
  if (maxLength !== undefined && longest > maxLength) {
    const i = sequences.findIndex((s) => s.ids.length === longest);
    throw new Error(`collateTokens: sequence ${i} has ${longest} tokens, more than the limit ${maxLength}`);
  }
  const B = sequences.length;
  const T = Math.max(1, longest);
  const ids = new BigInt64Array(B * T).fill(BigInt(padId));
  const mask = new BigInt64Array(B * T);
  const targets = new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
  let count = 0;
  sequences.forEach((s, b) => {
    const from = Math.max(1, s.lossFrom ?? 1);
    s.ids.forEach((id, t) => {
      ids[b * T + t] = BigInt(id);
      mask[b * T + t] = 1n;
      if (t >= from) {
        targets[b * T + t - 1] = BigInt(id);
        count++;
      }
    });
  });
  return {
    ids: new HostTensor('int64', [B, T], ids),
    attentionMask: new HostTensor('int64', [B, T], mask),
    targets: new HostTensor('int64', [B, T], targets),
    targetCount: count,
  };
}

export interface SelectorBatch {
  /** [B, 3, S, S] normalised pixels. */
  pixels: HostTensor<'float32'>;
  /** [B, N] 0/1 patch labels, raster order. */
  labels: HostTensor<'float32'>;
  statements: string[];
}

export interface SelectorBatchOptions {
  preprocess: ImagePreprocessConfig;
  patchSize: number;
  /** Only the objects the statement is about (default true), or every object of the box. */
  textGuided?: boolean;
  /** A patch is positive when its overlap is > this (default 0). */
  threshold?: number;
}

export function collateSelector(
  examples: readonly SelectorExample[],
  options: SelectorBatchOptions,
): SelectorBatch {
  const S = options.preprocess.size;
  const grid = S / options.patchSize;
  if (!Number.isInteger(grid))
    throw new Error(`collateSelector: image size ${S} is not a multiple of patch size ${options.patchSize}`);
  const N = grid * grid;
  const pixels = new Float32Array(examples.length * 3 * S * S);
  const labels = new Float32Array(examples.length * N);
  examples.forEach((ex, b) => {
    const { width, height } = ex.image;
    // Exactly the model's preprocessing (preprocessImage = fitToSquare + normalizeImage).
    const resized = fitToSquare(ex.image, options.preprocess);
    pixels.set(
      normalizeImage(resized, options.preprocess.mean, options.preprocess.std).data as Float32Array,
      b * 3 * S * S,
    );
    const mask = options.textGuided === false ? unionMasks(ex.objectMasks, width * height) : ex.relevantMask;
    const r = patchLabels(mask, width, height, {
      imageSize: S,
      patchSize: options.patchSize,
      threshold: options.threshold,
    });
    labels.set(r.labels, b * N);
  });
  return {
    pixels: new HostTensor('float32', [examples.length, 3, S, S], pixels),
    labels: new HostTensor('float32', [examples.length, N], labels),
    statements: examples.map((e) => e.statement),
  };
}
