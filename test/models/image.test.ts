/**
 * Image decoding and preprocessing. Expected pixels come from how the fixtures were built
 * (scripts/fixtures/make_images.ts writes known pixels into hand-encoded PNGs), from formulas
 * computed here, or from Pillow + NumPy (scripts/fixtures/image_reference.py), never from the
 * code under test.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  BLOCKS,
  EXIF_ROTATED,
  FIXTURE_DIR,
  GRAY,
  GRAY_ALPHA,
  NOISE,
  noisePixels,
  PALETTE,
  RGB16,
  RGBA,
} from '../../scripts/fixtures/make_images.ts';
import { HostTensor } from '../../src/engine/index.ts';
import {
  CLIP_PREPROCESS,
  centerCrop,
  type DecodedImage,
  expandToSquare,
  fitToSquare,
  ImageError,
  type ImagePreprocessConfig,
  normalizeImage,
  padColour,
  preprocessImage,
  resizeImage,
  rgbFromTensor,
  SEED_PREPROCESS,
  stackImages,
} from '../../src/models/image.ts';
import { decodeImage } from '../../src/node/decode-image.ts';

const fixture = (name: string) => join(FIXTURE_DIR, name);

function pixel(image: DecodedImage, x: number, y: number): number[] {
  const p = (y * image.width + x) * 3;
  return [...image.rgb.subarray(p, p + 3)];
}

function solid(width: number, height: number, colour: number[]): DecodedImage {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb.set(colour, i * 3);
  return { width, height, rgb };
}

function assertClose(actual: number[], expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((a, i) => {
    assert.ok(Math.abs(a - expected[i]) <= tol, `${what}[${i}]: ${a} vs ${expected[i]} (±${tol})`);
  });
}

/** Compositing on white, in real numbers: c·a + 255·(1 − a). */
const onWhite = (c: number, alpha: number) => (c * alpha) / 255 + 255 * (1 - alpha / 255);

describe('decodeImage: formats to RGB', () => {
  it('8-bit grey becomes equal RGB channels', async () => {
    const img = await decodeImage(fixture('gray.png'));
    assert.deepEqual([img.width, img.height], [GRAY.width, GRAY.height]);
    assert.deepEqual(
      [...img.rgb],
      GRAY.values.flatMap((g) => [g, g, g]),
    );
  });

  it('grey + alpha is flattened on white', async () => {
    const img = await decodeImage(fixture('gray-alpha.png'));
    GRAY_ALPHA.values.forEach(([g, a], i) => {
      const v = onWhite(g, a);
      assertClose(pixel(img, i % 2, Math.floor(i / 2)), [v, v, v], 1, `pixel ${i}`);
    });
    // Fully transparent is white whatever the colour underneath; opaque is untouched.
    assert.deepEqual(pixel(img, 1, 0), [255, 255, 255]);
    assert.deepEqual(pixel(img, 0, 0), [100, 100, 100]);
  });

  it('RGBA is flattened on white', async () => {
    const img = await decodeImage(fixture('rgba.png'));
    RGBA.values.forEach(([r, g, b, a], i) => {
      const expected = [onWhite(r, a), onWhite(g, a), onWhite(b, a)];
      assertClose(pixel(img, i % 2, Math.floor(i / 2)), expected, 1, `pixel ${i}`);
    });
    assert.deepEqual(pixel(img, 1, 0), [255, 255, 255]); // transparent blue → white
  });

  it('palette PNG', async () => {
    const img = await decodeImage(fixture('palette.png'));
    assert.deepEqual(
      [...img.rgb],
      PALETTE.indices.flatMap((i) => PALETTE.colours[i]),
    );
  });

  it('16-bit PNG becomes 8-bit (v / 257)', async () => {
    const img = await decodeImage(fixture('rgb16.png'));
    assert.deepEqual(
      [...img.rgb],
      RGB16.values.flat().map((v) => v / 257),
    );
  });

  it('8-bit RGB PNG is exact', async () => {
    const img = await decodeImage(readFileSync(fixture('rgb-13x9.png')), 'noise');
    assert.deepEqual([img.width, img.height], [NOISE.width, NOISE.height]);
    assert.deepEqual(img.rgb, noisePixels());
  });

  for (const [file, tol] of [
    ['blocks.jpg', 3],
    ['blocks.webp', 0],
    ['blocks.gif', 2],
  ] as const) {
    it(`${file}: the four quadrants`, async () => {
      const img = await decodeImage(fixture(file));
      assert.deepEqual([img.width, img.height], [BLOCKS.size, BLOCKS.size]);
      for (let y = 0; y < BLOCKS.size; y++) {
        for (let x = 0; x < BLOCKS.size; x++) {
          const q = BLOCKS.quadrants[(y < 8 ? 0 : 2) + (x < 8 ? 0 : 1)];
          assertClose(pixel(img, x, y), q, tol, `${file} (${x}, ${y})`);
        }
      }
    });
  }

  it('EXIF orientation 6 is applied (rotated 90° clockwise)', async () => {
    const img = await decodeImage(fixture('exif-orientation-6.jpg'));
    // Stored 16×8 with the left half red: shown 8×16 with the top half red.
    assert.deepEqual([img.width, img.height], [EXIF_ROTATED.storedHeight, EXIF_ROTATED.storedWidth]);
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        const expected = y < img.height / 2 ? EXIF_ROTATED.left : EXIF_ROTATED.right;
        assertClose(pixel(img, x, y), expected, 8, `(${x}, ${y})`);
      }
    }
  });
});

describe('decodeImage: errors', () => {
  async function rejects(input: string | Uint8Array, pattern: RegExp, maxPixels?: number): Promise<void> {
    await assert.rejects(decodeImage(input, undefined, { maxPixels }), (e: unknown) => {
      assert.ok(e instanceof ImageError, `expected ImageError, got ${e}`);
      assert.match(e.message, pattern);
      return true;
    });
  }

  it('missing file, directory', async () => {
    await rejects(fixture('no-such-image.png'), /no-such-image\.png: file not found/);
    await rejects(FIXTURE_DIR, /is a directory/);
  });

  it('0-byte file, text file, arbitrary bytes', async () => {
    await rejects(fixture('empty.png'), /empty\.png: empty \(0 bytes\)/);
    await rejects(
      fixture('not-an-image.txt'),
      /not-an-image\.txt: not a readable image \(.*unsupported image format/,
    );
    await rejects(new Uint8Array([1, 2, 3, 4, 5]), /image \(5 bytes\): not a readable image/);
  });

  it('zero-size image', async () => {
    await rejects(fixture('zero-width.png'), /zero-width\.png: PNG header says 0×4/);
  });

  it('truncated PNG', async () => {
    await rejects(
      fixture('truncated.png'),
      /truncated\.png: cannot decode the png data .*truncated or corrupt/,
    );
  });

  it('absurdly large images are refused from the header, with a configurable limit', async () => {
    await rejects(
      fixture('huge-header.png'),
      /100000×100000 = 10000000000 pixels exceeds the limit of 100000000/,
    );
    await rejects(fixture('gray.png'), /3×2 = 6 pixels exceeds the limit of 5/, 5);
    assert.equal((await decodeImage(fixture('gray.png'), undefined, { maxPixels: 6 })).rgb.length, 18);
  });

  it('the label names the input', async () => {
    await assert.rejects(
      decodeImage(new Uint8Array(0), 'sample 7 / image 2'),
      /^ImageError: sample 7 \/ image 2: empty/,
    );
  });
});

describe('preprocessing', () => {
  const config = (over: Partial<ImagePreprocessConfig>): ImagePreprocessConfig => ({
    ...CLIP_PREPROCESS,
    ...over,
  });

  it('a solid colour normalises to (c/255 − mean)/std per channel', () => {
    const colour = [200, 100, 30];
    const t = preprocessImage(solid(40, 30, colour), config({ size: 16 }));
    assert.deepEqual(t.shape, [3, 16, 16]);
    assert.equal(t.dtype, 'float32');
    for (let c = 0; c < 3; c++) {
      const expected = (colour[c] / 255 - CLIP_PREPROCESS.mean[c]) / CLIP_PREPROCESS.std[c];
      for (let i = 0; i < 256; i++) {
        const v = t.data[c * 256 + i] as number;
        assert.ok(Math.abs(v - expected) < 1e-6, `channel ${c}: ${v} vs ${expected}`);
      }
    }
  });

  it("2×1 image, 'stretch' with nearest and bilinear, against formulas", () => {
    const [p0, p1] = [
      [0, 40, 200],
      [200, 120, 0],
    ];
    const image: DecodedImage = { width: 2, height: 1, rgb: Uint8Array.from([...p0, ...p1]) };
    const S = 4;
    for (const resample of ['nearest', 'bilinear'] as const) {
      const out = rgbFromTensor(
        preprocessImage(image, config({ size: S, resample, mode: 'stretch' })),
        CLIP_PREPROCESS.mean,
        CLIP_PREPROCESS.std,
      );
      for (let x = 0; x < S; x++) {
        let expected: number[];
        if (resample === 'nearest') {
          expected = Math.floor(((x + 0.5) * 2) / S) === 0 ? p0 : p1; // sample at the output pixel centre
        } else {
          // Pixel centres line up: source coordinate (x + 0.5)·2/S − 0.5, clamped, then linear.
          const u = Math.min(Math.max(((x + 0.5) * 2) / S - 0.5, 0), 1);
          expected = p0.map((a, c) => Math.round(a * (1 - u) + p1[c] * u));
        }
        for (let y = 0; y < S; y++) assert.deepEqual(pixel(out, x, y), expected, `${resample} (${x}, ${y})`);
      }
    }
  });

  it("'clip' keeps the middle of a wide image", async () => {
    const [red, green, blue] = [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
    ];
    const W = 36;
    const H = 12;
    const image = solid(W, H, green);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        if (x < W / 3) image.rgb.set(red, (y * W + x) * 3);
        if (x >= (2 * W) / 3) image.rgb.set(blue, (y * W + x) * 3);
      }
    }
    const S = 6;
    const out = fitToSquare(image, config({ size: S, resample: 'bilinear' }));
    assert.deepEqual([out.width, out.height], [S, S]);
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const [r, g, b] = pixel(out, x, y);
        // The crop holds the middle third; only the outermost columns may blend a little red or blue.
        if (x > 0 && x < S - 1) assert.deepEqual([r, g, b], green, `(${x}, ${y})`);
        else assert.ok(g > 150 && r < 100 && b < 100, `(${x}, ${y}) = ${[r, g, b]}`);
      }
    }
    // The whole image, stretched: red at the left, blue at the right.
    const stretched = fitToSquare(image, config({ size: S, mode: 'stretch', resample: 'nearest' }));
    assert.deepEqual(pixel(stretched, 0, 0), red);
    assert.deepEqual(pixel(stretched, S - 1, 0), blue);
  });

  it("'pad' puts the image on the mean colour, centred", async () => {
    const red = [255, 0, 0];
    const out = fitToSquare(solid(20, 10, red), config({ size: 20, mode: 'pad' }));
    const fill = CLIP_PREPROCESS.mean.map((m) => Math.trunc(m * 255));
    assert.deepEqual(fill, [122, 116, 104]);
    assert.deepEqual(padColour(CLIP_PREPROCESS.mean), fill);
    for (let y = 0; y < 20; y++) {
      for (const x of [0, 7, 19])
        assert.deepEqual(pixel(out, x, y), y >= 5 && y < 15 ? red : fill, `(${x}, ${y})`);
    }
  });

  it('expandToSquare and centerCrop on a tall image', () => {
    const tall: DecodedImage = { width: 1, height: 3, rgb: Uint8Array.from([1, 1, 1, 2, 2, 2, 3, 3, 3]) };
    const square = expandToSquare(tall, [9, 9, 9]);
    assert.deepEqual(
      [...square.rgb].filter((_, i) => i % 3 === 0),
      [9, 1, 9, 9, 2, 9, 9, 3, 9],
    );
    const crop = centerCrop(square, 1, 1);
    assert.deepEqual([...crop.rgb], [2, 2, 2]);
    assert.throws(() => centerCrop(tall, 2, 1), /cannot crop 2×1 out of a 1×3 image/);
  });

  describe('matches Pillow + NumPy (transformers / LLaVA / torchvision pipelines)', () => {
    const ref = JSON.parse(readFileSync(fixture('pil_reference.json'), 'utf8')) as {
      cases: {
        image: 'wide' | 'tall';
        size: number;
        resample: 'bicubic' | 'bilinear' | 'nearest';
        mode: 'clip' | 'pad' | 'stretch';
        pixels: number[];
        normalised?: number[];
      }[];
      levels: number[][];
    };
    const wide: DecodedImage = { ...NOISE, rgb: noisePixels() };
    const tall: DecodedImage = {
      width: NOISE.height,
      height: NOISE.width,
      rgb: new Uint8Array(wide.rgb.length),
    };
    for (let y = 0; y < tall.height; y++) {
      for (let x = 0; x < tall.width; x++) tall.rgb.set(pixel(wide, y, x), (y * tall.width + x) * 3); // transpose
    }

    for (const c of ref.cases) {
      it(`${c.image} ${c.mode} ${c.resample} → ${c.size}²`, () => {
        const cfg = config({ size: c.size, resample: c.resample, mode: c.mode });
        const source = c.image === 'wide' ? wide : tall;
        assert.deepEqual([...fitToSquare(source, cfg).rgb], c.pixels);
        if (c.normalised) {
          const t = preprocessImage(source, cfg);
          assert.deepEqual([...t.data], c.normalised.map(Math.fround));
        }
      });
    }

    it('every 8-bit level normalises bit-exactly', () => {
      const levels: DecodedImage = { width: 256, height: 1, rgb: new Uint8Array(768) };
      for (let v = 0; v < 256; v++) levels.rgb.set([v, v, v], v * 3);
      const t = normalizeImage(levels, CLIP_PREPROCESS.mean, CLIP_PREPROCESS.std);
      for (let c = 0; c < 3; c++) {
        assert.deepEqual(
          [...t.data.subarray(c * 256, (c + 1) * 256)],
          ref.levels[c].map(Math.fround),
          `channel ${c}`,
        );
      }
    });
  });

  it('preprocesses a decoded file with the SEED preset', async () => {
    const t = preprocessImage(await decodeImage(fixture('blocks.webp')), { ...SEED_PREPROCESS, size: 32 });
    assert.deepEqual(t.shape, [3, 32, 32]);
    const back = rgbFromTensor(t, SEED_PREPROCESS.mean, SEED_PREPROCESS.std);
    assert.deepEqual(pixel(back, 2, 2), BLOCKS.quadrants[0]);
    assert.deepEqual(pixel(back, 29, 29), BLOCKS.quadrants[3]);
  });

  it('resizeImage upsamples a constant image to the same constant', () => {
    for (const resample of ['bicubic', 'bilinear', 'nearest'] as const) {
      const out = resizeImage(solid(3, 5, [7, 128, 250]), 11, 4, resample);
      for (let i = 0; i < 44; i++) assert.deepEqual(pixel(out, i % 11, Math.floor(i / 11)), [7, 128, 250]);
    }
  });

  it('bad configs and images are named', () => {
    const img = solid(4, 4, [0, 0, 0]);
    assert.throws(
      () => preprocessImage(img, config({ size: 0 })),
      /ImagePreprocessConfig: size must be an integer/,
    );
    assert.throws(() => preprocessImage(img, config({ std: [1, 0, 1] })), /std must be 3 positive numbers/);
    assert.throws(
      () => preprocessImage(img, config({ mode: 'letterbox' as 'pad' })),
      /mode must be 'clip', 'pad' or 'stretch', got 'letterbox'/,
    );
    assert.throws(
      () => preprocessImage(img, config({ resample: 'lanczos' as 'bicubic' })),
      /resample must be 'bicubic', 'bilinear' or 'nearest'/,
    );
    assert.throws(
      () => preprocessImage({ width: 4, height: 4, rgb: new Uint8Array(10) }, CLIP_PREPROCESS),
      /preprocessImage input: rgb must be a Uint8Array of 4×4×3 = 48 bytes, got 10/,
    );
    assert.throws(() => resizeImage(img, 0, 3, 'bicubic'), /target size must be positive integers, got 0×3/);
  });
});

describe('stackImages and rgbFromTensor', () => {
  it('stacks [3, S, S] into [N, 3, S, S] in order', () => {
    const a = new HostTensor('float32', [3, 2, 2], new Float32Array(12).fill(1));
    const b = new HostTensor('float32', [3, 2, 2], new Float32Array(12).fill(2));
    const s = stackImages([a, b, a]);
    assert.deepEqual(s.shape, [3, 3, 2, 2]);
    assert.deepEqual([s.data[0], s.data[12], s.data[24], s.data[35]], [1, 2, 1, 1]);
  });

  it('refuses empty lists and mismatched shapes, naming the image', () => {
    assert.throws(() => stackImages([]), /no images/);
    const a = new HostTensor('float32', [3, 2, 2], new Float32Array(12));
    const b = new HostTensor('float32', [3, 4, 4], new Float32Array(48));
    assert.throws(() => stackImages([a, b]), /image 1 is float32 \[3, 4, 4\], expected float32 \[3, 2, 2\]/);
  });

  it('rgbFromTensor inverts the normalisation and checks shapes', () => {
    const img = { width: 3, height: 2, rgb: Uint8Array.from({ length: 18 }, (_, i) => i * 14) };
    const t = normalizeImage(img, CLIP_PREPROCESS.mean, CLIP_PREPROCESS.std);
    assert.deepEqual(rgbFromTensor(t, CLIP_PREPROCESS.mean, CLIP_PREPROCESS.std), img);
    assert.deepEqual(rgbFromTensor(stackImages([t]), CLIP_PREPROCESS.mean, CLIP_PREPROCESS.std), img);
    assert.throws(
      () => rgbFromTensor(new HostTensor('float32', [2, 2], new Float32Array(4)), [0, 0, 0], [1, 1, 1]),
      /expected float32 \[3, H, W\] or \[1, 3, H, W\], got float32 \[2, 2\]/,
    );
  });
});
