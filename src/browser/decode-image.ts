/**
 * Image files to RGB in a browser (the counterpart of src/node/decode-image.ts, which uses
 * sharp): the browser's own decoders through createImageBitmap, then a canvas for the pixels.
 * As in Node, EXIF orientation is applied and alpha is flattened on white (what a person sees of
 * a transparent logo on a page). Colour-space conversion is turned off so an untagged PNG gives
 * its stored bytes, as sharp does; everything after decoding is the core's (preprocessRgb).
 */
import { type DecodedImage, ImageError } from '../models/image.ts';

/** Same ceiling as the Node decoder's default: beyond it an input is likelier a bomb than a photo. */
export const MAX_PIXELS = 100_000_000;

/** Decodes an image file (PNG, JPEG, GIF, WebP, AVIF, … whatever the browser reads) to 8-bit RGB. */
export async function decodeImageBlob(blob: Blob, label = 'image'): Promise<DecodedImage> {
  if (blob.size === 0) throw new ImageError(label, 'empty (0 bytes), not an image');
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, {
      colorSpaceConversion: 'none',
      imageOrientation: 'from-image',
      premultiplyAlpha: 'none',
    });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new ImageError(
      label,
      `not a readable image (${why.replace(/\.$/, '')}); truncated, corrupt or not an image?`,
    );
  }
  try {
    const { width, height } = bitmap;
    if (width <= 0 || height <= 0) throw new ImageError(label, `image has zero size (${width}×${height})`);
    if (width * height > MAX_PIXELS) {
      throw new ImageError(
        label,
        `${width}×${height} = ${width * height} pixels exceeds the limit of ${MAX_PIXELS}`,
      );
    }
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d', { willReadFrequently: true });
    if (!context) throw new ImageError(label, 'this browser gave no 2D canvas to read the pixels with');
    context.fillStyle = '#fff';
    context.fillRect(0, 0, width, height);
    context.drawImage(bitmap, 0, 0);
    const rgba = context.getImageData(0, 0, width, height).data;
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      rgb[j] = rgba[i];
      rgb[j + 1] = rgba[i + 1];
      rgb[j + 2] = rgba[i + 2];
    }
    return { width, height, rgb };
  } finally {
    bitmap.close();
  }
}
