/**
 * Multi-modal cloze: three images follow a rule; which of four candidate images comes next?
 * Rules: 'count-up' (one more object of the same kind each time), 'moving' (one object moves by
 * the same step each time), 'color-cycle' (one object's colour cycles through the three colours).
 * The right candidate is found by checking each completed sequence against the rule with
 * `diffBoxes` — not taken from the generator — and exactly one candidate must pass.
 */
import {
  applyEdit,
  type Change,
  DIRECTION_STEP,
  DIRECTIONS,
  type Direction,
  diffBoxes,
} from '../scene/changes.ts';
import { addRandomObject, scatteredBox } from '../scene/generator.ts';
import type { Rng } from '../scene/rng.ts';
import { type Box, COLORS, type Color, objectKey, SHAPES, type Shape } from '../scene/scene.ts';
import { type TaskDefinition, uniqueRightOption } from './task.ts';
import { IMAGE_TOKEN, imageLines, OPTION_LETTERS } from './types.ts';

export type ClozeRule = 'count-up' | 'moving' | 'color-cycle';
export const CLOZE_RULES: readonly ClozeRule[] = ['count-up', 'moving', 'color-cycle'];

/** Does the whole sequence of boxes follow `rule`? Worked out from the boxes alone. */
export function followsRule(rule: ClozeRule, frames: readonly Box[]): boolean {
  const changes: Change[] = [];
  for (let t = 1; t < frames.length; t++) changes.push(diffBoxes(frames[t - 1], frames[t]));
  switch (rule) {
    case 'count-up': {
      if (!changes.every((c) => c.kind === 'added')) return false;
      const kinds = new Set(
        changes.map((c) => (c.kind === 'added' ? `${c.object.color}/${c.object.type}` : '')),
      );
      return kinds.size === 1;
    }
    case 'moving': {
      if (!changes.every((c) => c.kind === 'moved')) return false;
      return changes.every((c, t) => {
        if (c.kind !== 'moved' || t === 0) return true;
        const prev = changes[t - 1];
        return (
          prev.kind === 'moved' &&
          objectKey(prev.after) === objectKey(c.before) &&
          c.dx === prev.dx &&
          c.dy === prev.dy
        );
      });
    }
    case 'color-cycle': {
      if (frames.length < 4 || !changes.every((c) => c.kind === 'recolored')) return false;
      const colors: Color[] = [];
      for (const [t, c] of changes.entries()) {
        if (c.kind !== 'recolored') return false;
        if (t > 0) {
          const prev = changes[t - 1];
          if (prev.kind !== 'recolored' || objectKey(prev.after) !== objectKey(c.before)) return false;
        }
        if (t === 0) colors.push(c.before.color);
        colors.push(c.after.color);
      }
      // A cycle of the three colours: the first three differ, then it repeats with period 3.
      return new Set(colors.slice(0, 3)).size === 3 && colors.every((c, i) => i < 3 || c === colors[i - 3]);
    }
    default:
      throw new Error(`followsRule: unknown rule ${JSON.stringify(rule)}`);
  }
}

/** `box` plus one new object of the given kind, or null when there is no room. */
function addOfKind(rng: Rng, box: Box, color: Color, shape: Shape): Box | null {
  const next = addRandomObject(rng, box);
  if (next === null) return null;
  next[next.length - 1] = { ...next[next.length - 1], color, type: shape };
  return next;
}

interface Frames {
  /** The four frames; the last is the right answer. */
  frames: Box[];
  /** Wrong fourth frames. */
  wrong: Box[];
}

function countUp(rng: Rng): Frames | null {
  const color = rng.pick(COLORS);
  const shape = rng.pick(SHAPES);
  let box: Box | null = scatteredBox(rng, undefined, rng.int(1, 3));
  const frames: Box[] = [];
  for (let t = 0; t < 4 && box !== null; t++) {
    if (t > 0) box = addOfKind(rng, box, color, shape);
    if (box !== null) frames.push(box);
  }
  if (frames.length < 4) return null;
  const third = frames[2];
  const otherColor = rng.pick(COLORS.filter((c) => c !== color));
  const wrong = [
    third, // nothing added
    addOfKind(rng, third, otherColor, shape), // another kind
    addOfKind(rng, third, color, rng.pick(SHAPES.filter((s) => s !== shape))),
    ((b) => (b === null ? null : addOfKind(rng, b, color, shape)))(addOfKind(rng, third, color, shape)), // two added
  ].filter((b): b is Box => b !== null);
  return { frames, wrong };
}

function moving(rng: Rng): Frames | null {
  const statics = scatteredBox(rng, undefined, rng.int(1, 3));
  const withMover = addRandomObject(rng, statics);
  if (withMover === null) return null;
  const target = withMover.length - 1;
  const direction = rng.pick(DIRECTIONS);
  const step = rng.int(8, 16);
  const frames: Box[] = [withMover];
  for (let t = 1; t < 4; t++) {
    const next = applyEdit(rng, frames[t - 1], 'move', { target, direction, distance: step });
    if (next === null) return null;
    frames.push(next);
  }
  const third = frames[2];
  const [sx] = DIRECTION_STEP[direction];
  const sideways: Direction =
    sx === 0 ? rng.pick(['left', 'right'] as const) : rng.pick(['up', 'down'] as const);
  const wrong = [
    third, // stopped
    frames[1], // went back
    applyEdit(rng, third, 'move', { target, direction: sideways, distance: step }),
    applyEdit(rng, third, 'move', { target, direction, distance: 2 * step }),
  ].filter((b): b is Box => b !== null);
  return { frames, wrong };
}

function colorCycle(rng: Rng): Frames | null {
  const box = scatteredBox(rng, undefined, rng.int(2, 4));
  const target = rng.int(0, box.length - 1);
  const cycle = rng.shuffled(COLORS);
  // Start at the object's own colour, so the first frame is just the drawn box.
  const start = cycle.indexOf(box[target].color);
  const colorAt = (t: number) => cycle[(start + t) % cycle.length];
  const frames = [0, 1, 2, 3].map((t) => box.map((o, i) => (i === target ? { ...o, color: colorAt(t) } : o)));
  const third = frames[2];
  const wrong = [
    third, // unchanged
    third.map((o, i) => (i === target ? { ...o, color: colorAt(1) } : o)), // back one step
    applyEdit(rng, third, 'reshape', { target }),
  ].filter((b): b is Box => b !== null);
  return { frames, wrong };
}

const MAKERS: Record<ClozeRule, (rng: Rng) => Frames | null> = {
  'count-up': countUp,
  moving,
  'color-cycle': colorCycle,
};

const CANDIDATES = 4;

export const sequenceCompletionTask: TaskDefinition = {
  name: 'sequence-completion',
  category: 'multi-modal-cloze',
  splitBy: 'content',
  draw(rng) {
    const rule = rng.pick(CLOZE_RULES);
    const made = MAKERS[rule](rng);
    if (made === null || made.wrong.length < CANDIDATES - 1) return null;
    const shown = made.frames.slice(0, 3);
    const candidates = rng.shuffled([made.frames[3], ...rng.shuffled(made.wrong).slice(0, CANDIDATES - 1)]);
    const answerIndex = uniqueRightOption(candidates, (c) => followsRule(rule, [...shown, c]));
    if (answerIndex === null) return null;
    const letters = OPTION_LETTERS.slice(0, CANDIDATES);
    return {
      visuals: [...shown, ...candidates].map((objects) => ({ kind: 'box', objects })),
      prompt:
        `${imageLines(3)}\nThese three images follow a pattern. Which option comes next?\n` +
        `${letters.map((l) => `${l}. ${IMAGE_TOKEN}`).join('\n')}\nAnswer with the option's letter.`,
      answer: letters[answerIndex],
      options: letters,
      answerIndex,
      meta: { layout: 'scattered', rule },
    };
  },
};
