/** What the four MaVEn stages share: options, the frozen encoder snapshot, image preprocessing, batching. */

import type { ImageSource } from '../../data/tasks/task.ts';
import type { TaskName } from '../../data/tasks/types.ts';
import type { HostTensor, RuntimeOptions } from '../../engine/index.ts';
import type { MavenConfig } from '../../maven/config.ts';
import { type ImageBatch, MavenModel } from '../../maven/model.ts';
import type { EncodingMode } from '../../maven/sequence.ts';
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
  runtime?: RuntimeOptions;
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

/** RGB images → the model's preprocessed batch (CLIP recipe), as at inference. */
export function pixelsOf(model: MavenModel, images: readonly DecodedImage[]): ImageBatch {
  return model.preprocessRgb(images);
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
