/**
 * Stage 4: instruction tuning of everything except the vision encoders and the selector (the
 * LLM with its extended vocabulary, and the projector), on multi-image instructions in hybrid
 * encoding, loss on the answer tokens only. Image encodings (discrete ids, selected patches) come
 * from the weights at the start of the stage. With `realStatements`, a share of the examples are
 * real NLVR dev sentences (see data/tasks/nlvr-dev.ts); with `captionShare`, a share are the
 * image–caption pairs of stages 2–3 (`<image>` → caption), so that what those stages taught is
 * rehearsed rather than overwritten: without them stage 4 alone had to keep captioning alive, and
 * a caption started at 12.5 nats/token after it; with `boxQuizShare`, a share are box quizzes,
 * several questions about one box with the loss on every answer (`boxQuizItem`), since finding the
 * asked object among the patches needs more look-ups than one question per image gives
 * (stage4c-read-boxes.ts measures it); with `photoQuizShare`, a share are photo quizzes, four
 * photos and "which image shows …?" about three of them, for the same reason across images. The rest come from the task mix. Single-image examples may
 * be encoded in a mix of modes (`singleImageModes`).
 */

import { Rng } from '../../data/scene/rng.ts';
import { type LabelledNlvrExample, nlvrDevExample } from '../../data/tasks/nlvr-dev.ts';
import {
  boxQuizExample,
  captionPair,
  instructionExample,
  photoQuizExample,
} from '../../data/tasks/stage-datasets.ts';
import type { ImageSource } from '../../data/tasks/task.ts';
import { IMAGE_TOKEN, imageLines, type TaskExample } from '../../data/tasks/types.ts';
import { warmupCosine } from '../../engine/index.ts';
import { buildComponents } from '../../maven/model.ts';
import { splitPrompt } from '../../maven/sequence.ts';
import { collateMultimodal, type MultimodalExample, traceMultimodalLoss } from '../multimodal.ts';
import type { StageDefinition } from '../stage.ts';
import {
  encodeInModes,
  frozenEncoder,
  imageSlotCount,
  lengthGroupedFrom,
  type MavenStageOptions,
  schedule,
  sequenceLayout,
  singleImageMode,
} from './common.ts';

export const STAGE4_FROZEN = ['vision_tower.', 'visual_tokenizer.', 'patch_selector.'];

export interface InstructionStageOptions extends MavenStageOptions {
  /** Real NLVR examples (dev only) mixed in at `share` of the examples (0–1). */
  realStatements?: { examples: readonly LabelledNlvrExample[]; share: number };
  /** Share (0–1) of examples that are stage 2–3 image–caption pairs; default 0. */
  captionShare?: number;
  /**
   * Share (0–1) of examples that ask several questions about one box (`boxQuizExample`: every
   * one it answers, the loss on each answer); default 0.
   */
  boxQuizShare?: number;
  /**
   * Share (0–1) of examples that show four photos and ask which one shows each of three classes
   * (`photoQuizExample`, the loss on every answer); default 0. Needs the fashion option.
   */
  photoQuizShare?: number;
}

/**
 * What stage 4 trains on: a prompt with its images, the answer, and optionally more questions
 * about the same images, each with its answer (the loss covers every answer).
 */
export type InstructionItem = Pick<TaskExample, 'prompt' | 'images' | 'answer'> & {
  index: number;
  followUps?: readonly { question: string; answer: string }[];
};

const NAME = 'stage4-instruction';

export function instructionStage(o: InstructionStageOptions): StageDefinition {
  const real = o.realStatements;
  if (real && !(real.share >= 0 && real.share <= 1))
    throw new Error(`stage4-instruction: realStatements.share must be in [0, 1], got ${real.share}`);
  const captionShare = o.captionShare ?? 0;
  if (!(captionShare >= 0 && captionShare <= 1))
    throw new Error(`${NAME}: captionShare must be in [0, 1], got ${captionShare}`);
  const boxQuizShare = o.boxQuizShare ?? 0;
  if (!(boxQuizShare >= 0 && boxQuizShare <= 1))
    throw new Error(`${NAME}: boxQuizShare must be in [0, 1], got ${boxQuizShare}`);
  const photoQuizShare = o.photoQuizShare ?? 0;
  if (!(photoQuizShare >= 0 && photoQuizShare <= 1))
    throw new Error(`${NAME}: photoQuizShare must be in [0, 1], got ${photoQuizShare}`);
  const fashion = o.fashion;
  if (photoQuizShare > 0 && fashion === undefined)
    throw new Error(`${NAME}: photoQuizShare needs Fashion-MNIST photos (the fashion option)`);
  const seed = (o.seed ?? 0) + 2;
  const example = (index: number): InstructionItem => {
    if (boxQuizShare > 0 && Rng.fromKey('maven-box-quiz-share', seed, index).chance(boxQuizShare))
      return boxQuizItem(index, seed + 5);
    if (
      fashion &&
      photoQuizShare > 0 &&
      Rng.fromKey('maven-photo-quiz-share', seed, index).chance(photoQuizShare)
    )
      return photoQuizItem(index, seed + 6, fashion);
    if (captionShare > 0 && Rng.fromKey('maven-caption-share', seed, index).chance(captionShare)) {
      const pair = captionPair(index, { seed: seed + 1, split: 'train', fashion: o.fashion });
      return { index, prompt: IMAGE_TOKEN, images: [pair.image], answer: pair.caption };
    }
    const t =
      real && real.examples.length > 0 && Rng.fromKey('maven-real-share', seed, index).chance(real.share)
        ? nlvrDevExample(real.examples, index, { seed })
        : instructionExample(index, { seed, split: 'train', fashion: o.fashion, taskWeights: o.taskWeights });
    return { index, prompt: t.prompt, images: t.images, answer: t.answer };
  };
  const extras = [
    ...(real?.share ? [`${Math.round(real.share * 100)} % real NLVR dev sentences`] : []),
    ...(captionShare ? [`${Math.round(captionShare * 100)} % captions`] : []),
    ...(boxQuizShare ? [`${Math.round(boxQuizShare * 100)} % box quizzes`] : []),
    ...(photoQuizShare ? [`${Math.round(photoQuizShare * 100)} % photo quizzes`] : []),
  ];
  return instructionTuningStage(
    o,
    NAME,
    `LLM + projector on multi-image instructions${extras.length ? ` (${extras.join(', ')})` : ''} (vision encoders and selector frozen), loss on answers`,
    example,
  );
}

/** Every question one box answers (up to 8), the first in the box tasks' prompt. */
export function boxQuizItem(index: number, seed: number): InstructionItem {
  const quiz = boxQuizExample(index, { seed, split: 'train' });
  return quizItem(index, IMAGE_TOKEN, [quiz.image], quiz.turns);
}

/** Four photos and which-image questions about three of them, the first as the prompt. */
export function photoQuizItem(index: number, seed: number, fashion: ImageSource): InstructionItem {
  const quiz = photoQuizExample(index, { seed, split: 'train', fashion });
  return quizItem(index, imageLines(quiz.images.length), quiz.images, quiz.turns);
}

/** A quiz as stage 4 trains it: the images, the first question as the prompt, the rest as follow-ups. */
function quizItem(
  index: number,
  imagePart: string,
  images: InstructionItem['images'],
  turns: readonly { question: string; answer: string }[],
): InstructionItem {
  const [first, ...rest] = turns;
  return { index, prompt: `${imagePart}\n${first.question}`, images, answer: first.answer, followUps: rest };
}

/**
 * A stage of stage 4's kind over `example(index)`: the same trainable parts, optimizer, sequence
 * layout and loss on answers. `name` also keys the draw of each single image's encoding.
 */
export function instructionTuningStage(
  o: MavenStageOptions,
  name: string,
  description: string,
  example: (index: number) => InstructionItem,
): StageDefinition {
  const c = buildComponents(o.config);
  const encoder = frozenEncoder(o);
  const layout = sequenceLayout(encoder, o);
  const text = (s: string) => o.tokenizer.encode(` ${s}`);
  // An item tokenised, with its images' encodings, before any image is encoded: its length in
  // slots is then known, and batches are grouped by it (lengthGroupedFrom).
  const tokenized = (index: number) => {
    const t = example(index);
    const modes = t.images.map(() =>
      t.images.length === 1 ? singleImageMode(o, name, t.index) : (o.mode ?? 'hybrid'),
    );
    const pieces = splitPrompt(t.prompt, t.images.length, o.config.maxImages).map((p, i) =>
      o.tokenizer.encode(p, { bos: i === 0 }),
    );
    const answer = [...text(t.answer), o.tokenizer.eosId];
    const followUps = t.followUps?.map((f) => ({
      question: text(f.question),
      answer: [...text(f.answer), o.tokenizer.eosId],
    }));
    const length =
      [...pieces, answer, ...(followUps ?? []).flatMap((f) => [f.question, f.answer])].reduce(
        (n, ids) => n + ids.length,
        0,
      ) + modes.reduce((n, m) => n + imageSlotCount(o.config, m), 0);
    return { images: t.images, modes, pieces, answer, followUps, length };
  };
  type Tokenized = ReturnType<typeof tokenized>;
  const collate = async (items: Tokenized[]) => {
    const encoded = await encodeInModes(
      encoder,
      items.flatMap((t) => t.images),
      items.flatMap((t) => t.modes),
    );
    let next = 0;
    const examples: MultimodalExample[] = items.map((t) => ({
      pieces: t.pieces,
      images: t.images.map(() => encoded[next++]),
      answer: t.answer,
      followUps: t.followUps,
    }));
    return collateMultimodal(examples, layout);
  };
  return {
    name,
    description,
    params: o.weights,
    build: (g) => ({ loss: traceMultimodalLoss(g, c, true).loss }),
    trainable: (p) => !STAGE4_FROZEN.some((prefix) => p.startsWith(prefix)),
    optimizer: { lr: warmupCosine(schedule(o)), weightDecay: 0.01 },
    steps: o.steps,
    batches: (from) =>
      lengthGroupedFrom(from, o.batchSize, tokenized, (t) => t.length, collate, { seed: o.seed }),
    batchSize: (feeds) => feeds.ids.shape[0] * feeds.ids.shape[1],
  };
}
