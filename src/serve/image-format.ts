/**
 * Which image formats the server decodes, told from the first bytes before any decoder sees them.
 *
 * Only raster formats whose cost is bounded by their pixel count (checked from the header before
 * decoding): PNG, JPEG, GIF, WebP, TIFF, AVIF/HEIF. Vector and document formats are refused:
 * rasterizing an SVG is unbounded work — a 600-byte SVG with a large Gaussian blur kept a core
 * busy for 18 s at under the pixel limit — and it runs inside the decoder, where no deadline can
 * interrupt it. Users can send such images as PNG or JPEG.
 */

export type RasterFormat = 'png' | 'jpeg' | 'gif' | 'webp' | 'tiff' | 'heif';

export type Sniffed = { ok: true; format: RasterFormat } | { ok: false; format: 'svg' | 'pdf' | 'unknown' };

const startsWith = (b: Uint8Array, sig: readonly number[], at = 0) =>
  b.length >= at + sig.length && sig.every((x, i) => b[at + i] === x);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

const HEIF_BRANDS = new Set(['avif', 'avis', 'heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);

/** The format of `bytes` by its signature; SVG also when it opens with XML or `<svg`. */
export function sniffImageFormat(bytes: Uint8Array): Sniffed {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { ok: true, format: 'png' };
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { ok: true, format: 'jpeg' };
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a')))
    return { ok: true, format: 'gif' };
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8))
    return { ok: true, format: 'webp' };
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a]))
    return { ok: true, format: 'tiff' };
  if (startsWith(bytes, ascii('ftyp'), 4)) {
    const brand = String.fromCharCode(...bytes.subarray(8, 12));
    if (HEIF_BRANDS.has(brand)) return { ok: true, format: 'heif' };
  }
  if (startsWith(bytes, ascii('%PDF'))) return { ok: false, format: 'pdf' };
  // SVG is text: skip a UTF-8 byte-order mark and whitespace, then `<` of `<?xml`, `<svg`, `<!--`…
  const head = new TextDecoder('utf-8', { fatal: false })
    .decode(bytes.subarray(0, 4096))
    .replace(/^\uFEFF/, '')
    .trimStart()
    .toLowerCase();
  if (
    head.startsWith('<') &&
    (head.includes('<svg') || head.startsWith('<?xml') || head.startsWith('<!doctype svg'))
  )
    return { ok: false, format: 'svg' };
  return { ok: false, format: 'unknown' };
}

export const ACCEPTED_FORMATS = 'PNG, JPEG, GIF, WebP, TIFF or AVIF/HEIF';
