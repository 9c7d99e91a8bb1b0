/** Image decoding in worker threads: the same pixels as on the main thread, errors, and killing. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { fitToSquare, ImageError, normalizeImage } from '../../src/models/image.ts';
import { decodeImage } from '../../src/node/decode-image.ts';
import { ImageDecoderPool } from '../../src/serve/image-decoder.ts';
import { smallModel } from '../maven/small-model.ts';

const model = smallModel();
const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../fixtures/images/${name}`, import.meta.url)));
const configs = [model.preprocessConfig(), model.preprocessConfig(48)];

describe('ImageDecoderPool', () => {
  const pool = new ImageDecoderPool(1);
  after(() => pool.close());

  it('gives exactly the pixels MavenModel.preprocessRgb gives, and the square the ViT sees', async () => {
    for (const name of ['rgba.png', 'blocks.jpg', 'exif-orientation-6.jpg', 'palette.png']) {
      const bytes = fixture(name);
      const got = await pool.decode({ bytes, label: name, maxPixels: 1e7, configs });
      const decoded = await decodeImage(bytes, name);
      const want = model.preprocessRgb([decoded]).pixels.data as Float32Array;
      assert.deepEqual(got.pixels[0], want, name);
      // The second resolution (a tokenizer with its own ViT size) as preprocessRgb makes it too.
      const c = configs[1];
      assert.deepEqual(got.pixels[1], normalizeImage(fitToSquare(decoded, c), c.mean, c.std).data, name);
      assert.deepEqual(got.view, fitToSquare(decoded, configs[0]), name);
    }
    assert.equal(pool.started, 1, 'one worker, reused');
  });

  it('reports undecodable bytes as ImageError, naming the image', async () => {
    await assert.rejects(
      pool.decode({ bytes: fixture('truncated.png'), label: 'img-7', maxPixels: 1e7, configs }),
      (e: unknown) => e instanceof ImageError && e.label === 'img-7' && /truncated|corrupt/.test(e.message),
    );
    await assert.rejects(
      pool.decode({ bytes: fixture('rgba.png'), label: 'tiny-limit', maxPixels: 2, configs }),
      (e: unknown) => e instanceof ImageError && /exceeds the limit of 2 /.test(e.message),
    );
  });

  it('stops a 25 MP decode when its signal aborts, and goes on with a new worker', async () => {
    const big = new Uint8Array(
      await sharp({ create: { width: 5000, height: 5000, channels: 3, background: '#336699' } })
        .png()
        .toBuffer(),
    );
    const before = pool.started;
    const controller = new AbortController();
    const t0 = performance.now();
    setTimeout(() => controller.abort(new Error('deadline')), 30);
    await assert.rejects(
      pool.decode({ bytes: big, label: 'big', maxPixels: 25e6, configs }, controller.signal),
      /deadline/,
    );
    assert.ok(performance.now() - t0 < 300, `aborted after ${(performance.now() - t0).toFixed(0)} ms`);
    const again = await pool.decode({ bytes: fixture('gray.png'), label: 'g', maxPixels: 1e7, configs });
    assert.equal(again.pixels[0].length, 3 * 32 * 32);
    assert.equal(pool.started, before + 1);
  });

  it('refuses work once closed', async () => {
    const p = new ImageDecoderPool(1);
    await p.close();
    await assert.rejects(
      p.decode({ bytes: fixture('gray.png'), label: 'g', maxPixels: 1e7, configs }),
      /closed/,
    );
  });
});
