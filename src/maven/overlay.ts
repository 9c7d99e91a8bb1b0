/**
 * Pictures of what the patch selector kept, as in MaVEn's Figure 5: dropped patches darkened,
 * kept ones at full brightness inside a thin outline, optionally tinted by the selector's
 * scores. Pixels are composed here over RGB bytes, so this runs in a browser too; PNG encoding
 * (renderPatchOverlay) and captioned contact sheets are the Node adapter's, in src/node/.
 */
import { checkImage, type DecodedImage, resizeImage } from '../models/image.ts';

export interface PatchOverlayOptions {
  /**
   * Longer side of the output in pixels, aspect kept. Default: the image's own size, so kept
   * patches show the source pixels unresampled. Pass the image the ViT saw (e.g.
   * `fitToSquare(image, config)`) so the grid lines up with its patches.
   */
  size?: number;
  /** Brightness left to dropped patches, out = round(in · dimDropped): 0 black, 1 unchanged. 0.3 keeps the context readable. */
  dimDropped?: number;
  /** Outline the boundary of the kept region (default true). */
  outline?: boolean;
  /** Per-patch selector scores, row-major like `kept`: a heat tint, min-max scaled, blue (low) → red (high). */
  scores?: ArrayLike<number>;
}

/** Outline colour: a saturated yellow stands out on both natural images and the darkened patches. */
export const OUTLINE_COLOUR: readonly [number, number, number] = [255, 214, 0];
/** Opacity of the score tint: enough to read the heat, little enough to still see the image. */
export const HEAT_OPACITY = 0.45;
/** Coolwarm stops for the score tint: blue, light grey, red. */
const HEAT_STOPS: readonly (readonly [number, number, number])[] = [
  [59, 76, 192],
  [221, 221, 221],
  [180, 4, 38],
];

const MAX_SIDE = 8192;

/** Outline thickness for an image: one pixel per 200 pixels of its shorter side, at least one. */
export function outlineWidth(width: number, height: number): number {
  return Math.max(1, Math.round(Math.min(width, height) / 200));
}

/** Pixel edges of `cells` equal cells over `length` pixels: edge i at round(i · length / cells). */
export function cellEdges(length: number, cells: number): Int32Array {
  const edges = new Int32Array(cells + 1);
  for (let i = 0; i <= cells; i++) edges[i] = Math.round((i * length) / cells);
  return edges;
}

/**
 * The image with the patch grid's dropped cells darkened and the kept region outlined, as RGB
 * (src/node/render-patch-overlay.ts encodes it as PNG).
 */
export function drawPatchOverlay(
  image: DecodedImage,
  grid: { rows: number; cols: number },
  kept: ArrayLike<number | boolean>,
  options: PatchOverlayOptions = {},
): DecodedImage {
  const fail = (reason: string) => new Error(`drawPatchOverlay: ${reason}`);
  const { rows, cols } = grid ?? ({} as { rows: number; cols: number });
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw fail(`grid rows and cols must be positive integers, got ${rows}×${cols}`);
  }
  const cells = rows * cols;
  if (kept?.length !== cells) {
    throw fail(
      `kept has ${kept?.length} entries but a ${rows}×${cols} grid has ${cells} patches (row-major mask)`,
    );
  }
  const keep = new Uint8Array(cells);
  for (let i = 0; i < cells; i++) {
    const k = kept[i];
    if (k === true || k === 1) keep[i] = 1;
    else if (k !== false && k !== 0) {
      throw fail(
        `kept[${i}] is ${String(k)}; kept is a 0/1 or boolean mask per patch, not a list of indices`,
      );
    }
  }
  const { dimDropped = 0.3, outline = true, scores } = options;
  if (!(dimDropped >= 0 && dimDropped <= 1)) throw fail(`dimDropped must be in [0, 1], got ${dimDropped}`);
  if (scores !== undefined) {
    if (scores.length !== cells)
      throw fail(`scores has ${scores.length} entries, the ${rows}×${cols} grid ${cells}`);
    for (let i = 0; i < cells; i++) {
      if (!Number.isFinite(scores[i])) throw fail(`scores[${i}] is ${scores[i]}, not a finite number`);
    }
  }

  checkImage(image, 'drawPatchOverlay image');
  let source = image;
  if (options.size !== undefined) {
    const { size } = options;
    if (!Number.isInteger(size) || size <= 0 || size > MAX_SIDE) {
      throw fail(`size must be an integer in 1..${MAX_SIDE}, got ${size}`);
    }
    const scale = size / Math.max(source.width, source.height);
    const width = Math.max(1, Math.round(source.width * scale));
    const height = Math.max(1, Math.round(source.height * scale));
    source = resizeImage(source, width, height, 'bicubic');
  }
  const { width, height } = source;
  if (rows > height || cols > width) {
    throw fail(
      `a ${rows}×${cols} grid is finer than the ${width}×${height} image (one pixel per patch at least)`,
    );
  }

  const xs = cellEdges(width, cols);
  const ys = cellEdges(height, rows);
  const out = source.rgb.slice(); // [H, W, 3]
  const forEachPixel = (r: number, c: number, fn: (p: number) => void) => {
    for (let y = ys[r]; y < ys[r + 1]; y++) for (let x = xs[c]; x < xs[c + 1]; x++) fn((y * width + x) * 3);
  };

  if (scores !== undefined) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < cells; i++) {
      lo = Math.min(lo, scores[i]);
      hi = Math.max(hi, scores[i]);
    }
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const t = hi > lo ? (scores[r * cols + c] - lo) / (hi - lo) : 0.5;
        const colour = heatColour(t);
        forEachPixel(r, c, (p) => {
          for (let ch = 0; ch < 3; ch++)
            out[p + ch] = Math.round((1 - HEAT_OPACITY) * out[p + ch] + HEAT_OPACITY * colour[ch]);
        });
      }
    }
  }

  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (keep[r * cols + c]) continue;
      forEachPixel(r, c, (p) => {
        for (let ch = 0; ch < 3; ch++) out[p + ch] = Math.round(out[p + ch] * dimDropped);
      });
    }
  }

  if (outline) {
    // Draw on the kept side of every edge between a kept patch and a dropped one (or the image border).
    const t = outlineWidth(width, height);
    const isKept = (r: number, c: number) =>
      r >= 0 && r < rows && c >= 0 && c < cols && keep[r * cols + c] === 1;
    const paint = (x0: number, x1: number, y0: number, y1: number) => {
      for (let y = Math.max(y0, 0); y < Math.min(y1, height); y++) {
        for (let x = Math.max(x0, 0); x < Math.min(x1, width); x++)
          out.set(OUTLINE_COLOUR, (y * width + x) * 3);
      }
    };
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        if (!isKept(r, c)) continue;
        const [x0, x1, y0, y1] = [xs[c], xs[c + 1], ys[r], ys[r + 1]];
        if (!isKept(r - 1, c)) paint(x0, x1, y0, Math.min(y0 + t, y1));
        if (!isKept(r + 1, c)) paint(x0, x1, Math.max(y1 - t, y0), y1);
        if (!isKept(r, c - 1)) paint(x0, Math.min(x0 + t, x1), y0, y1);
        if (!isKept(r, c + 1)) paint(Math.max(x1 - t, x0), x1, y0, y1);
      }
    }
  }
  return { width, height, rgb: out };
}

/** The coolwarm colour for t in [0, 1]. */
export function heatColour(t: number): [number, number, number] {
  const pos = Math.min(Math.max(t, 0), 1) * (HEAT_STOPS.length - 1);
  const i = Math.min(Math.floor(pos), HEAT_STOPS.length - 2);
  const f = pos - i;
  const [a, b] = [HEAT_STOPS[i], HEAT_STOPS[i + 1]];
  return [0, 1, 2].map((ch) => Math.round(a[ch] + f * (b[ch] - a[ch]))) as [number, number, number];
}
