/**
 * All tasks by name, and the functions that turn (seed, split, task, index) into an example:
 * `planExample` draws the content (rejecting draws whose images belong to the other split) and
 * `renderExample` draws the pixels. Both are pure functions of their arguments, so any example
 * can be regenerated alone.
 */
import { DEFAULT_SCENE_CONFIG } from '../scene/generator.ts';
import { type RenderedSceneBox, type RgbImage, renderSceneBox } from '../scene/render.ts';
import { Rng } from '../scene/rng.ts';
import { BOX_SIZE, type Box, checkBox } from '../scene/scene.ts';
import { fashionCountTask, fashionNameTask, fashionSameTask, fashionWhichTask } from './fashion.ts';
import { motionDirectionTask } from './motion-direction.ts';
import { nlvrStatementTask } from './nlvr-statement.ts';
import { objectCountTask } from './object-count.ts';
import { procedureOrderTask } from './procedure-order.ts';
import { sequenceCompletionTask } from './sequence-completion.ts';
import { boxColorTask, boxCountTask, boxShapeTask, boxWallTask, fashionClassTask } from './single-image.ts';
import { checkSplit, contentKey, splitOfContent } from './splits.ts';
import type { ImageSource, TaskContext, TaskDefinition } from './task.ts';
import {
  type ExamplePlan,
  IMAGE_TOKEN,
  type Split,
  type TaskExample,
  type TaskName,
  type Visual,
} from './types.ts';
import { whatChangedTask } from './what-changed.ts';

export const TASKS: Readonly<Record<TaskName, TaskDefinition>> = {
  'nlvr-statement': nlvrStatementTask,
  'what-changed': whatChangedTask,
  'sequence-completion': sequenceCompletionTask,
  'motion-direction': motionDirectionTask,
  'procedure-order': procedureOrderTask,
  'object-count': objectCountTask,
  'fashion-which': fashionWhichTask,
  'fashion-same': fashionSameTask,
  'fashion-count': fashionCountTask,
  'fashion-name': fashionNameTask,
  'box-color': boxColorTask,
  'box-shape': boxShapeTask,
  'box-count': boxCountTask,
  'box-wall': boxWallTask,
  'fashion-class': fashionClassTask,
};

export const TASK_NAMES = Object.keys(TASKS) as TaskName[];
/** Tasks that need nothing but the scene generator. */
export const SCENE_TASK_NAMES = TASK_NAMES.filter((t) => TASKS[t].splitBy === 'content');
export const FASHION_TASK_NAMES = TASK_NAMES.filter((t) => TASKS[t].splitBy === 'source');

export interface PlanOptions {
  /** Dataset seed: different seeds give different training streams (held-out stays disjoint). */
  seed?: number;
  /** Fashion-MNIST images for the fashion tasks (the source of this split). */
  fashion?: ImageSource;
  /** Overrides, e.g. another scene generator config. */
  context?: Partial<Omit<TaskContext, 'split' | 'inSplit'>>;
  /** Draws before giving up (a task that keeps failing is a bug). */
  maxDraws?: number;
}

export function taskDefinition(task: string): TaskDefinition {
  const def = TASKS[task as TaskName];
  if (def === undefined)
    throw new Error(`unknown task ${JSON.stringify(task)} (known: ${TASK_NAMES.join(', ')})`);
  return def;
}

/** Example `index` of `task` in `split`: content only, no pixels. */
export function planExample(
  task: TaskName,
  split: Split,
  index: number,
  options: PlanOptions = {},
): ExamplePlan {
  checkSplit(split);
  const def = taskDefinition(task);
  if (!Number.isInteger(index) || index < 0)
    throw new Error(`planExample: index must be an integer ≥ 0, got ${index}`);
  const seed = options.seed ?? 0;
  const inSplit = (visuals: readonly Visual[]) =>
    def.splitBy !== 'content' || splitOfContent(contentKey(visuals)) === split;
  const context: TaskContext = {
    split,
    inSplit,
    sceneConfig: DEFAULT_SCENE_CONFIG,
    fashion: options.fashion,
    ...options.context,
  };
  const key = `${seed}/${split}/${task}/${index}`;
  const rng = Rng.fromKey('maven-task', seed, split, task, index);
  const maxDraws = options.maxDraws ?? 2000;
  let rejected = 0;
  for (let draw = 0; draw < maxDraws; draw++) {
    const content = def.draw(rng, context);
    if (content === null) continue;
    if (!inSplit(content.visuals)) {
      rejected++;
      continue;
    }
    checkPlan(content.visuals, content.prompt, task);
    return {
      task,
      category: def.category,
      split,
      index,
      visuals: content.visuals,
      prompt: content.prompt,
      answer: content.answer,
      ...(content.options === undefined ? {} : { options: content.options }),
      ...(content.answerIndex === undefined ? {} : { answerIndex: content.answerIndex }),
      meta: { key, rejected, ...content.meta },
    };
  }
  throw new Error(
    `planExample: ${task} produced no valid ${split} example in ${maxDraws} draws (key ${key})`,
  );
}

/** Every prompt has exactly one placeholder per image and every box is valid. */
function checkPlan(visuals: readonly Visual[], prompt: string, task: string): void {
  const placeholders = prompt.split(IMAGE_TOKEN).length - 1;
  if (placeholders !== visuals.length) {
    throw new Error(
      `${task}: prompt has ${placeholders} ${IMAGE_TOKEN} placeholders for ${visuals.length} images`,
    );
  }
  visuals.forEach((v, i) => {
    if (v.kind === 'box') checkBox(v.objects, `${task} image ${i}`);
  });
}

export interface RenderExampleOptions {
  /** Side of rendered boxes in pixels (photos keep their own size). NLVR's boxes are 100. */
  imageSize?: number;
}

/** Gray bytes → RGB image (each byte copied to all three channels). */
export function grayToRgb(width: number, height: number, pixels: Uint8Array): RgbImage {
  if (pixels.length !== width * height) {
    throw new Error(
      `grayToRgb: ${pixels.length} bytes for a ${width}×${height} image (expected ${width * height})`,
    );
  }
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < pixels.length; p++) rgb.fill(pixels[p], 3 * p, 3 * p + 3);
  return { width, height, rgb };
}

/** Pixels of one visual (boxes with their object masks). */
export function renderVisual(
  visual: Visual,
  options: RenderExampleOptions = {},
): RgbImage | RenderedSceneBox {
  if (visual.kind === 'box') return renderSceneBox(visual.objects, options.imageSize ?? BOX_SIZE);
  return grayToRgb(visual.width, visual.height, visual.pixels);
}

/** A planned example with its images drawn. */
export function renderExample(plan: ExamplePlan, options: RenderExampleOptions = {}): TaskExample {
  const { visuals, ...rest } = plan;
  const images = visuals.map((v) => {
    const { width, height, rgb } = renderVisual(v, options);
    return { width, height, rgb };
  });
  const boxes: (Box | null)[] = visuals.map((v) => (v.kind === 'box' ? v.objects : null));
  return { ...rest, images, boxes };
}

/** `renderExample(planExample(…))`. */
export function generateExample(
  task: TaskName,
  split: Split,
  index: number,
  options: PlanOptions & RenderExampleOptions = {},
): TaskExample {
  return renderExample(planExample(task, split, index, options), options);
}
