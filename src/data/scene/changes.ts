/**
 * Edits and differences between two boxes. `applyEdit` makes a changed copy of a box (recolour,
 * reshape, move, add or remove one object); `diffBoxes` independently works out, from the two
 * object lists alone, what changed — that is where task labels come from, never from the edit
 * that was asked for.
 *
 * Pure math: no Node I/O.
 */
import { addRandomObject, DEFAULT_SCENE_CONFIG, type SceneGeneratorConfig } from './generator.ts';
import type { Rng } from './rng.ts';
import {
  BOX_SIZE,
  type Box,
  COLORS,
  type Color,
  objectKey,
  overlaps,
  type SceneObject,
  SHAPES,
  type Shape,
} from './scene.ts';
import { COLOR_WORD, objectPhrase } from './words.ts';

export type Direction = 'left' | 'right' | 'up' | 'down';
export const DIRECTIONS: readonly Direction[] = ['left', 'right', 'up', 'down'];

/** Unit step (dx, dy) of a direction in image coordinates (y grows downwards). */
export const DIRECTION_STEP: Record<Direction, readonly [number, number]> = {
  left: [-1, 0],
  right: [1, 0],
  up: [0, -1],
  down: [0, 1],
};

/** What changed between two boxes, worked out from their contents. */
export type Change =
  | { kind: 'none' }
  | { kind: 'added'; object: SceneObject }
  | { kind: 'removed'; object: SceneObject }
  | { kind: 'recolored'; before: SceneObject; after: SceneObject }
  | { kind: 'reshaped'; before: SceneObject; after: SceneObject }
  | { kind: 'moved'; before: SceneObject; after: SceneObject; dx: number; dy: number; direction: Direction }
  /** Anything else (several objects changed, or one changed in several ways). */
  | { kind: 'other'; removed: SceneObject[]; added: SceneObject[] };

export type ChangeKind = Change['kind'];

/** The main direction of a displacement (ties go to the horizontal axis). */
export function directionOf(dx: number, dy: number): Direction {
  if (Math.abs(dx) >= Math.abs(dy)) return dx < 0 ? 'left' : 'right';
  return dy < 0 ? 'up' : 'down';
}

/** Objects of `a` not in `b` (as multisets, by exact content). */
function minus(a: readonly SceneObject[], b: readonly SceneObject[]): SceneObject[] {
  const left = new Map<string, number>();
  for (const o of b) left.set(objectKey(o), (left.get(objectKey(o)) ?? 0) + 1);
  const out: SceneObject[] = [];
  for (const o of a) {
    const k = objectKey(o);
    const n = left.get(k) ?? 0;
    if (n > 0) left.set(k, n - 1);
    else out.push(o);
  }
  return out;
}

/** What changed from `before` to `after`. */
export function diffBoxes(before: readonly SceneObject[], after: readonly SceneObject[]): Change {
  const removed = minus(before, after);
  const added = minus(after, before);
  if (removed.length === 0 && added.length === 0) return { kind: 'none' };
  if (removed.length === 0 && added.length === 1) return { kind: 'added', object: added[0] };
  if (removed.length === 1 && added.length === 0) return { kind: 'removed', object: removed[0] };
  if (removed.length === 1 && added.length === 1) {
    const [b, a] = [removed[0], added[0]];
    const samePlace = b.x_loc === a.x_loc && b.y_loc === a.y_loc && b.size === a.size;
    if (samePlace && b.type === a.type) return { kind: 'recolored', before: b, after: a };
    if (samePlace && b.color === a.color) return { kind: 'reshaped', before: b, after: a };
    if (b.type === a.type && b.color === a.color && b.size === a.size) {
      const dx = a.x_loc - b.x_loc;
      const dy = a.y_loc - b.y_loc;
      return { kind: 'moved', before: b, after: a, dx, dy, direction: directionOf(dx, dy) };
    }
  }
  return { kind: 'other', removed, added };
}

/** English for a change: "the large yellow circle turned black". */
export function changeText(change: Change): string {
  switch (change.kind) {
    case 'none':
      return 'nothing changed';
    case 'added':
      return `a ${objectPhrase(change.object)} was added`;
    case 'removed':
      return `the ${objectPhrase(change.object)} was removed`;
    case 'recolored':
      return `the ${objectPhrase(change.before)} turned ${COLOR_WORD[change.after.color]}`;
    case 'reshaped':
      return `the ${objectPhrase(change.before)} became a ${change.after.type}`;
    case 'moved':
      return `the ${objectPhrase(change.before)} moved ${change.direction}`;
    case 'other':
      return `${change.removed.length} object(s) removed and ${change.added.length} added`;
  }
}

export type EditKind = 'recolor' | 'reshape' | 'move' | 'add' | 'remove';
export const EDIT_KINDS: readonly EditKind[] = ['recolor', 'reshape', 'move', 'add', 'remove'];

export interface EditOptions {
  /** Index of the object to edit (random when not given; ignored by 'add'). */
  target?: number;
  /** 'move': direction and distance in pixels (random: any direction, 10–40 pixels). */
  direction?: Direction;
  distance?: number;
  /** 'recolor' / 'reshape': the new value (random among the others when not given). */
  color?: Color;
  shape?: Shape;
  config?: SceneGeneratorConfig;
}

/** Is `obj` inside the box and clear of every object in `others` (by the generator's margin)? */
export function fits(
  obj: SceneObject,
  others: readonly SceneObject[],
  margin = DEFAULT_SCENE_CONFIG.margin,
): boolean {
  if (obj.x_loc < 0 || obj.y_loc < 0 || obj.x_loc + obj.size > BOX_SIZE || obj.y_loc + obj.size > BOX_SIZE)
    return false;
  return !others.some((o) => overlaps(o, obj, margin));
}

/**
 * A copy of `box` with one edit applied, or null when the edit is impossible (nothing to remove,
 * no room to move or add).
 */
export function applyEdit(
  rng: Rng,
  box: readonly SceneObject[],
  kind: EditKind,
  options: EditOptions = {},
): Box | null {
  const config = options.config ?? DEFAULT_SCENE_CONFIG;
  if (kind === 'add') return addRandomObject(rng, box, config);
  if (box.length === 0) return null;
  const target = options.target ?? rng.int(0, box.length - 1);
  if (!Number.isInteger(target) || target < 0 || target >= box.length) {
    throw new Error(`applyEdit: target ${target} outside 0..${box.length - 1}`);
  }
  const obj = box[target];
  const others = box.filter((_, i) => i !== target);
  const replace = (o: SceneObject): Box => box.map((x, i) => (i === target ? o : x));
  switch (kind) {
    case 'remove':
      return box.length >= 2 ? others : null;
    case 'recolor': {
      const color = options.color ?? rng.pick(COLORS.filter((c) => c !== obj.color));
      return color === obj.color ? null : replace({ ...obj, color });
    }
    case 'reshape': {
      const shape = options.shape ?? rng.pick(SHAPES.filter((s) => s !== obj.type));
      return shape === obj.type ? null : replace({ ...obj, type: shape });
    }
    case 'move': {
      const direction = options.direction ?? rng.pick(DIRECTIONS);
      const distance = options.distance ?? rng.int(10, 40);
      const [sx, sy] = DIRECTION_STEP[direction];
      const moved = { ...obj, x_loc: obj.x_loc + sx * distance, y_loc: obj.y_loc + sy * distance };
      return fits(moved, others, config.margin) ? replace(moved) : null;
    }
    default:
      throw new Error(`applyEdit: unknown edit ${JSON.stringify(kind)} (expected ${EDIT_KINDS.join(', ')})`);
  }
}
