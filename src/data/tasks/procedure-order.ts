/**
 * Procedure understanding (SEED-Bench style): the steps of building something — a tower block by
 * block, or a box filled one object at a time — shown out of order; which order is right? The
 * right order is found by sorting the shown images by how many objects each holds.
 */
import { addRandomObject, scatteredBox } from '../scene/generator.ts';
import type { Rng } from '../scene/rng.ts';
import { type Box, COLORS, towerBox } from '../scene/scene.ts';
import type { TaskDefinition } from './task.ts';
import { imageLines, letteredOptions, OPTION_LETTERS } from './types.ts';

const OPTION_COUNT = 4;

/** The build steps, first to last (each adds one object). */
function buildSteps(rng: Rng, kind: 'tower' | 'fill', steps: number): Box[] | null {
  if (kind === 'tower') {
    const colors = Array.from({ length: steps }, () => rng.pick(COLORS));
    return colors.map((_, t) => towerBox(colors.slice(0, t + 1)));
  }
  const frames = [scatteredBox(rng, undefined, 1)];
  while (frames.length < steps) {
    const next = addRandomObject(rng, frames[frames.length - 1]);
    if (next === null) return null;
    frames.push(next);
  }
  return frames;
}

/** "2, 3, 1": the shown images' numbers in viewing order. */
const orderText = (order: readonly number[]) => order.map((i) => i + 1).join(', ');

export const procedureOrderTask: TaskDefinition = {
  name: 'procedure-order',
  category: 'procedure-understanding',
  splitBy: 'content',
  draw(rng) {
    const kind = rng.pick(['tower', 'fill'] as const);
    const steps = buildSteps(rng, kind, rng.int(3, 4));
    if (steps === null) return null;
    const shown = rng.shuffled(steps);
    // Right order: shown images sorted by their number of objects (each step adds one).
    const sizes = shown.map((b) => b.length);
    if (new Set(sizes).size !== sizes.length) return null;
    const right = shown.map((_, i) => i).sort((a, b) => sizes[a] - sizes[b]);
    const texts = new Set([orderText(right)]);
    for (let t = 0; t < 50 && texts.size < OPTION_COUNT; t++) texts.add(orderText(rng.shuffled(right)));
    if (texts.size < OPTION_COUNT) return null;
    const options = rng.shuffled([...texts]);
    const answerIndex = options.indexOf(orderText(right));
    const what =
      kind === 'tower'
        ? 'the steps of building a tower, one block at a time'
        : 'the steps of filling a box, one object at a time';
    return {
      visuals: shown.map((objects) => ({ kind: 'box', objects })),
      prompt: `${imageLines(shown.length)}\nThese images show ${what}, out of order. In which order were they taken?\n${letteredOptions(options)}\nAnswer with the option's letter.`,
      answer: OPTION_LETTERS[answerIndex],
      options,
      answerIndex,
      meta: { layout: kind === 'tower' ? 'towers' : 'scattered', rule: kind },
    };
  },
};
