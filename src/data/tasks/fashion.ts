/**
 * Multi-image questions on real photos (Fashion-MNIST), written against the abstract
 * `ImageSource` ({count, image(i), label(i)}) so they do not depend on the IDX reader:
 * - fashion-which: four items of different classes; "which image shows a sneaker?"
 * - fashion-same: three items; "are images 1 and 3 the same kind of item?" (yes/no, balanced)
 * - fashion-count: four items; "how many of these images show a bag?" (0–4)
 * - fashion-name: three items; "what is in image 2?" (the ten class phrases): one photo's class,
 *   as fashion-class asks it, but found among several by its number — the first rung from one
 *   image to many (a model that cannot tell image 2 from image 3 cannot compare them).
 * Answers are computed from the source's labels of the images actually shown. The split comes
 * from the source: pass the train-* images for 'train' and the t10k-* images for 'heldout'.
 */
import type { Rng } from '../scene/rng.ts';
import type { TaskDraw } from './task.ts';
import { type ImageSource, type TaskContext, type TaskDefinition, uniqueRightOption } from './task.ts';
import { imageLines } from './types.ts';

/**
 * Class names for questions, in Fashion-MNIST label order (the same order as FASHION_CLASSES in
 * src/data/fashion-mnist.ts; a test checks that they line up). Kept here, as English, so this
 * module stays free of file reading.
 */
export const FASHION_NOUNS: readonly string[] = [
  'T-shirt or top',
  'pair of trousers',
  'pullover',
  'dress',
  'coat',
  'sandal',
  'shirt',
  'sneaker',
  'bag',
  'ankle boot',
];

/** "a sneaker", "an ankle boot". */
export function fashionPhrase(label: number): string {
  const noun = FASHION_NOUNS[label];
  if (noun === undefined) throw new Error(`fashion: label ${label} outside 0..${FASHION_NOUNS.length - 1}`);
  return `${/^[aeiou]/i.test(noun) ? 'an' : 'a'} ${noun}`;
}

const byClassCache = new WeakMap<ImageSource, number[][]>();

/** Image indices of each class (computed once per source). */
function indicesByClass(source: ImageSource): number[][] {
  let lists = byClassCache.get(source);
  if (lists === undefined) {
    lists = FASHION_NOUNS.map(() => []);
    for (let i = 0; i < source.count; i++) {
      const label = source.label(i);
      if (!Number.isInteger(label) || label < 0 || label >= FASHION_NOUNS.length) {
        throw new Error(
          `fashion: ${source.name ?? 'image source'} label ${i} is ${label}, outside 0..${FASHION_NOUNS.length - 1}`,
        );
      }
      lists[label].push(i);
    }
    byClassCache.set(source, lists);
  }
  return lists;
}

function sourceOf(context: TaskContext, task: string): ImageSource {
  const source = context.fashion;
  if (source === undefined) {
    throw new Error(`${task}: needs Fashion-MNIST images; pass an ImageSource as the fashion option`);
  }
  if (!Number.isInteger(source.count) || source.count <= 0) {
    throw new Error(`${task}: the fashion image source has ${source.count} images`);
  }
  return source;
}

/** A random image of class `label` not in `taken`, or null when there is none. */
function imageOfClass(
  rng: Rng,
  source: ImageSource,
  label: number,
  taken: readonly number[] = [],
): number | null {
  const list = indicesByClass(source)[label];
  for (let t = 0; t < 20 && list.length > 0; t++) {
    const i = rng.pick(list);
    if (!taken.includes(i)) return i;
  }
  const rest = list.filter((i) => !taken.includes(i));
  return rest.length === 0 ? null : rng.pick(rest);
}

/** One distinct image per label, or null when a class runs out. */
function distinctImages(rng: Rng, source: ImageSource, labels: readonly number[]): number[] | null {
  const taken: number[] = [];
  for (const label of labels) {
    const i = imageOfClass(rng, source, label, taken);
    if (i === null) return null;
    taken.push(i);
  }
  return taken;
}

/** The draw for a list of source indices: gray visuals plus their labels in meta. */
function photos(
  source: ImageSource,
  indices: readonly number[],
): Pick<TaskDraw, 'visuals'> & { labels: number[] } {
  const rows = source.rows ?? 28;
  const cols = source.cols ?? 28;
  const name = source.name ?? 'fashion-mnist';
  const visuals = indices.map((i) => {
    const pixels = source.image(i);
    if (pixels.length !== rows * cols) {
      throw new Error(
        `fashion: ${name} image ${i} has ${pixels.length} bytes, expected ${rows}×${cols} = ${rows * cols}`,
      );
    }
    return { kind: 'gray' as const, width: cols, height: rows, pixels, key: `${name}/${i}` };
  });
  return { visuals, labels: indices.map((i) => source.label(i)) };
}

const availableClasses = (source: ImageSource) =>
  indicesByClass(source)
    .map((list, label) => (list.length > 0 ? label : -1))
    .filter((l) => l >= 0);

export const fashionWhichTask: TaskDefinition = {
  name: 'fashion-which',
  category: 'multi-image-reasoning',
  splitBy: 'source',
  draw(rng, context) {
    const source = sourceOf(context, 'fashion-which');
    const classes = rng.shuffled(availableClasses(source)).slice(0, 4);
    if (classes.length < 4) return null;
    const indices = distinctImages(rng, source, classes);
    if (indices === null) return null;
    const target = rng.pick(classes);
    const { visuals, labels } = photos(source, indices);
    const options = indices.map((_, i) => String(i + 1));
    const answerIndex = uniqueRightOption(labels, (l) => l === target);
    if (answerIndex === null) return null;
    return {
      visuals,
      prompt: `${imageLines(indices.length)}\n${whichQuestion(target, indices.length)}`,
      answer: options[answerIndex],
      options,
      answerIndex,
      meta: { rule: FASHION_NOUNS[target], sourceIndices: indices, sourceLabels: labels },
    };
  },
};

/** One "which image shows …" question of a photo quiz, with its answer (the image's number). */
export interface FashionQuizTurn {
  question: string;
  answer: string;
}

/** Photos shown in a which-image quiz, and the classes asked about (the rest are never named). */
export const FASHION_QUIZ_PHOTOS = 4;
export const FASHION_QUIZ_QUESTIONS = 3;

/**
 * Four photos of different classes and "which image shows …?" for three of them, in random
 * order: three look-ups over the same images where fashion-which asks one. The fourth class is
 * not asked, so the last answer is not the one number left over.
 */
export function fashionWhichQuiz(
  rng: Rng,
  source: ImageSource,
): (Pick<TaskDraw, 'visuals'> & { labels: number[]; turns: FashionQuizTurn[] }) | null {
  const classes = rng.shuffled(availableClasses(source)).slice(0, FASHION_QUIZ_PHOTOS);
  if (classes.length < FASHION_QUIZ_PHOTOS) return null;
  const indices = distinctImages(rng, source, classes);
  if (indices === null) return null;
  const shown = photos(source, indices);
  const turns = rng
    .shuffled(shown.labels.map((label, image) => ({ label, image })))
    .slice(0, FASHION_QUIZ_QUESTIONS)
    .map(({ label, image }) => ({
      question: whichQuestion(label, FASHION_QUIZ_PHOTOS),
      answer: String(image + 1),
    }));
  return { ...shown, turns };
}

function whichQuestion(label: number, shownCount: number): string {
  return `Which image shows ${fashionPhrase(label)}? Answer with the image's number (1–${shownCount}).`;
}

export const fashionSameTask: TaskDefinition = {
  name: 'fashion-same',
  category: 'multi-image-reasoning',
  splitBy: 'source',
  draw(rng, context) {
    const source = sourceOf(context, 'fashion-same');
    const classes = availableClasses(source);
    const [a, b] = rng
      .shuffled([0, 1, 2])
      .slice(0, 2)
      .sort((x, y) => x - y);
    const labels = [rng.pick(classes), rng.pick(classes), rng.pick(classes)];
    // Balance yes / no: decide first, then choose the second item's class accordingly.
    if (rng.chance(0.5)) labels[b] = labels[a];
    else if (classes.length > 1) labels[b] = rng.pick(classes.filter((c) => c !== labels[a]));
    const indices = distinctImages(rng, source, labels);
    if (indices === null) return null;
    const shown = photos(source, indices);
    const answerIndex = shown.labels[a] === shown.labels[b] ? 0 : 1;
    const options = ['yes', 'no'];
    return {
      visuals: shown.visuals,
      prompt: `${imageLines(3)}\nAre images ${a + 1} and ${b + 1} the same kind of item? Answer yes or no.`,
      answer: options[answerIndex],
      options,
      answerIndex,
      meta: { rule: options[answerIndex], sourceIndices: indices, sourceLabels: shown.labels },
    };
  },
};

export const fashionCountTask: TaskDefinition = {
  name: 'fashion-count',
  category: 'multi-image-reasoning',
  splitBy: 'source',
  draw(rng, context) {
    const source = sourceOf(context, 'fashion-count');
    const classes = availableClasses(source);
    if (classes.length < 2) return null;
    const target = rng.pick(classes);
    const shownCount = 4;
    const wanted = rng.int(0, shownCount);
    const labels = rng.shuffled(
      Array.from({ length: shownCount }, (_, i) =>
        i < wanted ? target : rng.pick(classes.filter((c) => c !== target)),
      ),
    );
    const indices = distinctImages(rng, source, labels);
    if (indices === null) return null;
    const shown = photos(source, indices);
    const count = shown.labels.filter((l) => l === target).length;
    const options = Array.from({ length: shownCount + 1 }, (_, i) => String(i));
    return {
      visuals: shown.visuals,
      prompt: `${imageLines(shownCount)}\nHow many of these images show ${fashionPhrase(target)}? Answer with a number.`,
      answer: options[count],
      options,
      answerIndex: count,
      meta: { rule: FASHION_NOUNS[target], sourceIndices: indices, sourceLabels: shown.labels },
    };
  },
};

export const fashionNameTask: TaskDefinition = {
  name: 'fashion-name',
  category: 'multi-image-reasoning',
  splitBy: 'source',
  draw(rng, context) {
    const source = sourceOf(context, 'fashion-name');
    const classes = availableClasses(source);
    const shownCount = 3;
    const labels = Array.from({ length: shownCount }, () => rng.pick(classes));
    const indices = distinctImages(rng, source, labels);
    if (indices === null) return null;
    const shown = photos(source, indices);
    const asked = rng.int(0, shownCount - 1);
    const options = FASHION_NOUNS.map((_, label) => fashionPhrase(label));
    const answerIndex = shown.labels[asked];
    return {
      visuals: shown.visuals,
      prompt: `${imageLines(shownCount)}\nWhat is in image ${asked + 1}?`,
      answer: options[answerIndex],
      options,
      answerIndex,
      meta: { rule: FASHION_NOUNS[answerIndex], sourceIndices: indices, sourceLabels: shown.labels },
    };
  },
};
