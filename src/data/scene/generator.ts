/**
 * Random NLVR-style scenes, deterministic given an Rng. Two layouts, as in NLVR:
 * - scattered: 1–8 non-overlapping objects per box, uniform over shape, colour and size (as in
 *   the real dev/test scenes), about a third of them touching a wall;
 * - towers: one tower of 20-pixel squares per box, resting on the bottom wall, 1–4 blocks high.
 *
 * Pure math: no Node I/O.
 */
import type { Rng } from './rng.ts';
import {
  BOX_SIZE,
  BOXES_PER_SCENE,
  type Box,
  COLORS,
  type Color,
  type Layout,
  type ObjectSize,
  overlaps,
  type Scene,
  type SceneObject,
  SHAPES,
  SIZES,
  towerBox,
  type Wall,
} from './scene.ts';

export interface SceneGeneratorConfig {
  /** Fewest objects in a scattered box. NLVR boxes are never empty. */
  minObjects: number;
  /** Most objects in a scattered box: NLVR's dev/test have up to 7; 8 adds a little headroom. */
  maxObjects: number;
  /**
   * Share of objects placed against a wall: 35 % of the objects in NLVR's scattered scenes touch
   * one, so "touching the wall" statements are neither rare nor trivial.
   */
  wallShare: number;
  /**
   * Which wall a wall-placed object goes to. NLVR's objects touch the right and bottom walls
   * about 20 times as often as the left and top ones (an artifact of its generator that its
   * images, on which we evaluate, share), so we mimic that.
   */
  wallWeights: Record<Wall, number>;
  /** Share of wall-placed objects pushed into a corner (touching two walls): 12 % in NLVR dev. */
  cornerShare: number;
  /**
   * Least distance (pixels) of an object not placed against a wall from every wall, and between
   * two objects: keeps "touching" and "separate" visually unambiguous.
   */
  margin: number;
  /** Tallest tower: NLVR's towers have 1–4 blocks. */
  maxTowerHeight: number;
  /** Share of tower scenes when the layout is not given: NLVR dev has 676 tower / 313 scattered. */
  towerShare: number;
}

export const DEFAULT_SCENE_CONFIG: SceneGeneratorConfig = {
  minObjects: 1,
  maxObjects: 8,
  wallShare: 0.35,
  wallWeights: { right: 0.45, bottom: 0.45, left: 0.05, top: 0.05 },
  cornerShare: 0.12,
  margin: 2,
  maxTowerHeight: 4,
  towerShare: 0.5,
};

function checkConfig(c: SceneGeneratorConfig): void {
  if (
    !Number.isInteger(c.minObjects) ||
    !Number.isInteger(c.maxObjects) ||
    c.minObjects < 1 ||
    c.maxObjects < c.minObjects
  ) {
    throw new Error(
      `scene config: need integers 1 ≤ minObjects ≤ maxObjects, got ${c.minObjects}..${c.maxObjects}`,
    );
  }
  if (c.maxObjects > 12)
    throw new Error(`scene config: maxObjects ${c.maxObjects} > 12 would not fit without overlaps`);
  if (!Number.isInteger(c.maxTowerHeight) || c.maxTowerHeight < 1 || c.maxTowerHeight > 4) {
    throw new Error(
      `scene config: maxTowerHeight must be 1..4 (a 5th block leaves the box), got ${c.maxTowerHeight}`,
    );
  }
}

/** A random object of the given size placed against `walls` (none: away from all walls). */
function placeObject(rng: Rng, size: ObjectSize, walls: readonly Wall[], margin: number): SceneObject {
  const inner = (): number => rng.int(margin, BOX_SIZE - size - margin);
  let x = inner();
  let y = inner();
  if (walls.includes('left')) x = 0;
  if (walls.includes('right')) x = BOX_SIZE - size;
  if (walls.includes('top')) y = 0;
  if (walls.includes('bottom')) y = BOX_SIZE - size;
  return { x_loc: x, y_loc: y, size, type: rng.pick(SHAPES), color: rng.pick(COLORS) };
}

const PERPENDICULAR: Record<Wall, readonly Wall[]> = {
  left: ['top', 'bottom'],
  right: ['top', 'bottom'],
  top: ['left', 'right'],
  bottom: ['left', 'right'],
};

/** Walls for a new object: none, one, or (cornerShare of the time) a corner. */
function drawWalls(rng: Rng, config: SceneGeneratorConfig): Wall[] {
  if (!rng.chance(config.wallShare)) return [];
  const weights = Object.entries(config.wallWeights) as [Wall, number][];
  const wall = rng.weighted(weights);
  if (!rng.chance(config.cornerShare)) return [wall];
  const second = rng.weighted(weights.filter(([w]) => PERPENDICULAR[wall].includes(w)));
  return [wall, second];
}

/**
 * Adds one random object to `box` without overlapping the others (a new array). Returns null
 * when no free spot is found in `tries` attempts (the box is crowded).
 */
export function addRandomObject(
  rng: Rng,
  box: readonly SceneObject[],
  config: SceneGeneratorConfig = DEFAULT_SCENE_CONFIG,
  tries = 60,
): Box | null {
  for (let t = 0; t < tries; t++) {
    // After many failures, try the smallest size: crowded boxes still fill up.
    const size = t < tries / 2 ? rng.pick(SIZES) : 10;
    const obj = placeObject(rng, size, drawWalls(rng, config), config.margin);
    if (!box.some((o) => overlaps(o, obj, config.margin))) return [...box, obj];
  }
  return null;
}

/** A scattered box with `count` objects (random in [minObjects, maxObjects] when not given). */
export function scatteredBox(
  rng: Rng,
  config: SceneGeneratorConfig = DEFAULT_SCENE_CONFIG,
  count?: number,
): Box {
  checkConfig(config);
  const n = count ?? rng.int(config.minObjects, config.maxObjects);
  let box: Box = [];
  while (box.length < n) {
    const next = addRandomObject(rng, box, config);
    if (next === null) break; // too crowded: keep the box as it is (rare; the caller sees box.length)
    box = next;
  }
  return box;
}

/** A tower box: `height` blocks (random in 1..maxTowerHeight when not given) of random colours. */
export function randomTowerBox(
  rng: Rng,
  config: SceneGeneratorConfig = DEFAULT_SCENE_CONFIG,
  height?: number,
): Box {
  checkConfig(config);
  const h = height ?? rng.int(1, config.maxTowerHeight);
  const colors: Color[] = Array.from({ length: h }, () => rng.pick(COLORS));
  return towerBox(colors);
}

export interface SceneOptions {
  /** Layout; random (towerShare) when not given. */
  layout?: Layout;
  config?: SceneGeneratorConfig;
}

/** A random scene of three boxes. */
export function generateScene(rng: Rng, options: SceneOptions = {}): Scene {
  const config = options.config ?? DEFAULT_SCENE_CONFIG;
  checkConfig(config);
  const layout = options.layout ?? (rng.chance(config.towerShare) ? 'towers' : 'scattered');
  const boxes = Array.from({ length: BOXES_PER_SCENE }, () =>
    layout === 'towers' ? randomTowerBox(rng, config) : scatteredBox(rng, config),
  );
  return { layout, boxes };
}
