/**
 * Train / held-out splits that never share a scene. Seeds are split-salted (the rng key holds
 * the split), but that alone cannot stop two seeds from drawing the same scene — tower boxes, for
 * one, come in only 120 kinds. So the split of an example is decided by its *content*: a hash of
 * the canonical keys of all its images (order-free). An example is kept for a split only when its
 * content hashes into that split; otherwise it is drawn again. Identical image sets therefore
 * always land in the same split, whatever the seed or index.
 *
 * What is guaranteed: no example's set of images (for NLVR tasks: no scene) appears in both
 * splits. Single boxes can recur across splits (there are only 3 one-block towers); Fashion-MNIST
 * tasks are split by their source instead (train-* files for training, t10k-* for held-out).
 *
 * Pure math: no Node I/O.
 */
import { hash32 } from '../scene/rng.ts';
import { boxKey } from '../scene/scene.ts';
import type { Split, Visual } from './types.ts';

/** Share of the content space held out: enough for evaluation, little lost for training. */
export const HELDOUT_SHARE = 0.1;

/** Canonical key of one visual: equal keys ⇒ identical pixels. */
export function visualKey(visual: Visual): string {
  return visual.kind === 'box' ? `box[${boxKey(visual.objects)}]` : `gray[${visual.key}]`;
}

/** Canonical key of an example's images, independent of their order. */
export function contentKey(visuals: readonly Visual[]): string {
  return visuals.map(visualKey).sort().join('|');
}

/** The split a content key belongs to. */
export function splitOfContent(key: string): Split {
  return hash32(`maven-split/${key}`) / 4294967296 < HELDOUT_SHARE ? 'heldout' : 'train';
}

export function checkSplit(split: string): asserts split is Split {
  if (split !== 'train' && split !== 'heldout') {
    throw new Error(`unknown split ${JSON.stringify(split)} (expected 'train' or 'heldout')`);
  }
}
