/**
 * Step 1 of the image path: what an image gives whatever a request asks of it — its discrete
 * codebook ids, the selector's score for each patch (from h_EOS of those ids) and every patch's
 * ViT features. Step 2 (patch-selection.ts) chooses and projects patches from it for a mode, a
 * keep ratio or a token budget, and a strategy; so an encoding can be kept (a server's cache, the
 * six box orders of an NLVR picture) and selected from again without running the vision side.
 */
import { HostTensor } from '../engine/index.ts';
import type { ImageBatch, MavenModel } from './model.ts';
import type { EncodingMode } from './sequence.ts';

export interface ImageEncoding {
  /** Codebook ids of the discrete tokenizer; null when encoded for continuous-only. */
  discreteIds: readonly number[] | null;
  /** Selector logit per patch, raster order; null unless encoded for hybrid. */
  scores: Float32Array | null;
  /** Every patch's ViT features [N, D_vision], raster order; null when encoded for discrete-only. */
  features: HostTensor | null;
  /**
   * FNV-1a of the image's pixels (the vision tower's input): a seed that follows the image, not
   * its place in a batch, for strategies that draw at random yet must agree on reruns.
   */
  contentSeed: number;
  /** Patches per side; N = grid². */
  grid: number;
  totalPatches: number;
}

export interface ImageEncodingOptions {
  /**
   * The mode(s) the encodings will be selected for (as step 2's `mode`), so that nothing else
   * runs: 'hybrid' (default) computes ids, scores and features, from which every mode can be
   * selected; 'discrete-only' only the ids; 'continuous-only' only the features. Modes that
   * differ between the images need all of it.
   */
  mode?: EncodingMode | readonly EncodingMode[];
}

/** FNV-1a over the bit patterns of `values`: the same image always gets the same seed. */
export function contentSeed(values: Float32Array): number {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  let h = 0x811c9dc5;
  for (const b of bits) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/**
 * Encode a batch of preprocessed images (MavenModel.preprocessRgb): one run of the vision
 * programs for the whole batch, then, in hybrid mode, one h_EOS pass and one selector pass.
 */
export async function encodeImages(
  model: MavenModel,
  images: HostTensor | ImageBatch,
  options: ImageEncodingOptions = {},
): Promise<ImageEncoding[]> {
  const batch = images instanceof HostTensor ? { pixels: images } : images;
  const modes = new Set(typeof options.mode === 'string' ? [options.mode] : (options.mode ?? []));
  const mode: EncodingMode = modes.size === 1 ? [...modes][0] : 'hybrid';
  const count = batch.pixels.shape[0];
  if (count === 0) return [];
  const { features, ids } = await model.encodePixels(batch, mode);
  const q = model.config.seed.qformer.numQueryTokens;
  const codes = ids
    ? Array.from({ length: count }, (_, i) =>
        Array.from((ids.data as BigInt64Array).subarray(i * q, (i + 1) * q), Number),
      )
    : null;
  const grid = model.config.vision.imageSize / model.config.vision.patchSize;
  const n = grid * grid;
  const scores =
    mode === 'hybrid' ? (await model.selectorScores(features!, await model.hEos(codes!))).data : null;
  const dv = model.config.vision.hiddenSize;
  const perImage = batch.pixels.data.length / count;
  return Array.from({ length: count }, (_, i) => ({
    discreteIds: codes ? codes[i] : null,
    scores: scores ? (scores as Float32Array).slice(i * n, (i + 1) * n) : null,
    features: features
      ? new HostTensor(
          'float32',
          [n, dv],
          (features.data as Float32Array).slice(i * n * dv, (i + 1) * n * dv),
        )
      : null,
    contentSeed: contentSeed((batch.pixels.data as Float32Array).subarray(i * perImage, (i + 1) * perImage)),
    grid,
    totalPatches: n,
  }));
}
