/**
 * Pictures of what the patch selector kept, as in MaVEn's Figure 5: dropped patches darkened,
 * kept ones at full brightness inside a thin outline, optionally tinted by the selector's
 * scores; and contact sheets that tile such pictures with captions, for data statistics and
 * reports. Pixels are composed here over RGB bytes; sharp only encodes PNGs and draws captions.
 */
import sharp, { type OverlayOptions } from 'sharp';
import { checkImage, type DecodedImage, decodeImage, resizeImage } from '../models/image.ts';

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

/** Renders the image with the patch grid's dropped cells darkened and the kept region outlined; PNG bytes. */
export async function renderPatchOverlay(
  image: DecodedImage | Uint8Array | string,
  grid: { rows: number; cols: number },
  kept: ArrayLike<number | boolean>,
  options: PatchOverlayOptions = {},
): Promise<Uint8Array> {
  const fail = (reason: string) => new Error(`renderPatchOverlay: ${reason}`);
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

  let source =
    typeof image === 'string' || image instanceof Uint8Array
      ? await decodeImage(image, typeof image === 'string' ? image : 'renderPatchOverlay image')
      : image;
  checkImage(source, 'renderPatchOverlay image');
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
  return encodePng({ width, height, rgb: out });
}

/** The coolwarm colour for t in [0, 1]. */
export function heatColour(t: number): [number, number, number] {
  const pos = Math.min(Math.max(t, 0), 1) * (HEAT_STOPS.length - 1);
  const i = Math.min(Math.floor(pos), HEAT_STOPS.length - 2);
  const f = pos - i;
  const [a, b] = [HEAT_STOPS[i], HEAT_STOPS[i + 1]];
  return [0, 1, 2].map((ch) => Math.round(a[ch] + f * (b[ch] - a[ch]))) as [number, number, number];
}

export interface ContactSheetTile {
  /** Encoded image (PNG, or anything decodeImage reads). */
  png: Uint8Array;
  caption?: string;
}

export interface ContactSheetOptions {
  /** Tiles per row; default ⌈√n⌉, a roughly square sheet. */
  columns?: number;
  /** Each image is fitted (aspect kept, centred on white) into a tileSize² square; default 256. */
  tileSize?: number;
}

/** White margin between tiles, in pixels. */
export const SHEET_GAP = 8;

/** Height of the caption band under each tile (0 when no tile has a caption). */
export function captionHeight(tileSize: number, anyCaption: boolean): number {
  return anyCaption ? Math.max(14, Math.round(tileSize * 0.12)) : 0;
}

/** A grid of images with captions underneath, on white; PNG bytes. */
export async function contactSheet(
  tiles: readonly ContactSheetTile[],
  options: ContactSheetOptions = {},
): Promise<Uint8Array> {
  const fail = (reason: string) => new Error(`contactSheet: ${reason}`);
  if (!Array.isArray(tiles) || tiles.length === 0) throw fail('no tiles given');
  const { tileSize = 256 } = options;
  const columns = Math.min(options.columns ?? Math.ceil(Math.sqrt(tiles.length)), tiles.length);
  if (!Number.isInteger(columns) || columns <= 0)
    throw fail(`columns must be a positive integer, got ${options.columns}`);
  if (!Number.isInteger(tileSize) || tileSize < 8 || tileSize > 4096) {
    throw fail(`tileSize must be an integer in 8..4096, got ${tileSize}`);
  }
  tiles.forEach((tile, i) => {
    if (!(tile?.png instanceof Uint8Array)) throw fail(`tile ${i} has no png bytes (Uint8Array)`);
    if (tile.caption !== undefined && typeof tile.caption !== 'string') {
      throw fail(`tile ${i} caption must be a string, got ${typeof tile.caption}`);
    }
  });
  const rows = Math.ceil(tiles.length / columns);
  const band = captionHeight(
    tileSize,
    tiles.some((t) => t.caption),
  );
  const width = columns * tileSize + (columns + 1) * SHEET_GAP;
  const height = rows * (tileSize + band) + (rows + 1) * SHEET_GAP;
  if (width * height > 100_000_000)
    throw fail(`a ${width}×${height} sheet is too large; use fewer tiles or a smaller tileSize`);

  const canvas = new Uint8Array(width * height * 3).fill(255); // [H, W, 3]
  const captions: OverlayOptions[] = [];
  for (let i = 0; i < tiles.length; i++) {
    const image = await decodeImage(tiles[i].png, `contactSheet tile ${i}`);
    const scale = tileSize / Math.max(image.width, image.height);
    const fitted = resizeImage(
      image,
      Math.max(1, Math.round(image.width * scale)),
      Math.max(1, Math.round(image.height * scale)),
      'bicubic',
    );
    const left = SHEET_GAP + (i % columns) * (tileSize + SHEET_GAP);
    const top = SHEET_GAP + Math.floor(i / columns) * (tileSize + band + SHEET_GAP);
    const dx = left + Math.floor((tileSize - fitted.width) / 2);
    const dy = top + Math.floor((tileSize - fitted.height) / 2);
    for (let y = 0; y < fitted.height; y++) {
      canvas.set(
        fitted.rgb.subarray(y * fitted.width * 3, (y + 1) * fitted.width * 3),
        ((dy + y) * width + dx) * 3,
      );
    }
    const caption = tiles[i].caption;
    if (caption) captions.push({ input: captionSvg(caption, tileSize, band), left, top: top + tileSize });
  }
  const png = await sharp(canvas, { raw: { width, height, channels: 3 } })
    .composite(captions)
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.length);
}

/** One line of centred text, cut with an ellipsis to fit (about 0.6 em per character). */
function captionSvg(text: string, width: number, height: number): Buffer {
  const fontSize = Math.round(height * 0.7);
  const maxChars = Math.max(1, Math.floor(width / (fontSize * 0.6)));
  const line = text.replace(/\s+/g, ' ').trim();
  const shown = line.length > maxChars ? `${line.slice(0, maxChars - 1)}…` : line;
  const escaped = shown.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<text x="${width / 2}" y="${Math.round(height * 0.75)}" font-family="DejaVu Sans, Arial, sans-serif" ` +
      `font-size="${fontSize}" text-anchor="middle" fill="#222">${escaped}</text></svg>`,
  );
}

async function encodePng(image: DecodedImage): Promise<Uint8Array> {
  const png = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.length);
}
