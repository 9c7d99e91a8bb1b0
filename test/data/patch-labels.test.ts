/**
 * Patch pseudo-labels. Expected fractions are counted by hand from small drawn masks; the
 * real-data check compares labels with the real NLVR pictures' non-background pixels.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataSkipReason } from '../../src/data/data-dir.ts';
import { loadNlvr, loadNlvrImages } from '../../src/data/nlvr.ts';
import {
  mentionedObjects,
  nlvrPatchLabels,
  PATCH_CLASS_COUNT,
  patchLabels,
  patchObjectClasses,
  resizeMaskNearest,
  sentenceMentions,
} from '../../src/data/patch-labels.ts';
import { NLVR_BACKGROUND_RGB, type NlvrObject } from '../../src/data/shapes.ts';

function picture(rows: string[]): Uint8Array {
  return Uint8Array.from(rows.join('').split(''), Number);
}

// 1100      patches (2×2): top-left has 3 of 4 pixels, bottom-right 3 of 4, others 0.
// 1000
// 0001
// 0011
const MASK = picture(['1100', '1000', '0001', '0011']);

describe('patchLabels', () => {
  it('counts the covered fraction of each patch (4×4 mask, 2×2 patches)', () => {
    const { fractions, labels, grid } = patchLabels(MASK, 4, 4, { imageSize: 4, patchSize: 2 });
    assert.equal(grid, 2);
    assert.deepEqual(Array.from(fractions), [0.75, 0, 0, 0.75]);
    assert.deepEqual(Array.from(labels), [1, 0, 0, 1]);
  });

  it('labels only fractions strictly above the threshold', () => {
    assert.deepEqual(
      Array.from(patchLabels(MASK, 4, 4, { imageSize: 4, patchSize: 2, threshold: 0.5 }).labels),
      [1, 0, 0, 1],
    );
    assert.deepEqual(
      Array.from(patchLabels(MASK, 4, 4, { imageSize: 4, patchSize: 2, threshold: 0.75 }).labels),
      [0, 0, 0, 0],
    );
    // A single pixel of a 2×2 patch is 0.25 > 0: the default keeps it.
    const corner = picture(['1000', '0000', '0000', '0000']);
    const { fractions, labels } = patchLabels(corner, 4, 4, { imageSize: 4, patchSize: 2 });
    assert.deepEqual(Array.from(fractions), [0.25, 0, 0, 0]);
    assert.deepEqual(Array.from(labels), [1, 0, 0, 0]);
  });

  it('resizes the mask to the model input with nearest sampling (upscale)', () => {
    // 4×4 → 8×8: every mask pixel becomes a 2×2 block, i.e. exactly one 2×2 patch.
    const { fractions, grid } = patchLabels(MASK, 4, 4, { imageSize: 8, patchSize: 2 });
    assert.equal(grid, 4);
    assert.deepEqual(Array.from(fractions), Array.from(MASK));
  });

  it('resizes the mask to the model input with nearest sampling (downscale, non-square)', () => {
    // 4×4 → 2×2 samples the source pixel under each output centre: floor((i + 0.5)·2) = 1, 3.
    assert.deepEqual(Array.from(resizeMaskNearest(MASK, 4, 4, 2)), [MASK[5], MASK[7], MASK[13], MASK[15]]);
    assert.deepEqual(Array.from(resizeMaskNearest(MASK, 4, 4, 2)), [0, 0, 0, 1]);
    // A 2-wide, 1-high mask [1, 0] on a 4×4 input: the left half is covered in both patch rows.
    const { fractions } = patchLabels(Uint8Array.of(1, 0), 2, 1, { imageSize: 4, patchSize: 2 });
    assert.deepEqual(Array.from(fractions), [1, 0, 1, 0]);
  });

  it('treats any nonzero value as inside', () => {
    const { fractions } = patchLabels(Uint8Array.of(255, 0, 0, 7), 2, 2, { imageSize: 2, patchSize: 1 });
    assert.deepEqual(Array.from(fractions), [1, 0, 0, 1]);
  });

  it('rejects masks and grids that do not fit, naming the sizes', () => {
    assert.throws(
      () => patchLabels(new Uint8Array(15), 4, 4, { imageSize: 4, patchSize: 2 }),
      /mask has 15 values but is declared 4×4 = 16/,
    );
    assert.throws(
      () => patchLabels(new Uint8Array(48), 4, 4, { imageSize: 4, patchSize: 2 }),
      /48 values but is declared 4×4/,
    );
    assert.throws(
      () => patchLabels(MASK, 4, 4, { imageSize: 10, patchSize: 3 }),
      /patchSize 3 does not divide imageSize 10/,
    );
    assert.throws(() => patchLabels(MASK, 4, 4, { imageSize: 4, patchSize: 2, threshold: 1 }), /threshold/);
    assert.throws(() => patchLabels(MASK, 0, 4, { imageSize: 4, patchSize: 2 }), /0×4/);
  });
});

const o = (type: NlvrObject['type'], color: NlvrObject['color'], x = 0, y = 0, size = 10): NlvrObject => ({
  x_loc: x,
  y_loc: y,
  size,
  type,
  color,
});
const OBJECTS = [
  o('square', 'Yellow'),
  o('circle', 'Black'),
  o('triangle', '#0099ff'),
  o('triangle', 'Yellow'),
];

describe('mentionedObjects', () => {
  const cases: [string, boolean[]][] = [
    ['There is a yellow square', [true, false, false, false]],
    ['There are three triangles touching the edge', [false, false, true, true]],
    ['Circles everywhere', [false, true, false, false]],
    ['There is a box with 1 black and 1 blue item.', [false, true, true, false]],
    ['There is a blue block as the base of a tower', [false, false, true, false]],
    ['Each grey box contains atleast one yellow object', [true, false, false, true]],
    ['There are yellow and black squares', [true, false, false, false]],
    ['there is a black square touching the wall with a blue squere on top', [false, false, false, false]],
    ['There are two yellow circles', [false, false, false, false]],
    // Nothing specific: every object.
    ['There is a tower with four blocks.', [true, true, true, true]],
    ['One of the grey box has exactly six objects', [true, true, true, true]],
  ];
  for (const [sentence, expected] of cases) {
    it(sentence, () => assert.deepEqual(mentionedObjects(sentence, OBJECTS), expected));
  }

  it('parses colour–shape phrases', () => {
    assert.deepEqual(sentenceMentions('a Yellow circle, a black block and blue triangles'), [
      { color: 'Yellow', shape: 'circle' },
      { color: 'Black' },
      { color: '#0099ff', shape: 'triangle' },
    ]);
    assert.deepEqual(sentenceMentions('the constructor of a tower'), []);
  });
});

describe('nlvrPatchLabels', () => {
  // Box: a yellow square top-left (0..50) and a black square bottom-right (50..100).
  const scene = {
    sentence: 'There is a yellow square.',
    boxes: [
      [o('square', 'Yellow', 0, 0, 50), o('square', 'Black', 50, 50, 50)],
      [],
      [o('square', 'Black', 0, 0, 10)],
    ],
  };

  it('labels the patches of the mentioned objects only', () => {
    const { fractions, labels, selected, grid } = nlvrPatchLabels(scene, 0, { imageSize: 4, patchSize: 2 });
    assert.equal(grid, 2);
    assert.deepEqual(selected, [true, false]);
    assert.deepEqual(Array.from(fractions), [1, 0, 0, 0]);
    assert.deepEqual(Array.from(labels), [1, 0, 0, 0]);
    const all = nlvrPatchLabels(scene, 0, { imageSize: 4, patchSize: 2, textGuided: false });
    assert.deepEqual(Array.from(all.labels), [1, 0, 0, 1]);
  });

  it('keeps small objects on a coarse grid, and handles empty boxes', () => {
    // 10×10 square of a 100 box → 2×2 pixels of a 20×20 input → 4/100 of patch 0.
    const small = nlvrPatchLabels(scene, 2, { imageSize: 20, patchSize: 10, textGuided: false });
    assert.deepEqual(Array.from(small.fractions), [0.04, 0, 0, 0].map(Math.fround));
    assert.deepEqual(Array.from(small.labels), [1, 0, 0, 0]);
    assert.deepEqual(
      Array.from(nlvrPatchLabels(scene, 1, { imageSize: 4, patchSize: 2 }).labels),
      [0, 0, 0, 0],
    );
    assert.throws(() => nlvrPatchLabels(scene, 3, { imageSize: 4, patchSize: 2 }), /boxIndex 3 outside 0..2/);
  });
});

describe('patchObjectClasses', () => {
  /** A grid×grid array of zeros with `value` at the given (row, col) cells. */
  const cells = (grid: number, value: number, at: [number, number][]): number[] => {
    const out = new Array<number>(grid * grid).fill(0);
    for (const [r, c] of at) out[r * grid + c] = value;
    return out;
  };
  const block = (rows: number, cols: number): [number, number][] =>
    Array.from({ length: rows * cols }, (_, i): [number, number] => [Math.floor(i / cols), i % cols]);

  it('has one background class and nine (colour, shape) classes', () => {
    assert.equal(PATCH_CLASS_COUNT, 10);
  });

  it('labels a 30-unit black square at (0, 0) on a 96-px image with 8-px patches', () => {
    // Nearest resize 100 → 96 samples source floor((x + 0.5)·100/96): x = 28 reads 29 (inside),
    // x = 29 reads 30 (outside), so the square covers pixels 0..28 of each row and column.
    // Patches 0..2 are full; patch 3 (pixels 24..31) holds 5 of its 8 columns: an edge patch is
    // 5·8/64 = 0.625 covered, the corner patch (3, 3) 5·5/64 ≈ 0.39; both > 0.25 (the default).
    const square = o('square', 'Black', 0, 0, 30);
    const { classes, centers, grid } = patchObjectClasses([square], { imageSize: 96, patchSize: 8 });
    assert.equal(grid, 12);
    // Black square: 1 + 0·3 + 0 = 1, on the 4×4 top-left block of the 12×12 grid.
    assert.deepEqual(Array.from(classes), cells(12, 1, block(4, 4)));
    // Centre (15, 15) → 14.4 px → patch 1 in both directions: index 1·12 + 1 = 13.
    assert.deepEqual(Array.from(centers), cells(12, 1, [[1, 1]]));

    // Threshold 0.5 drops the corner patch (0.39) but keeps the edges (0.625).
    const half = patchObjectClasses([square], { imageSize: 96, patchSize: 8, threshold: 0.5 });
    assert.deepEqual(
      Array.from(half.classes),
      cells(
        12,
        1,
        block(4, 4).filter(([r, c]) => !(r === 3 && c === 3)),
      ),
    );
    // Threshold 0.7 keeps only the full 3×3 block; the centre flag does not depend on it.
    const strict = patchObjectClasses([square], { imageSize: 96, patchSize: 8, threshold: 0.7 });
    assert.deepEqual(Array.from(strict.classes), cells(12, 1, block(3, 3)));
    assert.deepEqual(Array.from(strict.centers), cells(12, 1, [[1, 1]]));
  });

  it('numbers the classes 1 + colour·3 + shape (Black, Yellow, blue × square, circle, triangle)', () => {
    // A 40-unit object at (30, 30), 100 px with 10-px patches (no resize): patch (5, 5) (pixels
    // 50..59) lies fully inside the square, the circle (centre 50, radius 20: farthest pixel
    // centre 13.4 away) and the triangle (apex (50, 30): half-width ≥ 10.25 there, |x − 50| ≤ 9.5).
    const expected: [NlvrObject['color'], NlvrObject['type'], number][] = [
      ['Black', 'square', 1],
      ['Black', 'circle', 2],
      ['Black', 'triangle', 3],
      ['Yellow', 'square', 4],
      ['Yellow', 'circle', 5],
      ['Yellow', 'triangle', 6],
      ['#0099ff', 'square', 7],
      ['#0099ff', 'circle', 8],
      ['#0099ff', 'triangle', 9],
    ];
    for (const [color, type, cls] of expected) {
      const { classes, centers } = patchObjectClasses([o(type, color, 30, 30, 40)], {
        imageSize: 100,
        patchSize: 10,
      });
      assert.equal(classes[55], cls, `${color} ${type}`);
      assert.equal(classes[0], 0, `${color} ${type}: the corner is background`);
      assert.ok(
        classes.every((c) => c === 0 || c === cls),
        `${color} ${type}: one class only`,
      );
      assert.deepEqual(Array.from(centers), cells(10, 1, [[5, 5]]), `${color} ${type}: centre (50, 50)`);
    }
  });

  it('gives an overlapped patch to the object covering more of it, in either order', () => {
    // 100 px, 10-px patches (no resize), exact fractions:
    //   A: yellow square (0, 0, 27) → pixels 0..26 in x and y.
    //   B: blue square (22, 5, 20) → x 22..41, y 5..24.
    // Patch column 2 (x 20..29): A has 7 columns, B 8.
    //   row 0 (y 0..9):   A 7·10 = 0.70, B 8·5 = 0.40 → A
    //   row 1 (y 10..19): A 0.70,        B 8·10 = 0.80 → B
    //   row 2 (y 20..29): A 7·7 = 0.49,  B 8·5 = 0.40 → A
    // Column 3 (x 30..39): B only, 0.5 / 1 / 0.5. Column 4 (x 40..41): B 0.1 / 0.2 / 0.1 ≤ 0.25.
    const a = o('square', 'Yellow', 0, 0, 27); // class 4
    const b = o('square', '#0099ff', 22, 5, 20); // class 7
    const want = new Array<number>(100).fill(0);
    want.splice(0, 4, 4, 4, 4, 7);
    want.splice(10, 4, 4, 4, 7, 7);
    want.splice(20, 4, 4, 4, 4, 7);
    // Centres: A (13.5, 13.5) → patch (1, 1); B (32, 15) → patch (1, 3).
    const wantCenters = cells(10, 1, [
      [1, 1],
      [1, 3],
    ]);
    for (const objects of [
      [a, b],
      [b, a],
    ]) {
      const { classes, centers } = patchObjectClasses(objects, { imageSize: 100, patchSize: 10 });
      assert.deepEqual(Array.from(classes), want);
      assert.deepEqual(Array.from(centers), wantCenters);
    }
    // The threshold is strict: B's 0.5 patches in column 3 (rows 0 and 2) are not > 0.5.
    const strict = patchObjectClasses([a, b], { imageSize: 100, patchSize: 10, threshold: 0.5 });
    assert.deepEqual(Array.from(strict.classes.subarray(0, 30)), [
      ...[4, 4, 4, 0, 0, 0, 0, 0, 0, 0],
      ...[4, 4, 7, 7, 0, 0, 0, 0, 0, 0],
      ...[4, 4, 0, 0, 0, 0, 0, 0, 0, 0],
    ]);
  });

  it('is all background for an empty box, and keeps a centre on the far edge inside the grid', () => {
    const empty = patchObjectClasses([], { imageSize: 96, patchSize: 8 });
    assert.equal(empty.grid, 12);
    assert.deepEqual(Array.from(empty.classes), new Array(144).fill(0));
    assert.deepEqual(Array.from(empty.centers), new Array(144).fill(0));
    // Centre (100, 100) → 96 px → patch 12, one past the grid: clamped to the last patch.
    const edge = patchObjectClasses([o('circle', 'Black', 95, 95, 10)], { imageSize: 96, patchSize: 8 });
    assert.deepEqual(Array.from(edge.centers), cells(12, 1, [[11, 11]]));
  });

  it('rejects a patch size that does not divide the image', () => {
    assert.throws(
      () => patchObjectClasses([], { imageSize: 96, patchSize: 7 }),
      /patch 7 must divide image 96/,
    );
  });
});

describe('nlvrPatchLabels on real NLVR pictures', { skip: dataSkipReason('nlvr/dev/dev.json') }, () => {
  it('labels exactly the patches that hold object pixels', async () => {
    const { examples } = await loadNlvr('dev');
    let agree = 0;
    let total = 0;
    for (const example of examples.filter((_, i) => i % 20 === 0)) {
      const crops = await loadNlvrImages(example, 0);
      for (let b = 0; b < 3; b++) {
        // 100 px input, 10 px patches: no resize, so every patch is a 10×10 tile of the crop.
        const { labels } = nlvrPatchLabels(example, b, { imageSize: 100, patchSize: 10, textGuided: false });
        const data = crops[b].data;
        for (let p = 0; p < 100; p++) {
          let objectPixels = 0;
          for (let y = 10 * Math.floor(p / 10); y < 10 * Math.floor(p / 10) + 10; y++) {
            for (let x = 10 * (p % 10); x < 10 * (p % 10) + 10; x++) {
              const i = 3 * (y * 100 + x);
              const background =
                data[i] === NLVR_BACKGROUND_RGB[0] &&
                data[i + 1] === NLVR_BACKGROUND_RGB[1] &&
                data[i + 2] === NLVR_BACKGROUND_RGB[2];
              if (!background) objectPixels++;
            }
          }
          if ((objectPixels > 0 ? 1 : 0) === labels[p]) agree++;
          total++;
        }
      }
    }
    // Measured: 14984 of 15000 patches agree; the others are touched only by an anti-aliased
    // edge (a fraction of one pixel).
    assert.ok(agree / total > 0.995, `labels agree with the picture on ${agree} of ${total} patches`);
  });
});
