/**
 * NLVR object rasteriser. Expected masks are drawn by hand from the geometry (pixel centres);
 * colours and geometry are checked against the real NLVR PNGs when the shared data is present.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataSkipReason } from '../../src/data/data-dir.ts';
import { loadNlvr, loadNlvrImages } from '../../src/data/nlvr.ts';
import {
  colorRgb,
  NLVR_BACKGROUND_RGB,
  type NlvrObject,
  rasterizeObject,
  renderBox,
  unionMasks,
} from '../../src/data/shapes.ts';

/** Parses a picture like ['0110', '1111'] into a row-major 0/1 mask. */
function picture(rows: string[]): Uint8Array {
  return Uint8Array.from(rows.join('').split(''), Number);
}

const obj = (
  type: NlvrObject['type'],
  x: number,
  y: number,
  size: number,
  color: NlvrObject['color'] = 'Black',
) => ({ x_loc: x, y_loc: y, size, type, color }) satisfies NlvrObject;

describe('rasterizeObject', () => {
  it('fills a square bounding box, half-open on the right and bottom', () => {
    const mask = rasterizeObject(obj('square', 2, 1, 3), 6, 5);
    assert.deepEqual(mask, picture(['000000', '001110', '001110', '001110', '000000']));
  });

  it('draws a triangle pointing up (apex at the top centre, base on the bottom edge)', () => {
    // Half-width at depth t is t/2; row centres at t = 0.5, 1.5, 2.5, 3.5 → 0.25, 0.75, 1.25, 1.75
    // around x = 2, against pixel centres 0.5..3.5.
    assert.deepEqual(
      rasterizeObject(obj('triangle', 0, 0, 4), 4, 4),
      picture(['0000', '0110', '0110', '1111']),
    );
  });

  it('draws a circle inscribed in its box', () => {
    // Centre (2, 2), r² = 4: corner pixel centres (0.5, 0.5) are at d² = 4.5 (outside), edge
    // centres (1.5, 0.5) at d² = 2.5 (inside).
    assert.deepEqual(
      rasterizeObject(obj('circle', 0, 0, 4), 4, 4),
      picture(['0110', '1111', '1111', '0110']),
    );
  });

  it('clips objects that leave the canvas', () => {
    assert.deepEqual(rasterizeObject(obj('square', -1, -1, 3), 3, 3), picture(['110', '110', '000']));
    assert.deepEqual(rasterizeObject(obj('square', 5, 5, 3), 3, 3), picture(['000', '000', '000']));
  });

  it('rejects bad objects and canvases with clear errors', () => {
    assert.throws(
      () => rasterizeObject({ ...obj('square', 0, 0, 3), type: 'hexagon' as never }, 4, 4),
      /type.*hexagon/,
    );
    assert.throws(
      () => rasterizeObject({ ...obj('square', 0, 0, 3), color: 'Red' as never }, 4, 4),
      /color.*Red/,
    );
    assert.throws(() => rasterizeObject(obj('square', 0, 0, 0), 4, 4), /size must be positive/);
    assert.throws(() => rasterizeObject(obj('square', 0, 0, 3), 4.5, 4), /4\.5×4/);
    assert.throws(() => colorRgb('Green' as never), /unknown NLVR colour "Green"/);
  });
});

describe('renderBox', () => {
  it('paints NLVR colours on the light grey background, later objects on top', () => {
    const objects = [obj('square', 0, 0, 50, 'Yellow'), obj('square', 25, 25, 50, '#0099ff')];
    const { rgb, objectMasks } = renderBox(objects);
    const at = (x: number, y: number) => Array.from(rgb.subarray(3 * (y * 100 + x), 3 * (y * 100 + x) + 3));
    assert.deepEqual(at(10, 10), [255, 255, 0]);
    assert.deepEqual(at(30, 30), [0, 153, 255]); // covered by both: the later (blue) one shows
    assert.deepEqual(at(90, 10), [211, 211, 211]);
    // Masks are the objects' full shapes, not what remains visible.
    assert.equal(objectMasks.length, 2);
    assert.equal(objectMasks[0][30 * 100 + 30], 1);
    assert.equal(
      objectMasks[0].reduce((a, b) => a + b, 0),
      2500,
    );
  });

  it('scales the 100-unit box to other sizes, and takes another background', () => {
    const { rgb, objectMasks } = renderBox([obj('square', 10, 10, 10)], 200, { background: [255, 255, 255] });
    assert.equal(rgb.length, 200 * 200 * 3);
    const mask = objectMasks[0];
    assert.equal(
      mask.reduce((a, b) => a + b, 0),
      400,
    ); // 20×20 at scale 2
    assert.equal(mask[20 * 200 + 20], 1);
    assert.equal(mask[39 * 200 + 39], 1);
    assert.equal(mask[40 * 200 + 39], 0);
    assert.equal(mask[19 * 200 + 20], 0);
    assert.deepEqual(Array.from(rgb.subarray(0, 3)), [255, 255, 255]);
  });

  it('is deterministic and unions masks', () => {
    const objects = [obj('circle', 3, 7, 20, 'Yellow'), obj('triangle', 60, 60, 30)];
    assert.deepEqual(renderBox(objects), renderBox(objects));
    const { objectMasks } = renderBox(objects);
    const union = unionMasks(objectMasks, 10000);
    const total = objectMasks[0].reduce((a, b) => a + b, 0) + objectMasks[1].reduce((a, b) => a + b, 0);
    assert.equal(
      union.reduce((a, b) => a + b, 0),
      total,
    ); // disjoint objects
    assert.throws(() => unionMasks([new Uint8Array(5)], 4), /mask 0 has 5 pixels, expected 4/);
  });
});

const nlvrSkip = dataSkipReason('nlvr/dev/dev.json');

describe('against the real NLVR images', { skip: nlvrSkip }, () => {
  it('draws objects in exactly the colours of the real pictures, on their background', async () => {
    const { examples } = await loadNlvr('dev');
    let checked = 0;
    let agree = 0;
    let triangles = 0;
    let pixels = 0;
    for (const example of examples.slice(0, 40)) {
      const crops = await loadNlvrImages(example, 0);
      for (let b = 0; b < 3; b++) {
        const pixel = (x: number, y: number) =>
          Array.from(crops[b].data.subarray(3 * (y * 100 + x), 3 * (y * 100 + x) + 3));
        for (const o of example.boxes[b]) {
          // A point well inside every shape: horizontally centred, 3/4 down (inside the triangle too).
          const x = Math.floor(o.x_loc + o.size / 2);
          const y = Math.floor(o.y_loc + (3 * o.size) / 4);
          assert.deepEqual(
            pixel(x, y),
            [...colorRgb(o.color)],
            `${example.identifier} box ${b} ${o.type} ${o.color}`,
          );
          checked++;
          if (o.type === 'triangle') {
            // Points up: the bottom corners are filled, the top corners are background.
            const [x0, y0, x1, y1] = [o.x_loc + 1, o.y_loc + 1, o.x_loc + o.size - 2, o.y_loc + o.size - 1];
            assert.deepEqual(
              pixel(x0, y1),
              [...colorRgb(o.color)],
              `${example.identifier} triangle bottom-left`,
            );
            assert.deepEqual(
              pixel(x1, y1),
              [...colorRgb(o.color)],
              `${example.identifier} triangle bottom-right`,
            );
            assert.deepEqual(
              pixel(x0, y0),
              [...NLVR_BACKGROUND_RGB],
              `${example.identifier} triangle top-left`,
            );
            assert.deepEqual(
              pixel(x1, y0),
              [...NLVR_BACKGROUND_RGB],
              `${example.identifier} triangle top-right`,
            );
            triangles++;
          }
        }
        // Real pictures agree with the rendering on almost every pixel (anti-aliased edges differ).
        const { rgb } = renderBox(example.boxes[b]);
        let same = 0;
        for (let p = 0; p < 10000; p++) {
          const d = crops[b].data;
          if (rgb[3 * p] === d[3 * p] && rgb[3 * p + 1] === d[3 * p + 1] && rgb[3 * p + 2] === d[3 * p + 2])
            same++;
        }
        // Boxes full of circles have the most edge pixels: 96.9% agree in the worst of these (405-0).
        assert.ok(same / 10000 > 0.95, `${example.identifier} box ${b}: only ${same} of 10000 pixels agree`);
        agree += same;
        pixels += 10000;
        if (example.boxes[b].length === 0) assert.deepEqual(pixel(50, 50), [...NLVR_BACKGROUND_RGB]);
      }
    }
    assert.ok(checked > 100 && triangles > 10, `checked ${checked} objects, ${triangles} triangles`);
    // Measured: 99.6% of all dev/test box pixels equal the rendering exactly.
    assert.ok(agree / pixels > 0.99, `only ${((100 * agree) / pixels).toFixed(2)}% of pixels agree`);
  });
});
