/** Collation into padded training tensors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collateSelector, collateTokens, IGNORE_INDEX } from '../../src/data/collate.ts';
import { patchLabels } from '../../src/data/patch-labels.ts';
import { selectorExample } from '../../src/data/tasks/stage-datasets.ts';
import { CLIP_PREPROCESS, preprocessImage } from '../../src/models/image.ts';

const I = IGNORE_INDEX;

describe('collateTokens', () => {
  it('right-pads, masks, and puts next-token targets only on the answer', () => {
    const b = collateTokens(
      [
        { ids: [1, 5, 6, 7, 2], lossFrom: 3 },
        { ids: [1, 9], lossFrom: 1 },
      ],
      0,
    );
    assert.deepEqual(b.ids.shape, [2, 5]);
    assert.deepEqual([...b.ids.data].map(Number), [1, 5, 6, 7, 2, 1, 9, 0, 0, 0]);
    assert.deepEqual([...b.attentionMask.data].map(Number), [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
    // Sequence 0: tokens 3 and 4 (7, 2) are targets, predicted at positions 2 and 3.
    assert.deepEqual([...b.targets.data].map(Number), [I, I, 7, 2, I, 9, I, I, I, I]);
    assert.equal(b.targetCount, 3);
  });

  it('refuses an empty batch and over-long sequences', () => {
    assert.throws(() => collateTokens([], 0), /empty batch/);
    assert.throws(
      () => collateTokens([{ ids: [1, 2, 3] }], 0, 2),
      /sequence 0 has 3 tokens, more than the limit 2/,
    );
  });
});

describe('collateSelector', () => {
  it('gives the model-preprocessed pixels and text-guided patch labels', () => {
    const examples = [0, 1, 2, 3].map((i) => selectorExample(i, { seed: 5 }));
    const config = { ...CLIP_PREPROCESS, size: 96 };
    const batch = collateSelector(examples, { preprocess: config, patchSize: 8 });
    assert.deepEqual(batch.pixels.shape, [4, 3, 96, 96]);
    assert.deepEqual(batch.labels.shape, [4, 144]);
    for (const [b, ex] of examples.entries()) {
      const expected = patchLabels(ex.relevantMask, ex.image.width, ex.image.height, {
        imageSize: 96,
        patchSize: 8,
      }).labels;
      assert.deepEqual([...batch.labels.data.subarray(b * 144, (b + 1) * 144)], [...expected]);
      const px = preprocessImage(ex.image, config);
      assert.deepEqual(batch.pixels.data.subarray(b * 3 * 96 * 96, (b + 1) * 3 * 96 * 96), px.data);
    }
    const all = collateSelector(examples, { preprocess: config, patchSize: 8, textGuided: false });
    const sum = (a: Float32Array) => a.reduce((x, y) => x + y, 0);
    assert.ok(sum(all.labels.data) >= sum(batch.labels.data));
  });
});
