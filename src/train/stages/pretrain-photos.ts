/**
 * Stage 0a, second phase: the vision tower on Fashion-MNIST photos alone. Stage 0a's mixed
 * objective (InfoNCE, the dense patch heads, the photo head) leaves the tiny tower underfitting
 * the photos — its photo head named 85.1 % of 1,000 t10k photos after 69 k photos (run r9), train
 * ≈ test — and the LLM later names one photo's class ~2.5 points below what the tower's head does.
 * Measured on the tower alone (`.scratch`-style runs, photo-only, 1,000 t10k photos): one epoch
 * from a fresh tower 81.9 %, two 86.4 %; one epoch from stage 0a's tower at half stage 0a's peak
 * rate 88.7 %. So the phase continues from stage 0a's weights with the same linear head on the
 * mean of the patch features MaVEn reads (`patch_probe.photo_class`, layer `visionFeatureLayer`),
 * one cross-entropy, nothing else: no text tower, no scene boxes.
 *
 * Photos are drawn without replacement, epoch by epoch, in a seeded order, so resuming at step k
 * sees exactly what the uninterrupted run would have. The last `evalCount` training photos are held
 * out from it and are what `evaluate` scores (t10k stays the benchmarks').
 */

import { Rng } from '../../data/scene/rng.ts';
import { grayToRgb } from '../../data/tasks/registry.ts';
import type { ImageSource } from '../../data/tasks/task.ts';
import { type Graph, HostTensor, ops, type Tensor } from '../../engine/index.ts';
import { buildComponents, VISION_SCOPE } from '../../maven/model.ts';
import type { StageDefinition } from '../stage.ts';
import { PHOTO_CLASS_COUNT } from './pretrain-clip.ts';
import {
  checkSteps,
  collateImages,
  declaredParams,
  EvalProgram,
  type PretrainOptions,
  preprocessFor,
  pretrainOptimizer,
  startingWeights,
} from './pretrain-common.ts';

export interface PhotoPretrainOptions extends PretrainOptions {
  /** The photos (and their classes) the tower trains on; required. */
  fashion: ImageSource;
}

const NAME = 'stage0-photos';
/** Held-out photos by default: the last 1,000 of the source. */
const DEFAULT_EVAL_COUNT = 1000;

export function photoPretrainStage(o: PhotoPretrainOptions): StageDefinition {
  checkSteps(NAME, o);
  const { config, fashion } = o;
  const evalCount = o.evalCount ?? DEFAULT_EVAL_COUNT;
  const trainCount = fashion.count - evalCount;
  if (trainCount < o.batchSize)
    throw new Error(
      `${NAME}: ${fashion.count} photos leave ${trainCount} to train on after ${evalCount} held out`,
    );
  const vision = buildComponents(config).vision;
  const S = config.vision.imageSize;
  const width = config.vision.hiddenSize;

  const logits = (g: Graph): Tensor => {
    const pixels = g.input('pixel_values', 'float32', ['B', 3, S, S]);
    // Traced up to the layer MaVEn reads: the layers above it (the tokenizer's) stay as stage 0a left them.
    const features = g.scoped(VISION_SCOPE, () => vision.hiddenState(g, pixels, config.visionFeatureLayer));
    const patches = ops.slice(features, 1, 1); // [B, N, Dv]: no CLS
    const pooled = ops.mean(patches, 1, true); // [B, 1, Dv]
    return ops.linear(
      pooled,
      g.param('patch_probe.photo_class.weight', [PHOTO_CLASS_COUNT, width]),
      g.param('patch_probe.photo_class.bias', [PHOTO_CLASS_COUNT]),
    ); // [B, 1, C]
  };
  const build = (g: Graph) => {
    const classes = g.input('photo_classes', 'int64', ['B', 1]);
    return { loss: ops.crossEntropy(logits(g), classes) };
  };
  // Stage 0a made every weight this phase reads; a fresh tower here would be a mistake upstream.
  const params = startingWeights(
    NAME,
    declaredParams(build),
    o.weights,
    () => new Map(),
    () => true,
  );

  const preprocess = preprocessFor(config);
  const pixels = (indices: readonly number[]) =>
    collateImages(
      indices.map((i) => grayToRgb(fashion.cols ?? 28, fashion.rows ?? 28, fashion.image(i))),
      preprocess,
    );
  const batch = (indices: readonly number[]) => ({
    pixel_values: pixels(indices),
    photo_classes: new HostTensor(
      'int64',
      [indices.length, 1],
      BigInt64Array.from(indices, (i) => BigInt(fashion.label(i))),
    ),
  });
  const seed = o.seed ?? 0;
  const epochOrders = new Map<number, number[]>();
  const order = (epoch: number): number[] => {
    let p = epochOrders.get(epoch);
    if (!p) {
      p = Rng.fromKey('maven-photos', seed, epoch).shuffled(Array.from({ length: trainCount }, (_, i) => i));
      epochOrders.clear(); // one epoch's order at a time
      epochOrders.set(epoch, p);
    }
    return p;
  };
  // Step k's photos: positions k·B … k·B + B − 1 of the concatenated epoch orders.
  const photosOf = (step: number): number[] =>
    Array.from({ length: o.batchSize }, (_, j) => {
      const at = step * o.batchSize + j;
      return order(Math.floor(at / trainCount))[at % trainCount];
    });

  const evaluator = new EvalProgram(`${NAME} eval`, (g) => ({ logits: logits(g) }), o.runtime);
  return {
    name: NAME,
    description: 'vision tower + photo head on Fashion-MNIST photos alone: class of the mean patch feature',
    params,
    build,
    trainable: () => true,
    optimizer: pretrainOptimizer(o, { lr: 5e-4, weightDecay: 0.1 }),
    steps: o.steps,
    batches: function* (fromStep) {
      for (let step = fromStep; step < o.steps; step++) yield batch(photosOf(step));
    },
    batchSize: (feeds) => feeds.pixel_values.shape[0],
    batchUnit: 'examples',
    evaluate: async (weights) => {
      let right = 0;
      for (let start = trainCount; start < fashion.count; start += 100) {
        const indices = Array.from({ length: Math.min(100, fashion.count - start) }, (_, k) => start + k);
        const l = (await evaluator.run(weights, { pixel_values: pixels(indices) })).logits
          .data as Float32Array;
        indices.forEach((i, k) => {
          let best = 0;
          for (let c = 1; c < PHOTO_CLASS_COUNT; c++)
            if (l[k * PHOTO_CLASS_COUNT + c] > l[k * PHOTO_CLASS_COUNT + best]) best = c;
          if (best === fashion.label(i)) right++;
        });
      }
      return { accuracy: right / evalCount };
    },
  };
}
