/**
 * Rendering scenes to pixels with the NLVR rasteriser (`../shapes.ts`): one box → an RGB image and
 * one exact 0/1 mask per object; a whole scene → NLVR's 400×100 strip (boxes at x = 0, 150, 300
 * on a grey background), the form the real dev/test pictures have.
 *
 * Pure math: no Node I/O.
 */
import { NLVR_GAP_RGB, type RenderOptions, renderBox, unionMasks } from '../shapes.ts';
import { BOX_SIZE, BOXES_PER_SCENE, type Scene, type SceneObject } from './scene.ts';

/** An RGB image (row-major HWC, 3 bytes per pixel), structurally compatible with decoded images. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

export interface RenderedSceneBox extends RgbImage {
  /** One full 0/1 mask (width·height) per object, in the box's object order. */
  objectMasks: Uint8Array[];
}

/** One box as a size×size image (objects scaled from the 100×100 frame) with its object masks. */
export function renderSceneBox(
  box: readonly SceneObject[],
  size = BOX_SIZE,
  options: RenderOptions = {},
): RenderedSceneBox {
  const { rgb, objectMasks } = renderBox(box, size, options);
  return { width: size, height: size, rgb, objectMasks };
}

/** The 0/1 union of the masks of the objects at `indices` (all zero when none). */
export function maskOf(rendered: RenderedSceneBox, indices: readonly number[]): Uint8Array {
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= rendered.objectMasks.length) {
      throw new Error(`maskOf: object index ${i} outside 0..${rendered.objectMasks.length - 1}`);
    }
  }
  return unionMasks(
    indices.map((i) => rendered.objectMasks[i]),
    rendered.width * rendered.height,
  );
}

/** Horizontal offset of box k in NLVR's 400×100 pictures. */
export const NLVR_BOX_OFFSETS = [0, 150, 300];
export const NLVR_PICTURE_WIDTH = 400;

/** The whole scene as NLVR draws it: a 400×100 RGB strip, boxes at x = 0, 150, 300. */
export function renderScenePicture(scene: Scene): RgbImage {
  if (scene.boxes.length !== BOXES_PER_SCENE) {
    throw new Error(`renderScenePicture: a scene has ${BOXES_PER_SCENE} boxes, got ${scene.boxes.length}`);
  }
  const width = NLVR_PICTURE_WIDTH;
  const height = BOX_SIZE;
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) rgb.set(NLVR_GAP_RGB, 3 * p);
  scene.boxes.forEach((box, k) => {
    const tile = renderBox(box, BOX_SIZE).rgb;
    for (let y = 0; y < BOX_SIZE; y++) {
      // Copy one row of the tile: [BOX_SIZE·3] bytes to (y, offset).
      rgb.set(tile.subarray(y * BOX_SIZE * 3, (y + 1) * BOX_SIZE * 3), (y * width + NLVR_BOX_OFFSETS[k]) * 3);
    }
  });
  return { width, height, rgb };
}
