/**
 * Stage 0a: CLIP pretraining of MaVEn's vision tower. MaVEn (like LLaVA) starts from a
 * CLIP-pretrained ViT; nothing can be downloaded, so the tiny recipe makes one: the vision tower
 * of the config plus a small CLIP text tower (`clip-text.ts`), trained with CLIP's symmetric
 * InfoNCE loss and learnable temperature (clipped at 100) on image–caption pairs — rendered
 * NLVR-style boxes with exact captions, plus Fashion-MNIST photos when given.
 *
 * With `patchSupervision` > 0 (the recipe's default) a second, dense objective trains alongside:
 * from the patch features MaVEn reads (`visionFeatureLayer`), linear heads predict each patch's
 * object class (colour × shape, or background) and whether an object's centre is in it — labels
 * exact from the generated scenes. Captions name counts and colours of whole boxes; that signal
 * alone left the tiny tower's patches too vague for NLVR (the LLM later has to tell which patch
 * shows what). On photos a third head predicts the photo's class from the mean of those patch
 * features: captions of one class are near-identical, so InfoNCE treats same-class photos in a
 * batch as negatives, and contrastive training alone left a linear probe on these features at 74 %
 * on Fashion-MNIST, under raw pixels (84 %). The heads (`patch_probe.*`) serve pretraining only,
 * like the text tower.
 *
 * Everything trains. Vision weights keep MaVEn's names (`vision_tower.vision_model.*`); the text
 * tower and the head keep CLIPModel's (`text_model.*`, `text_projection.weight`,
 * `visual_projection.weight`, `logit_scale`) and are passed on with the other weights.
 * Evaluation: top-1 retrieval on held-out pairs, both directions.
 */

import { IGNORE_INDEX } from '../../data/collate.ts';
import { PATCH_CLASS_COUNT, patchObjectClasses } from '../../data/patch-labels.ts';
import { FASHION_NOUNS } from '../../data/tasks/fashion.ts';
import { type CaptionPair, captionPair, captionPairs } from '../../data/tasks/stage-datasets.ts';
import type { Split } from '../../data/tasks/types.ts';
import { type Graph, HostTensor, ops, type Tensor } from '../../engine/index.ts';
import { buildComponents, VISION_SCOPE } from '../../maven/model.ts';
import { ClipContrastiveHead, type ClipTextConfig, ClipTextModel } from '../../models/clip-text.ts';
import type { ImagePreprocessConfig } from '../../models/image.ts';
import { ParamInit } from '../../models/init.ts';
import type { TextTokenizer } from '../../models/tokenizer.ts';
import type { StageDefinition } from '../stage.ts';
import {
  checkSteps,
  collateImages,
  declaredParams,
  EvalProgram,
  type PretrainOptions,
  preprocessFor,
  pretrainOptimizer,
  resumableBatches,
  startingWeights,
} from './pretrain-common.ts';

export interface ClipPretrainOptions extends PretrainOptions {
  /** Tokenises the captions; its vocabulary sizes the text tower's embedding table. */
  tokenizer: TextTokenizer;
  /** Overrides of the text tower (default: `defaultTextConfig`). */
  text?: Partial<ClipTextConfig>;
  /** Width of the shared embedding space (default: the vision tower's width). */
  projectionDim?: number;
  /** Which pairs `evaluate` retrieves among (default the held-out split from index 0). */
  evalSplit?: Split;
  /** Weight of the dense patch-class objective added to InfoNCE (default 0: contrastive only). */
  patchSupervision?: number;
  /** Weight of the photo-class head's loss relative to the patch losses (default 1). */
  photoSupervision?: number;
  /**
   * Weight of the class head's loss on object patches alone, relative to the patch losses
   * (default 0). The class loss averages over every patch, nine in ten of them background, so the
   * few patches that tell a circle from a square weigh little in it.
   */
  objectSupervision?: number;
  /** Share of Fashion-MNIST photos among the pairs when photos are given (default 0.5). */
  photoShare?: number;
}

/**
 * The text tower for the tiny recipe: as wide as the vision tower, but 2 layers (the captions
 * are templated sentences over a few dozen words; depth is better spent on the ViT, which is
 * what MaVEn keeps), CLIP's 77 positions (the longest generated caption is about 55 tokens).
 */
export function defaultTextConfig(o: ClipPretrainOptions): ClipTextConfig {
  const width = o.config.vision.hiddenSize;
  return {
    vocabSize: o.tokenizer.vocabSize,
    hiddenSize: width,
    intermediateSize: 4 * width,
    numHiddenLayers: 2,
    numAttentionHeads: o.config.vision.numAttentionHeads,
    maxPositionEmbeddings: 77,
    layerNormEps: 1e-5,
    hiddenAct: 'quick_gelu',
    ...o.text,
  };
}

/** Feeds of one contrastive batch. */
export interface ClipBatch extends Record<string, HostTensor> {
  /** [B, 3, S, S] */
  pixel_values: HostTensor;
  /** [B, T] int64: BOS, caption, EOS, right-padded. */
  input_ids: HostTensor;
  /** [B] int64: where each row's EOS is (the text tower pools there). */
  eos_positions: HostTensor;
}

/** Photo classes the photo head predicts (Fashion-MNIST's ten). */
export const PHOTO_CLASS_COUNT = FASHION_NOUNS.length;

/**
 * Dense targets of a batch (extra feeds of a `ClipBatch` with patch supervision): per-patch
 * object class and centre flags [B, N] from scene boxes' objects (photos ignored, −100), and the
 * photo class [B, 1] of photos (scene boxes ignored).
 */
export function collatePatchTargets(
  pairs: readonly Pick<CaptionPair, 'objects' | 'label'>[],
  grid: { imageSize: number; patchSize: number },
): {
  patch_classes: HostTensor;
  patch_objects: HostTensor;
  patch_centers: HostTensor;
  photo_classes: HostTensor;
} {
  const n = (grid.imageSize / grid.patchSize) ** 2;
  const classes = new BigInt64Array(pairs.length * n).fill(BigInt(IGNORE_INDEX));
  const objects = new BigInt64Array(pairs.length * n).fill(BigInt(IGNORE_INDEX));
  const centers = new BigInt64Array(pairs.length * n).fill(BigInt(IGNORE_INDEX));
  const photo = new BigInt64Array(pairs.length).fill(BigInt(IGNORE_INDEX));
  pairs.forEach((p, b) => {
    if (p.label !== undefined) photo[b] = BigInt(p.label);
    if (!p.objects) return;
    const t = patchObjectClasses(p.objects, grid);
    for (let i = 0; i < n; i++) {
      classes[b * n + i] = BigInt(t.classes[i]);
      if (t.classes[i] > 0) objects[b * n + i] = BigInt(t.classes[i]);
      centers[b * n + i] = BigInt(t.centers[i]);
    }
  });
  return {
    patch_classes: new HostTensor('int64', [pairs.length, n], classes),
    patch_objects: new HostTensor('int64', [pairs.length, n], objects),
    patch_centers: new HostTensor('int64', [pairs.length, n], centers),
    photo_classes: new HostTensor('int64', [pairs.length, 1], photo),
  };
}

/** Captions → BOS … EOS ids (cut to `maxLength`, EOS kept last), padded; images preprocessed. */
export function collateCaptionPairs(
  pairs: readonly CaptionPair[],
  tokenizer: TextTokenizer,
  preprocess: ImagePreprocessConfig,
  maxLength: number,
): ClipBatch {
  if (maxLength < 2)
    throw new Error(`collateCaptionPairs: maxLength must be ≥ 2 (BOS and EOS), got ${maxLength}`);
  if (pairs.length === 0) throw new Error('collateCaptionPairs: empty batch');
  const rows = pairs.map((p) => {
    const ids = tokenizer.encode(p.caption, { bos: true });
    return [...ids.slice(0, maxLength - 1), tokenizer.eosId];
  });
  const B = pairs.length;
  const T = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(B * T).fill(BigInt(tokenizer.padId));
  const eos = new BigInt64Array(B);
  rows.forEach((row, b) => {
    row.forEach((id, t) => {
      ids[b * T + t] = BigInt(id);
    });
    eos[b] = BigInt(row.length - 1);
  });
  return {
    pixel_values: collateImages(
      pairs.map((p) => p.image),
      preprocess,
    ),
    input_ids: new HostTensor('int64', [B, T], ids),
    eos_positions: new HostTensor('int64', [B], eos),
  };
}

/**
 * Top-1 retrieval over a set of pairs from `logits_per_image` [N, N]: image i finds its
 * caption, caption j finds its image. A pick with the very same caption text counts as right
 * (generated captions repeat, e.g. small towers, and identical texts are indistinguishable).
 */
export function retrievalAccuracy(
  logits: Float32Array,
  captions: readonly string[],
): { imageToText: number; textToImage: number } {
  const n = captions.length;
  if (logits.length !== n * n) throw new Error(`retrievalAccuracy: ${logits.length} logits for ${n} pairs`);
  let i2t = 0;
  let t2i = 0;
  for (let i = 0; i < n; i++) {
    let bestText = 0;
    let bestImage = 0;
    for (let j = 1; j < n; j++) {
      if (logits[i * n + j] > logits[i * n + bestText]) bestText = j;
      if (logits[j * n + i] > logits[bestImage * n + i]) bestImage = j;
    }
    if (captions[bestText] === captions[i]) i2t++;
    if (captions[bestImage] === captions[i]) t2i++;
  }
  return { imageToText: i2t / n, textToImage: t2i / n };
}

/** Width (or count) of a traced tensor's axis that must be static, e.g. the patches' feature width. */
function staticDim(t: Tensor, axis: number, what: string): number {
  const d = t.shape.at(axis);
  if (typeof d !== 'number')
    throw new Error(`${what}: axis ${axis} of [${t.shape.join(', ')}] is not static`);
  return d;
}

/** A linear head `patch_probe.{name}` on features [B, N, Dv] → [B, N, C]; pretraining only. */
function patchProbe(g: Graph, name: string, classes: number, features: Tensor): Tensor {
  const width = staticDim(features, -1, `patch_probe.${name}`);
  return ops.linear(
    features,
    g.param(`patch_probe.${name}.weight`, [classes, width]),
    g.param(`patch_probe.${name}.bias`, [classes]),
  ); // [B, N, C]
}

/**
 * Stage 0a's dense objective on scene boxes, from the patch features [B, N, Dv] MaVEn reads: each
 * patch's object class (colour × shape, or background) and whether an object's centre is in it, plus
 * the class loss over object patches alone at `objectWeight` (0: not traced). Feeds
 * `patch_classes`, `patch_centers` (and `patch_objects`) as `collatePatchTargets` makes them; rows
 * that are photos are all −100 and add nothing. The photo phase keeps it on replayed boxes.
 */
export function boxPatchLosses(
  g: Graph,
  patches: Tensor,
  objectWeight: number,
): { loss: Tensor; metrics: Record<string, Tensor> } {
  const N = staticDim(patches, 1, 'boxPatchLosses');
  const classes = g.input('patch_classes', 'int64', ['B', N]);
  const centers = g.input('patch_centers', 'int64', ['B', N]);
  const classLogits = patchClassLogits(g, patches); // [B, N, C]
  const classLoss = ops.crossEntropy(classLogits, classes);
  const centerLoss = ops.crossEntropy(patchProbe(g, 'center', 2, patches), centers);
  let loss = ops.add(classLoss, centerLoss);
  const metrics: Record<string, Tensor> = { classLoss, centerLoss };
  if (objectWeight > 0) {
    const objectClasses = g.input('patch_objects', 'int64', ['B', N]);
    const objectLoss = ops.crossEntropy(classLogits, objectClasses);
    loss = ops.add(loss, ops.mul(objectLoss, objectWeight));
    metrics.objectLoss = objectLoss;
  }
  return { loss, metrics };
}

/** The patch class head's logits [B, N, PATCH_CLASS_COUNT]: background, or an object's colour × shape. */
export function patchClassLogits(g: Graph, patches: Tensor): Tensor {
  return patchProbe(g, 'class', PATCH_CLASS_COUNT, patches);
}

/** The photo head's loss: Fashion class of the mean patch feature; `photo_classes` [B, 1], boxes −100. */
export function photoClassLoss(g: Graph, patches: Tensor, photoClasses: Tensor): Tensor {
  return ops.crossEntropy(photoLogits(g, patches), photoClasses);
}

/** The photo head's logits [B, 1, C] from patch features [B, N, Dv]. */
export function photoLogits(g: Graph, patches: Tensor): Tensor {
  const pooled = ops.mean(patches, 1, true); // [B, 1, Dv]
  return patchProbe(g, 'photo_class', PHOTO_CLASS_COUNT, pooled);
}

export function clipPretrainStage(o: ClipPretrainOptions): StageDefinition {
  const stage = 'stage0-clip';
  checkSteps(stage, o);
  const config = o.config;
  const vision = buildComponents(config).vision;
  const textConfig = defaultTextConfig(o);
  if (textConfig.vocabSize < o.tokenizer.vocabSize) {
    throw new Error(
      `${stage}: the text tower has ${textConfig.vocabSize} token embeddings, the tokenizer ${o.tokenizer.vocabSize} ids`,
    );
  }
  const text = new ClipTextModel(textConfig);
  const head = new ClipContrastiveHead({
    textWidth: textConfig.hiddenSize,
    visionWidth: config.vision.hiddenSize,
    projectionDim: o.projectionDim ?? config.vision.hiddenSize,
  });
  const S = config.vision.imageSize;
  const seed = o.seed ?? 0;

  const embeddings = (g: Graph) => {
    const pixels = g.input('pixel_values', 'float32', ['B', 3, S, S]);
    const ids = g.input('input_ids', 'int64', ['B', 'T']);
    const eos = g.input('eos_positions', 'int64', ['B']);
    const imagePooled = g.scoped(VISION_SCOPE, () => vision.pooled(g, pixels)); // [B, Dv]
    const textPooled = text.pooled(g, ids, { eosPositions: eos }); // [B, Dt]
    return { image: head.imageEmbeds(g, imagePooled), text: head.textEmbeds(g, textPooled) }; // [B, P] each
  };
  const dense = o.patchSupervision ?? 0;
  const width = config.vision.hiddenSize;
  const build = (g: Graph) => {
    if (dense <= 0) {
      const { image, text: caption } = embeddings(g);
      return contrastive(g, image, caption, {});
    }
    const pixels = g.input('pixel_values', 'float32', ['B', 3, S, S]);
    const ids = g.input('input_ids', 'int64', ['B', 'T']);
    const eos = g.input('eos_positions', 'int64', ['B']);
    const photoClasses = g.input('photo_classes', 'int64', ['B', 1]);
    // One trace of the tower gives both the pooled CLS (contrastive) and the patch features.
    const states = g.scoped(VISION_SCOPE, () => vision.hiddenStates(g, pixels, -1));
    const imagePooled = g.scoped(VISION_SCOPE, () => vision.poolLast(g, states.at(-1) as Tensor)); // [B, Dv]
    const patches = ops.slice(states.at(config.visionFeatureLayer) as Tensor, 1, 1); // [B, N, Dv]
    const textPooled = text.pooled(g, ids, { eosPositions: eos }); // [B, Dt]
    const boxes = boxPatchLosses(g, patches, o.objectSupervision ?? 0);
    const photoLoss = photoClassLoss(g, patches, photoClasses);
    const patchLoss = ops.add(boxes.loss, ops.mul(photoLoss, o.photoSupervision ?? 1));
    return contrastive(g, head.imageEmbeds(g, imagePooled), head.textEmbeds(g, textPooled), {
      extra: ops.mul(patchLoss, dense),
      metrics: { ...boxes.metrics, photoLoss },
    });
  };
  function contrastive(
    g: Graph,
    image: Tensor,
    caption: Tensor,
    more: { extra?: Tensor; metrics?: Record<string, Tensor> },
  ) {
    const logits = head.logitsPerImage(g, image, caption); // [B, B]
    const targets = ops.arange(g, ops.dimOf(logits, 0), logits.shape[0]); // [B]
    const hits = (axis: number): Tensor =>
      ops.mean(ops.cast(ops.equal(ops.argmax(logits, axis), targets), g.floatType));
    const infoNce = head.loss(g, image, caption);
    return {
      loss: more.extra ? ops.add(infoNce, more.extra) : infoNce,
      metrics: {
        imageToText: hits(1),
        textToImage: hits(0),
        logitScale: head.logitScale(g),
        ...more.metrics,
      },
    };
  }

  const params = startingWeights(stage, declaredParams(build), o.weights, () => {
    const visionWeights = [...vision.init(seed + 1)].map(([k, v]) => [VISION_SCOPE + k, v] as const);
    const probes = new ParamInit(seed + 9);
    const probeWeights =
      dense > 0
        ? (['class', 'center', 'photo_class'] as const).flatMap((name) => {
            const out = { class: PATCH_CLASS_COUNT, center: 2, photo_class: PHOTO_CLASS_COUNT }[name];
            return [
              [
                `patch_probe.${name}.weight`,
                probes.normal(`patch_probe.${name}.weight`, [out, width], width ** -0.5),
              ],
              [`patch_probe.${name}.bias`, probes.constant(`patch_probe.${name}.bias`, [out], 0)],
            ] as const;
          })
        : [];
    return new Map([...visionWeights, ...text.init(seed + 7), ...head.init(seed + 8), ...probeWeights]);
  });

  const preprocess = preprocessFor(config);
  const maxLength = textConfig.maxPositionEmbeddings;
  const data = { seed, split: 'train' as const, fashion: o.fashion, fashionShare: o.photoShare };
  const grid = { imageSize: S, patchSize: config.vision.patchSize };
  const collate = (pairs: CaptionPair[]): ClipBatch => ({
    ...collateCaptionPairs(pairs, o.tokenizer, preprocess, maxLength),
    ...(dense > 0 ? patchTargets(pairs) : {}),
  });
  // The graph reads patch_objects only when its loss weighs anything.
  const patchTargets = (pairs: readonly CaptionPair[]): Record<string, HostTensor> => {
    const { patch_objects, ...rest } = collatePatchTargets(pairs, grid);
    return (o.objectSupervision ?? 0) > 0 ? { ...rest, patch_objects } : rest;
  };

  const evalSplit = o.evalSplit ?? 'heldout';
  const evalCount = o.evalCount ?? 64;
  let evalSet: { batch: ClipBatch; captions: string[] } | null = null;
  const evaluator = new EvalProgram(
    `${stage} eval`,
    (g) => {
      const { image, text: caption } = embeddings(g);
      return { logits: head.logitsPerImage(g, image, caption), loss: head.loss(g, image, caption) };
    },
    o.runtime,
  );

  return {
    name: stage,
    description: `CLIP pretraining: vision tower + ${textConfig.numHiddenLayers}-layer text tower, symmetric InfoNCE on image–caption pairs`,
    params,
    build,
    trainable: () => true,
    // CLIP trained with wd 0.2 on 400M pairs; the tiny recipe sees far fewer distinct images, 0.1.
    optimizer: pretrainOptimizer(o, { lr: 5e-4, weightDecay: 0.1 }),
    steps: o.steps,
    batches: (fromStep) =>
      resumableBatches(fromStep, o.batchSize, (start) => captionPairs({ ...data, start }), collate),
    batchSize: (feeds) => feeds.pixel_values.shape[0],
    batchUnit: 'examples',
    evaluate: async (weights) => {
      if (!evalSet) {
        const pairs = Array.from({ length: evalCount }, (_, i) =>
          captionPair(i, {
            ...data,
            split: evalSplit,
            fashion: evalSplit === 'train' ? o.fashion : undefined,
          }),
        );
        evalSet = {
          batch: collateCaptionPairs(pairs, o.tokenizer, preprocess, maxLength),
          captions: pairs.map((p) => p.caption),
        };
      }
      const r = await evaluator.run(weights, evalSet.batch);
      const { imageToText, textToImage } = retrievalAccuracy(r.logits.data as Float32Array, evalSet.captions);
      return { loss: Number(r.loss.data[0]), imageToText, textToImage };
    },
  };
}
