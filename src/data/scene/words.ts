/**
 * English for scenes: colour, shape and size words, number words, articles and noun phrases for
 * object filters ("two large yellow circles touching the wall"). Shared by captions, statements
 * and tasks so the same thing is always called the same way.
 *
 * Pure math: no Node I/O.
 */
import type { Count, ObjectFilter, WallFilter } from './query.ts';
import type { Color, ObjectSize, SceneObject, Shape } from './scene.ts';

export const COLOR_WORD: Record<Color, string> = { Black: 'black', Yellow: 'yellow', '#0099ff': 'blue' };
export const SIZE_WORD: Record<ObjectSize, string> = { 10: 'small', 20: 'medium-sized', 30: 'large' };

const NUMBER_WORDS = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
];

/** "two", "seven"; digits beyond twelve. */
export function numberWord(n: number): string {
  return NUMBER_WORDS[n] ?? String(n);
}

const ORDINALS = ['first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth'];

/** "first" for index 0. */
export function ordinal(index: number): string {
  return ORDINALS[index] ?? `${index + 1}th`;
}

/** "a" or "an" for the word that follows. */
export function article(nextWord: string): string {
  return /^[aeiou]/i.test(nextWord) ? 'an' : 'a';
}

/** How to name things: in tower pictures squares are "blocks". */
export interface Vocabulary {
  squareNoun: 'square' | 'block';
}

export const SCATTERED_WORDS: Vocabulary = { squareNoun: 'square' };
export const TOWER_WORDS: Vocabulary = { squareNoun: 'block' };

function shapeNoun(shape: Shape | undefined, vocab: Vocabulary): string {
  if (shape === undefined) return 'object';
  return shape === 'square' ? vocab.squareNoun : shape;
}

function wallPhrase(wall: WallFilter): string {
  if (wall === 'any') return 'touching the wall';
  if (wall === 'none') return 'not touching any wall';
  return `touching the ${wall} wall`;
}

/**
 * A noun phrase for objects matching `filter`, without a determiner: "large yellow circle
 * touching the wall" (plural: "large yellow circles touching the wall").
 */
export function filterPhrase(
  filter: ObjectFilter,
  plural: boolean,
  vocab: Vocabulary = SCATTERED_WORDS,
): string {
  const words: string[] = [];
  if (filter.size !== undefined) words.push(SIZE_WORD[filter.size]);
  if (filter.color !== undefined) words.push(COLOR_WORD[filter.color]);
  words.push(shapeNoun(filter.shape, vocab) + (plural ? 's' : ''));
  if (filter.wall !== undefined) words.push(wallPhrase(filter.wall));
  return words.join(' ');
}

/** With an indefinite article: "a large yellow circle", "an object touching the wall". */
export function aFilterPhrase(filter: ObjectFilter, vocab: Vocabulary = SCATTERED_WORDS): string {
  const phrase = filterPhrase(filter, false, vocab);
  return `${article(phrase)} ${phrase}`;
}

/** Is the noun after a count singular ("exactly one circle") or plural ("no circles")? */
export function countIsSingular(count: Count): boolean {
  return count.n === 1;
}

/**
 * A counted noun phrase: "exactly two black triangles", "at least one circle", "no squares",
 * "at most one large object". `noun(plural)` gives the bare noun phrase.
 */
export function countedPhrase(count: Count, noun: (plural: boolean) => string): string {
  const singular = countIsSingular(count);
  if (count.op === 'exactly' && count.n === 0) return `no ${noun(true)}`;
  const quantity = { exactly: 'exactly', atLeast: 'at least', atMost: 'at most' }[count.op];
  return `${quantity} ${numberWord(count.n)} ${noun(!singular)}`;
}

/** "a yellow circle" for one object (size included). */
export function objectPhrase(obj: SceneObject, vocab: Vocabulary = SCATTERED_WORDS, withSize = true): string {
  const filter: ObjectFilter = {
    color: obj.color,
    shape: obj.type,
    ...(withSize ? { size: obj.size as ObjectSize } : {}),
  };
  return filterPhrase(filter, false, vocab);
}

/** Capitalises the first letter. */
export function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
