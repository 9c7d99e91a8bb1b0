/**
 * Captions: an exact English description of one box, computed from its objects — every object is
 * mentioned, with its colour and shape, sizes when a group shares one, and which touch a wall.
 * "There is a large yellow circle touching the wall and two black squares." Towers are described
 * from the base up. Used for image–caption pretraining (stages 2–3).
 *
 * Pure math: no Node I/O.
 */
import {
  COLORS,
  type Layout,
  type Scene,
  type SceneObject,
  SHAPES,
  towersOf,
  wallsTouched,
} from './scene.ts';
import { article, COLOR_WORD, numberWord, ordinal, SIZE_WORD, sentence } from './words.ts';

/** "a, b and c". */
export function listPhrase(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

interface Group {
  color: SceneObject['color'];
  shape: SceneObject['type'];
  objects: SceneObject[];
}

function groupPhrase(g: Group): string {
  const n = g.objects.length;
  const sizes = new Set(g.objects.map((o) => o.size));
  const sizeWord = sizes.size === 1 ? `${SIZE_WORD[g.objects[0].size as 10 | 20 | 30]} ` : '';
  const noun = `${sizeWord}${COLOR_WORD[g.color]} ${g.shape}${n > 1 ? 's' : ''}`;
  const touching = g.objects.filter((o) => wallsTouched(o).length > 0).length;
  const head = n === 1 ? `${article(noun)} ${noun}` : `${numberWord(n)} ${noun}`;
  if (touching === 0) return head;
  if (n === 1) return `${head} touching the wall`;
  if (touching === n) return `${head}, ${n === 2 ? 'both' : 'all'} touching the wall`;
  return `${head} (${numberWord(touching)} of them touching the wall)`;
}

function towerPhrase(colors: readonly SceneObject['color'][]): string {
  const words = colors.map((c) => COLOR_WORD[c]);
  if (colors.length === 1) return `a single ${words[0]} block`;
  if (new Set(colors).size === 1) return `a tower of ${numberWord(colors.length)} ${words[0]} blocks`;
  const steps = [
    `${words[0]} at the bottom`,
    ...words.slice(1, -1).map((w) => `then ${w}`),
    `then ${words[words.length - 1]} at the top`,
  ];
  return `a tower of ${numberWord(colors.length)} blocks: ${steps.join(', ')}`;
}

/**
 * An exact caption of one box. In the towers layout, towers are described from the base up; all
 * other objects are grouped by colour and shape, larger groups first.
 */
export function captionBox(box: readonly SceneObject[], layout: Layout = 'scattered'): string {
  if (box.length === 0) return 'An empty box.';
  const towers = layout === 'towers' ? towersOf(box) : [];
  const inTowers = new Set(towers.flatMap((t) => t.blocks));
  const groups: Group[] = [];
  for (const color of COLORS) {
    for (const shape of SHAPES) {
      const objects = box.filter((o) => !inTowers.has(o) && o.color === color && o.type === shape);
      if (objects.length > 0) groups.push({ color, shape, objects });
    }
  }
  groups.sort((a, b) => b.objects.length - a.objects.length); // stable: colour/shape order on ties
  const phrases = [
    ...towers.map((t) => towerPhrase(t.blocks.map((b) => b.color))),
    ...groups.map(groupPhrase),
  ];
  const firstPlural = towers.length === 0 && groups[0].objects.length > 1;
  return `${sentence(`there ${firstPlural ? 'are' : 'is'} ${listPhrase(phrases)}`)}.`;
}

/** Captions of the three boxes, as one text: "In the first box, … In the second box, …". */
export function captionScene(scene: Scene): string {
  return scene.boxes
    .map((box, i) => `In the ${ordinal(i)} box, ${captionBox(box, scene.layout).replace(/^There/, 'there')}`)
    .join(' ');
}
