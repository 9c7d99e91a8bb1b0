/**
 * Patch overlays and contact sheets: the PNGs are decoded again and their pixels checked against
 * the source image, the mask and the dimming factor, computed here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { cellEdges, drawPatchOverlay, OUTLINE_COLOUR, outlineWidth } from '../../src/maven/overlay.ts';
import { type DecodedImage, ImageError } from '../../src/models/image.ts';
import { captionHeight, contactSheet, SHEET_GAP } from '../../src/node/contact-sheet.ts';
import { renderPatchOverlay } from '../../src/node/render-patch-overlay.ts';

/** Decodes PNG bytes with sharp directly (lossless), independent of decodeImage. */
async function readPng(png: Uint8Array): Promise<DecodedImage> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return { width: info.width, height: info.height, rgb: new Uint8Array(data) };
}

function pixel(image: DecodedImage, x: number, y: number): number[] {
  const p = (y * image.width + x) * 3;
  return [...image.rgb.subarray(p, p + 3)];
}

/** A 40×30 image where every pixel differs: r = 6x, g = 8y, b = 255 − 3x − 2y. */
function gradient(width = 40, height = 30): DecodedImage {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) rgb.set([6 * x, 8 * y, 255 - 3 * x - 2 * y], (y * width + x) * 3);
  }
  return { width, height, rgb };
}

async function solidPng(width: number, height: number, colour: number[]): Promise<Uint8Array> {
  const [r, g, b] = colour;
  return new Uint8Array(
    await sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
      .png()
      .toBuffer(),
  );
}

describe('renderPatchOverlay', () => {
  // 3 rows × 4 cols on 40×30: cells are 10×10. Kept: (0,0), (0,1), (1,2), (2,3).
  const grid = { rows: 3, cols: 4 };
  const kept = [1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
  const source = gradient();

  it('kept patches keep the source pixels, dropped ones are darkened by the factor', async () => {
    const dim = 0.25;
    const out = await readPng(
      await renderPatchOverlay(source, grid, kept, { dimDropped: dim, outline: false }),
    );
    assert.deepEqual([out.width, out.height], [40, 30]);
    for (let y = 0; y < 30; y++) {
      for (let x = 0; x < 40; x++) {
        const cell = Math.floor(y / 10) * 4 + Math.floor(x / 10);
        const src = pixel(source, x, y);
        const expected = kept[cell] ? src : src.map((v) => Math.round(v * dim));
        assert.deepEqual(pixel(out, x, y), expected, `(${x}, ${y}) in cell ${cell}`);
      }
    }
  });

  it('outlines the kept region on its inner edge, not between kept neighbours', async () => {
    const out = await readPng(await renderPatchOverlay(source, grid, kept.map(Boolean)));
    assert.equal(outlineWidth(40, 30), 1);
    // Cell (0,0): top and left border the image edge, bottom borders dropped (1,0): outlined.
    assert.deepEqual(pixel(out, 5, 0), [...OUTLINE_COLOUR]);
    assert.deepEqual(pixel(out, 0, 5), [...OUTLINE_COLOUR]);
    assert.deepEqual(pixel(out, 5, 9), [...OUTLINE_COLOUR]);
    // Its right edge meets kept (0,1): no outline there, source pixels.
    assert.deepEqual(pixel(out, 9, 5), pixel(source, 9, 5));
    assert.deepEqual(pixel(out, 10, 5), pixel(source, 10, 5));
    // Interior of a kept patch: the source; the dropped side of an edge: dimmed, not outlined.
    for (const [x, y] of [
      [24, 14],
      [21, 11],
      [35, 25],
    ]) {
      assert.deepEqual(pixel(out, x, y), pixel(source, x, y), `(${x}, ${y})`);
    }
    assert.deepEqual(
      pixel(out, 19, 15),
      pixel(source, 19, 15).map((v) => Math.round(v * 0.3)),
    );
    assert.deepEqual(pixel(out, 20, 15), [...OUTLINE_COLOUR]);
  });

  it('grid cells follow rounded edges when the size does not divide', () => {
    assert.deepEqual([...cellEdges(10, 3)], [0, 3, 7, 10]);
  });

  it('scores tint high patches red and low ones blue', async () => {
    const grey: DecodedImage = { width: 20, height: 10, rgb: new Uint8Array(600).fill(128) };
    const out = await readPng(
      await renderPatchOverlay(grey, { rows: 1, cols: 2 }, [1, 1], { scores: [-3, 5], outline: false }),
    );
    const [low, high] = [pixel(out, 5, 5), pixel(out, 15, 5)];
    assert.ok(low[2] > 128 && low[0] < 128, `low score ${low}`);
    assert.ok(high[0] > 128 && high[2] < 128, `high score ${high}`);
  });

  it('size scales the longer side, keeping the aspect', async () => {
    const out = await readPng(await renderPatchOverlay(source, grid, kept, { size: 80 }));
    assert.deepEqual([out.width, out.height], [80, 60]);
  });

  it('decodes encoded input', async () => {
    const png = await solidPng(8, 8, [10, 200, 30]);
    const out = await readPng(
      await renderPatchOverlay(png, { rows: 2, cols: 2 }, [1, 0, 0, 0], { dimDropped: 0.5 }),
    );
    assert.deepEqual(pixel(out, 2, 2), [10, 200, 30]); // inside the 1-pixel outline of kept cell 0
    assert.deepEqual(pixel(out, 3, 2), [...OUTLINE_COLOUR]);
    assert.deepEqual(pixel(out, 6, 6), [5, 100, 15]);
  });

  it('drawPatchOverlay (the browser-safe core) gives the same pixels as RGB, unencoded', async () => {
    const options = { dimDropped: 0.4, scores: kept.map((k, i) => k * 3 - i / 10), size: 80 };
    const drawn = drawPatchOverlay(source, grid, kept, options);
    const decoded = await readPng(await renderPatchOverlay(source, grid, kept, options));
    assert.deepEqual([drawn.width, drawn.height], [decoded.width, decoded.height]);
    assert.deepEqual([...drawn.rgb], [...decoded.rgb]);
    assert.throws(() => drawPatchOverlay(source, grid, [1, 0]), /drawPatchOverlay: kept has 2 entries/);
  });

  it('validates the grid, the mask and the options', async () => {
    await assert.rejects(
      renderPatchOverlay(source, grid, [1, 0, 1]),
      /kept has 3 entries but a 3×4 grid has 12 patches/,
    );
    await assert.rejects(
      renderPatchOverlay(source, grid, [0, 7, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
      /kept\[1\] is 7; kept is a 0\/1 or boolean mask per patch, not a list of indices/,
    );
    await assert.rejects(
      renderPatchOverlay(source, { rows: 0, cols: 4 }, []),
      /grid rows and cols must be positive/,
    );
    await assert.rejects(
      renderPatchOverlay(source, { rows: 31, cols: 1 }, new Array(31).fill(1)),
      /a 31×1 grid is finer than the 40×30 image/,
    );
    await assert.rejects(
      renderPatchOverlay(source, grid, kept, { dimDropped: 1.5 }),
      /dimDropped must be in \[0, 1\]/,
    );
    await assert.rejects(renderPatchOverlay(source, grid, kept, { scores: [1, 2] }), /scores has 2 entries/);
    await assert.rejects(renderPatchOverlay(source, grid, kept, { size: -1 }), /size must be an integer/);
    await assert.rejects(
      renderPatchOverlay({ width: 4, height: 4, rgb: new Uint8Array(3) }, { rows: 1, cols: 1 }, [1]),
      /renderPatchOverlay image: rgb must be a Uint8Array of 4×4×3 = 48 bytes/,
    );
    await assert.rejects(
      renderPatchOverlay(new Uint8Array([1, 2, 3]), { rows: 1, cols: 1 }, [1]),
      ImageError,
    );
  });
});

describe('contactSheet', () => {
  it('lays tiles out in a grid, fitted on white, with captions underneath', async () => {
    const colours = [
      [220, 30, 30],
      [30, 180, 60],
      [40, 60, 200],
    ];
    const tiles = [
      { png: await solidPng(20, 20, colours[0]), caption: 'red <1> & co' },
      { png: await solidPng(40, 20, colours[1]), caption: 'green, wide' },
      { png: await solidPng(20, 20, colours[2]) },
    ];
    const T = 32;
    const sheet = await readPng(await contactSheet(tiles, { columns: 2, tileSize: T }));
    const band = captionHeight(T, true);
    assert.deepEqual([sheet.width, sheet.height], [2 * T + 3 * SHEET_GAP, 2 * (T + band) + 3 * SHEET_GAP]);
    const origin = (i: number) => [
      SHEET_GAP + (i % 2) * (T + SHEET_GAP),
      SHEET_GAP + Math.floor(i / 2) * (T + band + SHEET_GAP),
    ];
    tiles.forEach((_, i) => {
      const [x0, y0] = origin(i);
      assert.deepEqual(pixel(sheet, x0 + T / 2, y0 + T / 2), colours[i], `tile ${i} centre`);
    });
    // The wide tile is letterboxed: 32×16 centred, white above and below.
    const [gx, gy] = origin(1);
    assert.deepEqual(pixel(sheet, gx + T / 2, gy + 2), [255, 255, 255]);
    assert.deepEqual(pixel(sheet, gx + T / 2, gy + 8), colours[1]);
    // Captions draw dark text in their band; the uncaptioned tile's band stays white.
    const darkPixels = (i: number) => {
      const [x0, y0] = origin(i);
      let n = 0;
      for (let y = y0 + T; y < y0 + T + band; y++) {
        for (let x = x0; x < x0 + T; x++) if (Math.max(...pixel(sheet, x, y)) < 128) n++;
      }
      return n;
    };
    assert.ok(darkPixels(0) > 5, `caption 0 drew ${darkPixels(0)} dark pixels`);
    assert.ok(darkPixels(1) > 5, `caption 1 drew ${darkPixels(1)} dark pixels`);
    assert.equal(darkPixels(2), 0);
  });

  it('without captions there is no caption band; default columns make a square-ish sheet', async () => {
    const png = await solidPng(10, 10, [0, 0, 0]);
    const sheet = await readPng(await contactSheet([{ png }, { png }, { png }, { png }], { tileSize: 16 }));
    assert.deepEqual([sheet.width, sheet.height], [2 * 16 + 3 * SHEET_GAP, 2 * 16 + 3 * SHEET_GAP]);
  });

  it('validates its input, naming the bad tile', async () => {
    const png = await solidPng(10, 10, [0, 0, 0]);
    await assert.rejects(contactSheet([]), /contactSheet: no tiles given/);
    await assert.rejects(contactSheet([{ png }], { columns: 0 }), /columns must be a positive integer/);
    await assert.rejects(
      contactSheet([{ png }], { tileSize: 3 }),
      /tileSize must be an integer in 8\.\.4096/,
    );
    await assert.rejects(
      contactSheet([{ png }, { png: new TextEncoder().encode('not a png') }]),
      (e: unknown) => e instanceof ImageError && /^contactSheet tile 1: not a readable image/.test(e.message),
    );
  });
});
