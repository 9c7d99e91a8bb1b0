/**
 * The scene model, generator, captions, rendering and edits. Expected values come from hand-built
 * boxes, plain loops written here, or the real NLVR dev scenes — never from the code under test.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { dataPath, dataSkipReason } from '../../src/data/data-dir.ts';
import { captionBox } from '../../src/data/scene/captions.ts';
import { applyEdit, changeText, diffBoxes, EDIT_KINDS } from '../../src/data/scene/changes.ts';
import { generateScene, scatteredBox } from '../../src/data/scene/generator.ts';
import { maskOf, renderSceneBox, renderScenePicture } from '../../src/data/scene/render.ts';
import { Rng } from '../../src/data/scene/rng.ts';
import {
  type Box,
  boxKey,
  checkScene,
  type SceneObject,
  sceneFromStructuredRep,
  sceneKey,
  towerBox,
  towersOf,
  wallsTouched,
} from '../../src/data/scene/scene.ts';

const obj = (
  type: SceneObject['type'],
  color: SceneObject['color'],
  size: number,
  x_loc: number,
  y_loc: number,
): SceneObject => ({ type, color, size, x_loc, y_loc });

describe('Rng', () => {
  it('is a pure function of its key', () => {
    const a = Rng.fromKey('train', 'task', 3);
    const b = Rng.fromKey('train', 'task', 3);
    const xs = Array.from({ length: 20 }, () => a.uint32());
    assert.deepEqual(
      Array.from({ length: 20 }, () => b.uint32()),
      xs,
    );
    const c = Rng.fromKey('train', 'task', 4);
    assert.notDeepEqual(
      Array.from({ length: 20 }, () => c.uint32()),
      xs,
    );
    // Key parts are delimited: ('ab', 'c') is not ('a', 'bc'), and 1 is not '1'.
    assert.notEqual(Rng.fromKey('ab', 'c').uint32(), Rng.fromKey('a', 'bc').uint32());
    assert.notEqual(Rng.fromKey(1).uint32(), Rng.fromKey('1').uint32());
  });

  it('draws integers in range, roughly uniformly', () => {
    const rng = Rng.fromKey('uniform');
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 6000; i++) counts[rng.int(0, 5)]++;
    for (const c of counts) assert.ok(c > 850 && c < 1150, `counts ${counts}`);
    assert.throws(() => rng.int(3, 2), /lo ≤ hi/);
    assert.throws(() => rng.pick([]), /empty/);
    assert.throws(() => Rng.fromKey(Number.NaN), /not finite/);
  });
});

describe('scene geometry', () => {
  it('finds touched walls', () => {
    assert.deepEqual(wallsTouched(obj('circle', 'Black', 20, 0, 40)), ['left']);
    assert.deepEqual(wallsTouched(obj('circle', 'Black', 30, 70, 70)), ['bottom', 'right']);
    assert.deepEqual(wallsTouched(obj('circle', 'Black', 10, 2, 2)), []);
  });

  it('finds towers from the base up', () => {
    // NLVR's own tower coordinates: x 40, y 80 / 59 / 38, size 20.
    const box: Box = [
      obj('square', 'Yellow', 20, 40, 59),
      obj('square', '#0099ff', 20, 40, 80),
      obj('square', 'Black', 20, 40, 38),
    ];
    const towers = towersOf(box);
    assert.equal(towers.length, 1);
    assert.deepEqual(
      towers[0].blocks.map((b) => b.color),
      ['#0099ff', 'Yellow', 'Black'],
    );
    // A floating square (gap of 5) is not part of it; a circle never is.
    const broken: Box = [
      obj('square', 'Black', 20, 40, 80),
      obj('square', 'Black', 20, 40, 55),
      obj('circle', 'Black', 20, 40, 59),
    ];
    assert.equal(towersOf(broken)[0].blocks.length, 1);
    assert.deepEqual(towerBox(['Black', 'Yellow']), [
      obj('square', 'Black', 20, 40, 80),
      obj('square', 'Yellow', 20, 40, 59),
    ]);
  });

  it('keys boxes and scenes independently of order', () => {
    const a = obj('circle', 'Black', 10, 5, 5);
    const b = obj('square', 'Yellow', 20, 50, 50);
    assert.equal(boxKey([a, b]), boxKey([b, a]));
    assert.notEqual(boxKey([a, b]), boxKey([a, { ...b, x_loc: 51 }]));
    const s1 = { layout: 'scattered' as const, boxes: [[a], [b], []] };
    const s2 = { layout: 'scattered' as const, boxes: [[b], [], [a]] };
    assert.equal(sceneKey(s1), sceneKey(s2));
  });

  it('rejects malformed scenes with clear messages', () => {
    const ok = obj('circle', 'Black', 10, 5, 5);
    assert.throws(() => checkScene({ layout: 'grid', boxes: [[], [], []] }), /layout must be/);
    assert.throws(() => checkScene({ layout: 'towers', boxes: [[], []] }), /expected 3 boxes, got 2/);
    assert.throws(
      () => checkScene({ layout: 'scattered', boxes: [[ok], [{ ...ok, color: 'Red' }], []] }),
      /box 1, object 0: color/,
    );
    assert.throws(
      () => checkScene({ layout: 'scattered', boxes: [[{ ...ok, x_loc: 95 }], [], []] }),
      /box 0, object 0: a 10-pixel circle at \(95, 5\) does not fit/,
    );
    assert.throws(
      () => checkScene({ layout: 'scattered', boxes: [[{ ...ok, size: 15 }], [], []] }),
      /size must be one of 10, 20, 30/,
    );
    assert.throws(() => sceneFromStructuredRep('nope'), /expected an array of boxes/);
  });
});

describe('scene generator', () => {
  it('is deterministic given the key', () => {
    const a = generateScene(Rng.fromKey('det', 1));
    const b = generateScene(Rng.fromKey('det', 1));
    assert.deepEqual(a, b);
    assert.deepEqual(renderScenePicture(a).rgb, renderScenePicture(b).rgb);
    assert.notDeepEqual(generateScene(Rng.fromKey('det', 2)), a);
  });

  it('draws valid scattered boxes like NLVR: 1–8 separate objects, a third on a wall', () => {
    const rng = Rng.fromKey('scattered');
    let objects = 0;
    let onWall = 0;
    const counts = new Set<number>();
    const shapes = new Map<string, number>();
    for (let s = 0; s < 300; s++) {
      const scene = generateScene(rng, { layout: 'scattered' });
      checkScene(scene);
      for (const box of scene.boxes) {
        counts.add(box.length);
        for (let i = 0; i < box.length; i++) {
          const o = box[i];
          objects++;
          shapes.set(o.type, (shapes.get(o.type) ?? 0) + 1);
          const gaps = [o.x_loc, o.y_loc, 100 - o.x_loc - o.size, 100 - o.y_loc - o.size];
          // Either exactly on a wall or clearly away from all of them.
          assert.ok(
            gaps.every((g) => g === 0 || g >= 2),
            `object ${JSON.stringify(o)}`,
          );
          if (gaps.includes(0)) onWall++;
          for (let j = i + 1; j < box.length; j++) {
            const p = box[j];
            const apart =
              o.x_loc + o.size < p.x_loc ||
              p.x_loc + p.size < o.x_loc ||
              o.y_loc + o.size < p.y_loc ||
              p.y_loc + p.size < o.y_loc;
            assert.ok(apart, `objects overlap: ${JSON.stringify(o)} ${JSON.stringify(p)}`);
          }
        }
      }
    }
    assert.deepEqual(
      [...counts].sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert.ok(onWall / objects > 0.28 && onWall / objects < 0.42, `wall share ${onWall / objects}`);
    for (const [shape, n] of shapes)
      assert.ok(n / objects > 0.28 && n / objects < 0.39, `${shape}: ${n / objects}`);
  });

  it('draws towers of 1–4 blocks at NLVR coordinates', () => {
    const rng = Rng.fromKey('towers');
    const heights = new Set<number>();
    for (let s = 0; s < 100; s++) {
      const scene = generateScene(rng, { layout: 'towers' });
      for (const box of scene.boxes) {
        heights.add(box.length);
        const ys = box.map((o) => o.y_loc).sort((a, b) => b - a);
        assert.deepEqual(ys, [80, 59, 38, 17].slice(0, box.length));
        assert.ok(box.every((o) => o.type === 'square' && o.size === 20 && o.x_loc === 40));
      }
    }
    assert.deepEqual([...heights].sort(), [1, 2, 3, 4]);
  });
});

describe('real NLVR scenes', { skip: dataSkipReason('nlvr/dev/dev.json') }, () => {
  it('parse, and tower pictures give one tower per box holding every block', () => {
    const rows = readFileSync(dataPath('nlvr/dev/dev.json'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    let towerScenes = 0;
    for (const row of rows) {
      const scene = sceneFromStructuredRep(row.structured_rep);
      // NLVR's tower pictures: every object a 20-pixel square in the x = 40 column.
      const isTowerPicture = row.structured_rep.every((box: SceneObject[]) =>
        box.every((o) => o.type === 'square' && o.size === 20 && o.x_loc === 40),
      );
      assert.equal(scene.layout, isTowerPicture ? 'towers' : 'scattered', row.identifier);
      if (!isTowerPicture) continue;
      towerScenes++;
      for (const box of scene.boxes) {
        const towers = towersOf(box);
        assert.equal(towers.length, 1, row.identifier);
        const byHeight = [...box].sort((a, b) => b.y_loc - a.y_loc);
        assert.deepEqual(towers[0].blocks, byHeight, row.identifier);
      }
    }
    assert.ok(towerScenes > 600, `${towerScenes} tower scenes`);
  });
});

describe('captions', () => {
  it('describe hand-built boxes exactly', () => {
    const box: Box = [
      obj('circle', 'Yellow', 20, 80, 10),
      obj('square', 'Black', 10, 10, 10),
      obj('square', 'Black', 10, 30, 30),
    ];
    assert.equal(
      captionBox(box),
      'There are two small black squares and a medium-sized yellow circle touching the wall.',
    );
    const mixed: Box = [obj('triangle', '#0099ff', 30, 0, 0), obj('triangle', '#0099ff', 10, 50, 50)];
    assert.equal(captionBox(mixed), 'There are two blue triangles (one of them touching the wall).');
    assert.equal(
      captionBox(towerBox(['Black', 'Yellow', '#0099ff']), 'towers'),
      'There is a tower of three blocks: black at the bottom, then yellow, then blue at the top.',
    );
    assert.equal(captionBox(towerBox(['Yellow']), 'towers'), 'There is a single yellow block.');
    assert.equal(captionBox(towerBox(['Black', 'Black']), 'towers'), 'There is a tower of two black blocks.');
  });

  it('mention every object of random boxes with the right colour and shape counts', () => {
    const words: Record<string, number> = {
      a: 1,
      an: 1,
      two: 2,
      three: 3,
      four: 4,
      five: 5,
      six: 6,
      seven: 7,
      eight: 8,
    };
    const colorName: Record<string, string> = { black: 'Black', yellow: 'Yellow', blue: '#0099ff' };
    const phrase =
      /\b(a|an|two|three|four|five|six|seven|eight) (?:small |medium-sized |large )?(black|yellow|blue) (square|circle|triangle)s?\b/g;
    const rng = Rng.fromKey('captions');
    for (let t = 0; t < 200; t++) {
      const box = scatteredBox(rng);
      const said = new Map<string, number>();
      for (const m of captionBox(box).matchAll(phrase)) {
        const key = `${colorName[m[2]]}/${m[3]}`;
        assert.ok(!said.has(key), `group ${key} mentioned twice`);
        said.set(key, words[m[1]]);
      }
      const actual = new Map<string, number>();
      for (const o of box) actual.set(`${o.color}/${o.type}`, (actual.get(`${o.color}/${o.type}`) ?? 0) + 1);
      assert.deepEqual(said, new Map([...actual].sort()), captionBox(box));
    }
  });
});

describe('rendering', () => {
  it('paints each object in its colour on the NLVR background, with exact masks', () => {
    const box: Box = [obj('square', 'Black', 20, 10, 10), obj('circle', 'Yellow', 30, 60, 60)];
    const r = renderSceneBox(box);
    assert.equal(r.width, 100);
    const at = (x: number, y: number) => Array.from(r.rgb.subarray((y * 100 + x) * 3, (y * 100 + x) * 3 + 3));
    assert.deepEqual(at(20, 20), [0, 0, 0]); // inside the square
    assert.deepEqual(at(75, 75), [255, 255, 0]); // circle centre
    assert.deepEqual(at(61, 61), [211, 211, 211]); // circle's bounding-box corner is background
    assert.deepEqual(at(50, 5), [211, 211, 211]);
    // Masks cover exactly the painted pixels: 20·20 for the square.
    const painted = (p: number) => r.rgb[3 * p] !== 211 || r.rgb[3 * p + 1] !== 211;
    let paintedCount = 0;
    for (let p = 0; p < 100 * 100; p++) if (painted(p)) paintedCount++;
    const union = maskOf(r, [0, 1]);
    assert.equal(
      union.reduce((a, b) => a + b, 0),
      paintedCount,
    );
    assert.equal(
      r.objectMasks[0].reduce((a, b) => a + b, 0),
      400,
    );
    assert.throws(() => maskOf(r, [2]), /object index 2 outside 0..1/);
    // Rendering at 200 pixels scales the frame.
    const big = renderSceneBox(box, 200);
    assert.equal(
      big.objectMasks[0].reduce((a, b) => a + b, 0),
      1600,
    );
  });

  it('draws a scene as NLVR’s 400×100 strip', () => {
    const scene = {
      layout: 'towers' as const,
      boxes: [towerBox(['Black']), towerBox(['Yellow']), towerBox(['#0099ff'])],
    };
    const pic = renderScenePicture(scene);
    assert.equal(pic.width, 400);
    const at = (x: number, y: number) =>
      Array.from(pic.rgb.subarray((y * 400 + x) * 3, (y * 400 + x) * 3 + 3));
    assert.deepEqual(at(50, 90), [0, 0, 0]);
    assert.deepEqual(at(125, 50), [128, 128, 128]); // gap
    assert.deepEqual(at(200, 90), [255, 255, 0]);
    assert.deepEqual(at(350, 90), [0, 153, 255]);
    assert.deepEqual(at(350, 10), [211, 211, 211]);
  });
});

describe('edits and differences', () => {
  const a = obj('circle', 'Yellow', 20, 10, 10);
  const b = obj('square', 'Black', 10, 60, 60);
  it('names hand-made changes', () => {
    assert.deepEqual(diffBoxes([a, b], [b, a]), { kind: 'none' });
    assert.equal(
      changeText(diffBoxes([a, b], [{ ...a, color: 'Black' }, b])),
      'the medium-sized yellow circle turned black',
    );
    assert.equal(
      changeText(diffBoxes([a, b], [a, { ...b, type: 'triangle' }])),
      'the small black square became a triangle',
    );
    assert.equal(
      changeText(diffBoxes([a, b], [{ ...a, x_loc: 30 }, b])),
      'the medium-sized yellow circle moved right',
    );
    assert.equal(changeText(diffBoxes([a, b], [a, { ...b, y_loc: 40 }])), 'the small black square moved up');
    assert.equal(changeText(diffBoxes([a, b], [a])), 'the small black square was removed');
    assert.equal(changeText(diffBoxes([a], [a, b])), 'a small black square was added');
    assert.equal(diffBoxes([a, b], [{ ...a, color: 'Black', type: 'square' }, b]).kind, 'other');
  });

  it('random edits change exactly what they say', () => {
    const rng = Rng.fromKey('edits');
    const expected = {
      recolor: 'recolored',
      reshape: 'reshaped',
      move: 'moved',
      add: 'added',
      remove: 'removed',
    };
    for (let t = 0; t < 300; t++) {
      const box = scatteredBox(rng, undefined, 4);
      const kind = rng.pick(EDIT_KINDS);
      const after = applyEdit(rng, box, kind);
      if (after === null) continue;
      assert.equal(diffBoxes(box, after).kind, expected[kind]);
      assert.equal(box.length, 4, 'the original box is not modified');
    }
    assert.throws(() => applyEdit(rng, [a], 'move', { target: 3 }), /target 3 outside 0..0/);
  });
});
