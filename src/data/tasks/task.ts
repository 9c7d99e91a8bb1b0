/**
 * What a task is: a name, a category, and a `draw` function from an Rng to the content of one
 * example (visuals, prompt, answer). The registry (`registry.ts`) adds the split, the index and
 * the rejection of draws whose content belongs to the other split.
 */
import type { SceneGeneratorConfig } from '../scene/generator.ts';
import type { Rng } from '../scene/rng.ts';
import type { ExampleMeta, Split, TaskCategory, TaskName, Visual } from './types.ts';

/** A 28×28 grayscale photo collection such as Fashion-MNIST (kept abstract: no file reading). */
export interface ImageSource {
  /** Number of images. */
  count: number;
  /** Image i: rows·cols bytes, row-major, 0 = background. */
  image(i: number): Uint8Array;
  /** Class index of image i. */
  label(i: number): number;
  /** Image side in pixels; 28 when not given. */
  rows?: number;
  cols?: number;
  /** Names this source in image keys, e.g. 'fashion-mnist/train'. */
  name?: string;
}

export interface TaskContext {
  split: Split;
  /**
   * Would an example with these images belong to `split`? The registry checks every draw; a
   * task may ask earlier to skip costly work on content that will be rejected anyway.
   */
  inSplit(visuals: readonly Visual[]): boolean;
  sceneConfig: SceneGeneratorConfig;
  /** Photos for the Fashion-MNIST tasks: the train-* images for 'train', t10k-* for 'heldout'. */
  fashion?: ImageSource;
}

/** The content of one example; `null` asks the registry to draw again (e.g. an impossible edit). */
export interface TaskDraw {
  visuals: Visual[];
  prompt: string;
  answer: string;
  options?: string[];
  answerIndex?: number;
  meta?: Omit<ExampleMeta, 'key' | 'rejected'>;
}

export interface TaskDefinition {
  name: TaskName;
  category: TaskCategory;
  /**
   * 'content': the split is decided by hashing the example's images (scene tasks);
   * 'source': by the image source the caller passes (Fashion-MNIST train vs t10k).
   */
  splitBy: 'content' | 'source';
  draw(rng: Rng, context: TaskContext): TaskDraw | null;
}

/** Index of the one option for which `isRight` holds; null when none or several do. */
export function uniqueRightOption<T>(options: readonly T[], isRight: (option: T) => boolean): number | null {
  const right = options.map((o, i) => (isRight(o) ? i : -1)).filter((i) => i >= 0);
  return right.length === 1 ? right[0] : null;
}
