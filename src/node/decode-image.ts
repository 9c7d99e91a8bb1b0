/**
 * Decoding image files and encoded bytes to RGB (Node): sharp reads the formats, node:fs the
 * files. Everything after decoding (Pillow-exact resizing, normalisation) is src/models/image.ts,
 * which takes RGB bytes and so also runs in a browser, where a canvas does the decoding.
 */
import { readFile } from 'node:fs/promises';
import sharp, { type Metadata } from 'sharp';
import { type DecodedImage, ImageError } from '../models/image.ts';

export interface DecodeOptions {
  /** Name used in errors; defaults to the path, or "image (N bytes)" for buffers. */
  label?: string;
  /**
   * Largest width × height accepted, checked from the header before any pixel is decoded. The
   * default, 100 MP (300 MB as RGB), is far above any photo worth shrinking to 336²; beyond it
   * an input is more likely a decompression bomb or a mistake.
   */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

const WHITE = { r: 255, g: 255, b: 255 };

/**
 * Decodes PNG, JPEG, WebP, GIF (first frame), TIFF, AVIF... to 8-bit RGB. EXIF orientation is
 * applied (phones store pictures sideways), grey becomes RGB, 16-bit becomes 8-bit, and alpha is
 * flattened on white: the colour under a transparent pixel is arbitrary (often black), while
 * transparent images (logos, diagrams, screenshots) are made to be seen on a white page, so white
 * is what a person looking at the image sees. (Pillow's convert('RGB'), used by the reference
 * pipelines, just drops alpha; that shows the arbitrary colours instead.)
 */
export async function decodeImage(
  input: string | Uint8Array,
  label?: string,
  options: DecodeOptions = {},
): Promise<DecodedImage> {
  const name =
    label ?? options.label ?? (typeof input === 'string' ? input : `image (${input?.length} bytes)`);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(Number.isFinite(maxPixels) && maxPixels > 0)) {
    throw new ImageError(name, `maxPixels must be a positive number, got ${maxPixels}`);
  }
  let bytes: Uint8Array;
  if (typeof input === 'string') bytes = await readImageFile(input, name);
  else if (input instanceof Uint8Array) bytes = input;
  else throw new ImageError(name, `expected a file path or a Uint8Array of image bytes, got ${typeof input}`);
  if (bytes.length === 0) throw new ImageError(name, 'empty (0 bytes), not an image');

  const pngSize = pngHeaderSize(bytes);
  if (pngSize && (pngSize.width === 0 || pngSize.height === 0)) {
    throw new ImageError(name, `PNG header says ${pngSize.width}×${pngSize.height}: an image needs pixels`);
  }
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImageError(name, `not a readable image (${sharpMessage(e)})`);
  }
  const { width = 0, height = 0 } = meta;
  if (width <= 0 || height <= 0)
    throw new ImageError(name, `${meta.format} image has zero size (${width}×${height})`);
  if (width * height > maxPixels) {
    throw new ImageError(
      name,
      `${width}×${height} = ${width * height} pixels exceeds the limit of ${maxPixels} (DecodeOptions.maxPixels)`,
    );
  }

  try {
    const { data, info } = await sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels })
      .autoOrient()
      .flatten({ background: WHITE })
      .toColourspace('srgb') // grey → 3 channels, 16-bit → 8-bit, CMYK → RGB
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw new Error(
        `decoder returned ${info.channels} channels, ${data.length} bytes for ${info.width}×${info.height}`,
      );
    }
    return {
      width: info.width,
      height: info.height,
      rgb: new Uint8Array(data.buffer, data.byteOffset, data.length),
    };
  } catch (e) {
    throw new ImageError(
      name,
      `cannot decode the ${meta.format} data (${sharpMessage(e)}); truncated or corrupt?`,
    );
  }
}

async function readImageFile(path: string, name: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ImageError(name, `file not found: ${path}`);
    if (code === 'EISDIR') throw new ImageError(name, `is a directory, not an image file: ${path}`);
    if (code === 'EACCES') throw new ImageError(name, `permission denied reading ${path}`);
    throw new ImageError(name, `cannot read ${path} (${(e as Error).message})`);
  }
}

/** Width and height from a PNG's IHDR, or null when the bytes are not a PNG. */
function pngHeaderSize(bytes: Uint8Array): { width: number; height: number } | null {
  const signature = [137, 80, 78, 71, 13, 10, 26, 10];
  if (bytes.length < 24 || signature.some((b, i) => bytes[i] !== b)) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 24);
  return { width: dv.getUint32(16), height: dv.getUint32(20) };
}

function sharpMessage(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).trim().replace(/[:\s]+$/, '');
}
