/**
 * The scene model: an NLVR picture is three 100×100 boxes, each a list of objects in exactly the
 * JSON shape of NLVR's `structured_rep` ({x_loc, y_loc, size, type, color}), so generated scenes
 * and the real dev/test scenes go through the same code. Geometry predicates used by statements,
 * captions and tasks live here: which walls an object touches, the towers of a box, and content
 * keys (canonical text of a box / scene, used for splits and de-duplication).
 *
 * Pure math: no Node I/O.
 */
import {
  NLVR_BOX_SIZE,
  NLVR_COLORS,
  NLVR_SHAPES,
  type NlvrColor,
  type NlvrObject,
  type NlvrShape,
} from '../shapes.ts';

export type SceneObject = NlvrObject;
export type Color = NlvrColor;
export type Shape = NlvrShape;
export type ObjectSize = 10 | 20 | 30;
/** One box: its objects in the box's 100×100 frame (one element of `structured_rep`). */
export type Box = SceneObject[];
export type Layout = 'scattered' | 'towers';
export type Wall = 'top' | 'bottom' | 'left' | 'right';

export const BOX_SIZE = NLVR_BOX_SIZE;
export const BOXES_PER_SCENE = 3;
export const COLORS: readonly Color[] = NLVR_COLORS;
export const SHAPES: readonly Shape[] = NLVR_SHAPES;
export const SIZES: readonly ObjectSize[] = [10, 20, 30];
export const WALLS: readonly Wall[] = ['top', 'bottom', 'left', 'right'];

/**
 * Tower blocks as in NLVR: 20-pixel squares, the base at y = 80 (resting on the bottom wall),
 * each next block 21 pixels higher (a 1-pixel gap), all at x = 40 (centred).
 */
export const TOWER_BLOCK_SIZE = 20;
export const TOWER_X = 40;
export const TOWER_STEP = 21;
/** Largest gap (pixels) between two blocks that still counts as one resting on the other. */
export const STACK_GAP = 1;

export interface Scene {
  layout: Layout;
  /** Exactly BOXES_PER_SCENE boxes: NLVR's `structured_rep`. */
  boxes: Box[];
}

/** The walls an object touches: its bounding box reaches that side of the 100×100 box. */
export function wallsTouched(obj: SceneObject): Wall[] {
  const walls: Wall[] = [];
  if (obj.y_loc <= 0) walls.push('top');
  if (obj.y_loc + obj.size >= BOX_SIZE) walls.push('bottom');
  if (obj.x_loc <= 0) walls.push('left');
  if (obj.x_loc + obj.size >= BOX_SIZE) walls.push('right');
  return walls;
}

/** Do two objects' bounding boxes overlap (sharing an edge is not overlapping)? */
export function overlaps(a: SceneObject, b: SceneObject, gap = 0): boolean {
  return (
    a.x_loc < b.x_loc + b.size + gap &&
    b.x_loc < a.x_loc + a.size + gap &&
    a.y_loc < b.y_loc + b.size + gap &&
    b.y_loc < a.y_loc + a.size + gap
  );
}

/** Is `upper` entirely above `lower` (its bottom edge at or above the other's top edge)? */
export function isAbove(upper: SceneObject, lower: SceneObject): boolean {
  return upper.y_loc + upper.size <= lower.y_loc;
}

/** Does `upper` rest directly on `lower`: same column, same width, a gap of at most STACK_GAP? */
export function restsOn(upper: SceneObject, lower: SceneObject): boolean {
  if (upper.x_loc !== lower.x_loc || upper.size !== lower.size) return false;
  const gap = lower.y_loc - (upper.y_loc + upper.size);
  return gap >= 0 && gap <= STACK_GAP;
}

/** A tower: squares stacked from the bottom wall up (blocks[0] is the base). */
export interface Tower {
  blocks: SceneObject[];
}

/**
 * The towers of a box: each square standing on the bottom wall starts one, and a square resting
 * on the current top block extends it. In NLVR's tower pictures each box holds one tower; in a
 * scattered box a lone square on the bottom wall is a tower of height 1.
 */
export function towersOf(box: readonly SceneObject[]): Tower[] {
  const squares = box.filter((o) => o.type === 'square');
  const towers: Tower[] = [];
  for (const base of squares) {
    if (base.y_loc + base.size < BOX_SIZE) continue;
    const blocks = [base];
    for (;;) {
      const top = blocks[blocks.length - 1];
      const next = squares.find((s) => !blocks.includes(s) && restsOn(s, top));
      if (next === undefined) break;
      blocks.push(next);
    }
    towers.push({ blocks });
  }
  return towers;
}

/** A tower box as NLVR draws it: `colors` from the base up. */
export function towerBox(colors: readonly Color[]): Box {
  return colors.map((color, i) => ({
    x_loc: TOWER_X,
    y_loc: BOX_SIZE - TOWER_BLOCK_SIZE - i * TOWER_STEP,
    size: TOWER_BLOCK_SIZE,
    type: 'square',
    color,
  }));
}

/** Canonical text of one object (field order fixed). */
export function objectKey(obj: SceneObject): string {
  return `${obj.type}:${obj.color}:${obj.size}@${obj.x_loc},${obj.y_loc}`;
}

/**
 * Canonical text of a box's content, independent of object order: two boxes with equal keys
 * render to identical images (objects never overlap, so paint order does not matter).
 */
export function boxKey(box: readonly SceneObject[]): string {
  return box.map(objectKey).sort().join(';');
}

/** Canonical text of a scene, independent of box order (NLVR shows all six orders of a scene). */
export function sceneKey(scene: Scene): string {
  return scene.boxes
    .map((b) => `[${boxKey(b)}]`)
    .sort()
    .join('');
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** Throws a clear error naming the box and object when `box` is not a valid box. */
export function checkBox(box: unknown, where = 'box'): asserts box is Box {
  if (!Array.isArray(box)) throw new Error(`${where}: expected an array of objects, got ${typeof box}`);
  box.forEach((obj: unknown, i) => {
    const at = `${where}, object ${i}`;
    if (!isRecord(obj)) throw new Error(`${at}: expected an object, got ${JSON.stringify(obj)}`);
    for (const key of ['x_loc', 'y_loc', 'size'] as const) {
      const v = obj[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new Error(`${at}: ${key} must be a finite number, got ${JSON.stringify(v)}`);
      }
    }
    const { x_loc, y_loc, size, type, color } = obj as unknown as SceneObject;
    if (!SIZES.includes(size as ObjectSize))
      throw new Error(`${at}: size must be one of ${SIZES.join(', ')}, got ${size}`);
    if (!SHAPES.includes(type))
      throw new Error(`${at}: type must be one of ${SHAPES.join(', ')}, got ${JSON.stringify(type)}`);
    if (!COLORS.includes(color)) {
      throw new Error(`${at}: color must be one of ${COLORS.join(', ')}, got ${JSON.stringify(color)}`);
    }
    if (x_loc < 0 || y_loc < 0 || x_loc + size > BOX_SIZE || y_loc + size > BOX_SIZE) {
      throw new Error(
        `${at}: a ${size}-pixel ${type} at (${x_loc}, ${y_loc}) does not fit in the ${BOX_SIZE}×${BOX_SIZE} box`,
      );
    }
  });
}

/** Throws a clear error when `scene` is not BOXES_PER_SCENE valid boxes with a known layout. */
export function checkScene(scene: unknown, where = 'scene'): asserts scene is Scene {
  if (!isRecord(scene)) throw new Error(`${where}: expected {layout, boxes}, got ${JSON.stringify(scene)}`);
  if (scene.layout !== 'scattered' && scene.layout !== 'towers') {
    throw new Error(`${where}: layout must be 'scattered' or 'towers', got ${JSON.stringify(scene.layout)}`);
  }
  const boxes = scene.boxes;
  if (!Array.isArray(boxes) || boxes.length !== BOXES_PER_SCENE) {
    throw new Error(
      `${where}: expected ${BOXES_PER_SCENE} boxes, got ${Array.isArray(boxes) ? boxes.length : typeof boxes}`,
    );
  }
  boxes.forEach((b, i) => {
    checkBox(b, `${where}, box ${i}`);
  });
}

/** Is every object of every box a tower block (NLVR's tower pictures)? */
export function looksLikeTowers(boxes: readonly (readonly SceneObject[])[]): boolean {
  return boxes.every((box) => {
    const towers = towersOf(box);
    const inTowers = towers.reduce((n, t) => n + t.blocks.length, 0);
    return box.length > 0 && inTowers === box.length;
  });
}

/** A scene from NLVR's `structured_rep` JSON (validated); the layout is inferred when not given. */
export function sceneFromStructuredRep(rep: unknown, layout?: Layout): Scene {
  if (!Array.isArray(rep)) throw new Error(`structured_rep: expected an array of boxes, got ${typeof rep}`);
  const boxes = rep.map((box: unknown, i) => {
    checkBox(box, `structured_rep box ${i}`);
    return box.map((o) => ({ x_loc: o.x_loc, y_loc: o.y_loc, size: o.size, type: o.type, color: o.color }));
  });
  const scene = { layout: layout ?? (looksLikeTowers(boxes) ? 'towers' : 'scattered'), boxes };
  checkScene(scene, 'structured_rep');
  return scene;
}
