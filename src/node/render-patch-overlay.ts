/**
 * Patch overlays as PNG files (Node): decodes the input when it is a path or encoded bytes, draws
 * with src/maven/overlay.ts (drawPatchOverlay, over RGB bytes, browser-safe) and encodes with sharp.
 */
import { drawPatchOverlay, type PatchOverlayOptions } from '../maven/overlay.ts';
import { checkImage, type DecodedImage } from '../models/image.ts';
import { decodeImage } from './decode-image.ts';
import { encodePng } from './encode-png.ts';

/** Renders the image with the patch grid's dropped cells darkened and the kept region outlined; PNG bytes. */
export async function renderPatchOverlay(
  image: DecodedImage | Uint8Array | string,
  grid: { rows: number; cols: number },
  kept: ArrayLike<number | boolean>,
  options: PatchOverlayOptions = {},
): Promise<Uint8Array> {
  const source =
    typeof image === 'string' || image instanceof Uint8Array
      ? await decodeImage(image, typeof image === 'string' ? image : 'renderPatchOverlay image')
      : image;
  checkImage(source, 'renderPatchOverlay image');
  return encodePng(drawPatchOverlay(source, grid, kept, options));
}
