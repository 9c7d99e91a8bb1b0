/**
 * Patch pseudo-labels for MaVEn's patch selector: which ViT patches cover an object. MaVEn gets
 * these from Grounding SAM masks; for NLVR we have exact masks from `structured_rep`, and a
 * text-guided variant (like Grounding SAM's text prompt) that keeps only the objects whose
 * colour/shape words the sentence mentions.
 *
 * The mask is resized to the model input (imageSize×imageSize) with nearest-neighbour sampling
 * at pixel centres — source pixel floor((i + 0.5)·src/dst) — the geometry of the image resize,
 * so a label lines up with the pixels the patch actually sees. Pure math: no Node I/O.
 */
import {
  NLVR_BOX_SIZE,
  NLVR_COLORS,
  NLVR_SHAPES,
  type NlvrColor,
  type NlvrObject,
  type NlvrShape,
  rasterizeObject,
  unionMasks,
} from './shapes.ts';

export interface PatchGridOptions {
  /** Side of the square model input the image (and so the mask) is resized to, e.g. 224. */
  imageSize: number;
  /** ViT patch side, e.g. 14 or 16; must divide imageSize. */
  patchSize: number;
  /**
   * A patch is labelled 1 when its covered fraction is > threshold. Default 0: any overlap,
   * because small NLVR objects (10 px) cover only a sliver of some patches and must not vanish.
   */
  threshold?: number;
}

export interface PatchLabels {
  /** Per patch (row-major over the grid), the fraction of its pixels inside the mask, in [0, 1]. */
  fractions: Float32Array;
  /** Per patch, 1 when fraction > threshold, else 0. */
  labels: Uint8Array;
  /** Patches per side: imageSize / patchSize (so grid² patches). */
  grid: number;
}

/** Nearest-neighbour resize of a width×height 0/1 mask to size×size, sampling at pixel centres. */
export function resizeMaskNearest(mask: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const out = new Uint8Array(size * size);
  const srcX = new Int32Array(size);
  for (let x = 0; x < size; x++) srcX[x] = Math.min(width - 1, Math.floor(((x + 0.5) * width) / size));
  for (let y = 0; y < size; y++) {
    const sy = Math.min(height - 1, Math.floor(((y + 0.5) * height) / size));
    const row = sy * width;
    for (let x = 0; x < size; x++) out[y * size + x] = mask[row + srcX[x]] ? 1 : 0;
  }
  return out;
}

/**
 * Per-patch overlap of a binary mask (row-major, maskWidth×maskHeight, nonzero = inside) with
 * the ViT patch grid of an imageSize×imageSize input.
 */
export function patchLabels(
  mask: Uint8Array,
  maskWidth: number,
  maskHeight: number,
  options: PatchGridOptions,
): PatchLabels {
  const { imageSize, patchSize, threshold = 0 } = options;
  if (!Number.isInteger(maskWidth) || !Number.isInteger(maskHeight) || maskWidth <= 0 || maskHeight <= 0) {
    throw new Error(`patchLabels: mask size must be positive integers, got ${maskWidth}×${maskHeight}`);
  }
  if (mask.length !== maskWidth * maskHeight) {
    throw new Error(
      `patchLabels: mask has ${mask.length} values but is declared ${maskWidth}×${maskHeight} = ${maskWidth * maskHeight}`,
    );
  }
  if (!Number.isInteger(imageSize) || !Number.isInteger(patchSize) || imageSize <= 0 || patchSize <= 0) {
    throw new Error(
      `patchLabels: imageSize and patchSize must be positive integers, got ${imageSize} and ${patchSize}`,
    );
  }
  if (imageSize % patchSize !== 0) {
    throw new Error(`patchLabels: patchSize ${patchSize} does not divide imageSize ${imageSize}`);
  }
  if (!(threshold >= 0 && threshold < 1)) {
    throw new Error(`patchLabels: threshold must be in [0, 1), got ${threshold}`);
  }
  const grid = imageSize / patchSize;
  const resized = resizeMaskNearest(mask, maskWidth, maskHeight, imageSize);
  const counts = new Uint32Array(grid * grid);
  for (let y = 0; y < imageSize; y++) {
    const rowBase = Math.floor(y / patchSize) * grid;
    for (let x = 0; x < imageSize; x++) {
      if (resized[y * imageSize + x]) counts[rowBase + Math.floor(x / patchSize)]++;
    }
  }
  const area = patchSize * patchSize;
  const fractions = new Float32Array(grid * grid);
  const labels = new Uint8Array(grid * grid);
  for (let p = 0; p < counts.length; p++) {
    fractions[p] = counts[p] / area;
    labels[p] = counts[p] / area > threshold ? 1 : 0;
  }
  return { fractions, labels, grid };
}

// ---- text-guided selection ------------------------------------------------------------------

/** Colour words → NLVR colours; NLVR's blue is stored as '#0099ff'. */
const COLOR_WORDS = new Map<string, NlvrColor>([
  ['yellow', 'Yellow'],
  ['black', 'Black'],
  ['blue', '#0099ff'],
]);

/** Shape words with plurals and the misspellings that actually occur in NLVR sentences. */
const SHAPE_WORDS = new Map<string, NlvrShape>([
  ['square', 'square'],
  ['squares', 'square'],
  ['squere', 'square'],
  ['circle', 'circle'],
  ['circles', 'circle'],
  ['cirlce', 'circle'],
  ['triangle', 'triangle'],
  ['triangles', 'triangle'],
]);

/** Words that may join colours in front of one shape: "yellow and black squares". */
const COORDINATORS = new Set(['and', 'or', ',']);

/** A referring phrase: an object matches when every given attribute matches. */
export interface Mention {
  color?: NlvrColor;
  shape?: NlvrShape;
}

/**
 * The colour/shape phrases a sentence mentions: "blue circle" → {blue, circle}; "yellow and black
 * squares" → {yellow, square}, {black, square}; a lone "yellow" (e.g. "yellow block") → {yellow};
 * a lone "triangles" → {triangle}. Words like box, tower, block, item, object select nothing.
 */
export function sentenceMentions(sentence: string): Mention[] {
  const tokens = sentence.toLowerCase().match(/[a-z]+|,/g) ?? [];
  const mentions: Mention[] = [];
  let pendingColors: NlvrColor[] = [];
  const flushColors = () => {
    for (const color of pendingColors) mentions.push({ color });
    pendingColors = [];
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const color = COLOR_WORDS.get(token);
    const shape = SHAPE_WORDS.get(token);
    if (color !== undefined) {
      pendingColors.push(color);
    } else if (shape !== undefined) {
      if (pendingColors.length === 0) mentions.push({ shape });
      for (const c of pendingColors) mentions.push({ color: c, shape });
      pendingColors = [];
    } else if (COORDINATORS.has(token) && pendingColors.length > 0 && COLOR_WORDS.has(tokens[i + 1])) {
      // "yellow and black …": keep collecting colours for a possible shape noun.
    } else {
      flushColors();
    }
  }
  flushColors();
  return mentions;
}

/**
 * Which objects the sentence refers to by colour/shape (true = selected). When the sentence
 * names no colour or shape at all ("there is a tower with four blocks"), every object is selected.
 */
export function mentionedObjects(sentence: string, objects: readonly NlvrObject[]): boolean[] {
  const mentions = sentenceMentions(sentence);
  if (mentions.length === 0) return objects.map(() => true);
  return objects.map((obj) =>
    mentions.some(
      (m) =>
        (m.color === undefined || m.color === obj.color) && (m.shape === undefined || m.shape === obj.type),
    ),
  );
}

/** What `nlvrPatchLabels` needs of an NLVR example (structurally satisfied by `NlvrExample`). */
export interface NlvrScene {
  sentence: string;
  /** structured_rep: per box, its objects in the 100×100 box frame. */
  boxes: readonly (readonly NlvrObject[])[];
}

export interface NlvrPatchLabelOptions extends PatchGridOptions {
  /** Keep only the objects the sentence mentions (default true); false: all objects. */
  textGuided?: boolean;
}

export interface NlvrPatchLabels extends PatchLabels {
  /** Per object of the box, whether it went into the mask. */
  selected: boolean[];
}

/**
 * Patch labels for box `boxIndex` (0..2, in `structured_rep` order = image order 0) of an NLVR
 * example: the union of the (selected) objects' exact masks, on the model's patch grid.
 */
export function nlvrPatchLabels(
  scene: NlvrScene,
  boxIndex: number,
  options: NlvrPatchLabelOptions,
): NlvrPatchLabels {
  const objects = scene.boxes[boxIndex];
  if (!Number.isInteger(boxIndex) || objects === undefined) {
    throw new Error(`nlvrPatchLabels: boxIndex ${boxIndex} outside 0..${scene.boxes.length - 1}`);
  }
  const selected =
    options.textGuided === false ? objects.map(() => true) : mentionedObjects(scene.sentence, objects);
  const size = NLVR_BOX_SIZE;
  const masks = objects.filter((_, i) => selected[i]).map((obj) => rasterizeObject(obj, size, size));
  const mask = unionMasks(masks, size * size);
  return { ...patchLabels(mask, size, size, options), selected };
}

/** Dense patch classes: 0 background, then one class per (colour, shape), colour-major. */
export const PATCH_CLASS_COUNT = 1 + 3 * 3;

export interface PatchObjectClasses {
  /**
   * Per patch (row-major), the class of the object covering most of it — 1 + colour·3 + shape
   * over NLVR's colour and shape lists — or 0 when objects cover at most `threshold` of it.
   */
  classes: Uint8Array;
  /** Per patch, 1 where an object's centre falls (a count of 1s per class counts objects). */
  centers: Uint8Array;
  grid: number;
}

/**
 * What each patch of a box shows, for supervised patch-level pretraining of the vision tower:
 * the colour and shape of the object under it, and where objects' centres are. Masks are the
 * exact rasterised objects on the 100-unit box, resized like the image (see `patchLabels`).
 */
export function patchObjectClasses(
  objects: readonly NlvrObject[],
  options: PatchGridOptions,
): PatchObjectClasses {
  const { imageSize, patchSize } = options;
  const threshold = options.threshold ?? 0.25;
  const grid = imageSize / patchSize;
  if (!Number.isInteger(grid))
    throw new Error(`patchObjectClasses: patch ${patchSize} must divide image ${imageSize}`);
  const classes = new Uint8Array(grid * grid);
  const centers = new Uint8Array(grid * grid);
  const best = new Float32Array(grid * grid);
  for (const obj of objects) {
    const cls = 1 + NLVR_COLORS.indexOf(obj.color) * NLVR_SHAPES.length + NLVR_SHAPES.indexOf(obj.type);
    const mask = rasterizeObject(obj, NLVR_BOX_SIZE, NLVR_BOX_SIZE);
    const { fractions } = patchLabels(mask, NLVR_BOX_SIZE, NLVR_BOX_SIZE, { imageSize, patchSize });
    fractions.forEach((f, p) => {
      if (f > threshold && f > best[p]) {
        best[p] = f;
        classes[p] = cls;
      }
    });
    const scale = imageSize / NLVR_BOX_SIZE;
    const cx = Math.min(grid - 1, Math.floor(((obj.x_loc + obj.size / 2) * scale) / patchSize));
    const cy = Math.min(grid - 1, Math.floor(((obj.y_loc + obj.size / 2) * scale) / patchSize));
    centers[cy * grid + cx] = 1;
  }
  return { classes, centers, grid };
}
