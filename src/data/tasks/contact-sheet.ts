/**
 * A contact sheet of task examples for eyeballing the data: each tile shows one example's images
 * (rows of up to four) above its question and answer; tiles are laid out by `contactSheet` from
 * src/node/contact-sheet.ts, captioned with the task name. sharp encodes PNGs and draws the text.
 */
import sharp from 'sharp';
import { contactSheet } from '../../node/contact-sheet.ts';
import type { RgbImage } from '../scene/render.ts';
import { IMAGE_TOKEN, type TaskExample } from './types.ts';

const CELL = 100; // image cell side in the tile, pixels
const GAP = 6;
const PER_ROW = 4;
const FONT_SIZE = 13;
const LINE_HEIGHT = 17;
const CHARS_PER_LINE = 60;

/** `image` scaled (nearest neighbour) into a CELL×CELL cell of `canvas` at (left, top). */
function blit(canvas: Uint8Array, canvasWidth: number, image: RgbImage, left: number, top: number): void {
  for (let y = 0; y < CELL; y++) {
    const sy = Math.min(image.height - 1, Math.floor((y * image.height) / CELL));
    for (let x = 0; x < CELL; x++) {
      const sx = Math.min(image.width - 1, Math.floor((x * image.width) / CELL));
      const src = (sy * image.width + sx) * 3;
      canvas.set(image.rgb.subarray(src, src + 3), ((top + y) * canvasWidth + left + x) * 3);
    }
  }
}

/** The example's text without image placeholders, plus its answer, wrapped to lines. */
export function exampleText(example: TaskExample): string[] {
  const text = example.prompt
    .split('\n')
    // Image lines ("<image>", "Image 2: <image>") are the pictures the sheet shows in order.
    .filter((line) => !/^(Image \d+: )?<image>$/.test(line.trim()) && !line.startsWith('Answer with'))
    .map((line) =>
      line.endsWith(`. ${IMAGE_TOKEN}`) ? `${line.slice(0, 1)}: image ${line.slice(0, 1)}` : line,
    );
  if (example.task === 'sequence-completion') text.push('(options A–D are the second row)');
  text.push(`answer: ${example.answer}`);
  const lines: string[] = [];
  for (const paragraph of text) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      if (line !== '' && line.length + 1 + word.length > CHARS_PER_LINE) {
        lines.push(line);
        line = word;
      } else line = line === '' ? word : `${line} ${word}`;
    }
    lines.push(line);
  }
  return lines;
}

/** PNG of one example: its images in rows of four, then its text. */
export async function exampleTile(example: TaskExample): Promise<Uint8Array> {
  const imageRows = Math.ceil(example.images.length / PER_ROW);
  const lines = exampleText(example);
  const width = PER_ROW * CELL + (PER_ROW + 1) * GAP;
  const imagesHeight = imageRows * (CELL + GAP) + GAP;
  const height = imagesHeight + lines.length * LINE_HEIGHT + GAP;
  const canvas = new Uint8Array(width * height * 3).fill(255); // [H, W, 3]
  // Cloze examples: the three shown frames on the first row, the four candidates on the second.
  const split = example.task === 'sequence-completion' ? 3 : PER_ROW;
  example.images.forEach((image, k) => {
    const row = k < split ? 0 : 1 + Math.floor((k - split) / PER_ROW);
    const col = k < split ? k : (k - split) % PER_ROW;
    blit(canvas, width, image, GAP + col * (CELL + GAP), GAP + row * (CELL + GAP));
  });
  const escapeXml = (s: string) => s.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height - imagesHeight}">` +
    lines
      .map(
        (line, i) =>
          `<text x="${GAP}" y="${(i + 1) * LINE_HEIGHT - 4}" font-family="DejaVu Sans, Arial, sans-serif" font-size="${FONT_SIZE}" fill="#222">${escapeXml(line)}</text>`,
      )
      .join('') +
    '</svg>';
  const png = await sharp(canvas, { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), left: 0, top: imagesHeight }])
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.length);
}

export interface TaskSheetOptions {
  /** Tile side in pixels (default 440). */
  tileSize?: number;
  /** Tiles per row (default 3). */
  columns?: number;
}

/** PNG bytes of a contact sheet of `examples`, one tile each, captioned with the task name. */
export async function taskContactSheet(
  examples: readonly TaskExample[],
  options: TaskSheetOptions = {},
): Promise<Uint8Array> {
  const tiles = await Promise.all(
    examples.map(async (ex) => ({ png: await exampleTile(ex), caption: ex.task })),
  );
  return contactSheet(tiles, { tileSize: options.tileSize ?? 440, columns: options.columns ?? 3 });
}
