/** Image formats told from their first bytes: raster formats in, SVG and anything else out. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { sniffImageFormat } from '../../src/serve/image-format.ts';

const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../fixtures/images/${name}`, import.meta.url)));
const text = (s: string) => new TextEncoder().encode(s);

describe('sniffImageFormat', () => {
  it('accepts the raster formats sharp decodes, whatever their name says', async () => {
    assert.deepEqual(sniffImageFormat(fixture('rgba.png')), { ok: true, format: 'png' });
    assert.deepEqual(sniffImageFormat(fixture('blocks.jpg')), { ok: true, format: 'jpeg' });
    assert.deepEqual(sniffImageFormat(fixture('blocks.gif')), { ok: true, format: 'gif' });
    assert.deepEqual(sniffImageFormat(fixture('blocks.webp')), { ok: true, format: 'webp' });
    const raw = { raw: { width: 4, height: 4, channels: 3 as const } };
    const tiff = new Uint8Array(await sharp(Buffer.alloc(48), raw).tiff().toBuffer());
    assert.deepEqual(sniffImageFormat(tiff), { ok: true, format: 'tiff' });
    const avif = new Uint8Array(await sharp(Buffer.alloc(48), raw).avif().toBuffer());
    assert.deepEqual(sniffImageFormat(avif), { ok: true, format: 'heif' });
  });

  it('refuses SVG in every spelling, PDF, and bytes of no known format', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>';
    for (const s of [
      svg,
      `  \n${svg}`,
      `\uFEFF${svg}`,
      `<?xml version="1.0" encoding="UTF-8"?>\n${svg}`,
      `<!-- a comment -->\n<SVG width="1" height="1"/>`,
      '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x">',
    ]) {
      assert.deepEqual(sniffImageFormat(text(s)), { ok: false, format: 'svg' }, s);
    }
    assert.deepEqual(sniffImageFormat(text('%PDF-1.7\n')), { ok: false, format: 'pdf' });
    assert.deepEqual(sniffImageFormat(fixture('not-an-image.txt')), { ok: false, format: 'unknown' });
    assert.deepEqual(sniffImageFormat(new Uint8Array([0x89, 0x50])), { ok: false, format: 'unknown' });
    assert.deepEqual(sniffImageFormat(text('<html><body>hi</body></html>')), {
      ok: false,
      format: 'unknown',
    });
  });
});
