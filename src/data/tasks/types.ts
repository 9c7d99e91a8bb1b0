/**
 * The shape of a multi-image task example, shared by every task: some images, a prompt with one
 * `<image>` placeholder per image (in order), the answer, and for multiple choice the options and
 * the index of the right one. Examples are first *planned* (scene graphs and text, microseconds)
 * and then *rendered* (pixels, milliseconds), so counting, splitting and statistics never pay for
 * pixels.
 *
 * Answer conventions: when the prompt lists lettered options ("A. …"), `answer` is the letter
 * and `options` the option texts (or 'A'…'D' when the options are images); otherwise `answer` is
 * `options[answerIndex]` itself ("true", "left", "3").
 */
import type { Query } from '../scene/query.ts';
import type { RgbImage } from '../scene/render.ts';
import type { Box, Layout } from '../scene/scene.ts';

/** Must equal `IMAGE_PLACEHOLDER` in src/maven/sequence.ts (a test checks it). */
export const IMAGE_TOKEN = '<image>';

export type Split = 'train' | 'heldout';
export const SPLITS: readonly Split[] = ['train', 'heldout'];

/** DEMON-style categories (SEED-Bench's for the frame-sequence tasks). */
export type TaskCategory =
  | 'multi-image-reasoning'
  | 'visual-relation-inference'
  | 'multi-modal-cloze'
  | 'action-recognition'
  | 'procedure-understanding'
  | 'single-image-perception';

export type TaskName =
  | 'nlvr-statement'
  | 'what-changed'
  | 'sequence-completion'
  | 'motion-direction'
  | 'procedure-order'
  | 'object-count'
  | 'fashion-which'
  | 'fashion-same'
  | 'fashion-count'
  | 'fashion-name'
  | 'box-color'
  | 'box-shape'
  | 'box-count'
  | 'box-wall'
  | 'fashion-class';

/** Something to draw: an NLVR box (rendered by the rasteriser) or a grayscale photo. */
export type Visual =
  | { kind: 'box'; objects: Box }
  | {
      kind: 'gray';
      width: number;
      height: number;
      /** width·height bytes, row-major. */
      pixels: Uint8Array;
      /** Identifies the image in its source, e.g. 'fashion-mnist/train/123'. */
      key: string;
    };

/** Facts about an example, for analysis and debugging (never needed to score it). */
export interface ExampleMeta {
  /** The rng key the example was drawn from: (seed, split, task, index). */
  key: string;
  /** Draws rejected because their content belonged to the other split. */
  rejected: number;
  /** Scene tasks: the layout of the boxes. */
  layout?: Layout;
  /** nlvr-statement: the statement's structured query and its truth. */
  query?: Query;
  /** A short name of the rule, change, or direction behind the answer. */
  rule?: string;
  /** Fashion tasks: the source indices and class labels of the images, in image order. */
  sourceIndices?: number[];
  sourceLabels?: number[];
}

/** A planned (not yet rendered) example. */
export interface ExamplePlan {
  task: TaskName;
  category: TaskCategory;
  split: Split;
  /** Index within (seed, split, task). */
  index: number;
  visuals: Visual[];
  prompt: string;
  answer: string;
  options?: string[];
  answerIndex?: number;
  meta: ExampleMeta;
}

/** A rendered example: `images[i]` is the i-th `<image>` of the prompt. */
export interface TaskExample extends Omit<ExamplePlan, 'visuals'> {
  images: RgbImage[];
  /** The scene-graph boxes behind `images` (null for photos), in image order. */
  boxes: (Box | null)[];
}

export const OPTION_LETTERS = ['A', 'B', 'C', 'D', 'E', 'F'];

/** "A. first\nB. second" for a prompt. */
export function letteredOptions(options: readonly string[]): string {
  if (options.length > OPTION_LETTERS.length)
    throw new Error(`at most ${OPTION_LETTERS.length} options, got ${options.length}`);
  return options.map((o, i) => `${OPTION_LETTERS[i]}. ${o}`).join('\n');
}

/**
 * `count` image placeholders, one per line, each after its number ("Image 2: <image>"). Questions
 * name images by number ("are images 1 and 3 …"); with bare placeholders the only way to tell
 * image 3 from image 1 is to count `<img>` delimiters. Numbered images are also how multi-image
 * chat models are prompted (LLaVA-Interleave, mPLUG-Owl3). The numbers alone did not teach the
 * tiny LLM to compare images (stage 4 rerun with them: fashion-same 41 %, answering "yes"), which is
 * why stage 4 also trains fashion-name ("what is in image 2?").
 */
export function imageLines(count: number): string {
  return Array.from({ length: count }, (_, i) => `Image ${i + 1}: ${IMAGE_TOKEN}`).join('\n');
}
