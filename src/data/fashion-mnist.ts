/**
 * Fashion-MNIST reader: the (gzipped) IDX files of Xiao, Rasul & Vollgraf (2017) — 28×28
 * grayscale product photos in 10 classes. Real images for image–caption pretraining and
 * multi-image questions. The IDX format: big-endian magic (0x00000803 images / 0x00000801
 * labels), then the dimension sizes as big-endian uint32, then uint8 data.
 * Every inconsistency (magic, truncation, count mismatch) is an error naming the file and numbers.
 */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { type DataDirOptions, dataPath } from './data-dir.ts';

/** Class names in label order, as in the Fashion-MNIST README. */
export const FASHION_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

export const IDX_IMAGES_MAGIC = 2051; // 0x00000803: unsigned bytes, 3 dimensions
export const IDX_LABELS_MAGIC = 2049; // 0x00000801: unsigned bytes, 1 dimension

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count·rows·cols bytes, image-major then row-major ([N, rows, cols]); 0 = background. */
  pixels: Uint8Array;
}

export interface FashionMnist {
  images: IdxImages;
  /** One class index 0..9 per image. */
  labels: Uint8Array;
}

/** Un-gzips when the bytes start with the gzip magic (1f 8b); raw IDX passes through. */
function maybeGunzip(bytes: Uint8Array, source: string): Uint8Array {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return new Uint8Array(gunzipSync(bytes));
    } catch (err) {
      throw new Error(`${source}: gzip data is corrupt or truncated (${(err as Error).message})`);
    }
  }
  return bytes;
}

function readHeader(bytes: Uint8Array, source: string, magic: number, dims: number): number[] {
  const headerBytes = 4 + 4 * dims;
  if (bytes.length < headerBytes) {
    throw new Error(`${source}: truncated IDX header (${bytes.length} bytes, need ${headerBytes})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found = view.getUint32(0, false);
  if (found !== magic) {
    throw new Error(
      `${source}: bad IDX magic number ${found} (0x${found.toString(16).padStart(8, '0')}), expected ${magic} (0x${magic.toString(16).padStart(8, '0')})`,
    );
  }
  return Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i, false));
}

function checkPayload(bytes: Uint8Array, source: string, offset: number, dims: number[]): Uint8Array {
  const expected = dims.reduce((a, b) => a * b, 1);
  const available = bytes.length - offset;
  if (available < expected) {
    throw new Error(
      `${source}: truncated IDX data: header declares ${dims.join('×')} = ${expected} bytes, file has ${available}`,
    );
  }
  if (available > expected) {
    throw new Error(
      `${source}: IDX data has ${available - expected} trailing bytes beyond the declared ${dims.join('×')} = ${expected}`,
    );
  }
  return bytes.subarray(offset, offset + expected);
}

/** Parses IDX image bytes (gzipped or raw). `source` names the file in errors. */
export function parseIdxImages(bytes: Uint8Array, source = 'IDX images'): IdxImages {
  const raw = maybeGunzip(bytes, source);
  const [count, rows, cols] = readHeader(raw, source, IDX_IMAGES_MAGIC, 3);
  const pixels = checkPayload(raw, source, 16, [count, rows, cols]);
  return { count, rows, cols, pixels };
}

/** Parses IDX label bytes (gzipped or raw). `source` names the file in errors. */
export function parseIdxLabels(bytes: Uint8Array, source = 'IDX labels'): Uint8Array {
  const raw = maybeGunzip(bytes, source);
  const [count] = readHeader(raw, source, IDX_LABELS_MAGIC, 1);
  return checkPayload(raw, source, 8, [count]);
}

export async function readIdxImages(path: string): Promise<IdxImages> {
  return parseIdxImages(new Uint8Array(await readFile(path)), path);
}

export async function readIdxLabels(path: string): Promise<Uint8Array> {
  return parseIdxLabels(new Uint8Array(await readFile(path)), path);
}

/** Checks that images and labels pair up and labels are class indices; returns them as a set. */
export function pairFashionMnist(
  images: IdxImages,
  labels: Uint8Array,
  imagesSource = 'images',
  labelsSource = 'labels',
): FashionMnist {
  if (images.count !== labels.length) {
    throw new Error(
      `Fashion-MNIST: ${imagesSource} has ${images.count} images but ${labelsSource} has ${labels.length} labels`,
    );
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= FASHION_CLASSES.length) {
      throw new Error(
        `Fashion-MNIST: ${labelsSource} label ${i} is ${labels[i]}, outside 0..${FASHION_CLASSES.length - 1}`,
      );
    }
  }
  return { images, labels };
}

const FILES = {
  train: ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'],
  test: ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'],
} as const;

/**
 * Loads a split from `<data>/fashion-mnist/`: 'train' (60k) or 'test' (t10k, 10k).
 * Throws `DataUnavailableError` when the files are absent.
 */
export async function loadFashionMnist(
  split: 'train' | 'test',
  options: DataDirOptions = {},
): Promise<FashionMnist> {
  const files = FILES[split];
  if (files === undefined)
    throw new Error(`loadFashionMnist: split must be 'train' or 'test', got ${JSON.stringify(split)}`);
  const imagesPath = dataPath(`fashion-mnist/${files[0]}`, options);
  const labelsPath = dataPath(`fashion-mnist/${files[1]}`, options);
  const [images, labels] = await Promise.all([readIdxImages(imagesPath), readIdxLabels(labelsPath)]);
  return pairFashionMnist(images, labels, imagesPath, labelsPath);
}

/** Image `index` as a rows×cols byte view (no copy). */
export function idxImage(images: IdxImages, index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index >= images.count) {
    throw new Error(`idxImage: index ${index} outside 0..${images.count - 1}`);
  }
  const size = images.rows * images.cols;
  return images.pixels.subarray(index * size, (index + 1) * size);
}
