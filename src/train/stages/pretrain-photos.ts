/**
 * Stage 0a, second phase: the vision tower on Fashion-MNIST photos. Stage 0a's mixed
 * objective (InfoNCE, the dense patch heads, the photo head) leaves the tiny tower underfitting
 * the photos — its photo head named 85.1 % of 1,000 t10k photos after 69 k photos (run r9), train
 * ≈ test — and the LLM later names one photo's class ~2.5 points below what the tower's head does.
 * Measured on the tower alone (`.scratch`-style runs, photo-only, 1,000 t10k photos): one epoch
 * from a fresh tower 81.9 %, two 86.4 %; one epoch from stage 0a's tower at half stage 0a's peak
 * rate 88.7 %. So the phase continues from stage 0a's weights with the same linear head on the
 * mean of the patch features MaVEn reads (`patch_probe.photo_class`, layer `visionFeatureLayer`).
 *
 * Photos alone cost the boxes: a ridge probe on single patches of held-out generated boxes named
 * the shape of the object under the patch 87.2 % of the time after stage 0a and 74.4 % after an
 * epoch of photos alone (colour 97.2 → 93.3 %; run r23), and every box question the LLM answers
 * starts from those patches. So `boxesPerStep` scene boxes ride along each step with stage 0a's
 * dense box objective (`boxPatchLosses`: patch class, centre, object patches at
 * `objectSupervision`) on stage 0a's heads. No text tower either way.
 *
 * Photos are drawn without replacement, epoch by epoch, in a seeded order, so resuming at step k
 * sees exactly what the uninterrupted run would have (replayed boxes are indexed by step too). The
 * last `evalCount` training photos are held out from it and are what `evaluate` scores (t10k stays
 * the benchmarks'), with the class head's accuracy on held-out boxes' object patches when boxes ride along.
 */

import { patchObjectClasses } from '../../data/patch-labels.ts';
import { Rng } from '../../data/scene/rng.ts';
import { grayToRgb } from '../../data/tasks/registry.ts';
import { captionPair } from '../../data/tasks/stage-datasets.ts';
import type { ImageSource } from '../../data/tasks/task.ts';
import { type Graph, HostTensor, ops, type Tensor } from '../../engine/index.ts';
import { buildComponents, VISION_SCOPE } from '../../maven/model.ts';
import type { StageDefinition } from '../stage.ts';
import {
  boxPatchLosses,
  collatePatchTargets,
  PHOTO_CLASS_COUNT,
  patchClassLogits,
  photoClassLoss,
  photoLogits,
} from './pretrain-clip.ts';
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
  /** Generated scene boxes per step under stage 0a's dense box objective (default 0: photos alone). */
  boxesPerStep?: number;
  /** Weight of the class loss on object patches alone, as stage 0a's `objectSupervision` (default 0). */
  objectSupervision?: number;
}

const NAME = 'stage0-photos';
/** Held-out photos by default: the last 1,000 of the source. */
const DEFAULT_EVAL_COUNT = 1000;
/** Held-out scene boxes whose object patches `evaluate` scores when boxes ride along. */
const EVAL_BOXES = 128;
/** Images per evaluation run. */
const EVAL_BATCH = 32;

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

  const boxesPerStep = o.boxesPerStep ?? 0;
  if (!Number.isInteger(boxesPerStep) || boxesPerStep < 0)
    throw new Error(`${NAME}: boxesPerStep must be a whole number ≥ 0, got ${boxesPerStep}`);
  const objectWeight = o.objectSupervision ?? 0;
  const grid = { imageSize: S, patchSize: config.vision.patchSize };

  // Traced up to the layer MaVEn reads: the layers above it (the tokenizer's) stay as stage 0a left them.
  const patchFeatures = (g: Graph): Tensor => {
    const pixels = g.input('pixel_values', 'float32', ['B', 3, S, S]);
    const features = g.scoped(VISION_SCOPE, () => vision.hiddenState(g, pixels, config.visionFeatureLayer));
    return ops.slice(features, 1, 1); // [B, N, Dv]: no CLS
  };
  const build = (g: Graph) => {
    const patches = patchFeatures(g);
    const photoLoss = photoClassLoss(g, patches, g.input('photo_classes', 'int64', ['B', 1]));
    if (boxesPerStep === 0) return { loss: photoLoss };
    const boxes = boxPatchLosses(g, patches, objectWeight);
    return { loss: ops.add(photoLoss, boxes.loss), metrics: { photoLoss, ...boxes.metrics } };
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
  const photo = (i: number) => grayToRgb(fashion.cols ?? 28, fashion.rows ?? 28, fashion.image(i));
  const pixels = (indices: readonly number[]) => collateImages(indices.map(photo), preprocess);
  const seed = o.seed ?? 0;
  // Generated boxes `start` … `start + count − 1` of a stream of their own (not stage 0a's).
  const boxPairs = (start: number, count: number, split: 'train' | 'heldout') =>
    Array.from({ length: count }, (_, j) => captionPair(start + j, { seed: seed + 1, split }));
  const batch = (indices: readonly number[], step: number) => {
    if (boxesPerStep === 0)
      return {
        pixel_values: pixels(indices),
        photo_classes: new HostTensor(
          'int64',
          [indices.length, 1],
          BigInt64Array.from(indices, (i) => BigInt(fashion.label(i))),
        ),
      };
    const boxes = boxPairs(step * boxesPerStep, boxesPerStep, 'train');
    const { patch_objects, ...targets } = collatePatchTargets(
      [...indices.map((i) => ({ label: fashion.label(i) })), ...boxes],
      grid,
    );
    return {
      pixel_values: collateImages([...indices.map(photo), ...boxes.map((b) => b.image)], preprocess),
      ...targets,
      ...(objectWeight > 0 ? { patch_objects } : {}),
    };
  };
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

  const photoEvaluator = new EvalProgram(
    `${NAME} eval`,
    (g) => ({ logits: photoLogits(g, patchFeatures(g)) }),
    o.runtime,
  );
  const boxEvaluator = new EvalProgram(
    `${NAME} box eval`,
    (g) => ({ logits: patchClassLogits(g, patchFeatures(g)) }),
    o.runtime,
  );
  const argmax = (row: Float32Array): number => {
    let best = 0;
    for (let c = 1; c < row.length; c++) if (row[c] > row[best]) best = c;
    return best;
  };
  /** Share of held-out boxes' object patches whose class (colour × shape) the class head names. */
  const boxObjectPatchAccuracy = async (weights: Parameters<EvalProgram['run']>[0]) => {
    let right = 0;
    let total = 0;
    for (let start = 0; start < EVAL_BOXES; start += EVAL_BATCH) {
      const boxes = boxPairs(start, Math.min(EVAL_BATCH, EVAL_BOXES - start), 'heldout');
      const { logits: l } = await boxEvaluator.run(weights, {
        pixel_values: collateImages(
          boxes.map((b) => b.image),
          preprocess,
        ),
      });
      const [, N, C] = l.shape;
      const data = l.data as Float32Array;
      boxes.forEach((b, k) => {
        const { classes } = patchObjectClasses(b.objects ?? [], grid);
        for (let p = 0; p < N; p++) {
          if (classes[p] <= 0) continue;
          total++;
          if (argmax(data.subarray((k * N + p) * C, (k * N + p + 1) * C)) === classes[p]) right++;
        }
      });
    }
    return right / total;
  };
  return {
    name: NAME,
    description:
      boxesPerStep === 0
        ? 'vision tower + photo head on Fashion-MNIST photos alone: class of the mean patch feature'
        : `vision tower + photo head on Fashion-MNIST photos (class of the mean patch feature), ${boxesPerStep} scene boxes a step under stage 0a's patch heads`,
    params,
    build,
    trainable: () => true,
    optimizer: pretrainOptimizer(o, { lr: 5e-4, weightDecay: 0.1 }),
    steps: o.steps,
    batches: function* (fromStep) {
      for (let step = fromStep; step < o.steps; step++) yield batch(photosOf(step), step);
    },
    batchSize: (feeds) => feeds.pixel_values.shape[0],
    batchUnit: 'examples',
    evaluate: async (weights) => {
      let right = 0;
      for (let start = trainCount; start < fashion.count; start += 100) {
        const indices = Array.from({ length: Math.min(100, fashion.count - start) }, (_, k) => start + k);
        const l = (await photoEvaluator.run(weights, { pixel_values: pixels(indices) })).logits
          .data as Float32Array;
        indices.forEach((i, k) => {
          if (argmax(l.subarray(k * PHOTO_CLASS_COUNT, (k + 1) * PHOTO_CLASS_COUNT)) === fashion.label(i))
            right++;
        });
      }
      const metrics: Record<string, number> = { accuracy: right / evalCount };
      if (boxesPerStep > 0) metrics.boxObjectPatches = await boxObjectPatchAccuracy(weights);
      return metrics;
    },
  };
}
