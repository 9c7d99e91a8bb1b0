/**
 * The image path's two steps on a small random model: step 1 (encodeImages) kept and selected
 * from again gives what the one-call path (prepare) gives; step 2 honours a caller's strategy,
 * per-image modes and a budget, and names what is wrong with bad arguments.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostTensor } from '../../src/engine/index.ts';
import type { ImageEncoding } from '../../src/maven/image-encoding.ts';
import {
  choosePatches,
  type PatchStrategy,
  type SelectionOptions,
  selectorStrategy,
} from '../../src/maven/patch-selection.ts';
import { pixels, smallModel } from './small-model.ts';

const model = smallModel();
const PROMPT = 'a <image> b <image> c <image> ?';
const px = pixels(3, 7);
const dv = model.config.vision.hiddenSize;

/** Rows `patches` of an encoding's features, projected by the model on their own. */
async function projectedRows(e: ImageEncoding, patches: readonly number[]): Promise<Float32Array> {
  const f = e.features!.data as Float32Array;
  const rows = new Float32Array(patches.length * dv);
  patches.forEach((p, j) => {
    rows.set(f.subarray(p * dv, (p + 1) * dv), j * dv);
  });
  return (await model.project(new HostTensor('float32', [patches.length, dv], rows))).data as Float32Array;
}

function close(a: Float32Array, b: Float32Array, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

describe('the image path in two steps', () => {
  it('step 1 holds ids, scores and every patch’s features; discrete-only and continuous-only hold only theirs', async () => {
    const [full] = await model.encodeImages(pixels(1, 3));
    assert.equal(full.discreteIds!.length, 4);
    assert.equal(full.scores!.length, 16);
    assert.deepEqual(full.features!.shape, [16, dv]);
    assert.equal(full.grid, 4);
    assert.equal(full.totalPatches, 16);
    const [ids] = await model.encodeImages(pixels(1, 3), { mode: 'discrete-only' });
    assert.deepEqual(ids.discreteIds, full.discreteIds);
    assert.equal(ids.features, null);
    assert.equal(ids.scores, null);
    const [patches] = await model.encodeImages(pixels(1, 3), { mode: 'continuous-only' });
    assert.equal(patches.discreteIds, null);
    assert.equal(patches.scores, null);
    // The same ViT run either way, so the same bits (the server serves every mode from hybrid).
    assert.deepEqual(patches.features!.data, full.features!.data);
    // Per-image modes: only what they read, everything when they differ.
    const same = await model.encodeImages(pixels(2, 3), { mode: ['discrete-only', 'discrete-only'] });
    assert.ok(same.every((e) => e.discreteIds && !e.features && !e.scores));
    const mixed = await model.encodeImages(pixels(2, 3), { mode: ['discrete-only', 'continuous-only'] });
    assert.ok(mixed.every((e) => e.discreteIds && e.features && e.scores));
  });

  it('one step-1 encoding, selected in every mode, ratio and budget, gives exactly what prepare gives', async () => {
    const encodings = await model.encodeImages(px);
    const cases: SelectionOptions[] = [
      {},
      { mode: 'discrete-only' },
      { mode: 'continuous-only' },
      { keepRatio: 0.5 },
      { keepRatio: 1 },
      { visualTokenBudget: 11 },
    ];
    for (const options of cases) {
      const what = JSON.stringify(options);
      const direct = await model.prepare(PROMPT, px, options);
      const reused = model.prepareEncoded(PROMPT, await model.selectPatches(encodings, options));
      assert.deepEqual(reused.sequence, direct.sequence, what);
      assert.deepEqual([...reused.embeds.data], [...direct.embeds.data], what);
      assert.deepEqual(
        reused.images.map((e) => [e.discreteIds, e.keptPatches, e.scores && [...e.scores]]),
        direct.images.map((e) => [e.discreteIds, e.keptPatches, e.scores && [...e.scores]]),
        what,
      );
    }
    // Tokens actually differ between the cases, so the equalities above compare something.
    const kept = async (o: SelectionOptions) =>
      (await model.selectPatches(encodings, o)).map((e) => e.keptPatches.length);
    assert.deepEqual(await kept({}), [4, 4, 4]);
    assert.deepEqual(await kept({ keepRatio: 0.5 }), [8, 8, 8]);
    assert.equal(
      (await kept({ visualTokenBudget: 11 })).reduce((a, b) => a + b, 0),
      11,
    );
  });

  it('takes one mode per image; a budget is spent over the hybrid images only', async () => {
    const encodings = await model.encodeImages(px);
    const mixed = await model.selectPatches(encodings, {
      mode: ['hybrid', 'discrete-only', 'continuous-only'],
      keepRatio: 0.5,
    });
    const hybrid = await model.selectPatches(encodings, { keepRatio: 0.5 });
    assert.deepEqual(mixed[0].keptPatches, hybrid[0].keptPatches);
    assert.deepEqual(mixed[0].discreteIds, encodings[0].discreteIds);
    assert.ok(mixed[0].scores);
    assert.deepEqual(
      [mixed[1].keptPatches, mixed[1].discreteIds, mixed[1].scores],
      [[], encodings[1].discreteIds, null],
    );
    assert.deepEqual(mixed[1].projected.shape, [0, model.config.llm.hiddenSize]);
    assert.deepEqual([mixed[2].keptPatches.length, mixed[2].discreteIds, mixed[2].scores], [16, [], null]);
    for (const i of [0, 2])
      close(
        mixed[i].projected.data as Float32Array,
        await projectedRows(encodings[i], mixed[i].keptPatches),
        `image ${i}`,
      );

    const prepared = await model.prepare(PROMPT, px, {
      mode: ['hybrid', 'discrete-only', 'continuous-only'],
      keepRatio: 0.5,
    });
    assert.deepEqual(prepared.sequence, model.prepareEncoded(PROMPT, mixed).sequence);
    assert.deepEqual([...prepared.embeds.data], [...model.prepareEncoded(PROMPT, mixed).embeds.data]);

    const budget = await model.selectPatches(encodings, {
      mode: ['hybrid', 'continuous-only', 'hybrid'],
      visualTokenBudget: 9,
    });
    assert.equal(budget[0].keptPatches.length + budget[2].keptPatches.length, 9);
    assert.equal(budget[1].keptPatches.length, 16);
    await assert.rejects(
      model.selectPatches(encodings, {
        mode: ['hybrid', 'continuous-only', 'hybrid'],
        visualTokenBudget: 33,
      }),
      /visual token budget 33 exceeds the 32 patches of 2 image\(s\)/,
    );
  });

  it('honours a caller’s strategy, for a ratio and for a budget', async () => {
    const encodings = await model.encodeImages(px);
    const calls: string[] = [];
    // The last k patches of each image; a budget goes to image 0 first.
    const lastPatches: PatchStrategy = {
      name: 'last',
      usesScores: false,
      keep: (images, counts) => {
        calls.push(`keep ${counts.join(',')}`);
        return images.map((e, i) =>
          Array.from({ length: counts[i] }, (_, j) => e.totalPatches - counts[i] + j),
        );
      },
      spend: (images, budget) => {
        calls.push(`spend ${budget}`);
        return images.map((_, i) => (i === 0 ? Array.from({ length: budget }, (_, j) => j) : []));
      },
    };
    const byRatio = await model.selectPatches(encodings, { strategy: lastPatches, keepRatio: 0.25 });
    for (const [i, e] of byRatio.entries()) {
      assert.deepEqual(e.keptPatches, [12, 13, 14, 15]);
      assert.equal(e.scores, null, 'a strategy that ranks by other means reports no selector scores');
      close(
        e.projected.data as Float32Array,
        await projectedRows(encodings[i], [12, 13, 14, 15]),
        `image ${i}`,
      );
    }
    const byBudget = await model.selectPatches(encodings, { strategy: lastPatches, visualTokenBudget: 5 });
    assert.deepEqual(
      byBudget.map((e) => e.keptPatches),
      [[0, 1, 2, 3, 4], [], []],
    );
    assert.deepEqual(calls, ['keep 4,4,4', 'spend 5']);
    // The same strategy through the one-call path.
    const prepared = await model.prepare(PROMPT, px, { strategy: lastPatches, keepRatio: 0.25 });
    assert.deepEqual(
      prepared.images.map((e) => e.keptPatches),
      byRatio.map((e) => e.keptPatches),
    );
  });

  it('names what is wrong: ρ, budget, modes, a strategy’s answer, an encoding without what the mode reads', async () => {
    const encodings = await model.encodeImages(px);
    const select = (o: SelectionOptions) => model.selectPatches(encodings, o);
    for (const keepRatio of [0, -0.5, 1.5, Number.NaN])
      await assert.rejects(select({ keepRatio }), /keep ratio must be in \(0, 1\], got/, String(keepRatio));
    // Checked whatever the mode, not only where a hybrid image would spend it.
    await assert.rejects(
      select({ mode: 'discrete-only', keepRatio: 2 }),
      /keep ratio must be in \(0, 1\], got 2/,
    );
    for (const visualTokenBudget of [-1, 2.5])
      await assert.rejects(
        select({ visualTokenBudget }),
        /visual token budget must be a non-negative integer/,
        String(visualTokenBudget),
      );
    await assert.rejects(
      select({ visualTokenBudget: 49 }),
      /visual token budget 49 exceeds the 48 patches of 3 image\(s\)/,
    );
    await assert.rejects(select({ mode: ['hybrid', 'hybrid'] }), /2 encoding modes for 3 images/);
    await assert.rejects(
      select({ mode: 'both' as 'hybrid' }),
      /mode must be one of hybrid, discrete-only, continuous-only, got "both"/,
    );
    const noSpend: PatchStrategy = {
      name: 'first',
      usesScores: false,
      keep: (im, c) => im.map((_, i) => Array.from({ length: c[i] }, (_, j) => j)),
    };
    await assert.rejects(
      select({ strategy: noSpend, visualTokenBudget: 4 }),
      /cannot be used with selection 'first'/,
    );
    const unordered: PatchStrategy = {
      ...noSpend,
      name: 'unordered',
      keep: (im) => im.map(() => [3, 1, 2, 0]),
    };
    await assert.rejects(
      select({ strategy: unordered }),
      /strategy 'unordered' must give image 0 4 distinct patch indices below 16, ascending; got \[3,1,2,0\]/,
    );
    const short: PatchStrategy = { ...noSpend, name: 'short', keep: (im) => im.map(() => [0]) };
    await assert.rejects(select({ strategy: short }), /strategy 'short' must give image 0 4 distinct/);
    const overspent: PatchStrategy = { ...noSpend, name: 'over', spend: (im) => im.map(() => [0, 1]) };
    await assert.rejects(
      select({ strategy: overspent, visualTokenBudget: 4 }),
      /strategy 'over' spent 6 of a visual token budget of 4/,
    );

    const ids = await model.encodeImages(px, { mode: 'discrete-only' });
    await assert.rejects(
      model.selectPatches(ids, { mode: 'continuous-only' }),
      /image 0 was encoded without its patch features, which continuous-only mode reads/,
    );
    await assert.rejects(
      model.selectPatches(ids, { mode: 'hybrid' }),
      /image 0 was encoded without its patch features/,
    );
    const patches = await model.encodeImages(px, { mode: 'continuous-only' });
    await assert.rejects(
      model.selectPatches(patches, { mode: 'discrete-only' }),
      /without its discrete ids, which discrete-only mode reads/,
    );
    // Features without scores: the selector cannot rank, a rule that reads no scores can.
    const noScores = encodings.map((e) => ({ ...e, scores: null }));
    assert.throws(
      () => choosePatches(noScores, { mode: 'hybrid', keepRatio: 0.25, strategy: selectorStrategy }),
      /without its selector scores, which strategy 'selector' reads/,
    );
    assert.equal(
      choosePatches(noScores, { mode: 'hybrid', keepRatio: 0.25, strategy: noSpend })[0].keptPatches.length,
      4,
    );
  });

  it('encodes nothing for no images, and projects nothing when nothing is kept', async () => {
    assert.deepEqual(
      await model.encodeImages(new HostTensor('float32', [0, 3, 32, 32], new Float32Array(0))),
      [],
    );
    const encodings = await model.encodeImages(px, { mode: 'discrete-only' });
    const selected = await model.selectPatches(encodings, { mode: 'discrete-only' });
    for (const e of selected) assert.deepEqual(e.projected.shape, [0, model.config.llm.hiddenSize]);
  });
});
