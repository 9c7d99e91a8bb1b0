/**
 * Counting, NLVR-style: the three boxes of one generated picture and a "how many …?" question —
 * "How many yellow circles are in the second box?", "How many blue blocks are there in the three
 * boxes?", "How many towers have a black base?". A curriculum step towards nlvr-statement, whose
 * statements mostly count objects matching a colour / shape / size filter in one box or in the
 * whole picture: here the count itself is the answer, a digit 0–9.
 *
 * Filters are drawn guided by the scene (half the time from an object that is in the counted
 * boxes, otherwise at random, so absent things are asked about too) and worded by `filterPhrase`
 * with the layout's vocabulary, so they read exactly as in the statements. The label is counted on
 * the scene graph (`countMatching`, `towerSatisfies`), never read from text.
 *
 * Natural counts are mostly small, so answers are balanced the way statements balance truth: a
 * wanted count is drawn first (uniform over 0–9) and scenes and questions are re-drawn until the
 * count on the scene equals it. Every answer is then equally likely a priori, and guessing the
 * commonest digit scores 10 %.
 */
import { countMatching, towerSatisfies } from '../scene/evaluate.ts';
import { generateScene } from '../scene/generator.ts';
import type { ObjectFilter, TowerPredicate, WallFilter } from '../scene/query.ts';
import type { Rng } from '../scene/rng.ts';
import {
  BOXES_PER_SCENE,
  COLORS,
  type Color,
  type ObjectSize,
  type Scene,
  type SceneObject,
  SHAPES,
  SIZES,
  towersOf,
  WALLS,
  wallsTouched,
} from '../scene/scene.ts';
import {
  COLOR_WORD,
  filterPhrase,
  numberWord,
  ordinal,
  SCATTERED_WORDS,
  TOWER_WORDS,
} from '../scene/words.ts';
import type { TaskDefinition } from './task.ts';
import { imageLines, type Visual } from './types.ts';

/** Largest answer: counts above it are never asked for. */
export const MAX_COUNT = 9;
/** The answers, "0"…"9"; an answer's option index is the count itself. */
export const COUNT_OPTIONS: readonly string[] = Array.from({ length: MAX_COUNT + 1 }, (_, i) => String(i));

/**
 * What is counted: objects in one box, objects in the whole picture, or (tower pictures) towers
 * with a property.
 */
export type CountRule = 'box-count' | 'picture-count' | 'tower-count';

interface CountQuestion {
  rule: CountRule;
  /** The question, e.g. "How many yellow circles are in the second box?". */
  text: string;
  /** The answer, counted on the scene graph. */
  count: number;
}

/** Scenes drawn per example before giving up (the registry then draws again). */
const SCENE_TRIES = 400;
/** Questions tried on each scene. */
const QUESTION_TRIES = 40;

type FilterKind = 'color' | 'shape' | 'colorShape' | 'sizeShape' | 'sizeColor' | 'size' | 'wall' | 'all';

/** The attribute mix of scattered filters: mostly colour and / or shape, as in the statements. */
const SCATTERED_FILTERS: readonly (readonly [FilterKind, number])[] = [
  ['color', 3],
  ['shape', 3],
  ['colorShape', 3],
  ['sizeShape', 1],
  ['sizeColor', 1],
  ['size', 1],
  ['wall', 1],
  ['all', 1],
];

/** The wall filter an object satisfies: 'none', 'any', or one wall it touches. */
function wallFilterOf(rng: Rng, obj: SceneObject): WallFilter {
  const walls = wallsTouched(obj);
  if (walls.length === 0) return 'none';
  return rng.chance(0.6) ? 'any' : rng.pick(walls);
}

/** A filter for a scattered picture; half the time its values come from an object in `scope`. */
function scatteredFilter(rng: Rng, scope: readonly SceneObject[]): ObjectFilter {
  const ref = scope.length > 0 && rng.chance(0.5) ? rng.pick(scope) : undefined;
  const color = ref?.color ?? rng.pick(COLORS);
  const shape = ref?.type ?? rng.pick(SHAPES);
  const size = (ref?.size ?? rng.pick(SIZES)) as ObjectSize;
  switch (rng.weighted(SCATTERED_FILTERS)) {
    case 'color':
      return { color };
    case 'shape':
      return { shape };
    case 'colorShape':
      return { color, shape };
    case 'sizeShape':
      return { size, shape };
    case 'sizeColor':
      return { size, color };
    case 'size':
      return { size };
    case 'wall': {
      const wall =
        ref === undefined ? rng.pick<WallFilter>(['any', 'none', ...WALLS]) : wallFilterOf(rng, ref);
      return rng.chance(0.5) ? { shape, wall } : { wall };
    }
    case 'all':
      return {};
  }
}

/** A filter for a tower picture: blocks, or blocks of one colour (half the time one in `scope`). */
function towerFilter(rng: Rng, scope: readonly SceneObject[]): ObjectFilter {
  if (rng.chance(0.3)) return { shape: 'square' };
  const color = scope.length > 0 && rng.chance(0.5) ? rng.pick(scope).color : rng.pick(COLORS);
  return { shape: 'square', color };
}

/** "How many … are in the second box?" or "… are there in the three boxes?". */
function objectQuestion(rng: Rng, scene: Scene, rule: 'box-count' | 'picture-count'): CountQuestion {
  const box = rule === 'box-count' ? rng.int(0, BOXES_PER_SCENE - 1) : -1;
  const scope = box >= 0 ? scene.boxes[box] : scene.boxes.flat();
  const towers = scene.layout === 'towers';
  const filter = towers ? towerFilter(rng, scope) : scatteredFilter(rng, scope);
  const things = filterPhrase(filter, true, towers ? TOWER_WORDS : SCATTERED_WORDS);
  const where = box >= 0 ? `are in the ${ordinal(box)} box` : 'are there in the three boxes';
  return { rule, text: `How many ${things} ${where}?`, count: countMatching(scope, filter) };
}

/** "How many towers have a yellow base?" (tower pictures; colours half the time from a tower). */
function towerQuestion(rng: Rng, scene: Scene): CountQuestion {
  const towers = scene.boxes.flatMap((b) => towersOf(b));
  const ref = towers.length > 0 && rng.chance(0.5) ? rng.pick(towers).blocks.map((b) => b.color) : undefined;
  const colorOf = (fromRef: (colors: readonly Color[]) => Color): Color =>
    ref === undefined ? rng.pick(COLORS) : fromRef(ref);
  const predicate: TowerPredicate = {};
  let phrase: string;
  switch (rng.pick(['base', 'top', 'only', 'height'] as const)) {
    case 'base':
      predicate.base = colorOf((c) => c[0]);
      phrase = `have a ${COLOR_WORD[predicate.base]} base`;
      break;
    case 'top':
      predicate.top = colorOf((c) => c[c.length - 1]);
      phrase = `have a ${COLOR_WORD[predicate.top]} block at the top`;
      break;
    case 'only':
      predicate.only = colorOf((c) => rng.pick(c));
      phrase = `are made only of ${COLOR_WORD[predicate.only]} blocks`;
      break;
    case 'height': {
      const n = ref?.length ?? rng.int(1, 4);
      const atLeast = n >= 2 && rng.chance(0.4);
      predicate.height = { op: atLeast ? 'atLeast' : 'exactly', n };
      phrase = `have ${atLeast ? 'at least' : 'exactly'} ${numberWord(n)} ${n === 1 ? 'block' : 'blocks'}`;
      break;
    }
  }
  const count = towers.filter((t) => towerSatisfies(t, predicate)).length;
  return { rule: 'tower-count', text: `How many towers ${phrase}?`, count };
}

function sampleQuestion(rng: Rng, scene: Scene): CountQuestion {
  const rule =
    scene.layout === 'towers'
      ? rng.pick(['box-count', 'picture-count', 'tower-count'] as const)
      : rng.pick(['box-count', 'picture-count'] as const);
  return rule === 'tower-count' ? towerQuestion(rng, scene) : objectQuestion(rng, scene, rule);
}

export const objectCountTask: TaskDefinition = {
  name: 'object-count',
  category: 'multi-image-reasoning',
  splitBy: 'content',
  draw(rng, context) {
    const wanted = rng.int(0, MAX_COUNT);
    for (let s = 0; s < SCENE_TRIES; s++) {
      const scene = generateScene(rng, { config: context.sceneConfig });
      // No question counts more than the picture's objects.
      if (scene.boxes.reduce((n, b) => n + b.length, 0) < wanted) continue;
      const visuals: Visual[] = scene.boxes.map((objects) => ({ kind: 'box', objects }));
      if (!context.inSplit(visuals)) continue;
      for (let q = 0; q < QUESTION_TRIES; q++) {
        const question = sampleQuestion(rng, scene);
        if (question.count !== wanted) continue;
        return {
          visuals,
          prompt: `${imageLines(3)}\nThe three images are the three boxes of one picture, from left to right. ${question.text} Answer with a number.`,
          answer: COUNT_OPTIONS[wanted],
          options: [...COUNT_OPTIONS],
          answerIndex: wanted,
          meta: { layout: scene.layout, rule: question.rule },
        };
      }
    }
    return null;
  },
};
