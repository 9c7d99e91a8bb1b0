/**
 * RGB pixels → PNG bytes (Node, via sharp). The pictures themselves are drawn over RGB bytes in
 * the core (src/maven/overlay.ts), which a browser can put on a canvas instead.
 */
import sharp from 'sharp';
import type { DecodedImage } from '../models/image.ts';

export async function encodePng(image: DecodedImage): Promise<Uint8Array> {
  const png = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.length);
}
