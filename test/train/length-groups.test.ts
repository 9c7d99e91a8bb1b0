import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imageSlotCount, LENGTH_GROUP_WINDOW, lengthGroupedFrom } from '../../src/train/stages/common.ts';
import { smallModel } from '../maven/small-model.ts';

/** Item i has a length that jumps around: lengths 1..13 in a scrambled order. */
const lengthOf = (i: number) => 1 + ((i * 7) % 13);

async function take(fromStep: number, count: number, size: number, window?: number): Promise<number[][]> {
  const it = lengthGroupedFrom(
    fromStep,
    size,
    (i) => i,
    lengthOf,
    (items) => items,
    window === undefined ? {} : { window },
  );
  const out: number[][] = [];
  for (let k = 0; k < count; k++) out.push((await it.next()).value as number[]);
  await it.return(undefined);
  return out;
}

describe('lengthGroupedFrom', () => {
  it('uses every item of a window once, in batches of similar length', async () => {
    const size = 4;
    const batches = await take(0, 2 * LENGTH_GROUP_WINDOW, size);
    for (let w = 0; w < 2; w++) {
      const window = batches.slice(w * LENGTH_GROUP_WINDOW, (w + 1) * LENGTH_GROUP_WINDOW);
      const items = window.flat().sort((a, b) => a - b);
      const first = w * LENGTH_GROUP_WINDOW * size;
      assert.deepEqual(
        items,
        Array.from({ length: LENGTH_GROUP_WINDOW * size }, (_, k) => first + k),
      );
      // Sorted and cut: no two batches of a window overlap in length range.
      const ranges = window
        .map((b) => [Math.min(...b.map(lengthOf)), Math.max(...b.map(lengthOf))])
        .sort((a, b) => a[0] - b[0]);
      for (let k = 1; k < ranges.length; k++) assert.ok(ranges[k][0] >= ranges[k - 1][1], String(ranges));
    }
    // Padding to the longest item of each batch: far less than batches of consecutive items.
    const padding = (bs: number[][]) =>
      bs.reduce((n, b) => n + b.reduce((m, i) => m + Math.max(...b.map(lengthOf)) - lengthOf(i), 0), 0);
    const consecutive = Array.from({ length: 2 * LENGTH_GROUP_WINDOW }, (_, s) =>
      Array.from({ length: size }, (_, k) => s * size + k),
    );
    assert.ok(padding(batches) * 3 < padding(consecutive), `${padding(batches)} vs ${padding(consecutive)}`);
  });

  it('gives the batches of a step whatever step it starts from (resuming mid-window)', async () => {
    const all = await take(0, 20, 3, 4);
    assert.deepEqual(await take(5, 15, 3, 4), all.slice(5));
    assert.deepEqual(await take(8, 12, 3, 4), all.slice(8));
    // Batches in a window are not taken shortest first.
    const lengths = all.slice(0, 4).map((b) => Math.max(...b.map(lengthOf)));
    assert.notDeepEqual(
      lengths,
      [...lengths].sort((a, b) => a - b),
    );
  });

  it('window 1 batches consecutive items, as batchedFrom does', async () => {
    const batches = (await take(2, 2, 3, 1)).map((b) => [...b].sort((x, y) => x - y));
    assert.deepEqual(batches, [
      [6, 7, 8],
      [9, 10, 11],
    ]);
    await assert.rejects(take(0, 1, 3, 0), /window must be an integer ≥ 1, got 0/);
  });
});

describe('imageSlotCount', () => {
  it('counts the slots assembleSequence gives an image in each mode', async () => {
    const { config } = smallModel();
    const patches = (config.vision.imageSize / config.vision.patchSize) ** 2;
    const q = config.seed.qformer.numQueryTokens;
    const kept = Math.ceil(config.keepRatio * patches);
    assert.equal(imageSlotCount(config, 'discrete-only'), 2 + q);
    assert.equal(imageSlotCount(config, 'continuous-only'), 2 + patches);
    assert.equal(imageSlotCount(config, 'hybrid'), 2 + q + kept);
  });
});
