/**
 * Streaming datasets for MaVEn's training stages, before any tokenizer (they yield examples;
 * tokenisation happens later):
 * - stage 1 (patch selector): one box image, its exact object masks, a statement about the scene
 *   and the objects it is about (text-guided positives for the patch labels);
 * - stages 2–3 (alignment): image–caption pairs — generated boxes with exact captions, mixed with
 *   Fashion-MNIST photos when a source is given;
 * - stage 4 (instruction tuning): multi-image task examples (prompt with `<image>` placeholders,
 *   answer), mixed over tasks.
 * Each stream is infinite (or `limit` long) and deterministic given (seed, split): element i is a
 * pure function of (seed, split, i). `shuffleBuffer` and `batches` compose on top.
 */
import { captionBox } from '../scene/captions.ts';
import { relevantObjects } from '../scene/evaluate.ts';
import { DEFAULT_SCENE_CONFIG, generateScene, scatteredBox } from '../scene/generator.ts';
import { maskOf, type RgbImage, renderSceneBox } from '../scene/render.ts';
import { Rng } from '../scene/rng.ts';
import type { Box, Scene } from '../scene/scene.ts';
import { generateStatement } from '../scene/statements.ts';
import { SCATTERED_WORDS, TOWER_WORDS } from '../scene/words.ts';
import { type FashionQuizTurn, fashionPhrase, fashionWhichQuiz } from './fashion.ts';
import {
  FASHION_TASK_NAMES,
  generateExample,
  grayToRgb,
  renderVisual,
  SCENE_TASK_NAMES,
} from './registry.ts';
import { type BoxQuestion, boxQuestions, MAX_BOX_COUNT, WALL_QUESTION } from './single-image.ts';
import { checkSplit, contentKey, splitOfContent } from './splits.ts';
import type { ImageSource } from './task.ts';
import type { Split, TaskExample, TaskName } from './types.ts';

export interface StreamOptions {
  /** Dataset seed (default 0). */
  seed?: number;
  /** Default 'train'. */
  split?: Split;
  /** Side of rendered boxes in pixels (default 100, NLVR's). */
  imageSize?: number;
  /** Stop after this many examples (default: never). */
  limit?: number;
  /** First element index (to resume a stream). */
  start?: number;
  /** Fashion-MNIST images of this split (train-* for 'train', t10k-* for 'heldout'). */
  fashion?: ImageSource;
}

function* indices(options: StreamOptions): Generator<number> {
  const start = options.start ?? 0;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (!Number.isInteger(start) || start < 0)
    throw new Error(`stream: start must be an integer ≥ 0, got ${start}`);
  if (!(limit >= 0)) throw new Error(`stream: limit must be ≥ 0, got ${limit}`);
  for (let i = start; i - start < limit; i++) yield i;
}

/** A random scene whose content belongs to `split` (see splits.ts). */
function sceneInSplit(rng: Rng, split: Split): Scene {
  for (let draw = 0; draw < 2000; draw++) {
    const scene = generateScene(rng);
    if (splitOfContent(contentKey(scene.boxes.map((objects) => ({ kind: 'box', objects })))) === split)
      return scene;
  }
  throw new Error(`sceneInSplit: no ${split} scene in 2000 draws`);
}

// ---------------------------------------------------------------------------------------------
// Stage 1: patch selector

export interface SelectorExample {
  /** Stream key (seed/split/index). */
  key: string;
  image: RgbImage;
  /** The box's objects (100×100 frame) and one full 0/1 mask per object (image resolution). */
  objects: Box;
  objectMasks: Uint8Array[];
  /** A statement about the whole scene the box belongs to, and its truth. */
  statement: string;
  truth: boolean;
  /** Objects of this box the statement is about; their union mask (all zero when none). */
  relevant: number[];
  relevantMask: Uint8Array;
}

export function selectorExample(index: number, options: StreamOptions = {}): SelectorExample {
  const split = options.split ?? 'train';
  checkSplit(split);
  const seed = options.seed ?? 0;
  const rng = Rng.fromKey('maven-stage1', seed, split, index);
  const scene = sceneInSplit(rng, split);
  const statement = generateStatement(scene, rng);
  const objects = scene.boxes[rng.int(0, scene.boxes.length - 1)];
  const rendered = renderSceneBox(objects, options.imageSize);
  const relevant = relevantObjects(statement.query, objects);
  return {
    key: `${seed}/${split}/${index}`,
    image: { width: rendered.width, height: rendered.height, rgb: rendered.rgb },
    objects,
    objectMasks: rendered.objectMasks,
    statement: statement.text,
    truth: statement.truth,
    relevant,
    relevantMask: maskOf(rendered, relevant),
  };
}

export function* selectorExamples(options: StreamOptions = {}): Generator<SelectorExample> {
  for (const i of indices(options)) yield selectorExample(i, options);
}

// ---------------------------------------------------------------------------------------------
// Stages 2–3: image–caption pairs

export interface CaptionPair {
  key: string;
  image: RgbImage;
  caption: string;
  source: 'scene' | 'fashion';
  /** The box's objects (scene pairs), or the photo's class label (fashion pairs). */
  objects?: Box;
  label?: number;
}

export interface CaptionOptions extends StreamOptions {
  /** Share of Fashion-MNIST photos when `fashion` is given (default 0.5). */
  fashionShare?: number;
}

const PHOTO_CAPTIONS = [
  (thing: string) => `A photo of ${thing}.`,
  (thing: string) => `A grayscale product photo of ${thing}.`,
  (thing: string) => `This picture shows ${thing}.`,
];

/** Every caption a photo of class `label` can get (for a tokenizer's corpus). */
export function photoCaptions(label: number): string[] {
  return PHOTO_CAPTIONS.map((caption) => caption(fashionPhrase(label)));
}

export function captionPair(index: number, options: CaptionOptions = {}): CaptionPair {
  const split = options.split ?? 'train';
  checkSplit(split);
  const seed = options.seed ?? 0;
  const rng = Rng.fromKey('maven-caption', seed, split, index);
  const key = `${seed}/${split}/${index}`;
  const fashion = options.fashion;
  if (fashion !== undefined && rng.chance(options.fashionShare ?? 0.5)) {
    const i = rng.int(0, fashion.count - 1);
    const image = grayToRgb(fashion.cols ?? 28, fashion.rows ?? 28, fashion.image(i));
    const label = fashion.label(i);
    return { key, image, caption: rng.pick(PHOTO_CAPTIONS)(fashionPhrase(label)), source: 'fashion', label };
  }
  const scene = sceneInSplit(rng, split);
  const box = scene.boxes[rng.int(0, scene.boxes.length - 1)];
  const { width, height, rgb } = renderSceneBox(box, options.imageSize);
  return {
    key,
    image: { width, height, rgb },
    caption: captionBox(box, scene.layout),
    source: 'scene',
    objects: box,
  };
}

export function* captionPairs(options: CaptionOptions = {}): Generator<CaptionPair> {
  for (const i of indices(options)) yield captionPair(i, options);
}

// ---------------------------------------------------------------------------------------------
// Stage 4c: several questions about one box

export interface BoxQuizExample {
  key: string;
  image: RgbImage;
  objects: Box;
  /** Questions about the box in the order asked, each with its answer. */
  turns: BoxQuestion[];
}

export interface BoxQuizOptions extends StreamOptions {
  /** Most questions asked about one box (default: every one it answers). */
  maxQuestions?: number;
}

/**
 * Share of the boxes that touch the wall whose quiz asks about it. Five boxes in six touch it
 * (2,000 quizzes: 1,670), and asking every box taught the LLM to answer "yes" (run r21: box-wall
 * 66 % on held-out boxes, "yes" 77 % of the time, against 83 % before); one in five keeps "yes"
 * and "no" about even, as box-wall asks them, without changing which boxes are drawn.
 */
const WALL_YES_ASKED = 0.2;

/**
 * One box and up to `maxQuestions` of the single-image questions it answers (`boxQuestions`), in
 * random order. The box comes, with equal odds, from the three kinds the single-image tasks ask
 * about: a box of a generated scene (either layout), a scattered box, or a scattered box with a
 * uniform 1–8 objects; it belongs to `split` as those tasks' boxes do (by its own content).
 */
export function boxQuizExample(index: number, options: BoxQuizOptions = {}): BoxQuizExample {
  const split = options.split ?? 'train';
  checkSplit(split);
  const seed = options.seed ?? 0;
  const maxQuestions = options.maxQuestions ?? Number.POSITIVE_INFINITY;
  if (!(Number.isInteger(maxQuestions) || maxQuestions === Number.POSITIVE_INFINITY) || maxQuestions < 1)
    throw new Error(`boxQuizExample: maxQuestions must be an integer ≥ 1, got ${maxQuestions}`);
  const rng = Rng.fromKey('maven-box-quiz', seed, split, index);
  for (let draw = 0; draw < 2000; draw++) {
    const kind = rng.int(0, 2);
    let objects: Box;
    let layout: 'scattered' | 'towers' = 'scattered';
    if (kind === 0) {
      const scene = generateScene(rng);
      objects = scene.boxes[rng.int(0, scene.boxes.length - 1)];
      layout = scene.layout;
    } else
      objects = scatteredBox(rng, DEFAULT_SCENE_CONFIG, kind === 2 ? rng.int(1, MAX_BOX_COUNT) : undefined);
    if (splitOfContent(contentKey([{ kind: 'box', objects }])) !== split) continue;
    const vocab = layout === 'towers' ? TOWER_WORDS : SCATTERED_WORDS;
    const questions = boxQuestions(objects, vocab, layout).filter(
      (q) => q.question !== WALL_QUESTION || q.answer === 'no' || rng.chance(WALL_YES_ASKED),
    );
    const turns = rng.shuffled(questions).slice(0, maxQuestions);
    const { width, height, rgb } = renderSceneBox(objects, options.imageSize);
    return { key: `${seed}/${split}/${index}`, image: { width, height, rgb }, objects, turns };
  }
  throw new Error(`boxQuizExample: no ${split} box in 2000 draws`);
}

// ---------------------------------------------------------------------------------------------
// Stage 4: several questions about the same photos

export interface PhotoQuizExample {
  key: string;
  images: RgbImage[];
  /** Class of each image, in order. */
  labels: number[];
  /** "Which image shows …?" questions in the order asked, each with its answer. */
  turns: FashionQuizTurn[];
}

/**
 * Four Fashion-MNIST photos of different classes from `options.fashion` (the split's own photos:
 * train-* for 'train') and which-image questions about three of them (`fashionWhichQuiz`).
 */
export function photoQuizExample(index: number, options: StreamOptions = {}): PhotoQuizExample {
  const split = options.split ?? 'train';
  checkSplit(split);
  const seed = options.seed ?? 0;
  const source = options.fashion;
  if (source === undefined)
    throw new Error('photoQuizExample: needs Fashion-MNIST photos (the fashion option)');
  const rng = Rng.fromKey('maven-photo-quiz', seed, split, index);
  for (let draw = 0; draw < 100; draw++) {
    const quiz = fashionWhichQuiz(rng, source);
    if (quiz === null) continue;
    return {
      key: `${seed}/${split}/${index}`,
      images: quiz.visuals.map((v) => renderVisual(v)),
      labels: quiz.labels,
      turns: quiz.turns,
    };
  }
  throw new Error(`photoQuizExample: ${source.name ?? 'the fashion source'} has too few classes for a quiz`);
}

// ---------------------------------------------------------------------------------------------
// Stage 4: instruction examples

export interface InstructionOptions extends StreamOptions {
  /** Relative weight of each task; default: every scene task 1, fashion tasks 1 when a source is given. */
  taskWeights?: Partial<Record<TaskName, number>>;
}

function taskWeights(options: InstructionOptions): [TaskName, number][] {
  const names = [...SCENE_TASK_NAMES, ...(options.fashion === undefined ? [] : FASHION_TASK_NAMES)];
  const weights = options.taskWeights ?? Object.fromEntries(names.map((t) => [t, 1]));
  const out = Object.entries(weights).filter(([, w]) => (w ?? 0) > 0) as [TaskName, number][];
  for (const [t] of out) {
    if (FASHION_TASK_NAMES.includes(t) && options.fashion === undefined) {
      throw new Error(`instruction stream: task ${t} needs the fashion option (Fashion-MNIST images)`);
    }
  }
  if (out.length === 0) throw new Error('instruction stream: no task has a positive weight');
  return out;
}

export function instructionExample(index: number, options: InstructionOptions = {}): TaskExample {
  const split = options.split ?? 'train';
  checkSplit(split);
  const seed = options.seed ?? 0;
  const task = Rng.fromKey('maven-mix', seed, split, index).weighted(taskWeights(options));
  return generateExample(task, split, index, {
    seed,
    fashion: options.fashion,
    imageSize: options.imageSize,
  });
}

export function* instructionExamples(options: InstructionOptions = {}): Generator<TaskExample> {
  taskWeights(options); // fail early on bad weights
  for (const i of indices(options)) yield instructionExample(i, options);
}

// ---------------------------------------------------------------------------------------------
// Composition

/**
 * Shuffles a stream with a buffer of `size` elements: each output is a uniformly random element
 * of the buffer, refilled from the source. Deterministic given the Rng.
 */
export function* shuffleBuffer<T>(source: Iterable<T>, size: number, rng: Rng): Generator<T> {
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`shuffleBuffer: size must be an integer ≥ 1, got ${size}`);
  const buffer: T[] = [];
  for (const item of source) {
    if (buffer.length < size) {
      buffer.push(item);
      continue;
    }
    const j = rng.int(0, size - 1);
    yield buffer[j];
    buffer[j] = item;
  }
  while (buffer.length > 0) {
    const j = rng.int(0, buffer.length - 1);
    yield buffer[j];
    buffer[j] = buffer[buffer.length - 1];
    buffer.pop();
  }
}

/** Groups a stream into arrays of `size`; the last, shorter one is kept unless `dropLast`. */
export function* batches<T>(
  source: Iterable<T>,
  size: number,
  options: { dropLast?: boolean } = {},
): Generator<T[]> {
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`batches: size must be an integer ≥ 1, got ${size}`);
  let batch: T[] = [];
  for (const item of source) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0 && !options.dropLast) yield batch;
}

export type Stage = 1 | 2 | 3 | 4;

export interface StageOptions extends InstructionOptions, CaptionOptions {
  batchSize: number;
  /** Shuffle buffer size (default 64; 1 turns shuffling off). */
  shuffle?: number;
  dropLast?: boolean;
}

/** Shuffled batches for one training stage. */
export function stageBatches(stage: 1, options: StageOptions): Generator<SelectorExample[]>;
export function stageBatches(stage: 2 | 3, options: StageOptions): Generator<CaptionPair[]>;
export function stageBatches(stage: 4, options: StageOptions): Generator<TaskExample[]>;
export function stageBatches(
  stage: Stage,
  options: StageOptions,
): Generator<SelectorExample[]> | Generator<CaptionPair[]> | Generator<TaskExample[]> {
  const rng = Rng.fromKey('maven-shuffle', options.seed ?? 0, options.split ?? 'train', stage);
  const shuffle = options.shuffle ?? 64;
  const batch = <T>(stream: Iterable<T>) =>
    batches(shuffle > 1 ? shuffleBuffer(stream, shuffle, rng) : stream, options.batchSize, options);
  switch (stage) {
    case 1:
      return batch(selectorExamples(options));
    case 2:
    case 3:
      return batch(captionPairs(options));
    case 4:
      return batch(instructionExamples(options));
    default:
      throw new Error(`stageBatches: stage must be 1, 2, 3 or 4, got ${JSON.stringify(stage)}`);
  }
}
