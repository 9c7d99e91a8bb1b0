/**
 * Visual relation inference: two images of one box, before and after a single edit (an object
 * recoloured, reshaped, moved, added or removed); "what changed?" with four options. The right
 * option is the description of `diffBoxes(before, after)`; the distractors describe other edits
 * of the same box (half of them on the same object), so they are false of this pair.
 */
import {
  applyEdit,
  type Change,
  changeText,
  diffBoxes,
  EDIT_KINDS,
  type EditKind,
} from '../scene/changes.ts';
import { scatteredBox } from '../scene/generator.ts';
import type { Rng } from '../scene/rng.ts';
import type { Box } from '../scene/scene.ts';
import { type TaskDefinition, uniqueRightOption } from './task.ts';
import { imageLines, letteredOptions, OPTION_LETTERS } from './types.ts';

const OPTION_COUNT = 4;
const DESCRIBABLE: ReadonlySet<Change['kind']> = new Set([
  'added',
  'removed',
  'recolored',
  'reshaped',
  'moved',
]);

/** An edit of `box` and what it changes, or null when the edit was impossible or unclear. */
function randomChange(
  rng: Rng,
  box: Box,
  kind: EditKind,
  target?: number,
): { after: Box; change: Change } | null {
  const after = applyEdit(rng, box, kind, { target });
  if (after === null) return null;
  const change = diffBoxes(box, after);
  return DESCRIBABLE.has(change.kind) ? { after, change } : null;
}

export const whatChangedTask: TaskDefinition = {
  name: 'what-changed',
  category: 'visual-relation-inference',
  splitBy: 'content',
  draw(rng, context) {
    const before = scatteredBox(rng, context.sceneConfig, rng.int(2, 6));
    const target = rng.int(0, before.length - 1);
    const real = randomChange(rng, before, rng.pick(EDIT_KINDS), target);
    if (real === null) return null;
    const answerText = changeText(diffBoxes(before, real.after));
    const distractors = new Set<string>();
    for (let t = 0; t < 60 && distractors.size < OPTION_COUNT - 1; t++) {
      const other = randomChange(rng, before, rng.pick(EDIT_KINDS), rng.chance(0.5) ? target : undefined);
      if (other === null) continue;
      const text = changeText(other.change);
      if (text !== answerText) distractors.add(text);
    }
    if (distractors.size < OPTION_COUNT - 1) return null;
    const options = rng.shuffled([answerText, ...distractors]);
    const answerIndex = uniqueRightOption(options, (o) => o === answerText);
    if (answerIndex === null) return null;
    return {
      visuals: [
        { kind: 'box', objects: before },
        { kind: 'box', objects: real.after },
      ],
      prompt: `${imageLines(2)}\nWhat changed from the first image to the second?\n${letteredOptions(options)}\nAnswer with the option's letter.`,
      answer: OPTION_LETTERS[answerIndex],
      options,
      answerIndex,
      meta: { layout: 'scattered', rule: real.change.kind },
    };
  },
};
