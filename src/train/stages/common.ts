/** What the four MaVEn stages share: options, the frozen encoder snapshot, image preprocessing, batching. */

import { Rng } from '../../data/scene/rng.ts';
import type { ImageSource } from '../../data/tasks/task.ts';
import type { TaskName } from '../../data/tasks/types.ts';
import { HostTensor, type RuntimeOptions } from '../../engine/index.ts';
import type { MavenConfig } from '../../maven/config.ts';
import type { ImageEncoding } from '../../maven/image-encoding.ts';
import { type ImageBatch, MavenModel } from '../../maven/model.ts';
import { type ChosenPatches, choosePatches } from '../../maven/patch-selection.ts';
import { gatherRows, keepCount } from '../../maven/patch-selector.ts';
import { ENCODING_MODES, type EncodingMode } from '../../maven/sequence.ts';
import type { DecodedImage } from '../../models/image.ts';
import type { TextTokenizer } from '../../models/tokenizer.ts';
import type { MultimodalLayout } from '../multimodal.ts';

export interface MavenStageOptions {
  config: MavenConfig;
  /** Every weight of the model at the start of the stage (by checkpoint name). */
  weights: ReadonlyMap<string, HostTensor>;
  tokenizer: TextTokenizer;
  steps: number;
  batchSize: number;
  /** Peak learning rate (warm-up 5 % of the steps, then cosine to 10 %). */
  lr: number;
  seed?: number;
  /** Fashion-MNIST training photos, mixed into captions and tasks when given. */
  fashion?: ImageSource;
  /** Stage 4's task mix (relative weights; default every available task 1). */
  taskWeights?: Partial<Record<TaskName, number>>;
  /**
   * Stages 3–4: the encoding the LLM is trained on (default 'hybrid', the paper's). The other
   * modes retrain single-encoding baselines for the encoding ablation (the paper's Table 4).
   */
  mode?: EncodingMode;
  /**
   * Stages 3–4: instead of one `mode`, draw each single-image example's encoding from these
   * relative weights (multi-image examples keep `mode`). A model trained only on hybrid sequences
   * has never seen an image without its discrete ids, or without its patches, so it reads the
   * other two encodings poorly; the tiny recipe mixes them in so that every mode works on one model.
   */
  singleImageModes?: Partial<Record<EncodingMode, number>>;
  runtime?: RuntimeOptions;
}

/** Encoding of single-image example `index` of a stage: `singleImageModes` drawn, else `mode`. */
export function singleImageMode(o: MavenStageOptions, stage: string, index: number): EncodingMode {
  const mix = o.singleImageModes;
  if (!mix) return o.mode ?? 'hybrid';
  const weights = ENCODING_MODES.map((m) => [m, mix[m] ?? 0] as const).filter(([, w]) => w > 0);
  if (weights.length === 0) throw new Error(`${stage}: singleImageModes gives no mode a positive weight`);
  return Rng.fromKey('maven-mode', o.seed ?? 0, stage, index).weighted(weights);
}

/** An image's tokens for training, with its kept patches' ViT features (the projector runs in the graph). */
export type TrainingImage = ChosenPatches & { keptFeatures: HostTensor };

/**
 * Encodes images with the frozen parts, each in its own mode (step 1 once per mode present, so
 * each runs only what its mode reads), chooses their patches as inference does (step 2 at the
 * config's ρ, without the projection) and gathers the kept patches' step-1 features.
 */
export async function encodeInModes(
  encoder: MavenModel,
  images: readonly DecodedImage[],
  modes: readonly EncodingMode[],
): Promise<TrainingImage[]> {
  if (modes.length !== images.length)
    throw new Error(`encodeInModes: ${modes.length} modes for ${images.length} images`);
  const encodings: ImageEncoding[] = new Array(images.length);
  for (const mode of new Set(modes)) {
    const at = modes.flatMap((m, i) => (m === mode ? [i] : []));
    const encoded = await encoder.encodeImages(
      pixelsOf(
        encoder,
        at.map((i) => images[i]),
      ),
      { mode },
    );
    at.forEach((i, k) => {
      encodings[i] = encoded[k];
    });
  }
  const dv = encoder.config.vision.hiddenSize;
  return choosePatches(encodings, { mode: modes, keepRatio: encoder.config.keepRatio }).map((c, i) => {
    const features = encodings[i].features;
    return {
      ...c,
      keptFeatures: features
        ? gatherRows(features.data as Float32Array, dv, c.keptPatches)
        : HostTensor.zeros('float32', [0, dv]),
    };
  });
}

export function schedule(o: MavenStageOptions) {
  const warmupSteps = Math.max(1, Math.round(o.steps * 0.05));
  return { peak: o.lr, warmupSteps, totalSteps: o.steps, min: o.lr * 0.1 };
}

/**
 * The model as it is when the stage starts, used on the host to encode images with the frozen
 * parts (discrete ids, h_EOS, selection, raw patch features).
 */
export function frozenEncoder(o: MavenStageOptions): MavenModel {
  return new MavenModel(o.config, o.weights, o.tokenizer, o.runtime);
}

/** How sequences are laid out for the multimodal collation: the encoder's vocabulary and delimiters. */
export function sequenceLayout(encoder: MavenModel, o: MavenStageOptions): MultimodalLayout {
  return {
    vocabulary: encoder.vocabulary,
    imageStartId: encoder.imageStartId,
    imageEndId: encoder.imageEndId,
    order: o.config.sequenceOrder,
    padId: o.tokenizer.padId,
    visionWidth: o.config.vision.hiddenSize,
  };
}

/**
 * Sequence slots one image takes in `mode` (`assembleSequence`): its delimiters, its discrete ids
 * unless continuous-only, and its patches: every one in continuous-only mode, the ρ·N the selector
 * keeps in hybrid mode. Known before encoding, so batches can be grouped by length.
 */
export function imageSlotCount(config: MavenConfig, mode: EncodingMode): number {
  const patches = (config.vision.imageSize / config.vision.patchSize) ** 2;
  const discrete = mode === 'continuous-only' ? 0 : config.seed.qformer.numQueryTokens;
  const continuous =
    mode === 'discrete-only'
      ? 0
      : mode === 'continuous-only'
        ? patches
        : keepCount(patches, config.keepRatio);
  return 2 + discrete + continuous;
}

/** RGB images → the model's preprocessed batch (CLIP recipe), as at inference. */
export function pixelsOf(model: MavenModel, images: readonly DecodedImage[]): ImageBatch {
  return model.preprocessRgb(images);
}

/**
 * Batches in a window of `lengthGroupedFrom`. In the tiny recipe's stage 4 an example runs from
 * one 10-slot discrete-only image to four hybrid images, or one continuous-only image's 146 slots,
 * and batches of consecutive examples were 46 % padding (the first 20 batches; 14 % grouped).
 */
export const LENGTH_GROUP_WINDOW = 8;

/**
 * The batches of `batchedFrom` with less padding: the items of each window of `window` batches
 * are sorted by `length` (ties by index) and cut into `window` batches of `size`, taken in an
 * order shuffled per window. Every item is used once, as in `batchedFrom`, and the batches depend
 * only on the step (a resumed run sees the same ones), but each holds items of similar length.
 */
export async function* lengthGroupedFrom<T, R>(
  fromStep: number,
  size: number,
  item: (index: number) => T,
  length: (item: T) => number,
  collate: (items: T[]) => Promise<R> | R,
  options: { seed?: number; window?: number } = {},
): AsyncGenerator<R> {
  const window = options.window ?? LENGTH_GROUP_WINDOW;
  if (!Number.isInteger(window) || window < 1)
    throw new Error(`lengthGroupedFrom: window must be an integer ≥ 1, got ${window}`);
  let current = -1;
  let batches: T[][] = [];
  let order: number[] = [];
  for (let step = fromStep; ; step++) {
    const w = Math.floor(step / window);
    if (w !== current) {
      current = w;
      const first = w * window * size;
      const items = Array.from({ length: window * size }, (_, k) => item(first + k));
      const lengths = items.map(length);
      const sorted = items.map((_, k) => k).sort((a, b) => lengths[a] - lengths[b] || a - b);
      batches = Array.from({ length: window }, (_, b) =>
        sorted.slice(b * size, (b + 1) * size).map((k) => items[k]),
      );
      order = Rng.fromKey('maven-length-groups', options.seed ?? 0, w).shuffled(batches.map((_, b) => b));
    }
    yield await collate(batches[order[step - w * window]]);
  }
}

/** Items `from`, `from + 1`, … of an indexed stream, grouped into batches of `size`. */
export async function* batchedFrom<T, R>(
  fromStep: number,
  size: number,
  item: (index: number) => T,
  collate: (items: T[]) => Promise<R> | R,
): AsyncGenerator<R> {
  for (let step = fromStep; ; step++) {
    const items = Array.from({ length: size }, (_, k) => item(step * size + k));
    yield await collate(items);
  }
}
