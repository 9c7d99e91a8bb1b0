/**
 * Contact sheets (Node): images tiled in a grid with captions underneath, on white, for data
 * statistics and reports. Tiles are composed over RGB bytes; sharp decodes the tiles, draws the
 * captions (as SVG text) and encodes the PNG, which is why this lives beside the core, not in it.
 */
import sharp, { type OverlayOptions } from 'sharp';
import { resizeImage } from '../models/image.ts';
import { decodeImage } from './decode-image.ts';

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
