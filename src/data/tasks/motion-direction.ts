/**
 * Action recognition (SEED-Bench style): frames of a short "video" in which one object moves
 * steadily; which way did it move? The answer is the direction of the displacement that
 * `diffBoxes` finds between the first and the last frame (every step must agree).
 */
import { applyEdit, DIRECTIONS, diffBoxes } from '../scene/changes.ts';
import { addRandomObject, scatteredBox } from '../scene/generator.ts';
import type { Box } from '../scene/scene.ts';
import { COLOR_WORD } from '../scene/words.ts';
import type { TaskDefinition } from './task.ts';
import { imageLines } from './types.ts';

export const MOTION_OPTIONS: string[] = [...DIRECTIONS];

export const motionDirectionTask: TaskDefinition = {
  name: 'motion-direction',
  category: 'action-recognition',
  splitBy: 'content',
  draw(rng, context) {
    const withMover = addRandomObject(rng, scatteredBox(rng, context.sceneConfig, rng.int(1, 4)));
    if (withMover === null) return null;
    const target = withMover.length - 1;
    const mover = withMover[target];
    // The question names the mover by colour and shape, so that must single it out.
    if (withMover.some((o, i) => i !== target && o.color === mover.color && o.type === mover.type))
      return null;
    const direction = rng.pick(DIRECTIONS);
    const step = rng.int(8, 16);
    const frames: Box[] = [withMover];
    for (let t = 1, n = rng.int(3, 4); t < n; t++) {
      const next = applyEdit(rng, frames[t - 1], 'move', { target, direction, distance: step });
      if (next === null) return null;
      frames.push(next);
    }
    const steps = frames.slice(1).map((f, t) => diffBoxes(frames[t], f));
    const overall = diffBoxes(frames[0], frames[frames.length - 1]);
    if (overall.kind !== 'moved') return null;
    if (!steps.every((c) => c.kind === 'moved' && c.direction === overall.direction)) return null;
    const answerIndex = MOTION_OPTIONS.indexOf(overall.direction);
    return {
      visuals: frames.map((objects) => ({ kind: 'box', objects })),
      prompt: `${imageLines(frames.length)}\nThese images are frames of a short video, in order. Which way does the ${COLOR_WORD[mover.color]} ${mover.type} move: ${MOTION_OPTIONS.join(', ')}?`,
      answer: MOTION_OPTIONS[answerIndex],
      options: MOTION_OPTIONS,
      answerIndex,
      meta: { layout: 'scattered', rule: overall.direction },
    };
  },
};
