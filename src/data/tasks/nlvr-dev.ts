/**
 * Real NLVR sentences as stage-4 training examples. The data README allows training on NLVR
 * `dev` (never `test`) when generated statements are not enough; the tiny recipe does, because
 * human sentences word things the statement templates never do ("a black block as the base",
 * "items of only one colour"), and a model trained only on templates answers them at chance.
 *
 * Each example renders the `structured_rep` boxes with the scene renderer (the same pixels as the
 * dev PNGs up to anti-aliasing; no file I/O) in one of the six box orders, drawn per example, with
 * the prompt of the generated `nlvr-statement` task, which is also the evaluation's prompt.
 * Pure math: no Node I/O.
 */
import { renderSceneBox } from '../scene/render.ts';
import { Rng } from '../scene/rng.ts';
import type { Box } from '../scene/scene.ts';
import { NLVR_OPTIONS, nlvrStatementPrompt } from './nlvr-statement.ts';
import type { TaskExample } from './types.ts';

/** What a training example needs of an NLVR example (a subset of `NlvrExample`). */
export interface LabelledNlvrExample {
  identifier: string;
  sentence: string;
  label: boolean;
  /** The three boxes' objects (`structured_rep`). */
  boxes: readonly Box[];
}

/** Training example `index` drawn from `examples` (uniformly, with a random box order). */
export function nlvrDevExample(
  examples: readonly LabelledNlvrExample[],
  index: number,
  options: { seed?: number; imageSize?: number } = {},
): TaskExample {
  if (examples.length === 0) throw new Error('nlvrDevExample: no NLVR examples to draw from');
  const rng = Rng.fromKey('maven-nlvr-dev', options.seed ?? 0, index);
  const ex = examples[rng.int(0, examples.length - 1)];
  if (ex.boxes.length !== 3)
    throw new Error(`nlvrDevExample: ${ex.identifier} has ${ex.boxes.length} boxes, not 3`);
  const boxes = rng.shuffled(ex.boxes);
  const answerIndex = ex.label ? 0 : 1;
  return {
    task: 'nlvr-statement',
    category: 'multi-image-reasoning',
    split: 'train',
    index,
    prompt: nlvrStatementPrompt(ex.sentence),
    answer: NLVR_OPTIONS[answerIndex],
    options: NLVR_OPTIONS,
    answerIndex,
    meta: { key: `nlvr-dev/${ex.identifier}/${index}`, rejected: 0, rule: 'nlvr-dev' },
    images: boxes.map((box) => {
      const { width, height, rgb } = renderSceneBox(box, options.imageSize);
      return { width, height, rgb };
    }),
    boxes: boxes.map((box) => [...box]),
  };
}
