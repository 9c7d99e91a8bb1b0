/**
 * Single-image perception: one picture, one question about what is in it. These are the first
 * rung of the ladder to multi-image reasoning — a model that cannot name the colour of the only
 * circle in a box, or the item in a photo, cannot compare three boxes — and they measure whether
 * the LLM reads its visual tokens at all (the perception benchmark, `src/eval/perception.ts`).
 *
 * - box-color: "What color is the circle?" about a box where that shape occurs exactly once.
 * - box-shape: "What shape is the yellow object?" where that colour occurs exactly once
 *   (scattered boxes: in tower boxes every object is a block).
 * - box-count: "How many objects are in this box?", 1–8 objects (NLVR boxes are never empty, and
 *   the one empty box falls in the training split), the answer a digit.
 * - box-wall: "Does an object touch the wall?", yes / no.
 * - fashion-class: one Fashion-MNIST photo, "What is in this photo?", answered with the item
 *   ("a sneaker").
 *
 * Every answer is drawn first (uniform over the options) and the picture and question are drawn
 * until they fit it — within one `draw`, since a draw that gave up would make the registry draw
 * a fresh answer, and answers whose pictures are rarer in the held-out split (a tenth of the
 * content) would come up less often — so guessing the commonest answer scores 1 / options.
 * Labels come from the scene graph or the photo's class, never from text.
 *
 * Pure math: no Node I/O.
 */
import { addRandomObject, generateScene, scatteredBox } from '../scene/generator.ts';
import type { Rng } from '../scene/rng.ts';
import { type Box, COLORS, type Color, SHAPES, type Shape, wallsTouched } from '../scene/scene.ts';
import { COLOR_WORD, SCATTERED_WORDS, TOWER_WORDS, type Vocabulary } from '../scene/words.ts';
import { FASHION_NOUNS, fashionPhrase } from './fashion.ts';
import type { TaskContext, TaskDefinition } from './task.ts';
import { IMAGE_TOKEN, type Visual } from './types.ts';

/** The most objects box-count asks about (the scene generator's maximum). */
export const MAX_BOX_COUNT = 8;
/** Pictures a draw tries for its answer: enough that a held-out answer is (practically) always found. */
const TRIES = 5000;
/** "1" … "8": the answer to box-count with n objects is option n − 1. */
export const BOX_COUNT_OPTIONS: readonly string[] = Array.from({ length: MAX_BOX_COUNT }, (_, i) =>
  String(i + 1),
);
export const COLOR_OPTIONS: readonly string[] = COLORS.map((c) => COLOR_WORD[c]);
export const SHAPE_OPTIONS: readonly string[] = SHAPES.map((s) => s);
export const YES_NO: readonly string[] = ['yes', 'no'];
export const FASHION_CLASS_OPTIONS: readonly string[] = FASHION_NOUNS.map((_, i) => fashionPhrase(i));

/** The question of a single-image task after its image: `<image>\n{question}`. */
function prompt(question: string): string {
  return `${IMAGE_TOKEN}\n${question}`;
}

const box = (objects: Box): Visual => ({ kind: 'box', objects });

// The single-box questions, worded once: the tasks ask them, and `boxQuestions` asks them together.
const colorQuestion = (shape: Shape, vocab: Vocabulary) => `What color is the ${shapeNoun(shape, vocab)}?`;
const shapeQuestion = (color: Color) => `What shape is the ${COLOR_WORD[color]} object?`;
const COUNT_QUESTION = 'How many objects are in this box?';
export const WALL_QUESTION = 'Does an object touch the wall?';

function shapeNoun(shape: Shape, vocab: Vocabulary): string {
  return shape === 'square' ? vocab.squareNoun : shape;
}

/** Draws of a scene task: a box from a fresh scene (either layout) that belongs to the split. */
function sceneBox(rng: Rng, context: TaskContext): { objects: Box; vocab: Vocabulary } | null {
  const scene = generateScene(rng, { config: context.sceneConfig });
  const objects = scene.boxes[rng.int(0, scene.boxes.length - 1)];
  if (!context.inSplit([box(objects)])) return null;
  return { objects, vocab: scene.layout === 'towers' ? TOWER_WORDS : SCATTERED_WORDS };
}

export const boxColorTask: TaskDefinition = {
  name: 'box-color',
  category: 'single-image-perception',
  splitBy: 'content',
  draw(rng, context) {
    const wanted: Color = rng.pick(COLORS);
    for (let t = 0; t < TRIES; t++) {
      const drawn = sceneBox(rng, context);
      if (drawn === null) continue;
      // An object of the wanted colour whose shape is unique in the box: "the circle" is unambiguous.
      const candidates = drawn.objects.filter(
        (o) => o.color === wanted && drawn.objects.filter((p) => p.type === o.type).length === 1,
      );
      if (candidates.length === 0) continue;
      const target = rng.pick(candidates);
      const answerIndex = COLORS.indexOf(wanted);
      return {
        visuals: [box(drawn.objects)],
        prompt: prompt(colorQuestion(target.type, drawn.vocab)),
        answer: COLOR_OPTIONS[answerIndex],
        options: [...COLOR_OPTIONS],
        answerIndex,
        meta: { rule: `color of the only ${target.type}` },
      };
    }
    return null;
  },
};

export const boxShapeTask: TaskDefinition = {
  name: 'box-shape',
  category: 'single-image-perception',
  splitBy: 'content',
  draw(rng, context) {
    const wanted: Shape = rng.pick(SHAPES);
    for (let t = 0; t < TRIES; t++) {
      const objects = scatteredBox(rng, context.sceneConfig);
      if (!context.inSplit([box(objects)])) continue;
      const candidates = objects.filter(
        (o) => o.type === wanted && objects.filter((p) => p.color === o.color).length === 1,
      );
      if (candidates.length === 0) continue;
      const target = rng.pick(candidates);
      const answerIndex = SHAPES.indexOf(wanted);
      return {
        visuals: [box(objects)],
        prompt: prompt(shapeQuestion(target.color)),
        answer: SHAPE_OPTIONS[answerIndex],
        options: [...SHAPE_OPTIONS],
        answerIndex,
        meta: { rule: `shape of the only ${target.color} object` },
      };
    }
    return null;
  },
};

export const boxCountTask: TaskDefinition = {
  name: 'box-count',
  category: 'single-image-perception',
  splitBy: 'content',
  draw(rng, context) {
    const wanted = rng.int(1, MAX_BOX_COUNT);
    for (let t = 0; t < TRIES; t++) {
      let objects: Box | null = [];
      while (objects !== null && objects.length < wanted)
        objects = addRandomObject(rng, objects, context.sceneConfig); // null: crowded, try again
      if (objects === null || !context.inSplit([box(objects)])) continue;
      return {
        visuals: [box(objects)],
        prompt: prompt(COUNT_QUESTION),
        answer: BOX_COUNT_OPTIONS[wanted - 1],
        options: [...BOX_COUNT_OPTIONS],
        answerIndex: wanted - 1,
        meta: { rule: 'count all objects' },
      };
    }
    return null;
  },
};

export const boxWallTask: TaskDefinition = {
  name: 'box-wall',
  category: 'single-image-perception',
  splitBy: 'content',
  draw(rng, context) {
    const wanted = rng.chance(0.5);
    for (let t = 0; t < TRIES; t++) {
      const drawn = sceneBox(rng, context);
      if (drawn === null) continue;
      const touches = drawn.objects.some((o) => wallsTouched(o).length > 0);
      if (touches !== wanted) continue;
      const answerIndex = touches ? 0 : 1;
      return {
        visuals: [box(drawn.objects)],
        prompt: prompt(WALL_QUESTION),
        answer: YES_NO[answerIndex],
        options: [...YES_NO],
        answerIndex,
        meta: { rule: 'any object touching a wall' },
      };
    }
    return null;
  },
};

/** One question about one box and its answer, worded as the single-image tasks word them. */
export interface BoxQuestion {
  question: string;
  answer: string;
}

/**
 * Every question of box-color, box-shape, box-count and box-wall that `objects` answers
 * unambiguously: the colour of each shape that occurs once, the shape of each colour that occurs
 * once (scattered boxes only, as box-shape asks), how many objects, whether one touches the wall.
 */
export function boxQuestions(objects: Box, vocab: Vocabulary, layout: 'scattered' | 'towers'): BoxQuestion[] {
  const questions: BoxQuestion[] = [];
  for (const o of objects)
    if (objects.filter((p) => p.type === o.type).length === 1)
      questions.push({ question: colorQuestion(o.type, vocab), answer: COLOR_WORD[o.color] });
  if (layout === 'scattered')
    for (const o of objects)
      if (objects.filter((p) => p.color === o.color).length === 1)
        questions.push({ question: shapeQuestion(o.color), answer: o.type });
  if (objects.length >= 1 && objects.length <= MAX_BOX_COUNT)
    questions.push({ question: COUNT_QUESTION, answer: String(objects.length) });
  const touches = objects.some((o) => wallsTouched(o).length > 0);
  questions.push({ question: WALL_QUESTION, answer: touches ? 'yes' : 'no' });
  return questions;
}

export const fashionClassTask: TaskDefinition = {
  name: 'fashion-class',
  category: 'single-image-perception',
  splitBy: 'source',
  draw(rng, context) {
    const source = context.fashion;
    if (source === undefined || !(source.count > 0))
      throw new Error('fashion-class: needs Fashion-MNIST images; pass an ImageSource as the fashion option');
    const i = rng.int(0, source.count - 1);
    const label = source.label(i);
    const rows = source.rows ?? 28;
    const cols = source.cols ?? 28;
    return {
      visuals: [
        {
          kind: 'gray',
          width: cols,
          height: rows,
          pixels: source.image(i),
          key: `${source.name ?? 'fashion-mnist'}/${i}`,
        },
      ],
      prompt: prompt('What is in this photo?'),
      answer: FASHION_CLASS_OPTIONS[label],
      options: [...FASHION_CLASS_OPTIONS],
      answerIndex: label,
      meta: { rule: FASHION_NOUNS[label], sourceIndices: [i], sourceLabels: [label] },
    };
  },
};
