/**
 * NLVR v1.0 loader (Suhr et al., ACL 2017): a sentence that is true or false about a picture of
 * three boxes. Reads the JSON-lines `dev`/`test` files into typed examples and cuts each 400×100
 * PNG into its three 100×100 box images (boxes at x = 0, 150, 300; alpha flattened on white).
 * A malformed line is skipped and recorded with file and line number, never aborting the file.
 */
import { access, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { type DataDirOptions, dataPath } from './data-dir.ts';
import { checkNlvrObject, NLVR_BOX_SIZE, type NlvrObject } from './shapes.ts';

export type NlvrSplit = 'train' | 'dev' | 'test';

/** Box left edges in the 400×100 picture. */
export const NLVR_BOX_OFFSETS = [0, 150, 300] as const;
export const NLVR_IMAGE_WIDTH = 400;
export const NLVR_IMAGE_HEIGHT = 100;
/** Each example has six PNGs, k = 0..5, one per order of its three boxes; k = 0 is structured_rep's. */
export const NLVR_ORDERS = 6;

export interface NlvrExample {
  /** "n-m": presentation n, position m; names the PNGs `<split>-n-m-k.png`. */
  identifier: string;
  sentence: string;
  label: boolean;
  split: NlvrSplit;
  /** The numbered image sub-folder holding this example's PNGs. */
  directory: string;
  /** `structured_rep`: the three boxes' objects, in the box order of image 0. */
  boxes: NlvrObject[][];
  /** Absolute path of the PNG for box order k (0..5). */
  imagePath(order: number): string;
}

export interface NlvrLoadError {
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  message: string;
}

export interface NlvrLoadResult {
  examples: NlvrExample[];
  errors: NlvrLoadError[];
}

/** A decoded RGB image, HWC row-major. */
export interface RgbImage {
  width: number;
  height: number;
  /** width·height·3 bytes. */
  data: Uint8Array;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates one parsed JSON line; throws an Error whose message says what is wrong. */
function toExample(raw: unknown, split: NlvrSplit, imagesDir: string): NlvrExample {
  if (!isRecord(raw)) throw new Error('line is not a JSON object');
  const { identifier, sentence, label, directory, structured_rep: rep } = raw;
  if (typeof identifier !== 'string' || !/^\d+-\d+$/.test(identifier)) {
    throw new Error(`identifier must look like "n-m", got ${JSON.stringify(identifier)}`);
  }
  if (typeof sentence !== 'string' || sentence.trim() === '') {
    throw new Error(`example ${identifier}: sentence must be a non-empty string`);
  }
  if (label !== 'true' && label !== 'false') {
    throw new Error(`example ${identifier}: label must be "true" or "false", got ${JSON.stringify(label)}`);
  }
  if (typeof directory !== 'string' && typeof directory !== 'number') {
    throw new Error(`example ${identifier}: directory missing`);
  }
  if (!Array.isArray(rep) || rep.length !== NLVR_BOX_OFFSETS.length) {
    throw new Error(`example ${identifier}: structured_rep must be a list of 3 boxes`);
  }
  const boxes = rep.map((box: unknown, b) => {
    if (!Array.isArray(box)) throw new Error(`example ${identifier}: structured_rep[${b}] is not a list`);
    return box.map((obj: unknown, o) => {
      const where = `example ${identifier}: structured_rep[${b}][${o}]`;
      if (!isRecord(obj)) throw new Error(`${where} is not an object`);
      const parsed = {
        x_loc: obj.x_loc,
        y_loc: obj.y_loc,
        size: obj.size,
        type: obj.type,
        color: obj.color,
      } as NlvrObject;
      checkNlvrObject(parsed, where);
      return parsed;
    });
  });
  const folder = join(imagesDir, String(directory));
  return {
    identifier,
    sentence,
    label: label === 'true',
    split,
    directory: String(directory),
    boxes,
    imagePath(order: number): string {
      if (!Number.isInteger(order) || order < 0 || order >= NLVR_ORDERS) {
        throw new Error(`NLVR ${split} ${identifier}: image order must be an integer 0..5, got ${order}`);
      }
      return join(folder, `${split}-${identifier}-${order}.png`);
    },
  };
}

/**
 * Parses NLVR JSON lines. `file` names the source in errors; `imagesDir` is the split's
 * `images/` folder. Blank lines are ignored; bad lines are recorded in `errors` and skipped.
 */
export function parseNlvrLines(
  text: string,
  split: NlvrSplit,
  file: string,
  imagesDir: string,
): NlvrLoadResult {
  const examples: NlvrExample[] = [];
  const errors: NlvrLoadError[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(lines[i]);
      } catch (err) {
        throw new Error(`invalid JSON (${(err as Error).message})`);
      }
      examples.push(toExample(raw, split, imagesDir));
    } catch (err) {
      errors.push({ file, line: i + 1, message: `${file}:${i + 1}: ${(err as Error).message}` });
    }
  }
  return { examples, errors };
}

/** Reads an NLVR JSON-lines file (e.g. .../nlvr/dev/dev.json); images are in its `images/` sibling. */
export async function readNlvrFile(file: string, split: NlvrSplit): Promise<NlvrLoadResult> {
  const text = await readFile(file, 'utf8');
  return parseNlvrLines(text, split, file, join(dirname(file), 'images'));
}

/** Loads `<data>/nlvr/<split>/<split>.json`. Throws `DataUnavailableError` when it is absent. */
export async function loadNlvr(split: NlvrSplit, options: DataDirOptions = {}): Promise<NlvrLoadResult> {
  if (split !== 'train' && split !== 'dev' && split !== 'test') {
    throw new Error(`loadNlvr: split must be train, dev or test, got ${JSON.stringify(split)}`);
  }
  return readNlvrFile(dataPath(`nlvr/${split}/${split}.json`, options), split);
}

/**
 * Cuts the three 100×100 boxes out of a decoded NLVR picture (`channels` 3 or 4 per pixel;
 * 4 = RGBA, flattened on white). Pure: no I/O. `source` names the picture in errors.
 */
export function cropNlvrBoxes(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  source = 'NLVR image',
): [RgbImage, RgbImage, RgbImage] {
  if (width !== NLVR_IMAGE_WIDTH || height !== NLVR_IMAGE_HEIGHT) {
    throw new Error(
      `${source}: expected a ${NLVR_IMAGE_WIDTH}×${NLVR_IMAGE_HEIGHT} picture, got ${width}×${height}`,
    );
  }
  if (channels !== 3 && channels !== 4)
    throw new Error(`${source}: expected 3 or 4 channels, got ${channels}`);
  if (pixels.length !== width * height * channels) {
    throw new Error(`${source}: ${pixels.length} bytes do not match ${width}×${height}×${channels}`);
  }
  const size = NLVR_BOX_SIZE;
  const crop = (x0: number): RgbImage => {
    const data = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const src = (y * width + x0 + x) * channels;
        const dst = (y * size + x) * 3;
        const alpha = channels === 4 ? pixels[src + 3] / 255 : 1;
        for (let c = 0; c < 3; c++) data[dst + c] = Math.round(pixels[src + c] * alpha + 255 * (1 - alpha));
      }
    }
    return { width: size, height: size, data };
  };
  return [crop(NLVR_BOX_OFFSETS[0]), crop(NLVR_BOX_OFFSETS[1]), crop(NLVR_BOX_OFFSETS[2])];
}

/** Decodes a PNG file to raw pixels; a missing file is an error naming its path. */
async function decodePng(
  path: string,
): Promise<{ pixels: Uint8Array; width: number; height: number; channels: number }> {
  try {
    await access(path);
  } catch {
    throw new Error(`NLVR image not found: ${path}`);
  }
  try {
    const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
    return {
      pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      channels: info.channels,
    };
  } catch (err) {
    throw new Error(`NLVR image ${path} could not be decoded: ${(err as Error).message}`);
  }
}

/** The three 100×100 RGB box images of `example`'s picture in box order `order` (0..5). */
export async function loadNlvrImages(
  example: NlvrExample,
  order = 0,
): Promise<[RgbImage, RgbImage, RgbImage]> {
  const path = example.imagePath(order);
  const { pixels, width, height, channels } = await decodePng(path);
  return cropNlvrBoxes(pixels, width, height, channels, path);
}
