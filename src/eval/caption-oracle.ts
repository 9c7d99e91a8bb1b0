/**
 * The caption oracle: how well can the recipe's LLM decide NLVR statements when perception is
 * perfect? Each box is replaced by its exact caption (`captionBox`, computed from the scene graph
 * or from NLVR's `structured_rep`), so the LLM reads text only. It is fine-tuned like stage 4
 * (the LLM's weights, loss on the answer tokens, AdamW, warm-up + cosine) on generated statements,
 * optionally with a share of NLVR dev sentences, and scored like the real evaluation (log p("true")
 * against log p("false")). It separates "cannot see" from "cannot reason / does not understand the
 * sentence" — for what captions say; they leave out positions (see `mentionsPositions`).
 */

import { captionBox } from '../data/scene/captions.ts';
import { Rng } from '../data/scene/rng.ts';
import { type Box, type Layout, sceneFromStructuredRep } from '../data/scene/scene.ts';
import type { LabelledNlvrExample } from '../data/tasks/nlvr-dev.ts';
import { NLVR_OPTIONS } from '../data/tasks/nlvr-statement.ts';
import { planExample } from '../data/tasks/registry.ts';
import { warmupCosine } from '../engine/index.ts';
import { buildComponents, MavenModel } from '../maven/model.ts';
import { collateMultimodal, traceMultimodalLoss } from '../train/multimodal.ts';
import type { StageDefinition } from '../train/stage.ts';
import { batchedFrom, type MavenStageOptions, schedule, sequenceLayout } from '../train/stages/common.ts';

const ORDINALS = ['first', 'second', 'third'] as const;

/** The three captions in box order, then the statement: the oracle's whole input. */
export function captionOraclePrompt(boxes: readonly Box[], layout: Layout, statement: string): string {
  if (boxes.length !== ORDINALS.length)
    throw new Error(`captionOraclePrompt: expected ${ORDINALS.length} boxes, got ${boxes.length}`);
  const captions = boxes.map((box, k) => `The ${ORDINALS[k]} box: ${captionBox(box, layout)}`);
  return `${captions.join('\n')}\nIs this statement true or false?\n${statement}`;
}

export interface CaptionOracleItem {
  prompt: string;
  /** 0 = "true", 1 = "false" (the order of NLVR_OPTIONS). */
  answerIndex: number;
  /** What kind of statement: "<layout>/<template>" for generated ones, "nlvr" for real ones. */
  rule: string;
}

/** Generated statement `index` of `split`, the nlvr-statement task's own draw, as captions. */
export function generatedOracleItem(split: 'train' | 'heldout', index: number, seed = 0): CaptionOracleItem {
  const plan = planExample('nlvr-statement', split, index, { seed });
  const layout = plan.meta.layout ?? 'scattered';
  const boxes = plan.visuals.map((v) => {
    if (v.kind !== 'box') throw new Error('generatedOracleItem: nlvr-statement drew a non-box visual');
    return v.objects;
  });
  const statement = plan.prompt.slice(plan.prompt.lastIndexOf('\n') + 1);
  return {
    prompt: captionOraclePrompt(boxes, layout, statement),
    answerIndex: plan.answerIndex ?? NLVR_OPTIONS.indexOf(plan.answer),
    rule: `${layout}/${plan.meta.rule ?? '?'}`,
  };
}

/** The six orders of three boxes (the evaluation reads every one, like the NLVR PNGs' six). */
export const BOX_ORDERS: readonly (readonly number[])[] = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0],
];

/** A real NLVR example in box order `order` (0–5), its boxes captioned from `structured_rep`. */
export function nlvrOracleItem(ex: LabelledNlvrExample, order = 0): CaptionOracleItem {
  const scene = sceneFromStructuredRep(ex.boxes);
  const boxes = BOX_ORDERS[order].map((k) => scene.boxes[k]);
  return {
    prompt: captionOraclePrompt(boxes, scene.layout, ex.sentence),
    answerIndex: ex.label ? 0 : 1,
    rule: 'nlvr',
  };
}

/**
 * Captions are not the whole scene: they leave out where objects are (only whether they touch a
 * wall, and towers' order) and how objects relate to each other. NLVR sentences that talk about
 * those ("above", "next to", "touching each other", "in the corner") can't be decided from
 * captions; this finds them by their words (an approximation, for reading the oracle's results).
 */
const POSITION_WORDS =
  /\b(above|below|under|over|on top of|next to|near|beside|closely|each other|touching (a|an|the|one|another) (black|yellow|blue|square|circle|triangle|item|object|block)|left|right|middle|center|centre|corner)\b/i;

export function mentionsPositions(sentence: string): boolean {
  return POSITION_WORDS.test(sentence);
}

/** Stage 4's options (the weights: the model as stage 4 would receive it), less those about images. */
export interface CaptionOracleStageOptions
  extends Omit<MavenStageOptions, 'fashion' | 'taskWeights' | 'mode'> {
  /** NLVR dev examples mixed in at `share` of the examples (random box order each time). */
  dev?: { examples: readonly LabelledNlvrExample[]; share: number };
}

/** Only the LLM trains (the projector has nothing to read: there are no images). */
export function captionOracleTrainable(name: string): boolean {
  return name.startsWith('model.') && !name.startsWith('model.mm_projector.');
}

export function captionOracleStage(o: CaptionOracleStageOptions): StageDefinition {
  const dev = o.dev;
  if (dev && !(dev.share >= 0 && dev.share <= 1))
    throw new Error(`caption oracle: dev.share must be in [0, 1], got ${dev.share}`);
  const seed = o.seed ?? 0;
  const item = (i: number): CaptionOracleItem => {
    if (dev && dev.examples.length > 0 && Rng.fromKey('maven-oracle-dev', seed, i).chance(dev.share)) {
      const rng = Rng.fromKey('maven-oracle-dev-pick', seed, i);
      return nlvrOracleItem(dev.examples[rng.int(0, dev.examples.length - 1)], rng.int(0, 5));
    }
    return generatedOracleItem('train', i, seed);
  };
  const c = buildComponents(o.config);
  const layout = sequenceLayout(new MavenModel(o.config, o.weights, o.tokenizer), o);
  const collate = (items: CaptionOracleItem[]) =>
    collateMultimodal(
      items.map((t) => ({
        pieces: [o.tokenizer.encode(t.prompt, { bos: true })],
        images: [],
        answer: [...o.tokenizer.encode(` ${NLVR_OPTIONS[t.answerIndex]}`), o.tokenizer.eosId],
      })),
      layout,
    );
  return {
    name: 'caption-oracle',
    description: `LLM only, on exact captions instead of images: generated statements${dev?.share ? ` + ${Math.round(dev.share * 100)} % NLVR dev sentences` : ''}, loss on answers`,
    params: o.weights,
    build: (g) => ({ loss: traceMultimodalLoss(g, c, true).loss }),
    trainable: captionOracleTrainable,
    optimizer: { lr: warmupCosine(schedule(o)), weightDecay: 0.01 },
    steps: o.steps,
    batches: (from) => batchedFrom(from, o.batchSize, item, collate),
    batchSize: (feeds) => feeds.ids.shape[0] * feeds.ids.shape[1],
  };
}

export interface CaptionOracleScore {
  examples: number;
  accuracy: number;
  trueRate: number;
  /** Accuracy and count per `rule`. */
  perRule: Record<string, { examples: number; accuracy: number }>;
  /** Whether each item was answered right, in item order. */
  correct: boolean[];
}

/** Answers each item by log p(" true") against log p(" false") after its prompt. */
export async function scoreCaptionOracle(
  model: MavenModel,
  items: readonly CaptionOracleItem[],
  onProgress?: (done: number, total: number) => void,
): Promise<CaptionOracleScore> {
  let trues = 0;
  const correct: boolean[] = [];
  const perRule: Record<string, { examples: number; right: number }> = {};
  for (const [i, item] of items.entries()) {
    const prepared = await model.prepare(item.prompt, model.preprocessRgb([]));
    const scores = await model.scorePrepared(
      prepared,
      NLVR_OPTIONS.map((o) => ` ${o}`),
    );
    const predicted = scores[0].meanLogLikelihood >= scores[1].meanLogLikelihood ? 0 : 1;
    perRule[item.rule] ??= { examples: 0, right: 0 };
    const rule = perRule[item.rule];
    rule.examples++;
    correct.push(predicted === item.answerIndex);
    if (predicted === item.answerIndex) rule.right++;
    if (predicted === 0) trues++;
    onProgress?.(i + 1, items.length);
  }
  const n = Math.max(1, items.length);
  return {
    examples: items.length,
    accuracy: correct.filter(Boolean).length / n,
    trueRate: trues / n,
    perRule: Object.fromEntries(
      Object.entries(perRule)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, { examples: v.examples, accuracy: v.right / v.examples }]),
    ),
    correct,
  };
}
