/**
 * Image files or encoded bytes → the pixel batch a MavenModel takes (Node): decodes with sharp,
 * then preprocesses exactly as MavenModel.preprocessRgb does. It was MavenModel.preprocess until
 * decoding moved out of src/maven so that the model runs in a browser, where callers decode with a
 * canvas and call preprocessRgb themselves.
 */
import type { ImageBatch, MavenModel } from '../maven/model.ts';
import { decodeImage } from './decode-image.ts';

/** Decodes and preprocesses images (paths or encoded bytes) for both encoders; null when there are none. */
export async function preprocessImages(
  model: MavenModel,
  images: readonly (string | Uint8Array)[],
): Promise<ImageBatch | null> {
  if (images.length === 0) return null;
  if (images.length > model.config.maxImages) {
    throw new Error(`${images.length} images given, but this model takes at most ${model.config.maxImages}`);
  }
  const decoded = await Promise.all(images.map((image) => decodeImage(image)));
  return model.preprocessRgb(decoded);
}
