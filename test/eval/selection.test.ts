/**
 * The selector baselines of the ablation (src/eval/patch-strategies.ts): each rule alone on
 * hand-made inputs, then as a strategy of the model's step 2 on a small random model, against
 * plain-TS recomputations from the model's own patch features.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostTensor } from '../../src/engine/index.ts';
import {
  gridPatches,
  normPatches,
  patchStrategy,
  randomPatches,
  selectionOptions,
} from '../../src/eval/patch-strategies.ts';
import { contentSeed } from '../../src/maven/image-encoding.ts';
import type { SelectionOptions } from '../../src/maven/patch-selection.ts';
import { keepCount } from '../../src/maven/patch-selector.ts';
import { pixels, smallModel } from '../maven/small-model.ts';

describe('baseline patch rules', () => {
  it('grid: every other row and column at ρ = 1/4 of a 12×12 grid', () => {
    const expected: number[] = [];
    for (const r of [1, 3, 5, 7, 9, 11]) for (const c of [1, 3, 5, 7, 9, 11]) expected.push(r * 12 + c);
    assert.deepEqual(gridPatches(12, 12, 36), expected);
  });

  it('grid: exactly k distinct patches in raster order, spread over the whole image', () => {
    for (const k of [1, 4, 15, 36, 72, 108, 143, 144]) {
      const g = gridPatches(12, 12, k);
      assert.equal(g.length, k, `k = ${k}`);
      assert.equal(new Set(g).size, k, `k = ${k}: distinct`);
      assert.deepEqual(
        g,
        [...g].sort((a, b) => a - b),
        `k = ${k}: raster order`,
      );
      if (k >= 4) {
        // Some kept patch in each quadrant.
        const quadrants = new Set(g.map((p) => `${Math.floor(p / 12) < 6}${p % 12 < 6}`));
        assert.equal(quadrants.size, 4, `k = ${k}: quadrants`);
      }
    }
    assert.deepEqual(gridPatches(12, 12, 144), [...Array(144).keys()]);
    assert.deepEqual(gridPatches(4, 4, 4), [5, 7, 13, 15]);
    assert.deepEqual(gridPatches(3, 3, 1), [4]); // the centre
    assert.deepEqual(gridPatches(4, 4, 0), []);
    assert.throws(() => gridPatches(4, 4, 17), /cannot keep 17 of 4×4 patches/);
  });

  it('random: k distinct patches, reproducible from the seed, different for another seed', () => {
    const a = randomPatches(144, 36, 7);
    assert.equal(a.length, 36);
    assert.equal(new Set(a).size, 36);
    assert.ok(a.every((p, i) => p >= 0 && p < 144 && (i === 0 || p > a[i - 1])));
    assert.deepEqual(randomPatches(144, 36, 7), a);
    assert.notDeepEqual(randomPatches(144, 36, 8), a);
    // Uniform: over many seeds every patch is kept about k/n = 1/4 of the time.
    const counts = new Array(16).fill(0);
    for (let s = 0; s < 4000; s++) for (const p of randomPatches(16, 4, s)) counts[p]++;
    for (const c of counts) assert.ok(Math.abs(c / 4000 - 0.25) < 0.04, `frequency ${c / 4000}`);
    assert.throws(() => randomPatches(4, 5, 0), /cannot keep 5 of 4/);
  });

  it('norm: the rows with the largest L2 norm, raster order', () => {
    // 5 patches of width 2: norms 1, 5, 0, √2, 3.
    const f = Float32Array.of(1, 0, 3, 4, 0, 0, 1, 1, 0, 3);
    assert.deepEqual(normPatches(f, 2, 2), [1, 4]);
    assert.deepEqual(normPatches(f, 2, 3), [1, 3, 4]); // √2 > 1
  });

  it('contentSeed depends on every value', () => {
    const x = Float32Array.of(0.5, 1, 2);
    assert.equal(contentSeed(x), contentSeed(Float32Array.of(0.5, 1, 2)));
    assert.notEqual(contentSeed(x), contentSeed(Float32Array.of(0.5, 1, 2.0001)));
  });
});

describe('the model with a selection rule', () => {
  const model = smallModel();
  const k = keepCount(16, 0.25);
  const select = async (px: HostTensor, options: SelectionOptions) =>
    model.selectPatches(await model.encodeImages(px, options), options);

  it('grid and norm keep what the rules say, from the model’s own features', async () => {
    const px = pixels(3);
    const grid = await select(px, { strategy: patchStrategy('grid') });
    for (const e of grid) assert.deepEqual(e.keptPatches, gridPatches(4, 4, k));
    const { features } = await model.encodePixels({ pixels: px }, 'hybrid');
    const [, n, dv] = features!.shape;
    const norm = await select(px, { strategy: patchStrategy('norm'), keepRatio: 0.5 });
    norm.forEach((e, i) => {
      // Independent recomputation: plain loops over the features, top 8 by norm.
      const data = features!.data as Float32Array;
      const norms = Array.from({ length: n }, (_, p) => {
        let s = 0;
        for (let d = 0; d < dv; d++) s += data[(i * n + p) * dv + d] ** 2;
        return [s, p] as const;
      });
      const top = norms
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .slice(0, 8)
        .map(([, p]) => p)
        .sort((a, b) => a - b);
      assert.deepEqual(e.keptPatches, top, `image ${i}`);
      assert.equal(e.scores, null);
      assert.equal(e.projected.shape[0], 8);
    });
  });

  it('random follows the image, not its position in the batch', async () => {
    const a = pixels(1, 0);
    const b = pixels(1, 1);
    const both = new HostTensor(
      'float32',
      [2, 3, 32, 32],
      new Float32Array([...a.data, ...b.data] as number[]),
    );
    const swapped = new HostTensor(
      'float32',
      [2, 3, 32, 32],
      new Float32Array([...b.data, ...a.data] as number[]),
    );
    const [ea, eb] = await select(both, { strategy: patchStrategy('random') });
    const [sb, sa] = await select(swapped, { strategy: patchStrategy('random') });
    assert.deepEqual(ea.keptPatches, sa.keptPatches);
    assert.deepEqual(eb.keptPatches, sb.keptPatches);
    assert.equal(ea.keptPatches.length, k);
    assert.notDeepEqual(ea.keptPatches, eb.keptPatches);
  });

  it('leaves the default (selector) and the other modes unchanged', async () => {
    const px = pixels(2);
    const byDefault = await select(px, {});
    const explicit = await select(px, selectionOptions({ selection: 'selector' }));
    assert.deepEqual(
      byDefault.map((e) => e.keptPatches),
      explicit.map((e) => e.keptPatches),
    );
    assert.ok(byDefault[0].scores !== null);
    const continuous = await select(px, { mode: 'continuous-only', strategy: patchStrategy('grid') });
    assert.equal(continuous[0].keptPatches.length, 16);
    const discrete = await select(px, { mode: 'discrete-only', strategy: patchStrategy('random') });
    assert.equal(discrete[0].keptPatches.length, 0);
  });

  it('rejects a token budget with a baseline and unknown rules, by name', async () => {
    await assert.rejects(
      select(pixels(1), { strategy: patchStrategy('grid'), visualTokenBudget: 4 }),
      /visualTokenBudget is spent by selector score; it cannot be used with selection 'grid'/,
    );
    assert.throws(
      () => selectionOptions({ selection: 'saliency' as 'grid' }),
      /selection must be one of selector, random, grid, norm, got "saliency"/,
    );
  });
});
