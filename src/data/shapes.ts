/**
 * Rasteriser for NLVR objects (squares, circles, triangles) — exact binary masks and flat-colour
 * renderings of one 100×100 NLVR box. Shared by the NLVR loader (masks → patch labels) and the
 * scene generator (unlimited new scenes in the NLVR style).
 *
 * Geometry, read off the real NLVR PNGs (e.g. dev-1572-0-0.png): (x_loc, y_loc) is the top-left
 * corner of the object's size×size bounding box; a square fills it; a circle is inscribed in it;
 * a triangle points UP, apex at (x + size/2, y), base along the bottom edge y + size. The real
 * images are anti-aliased with exact-area coverage; here a pixel belongs to a shape iff its centre
 * (px + 0.5, py + 0.5) lies inside (the usual rasterisation rule), so masks are exact 0/1 and the
 * output is a pure function of the input. Colours are the exact RGB values of the real images.
 *
 * Pure math: no Node I/O.
 */

export type NlvrShape = 'square' | 'circle' | 'triangle';
export type NlvrColor = 'Black' | 'Yellow' | '#0099ff';
export type Rgb = readonly [number, number, number];

/** One object of NLVR's `structured_rep` (field names as in the JSON files). */
export interface NlvrObject {
  /** Left edge of the bounding box, in box pixels (0..100). */
  x_loc: number;
  /** Top edge of the bounding box, in box pixels (0..100). */
  y_loc: number;
  /** Side of the bounding box: 10, 20 or 30 in NLVR. */
  size: number;
  type: NlvrShape;
  color: NlvrColor;
}

/** Side of an NLVR box in pixels; `structured_rep` coordinates live in this frame. */
export const NLVR_BOX_SIZE = 100;

export const NLVR_SHAPES: readonly NlvrShape[] = ['square', 'circle', 'triangle'];
export const NLVR_COLORS: readonly NlvrColor[] = ['Black', 'Yellow', '#0099ff'];

/** Box background of the real NLVR images: CSS `lightgray` (211, 211, 211), measured. */
export const NLVR_BACKGROUND_RGB: Rgb = [211, 211, 211];

/** Gap between boxes in the 400×100 NLVR PNGs: (128, 128, 128), measured. */
export const NLVR_GAP_RGB: Rgb = [128, 128, 128];

const COLOR_RGB: Record<NlvrColor, Rgb> = {
  Black: [0, 0, 0],
  Yellow: [255, 255, 0],
  '#0099ff': [0, 153, 255],
};

/** RGB of an NLVR colour name, exactly as drawn in the real images. */
export function colorRgb(name: NlvrColor): Rgb {
  const rgb = COLOR_RGB[name];
  if (rgb === undefined) {
    throw new Error(
      `colorRgb: unknown NLVR colour ${JSON.stringify(name)} (expected ${NLVR_COLORS.join(', ')})`,
    );
  }
  return rgb;
}

/** Throws a clear error when `obj` is not a well-formed NLVR object. */
export function checkNlvrObject(obj: NlvrObject, where = 'NLVR object'): void {
  for (const key of ['x_loc', 'y_loc', 'size'] as const) {
    if (typeof obj[key] !== 'number' || !Number.isFinite(obj[key])) {
      throw new Error(`${where}: ${key} must be a finite number, got ${JSON.stringify(obj[key])}`);
    }
  }
  if (obj.size <= 0) throw new Error(`${where}: size must be positive, got ${obj.size}`);
  if (!NLVR_SHAPES.includes(obj.type)) {
    throw new Error(
      `${where}: type must be one of ${NLVR_SHAPES.join(', ')}, got ${JSON.stringify(obj.type)}`,
    );
  }
  if (!NLVR_COLORS.includes(obj.color)) {
    throw new Error(
      `${where}: color must be one of ${NLVR_COLORS.join(', ')}, got ${JSON.stringify(obj.color)}`,
    );
  }
}

function checkCanvas(width: number, height: number, fn: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`${fn}: canvas must be positive integers, got ${width}×${height}`);
  }
}

/** Is the point (cx, cy) inside the object? Half-open on the right/bottom so tiles never overlap. */
function contains(obj: NlvrObject, cx: number, cy: number): boolean {
  const { x_loc: x, y_loc: y, size: s } = obj;
  if (cx < x || cx >= x + s || cy < y || cy >= y + s) return false;
  switch (obj.type) {
    case 'square':
      return true;
    case 'circle': {
      const dx = cx - (x + s / 2);
      const dy = cy - (y + s / 2);
      return dx * dx + dy * dy < (s / 2) * (s / 2);
    }
    case 'triangle':
      // Isosceles, apex up: at depth t below the apex the half-width is t/2 (base s at depth s).
      return Math.abs(cx - (x + s / 2)) < (cy - y) / 2;
  }
}

/**
 * Binary mask (row-major, length width·height, values 0/1) of one object drawn on a width×height
 * canvas whose pixel units are the object's coordinates. Parts outside the canvas are clipped.
 */
export function rasterizeObject(obj: NlvrObject, width: number, height: number): Uint8Array {
  checkCanvas(width, height, 'rasterizeObject');
  checkNlvrObject(obj, 'rasterizeObject');
  const mask = new Uint8Array(width * height);
  // Only the bounding box can hold pixels; clip it to the canvas.
  const x0 = Math.max(0, Math.floor(obj.x_loc));
  const x1 = Math.min(width, Math.ceil(obj.x_loc + obj.size));
  const y0 = Math.max(0, Math.floor(obj.y_loc));
  const y1 = Math.min(height, Math.ceil(obj.y_loc + obj.size));
  for (let py = y0; py < y1; py++) {
    for (let px = x0; px < x1; px++) {
      if (contains(obj, px + 0.5, py + 0.5)) mask[py * width + px] = 1;
    }
  }
  return mask;
}

/** The object with its coordinates scaled by `factor` (to draw a 100-unit box at another size). */
export function scaleObject(obj: NlvrObject, factor: number): NlvrObject {
  return { ...obj, x_loc: obj.x_loc * factor, y_loc: obj.y_loc * factor, size: obj.size * factor };
}

export interface RenderedBox {
  /** size×size×3 RGB, row-major (HWC). */
  rgb: Uint8Array;
  /** One full (unoccluded) 0/1 mask of size×size per object, in input order. */
  objectMasks: Uint8Array[];
}

export interface RenderOptions {
  /**
   * Background colour. Default: NLVR's light grey (211, 211, 211), because the real images —
   * which models trained on generated scenes are evaluated on — have that background.
   * Pass [255, 255, 255] for a white one.
   */
  background?: Rgb;
}

/**
 * Renders one NLVR box (objects in the 100×100 `structured_rep` frame) as a size×size RGB image,
 * scaling coordinates by size/100. Objects are painted in order (later ones on top).
 */
export function renderBox(
  objects: readonly NlvrObject[],
  size = NLVR_BOX_SIZE,
  options: RenderOptions = {},
): RenderedBox {
  checkCanvas(size, size, 'renderBox');
  const background = options.background ?? NLVR_BACKGROUND_RGB;
  const rgb = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) rgb.set(background, 3 * i);
  const factor = size / NLVR_BOX_SIZE;
  const objectMasks = objects.map((obj, i) => {
    checkNlvrObject(obj, `renderBox: object ${i}`);
    const mask = rasterizeObject(scaleObject(obj, factor), size, size);
    const color = colorRgb(obj.color);
    for (let p = 0; p < mask.length; p++) if (mask[p]) rgb.set(color, 3 * p);
    return mask;
  });
  return { rgb, objectMasks };
}

/** Pixelwise OR of equally sized 0/1 masks (`length` pixels; all zero when `masks` is empty). */
export function unionMasks(masks: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (const [i, m] of masks.entries()) {
    if (m.length !== length)
      throw new Error(`unionMasks: mask ${i} has ${m.length} pixels, expected ${length}`);
    for (let p = 0; p < length; p++) if (m[p]) out[p] = 1;
  }
  return out;
}
