/**
 * Training encodes images through the model's own two steps: the patches it trains on are the
 * ones inference keeps (step 2), and their features are the step-1 features of those patches.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EncodingMode } from '../../src/maven/sequence.ts';
import type { DecodedImage } from '../../src/models/image.ts';
import { encodeInModes } from '../../src/train/stages/common.ts';
import { smallModel } from '../maven/small-model.ts';

const image = (seed: number): DecodedImage => ({
  width: 40,
  height: 36,
  rgb: Uint8Array.from({ length: 40 * 36 * 3 }, (_, i) => (i * 7 + seed * 31) % 256),
});

describe('encodeInModes', () => {
  it('keeps what inference keeps, with the step-1 features of the kept patches', async () => {
    const model = smallModel();
    const images = [0, 1, 2, 3].map(image);
    const modes: EncodingMode[] = ['hybrid', 'discrete-only', 'continuous-only', 'hybrid'];
    const trained = await encodeInModes(model, images, modes);
    const encodings = await model.encodeImages(model.preprocessRgb(images));
    const inference = await model.selectPatches(encodings, { mode: modes });
    const dv = model.config.vision.hiddenSize;
    trained.forEach((t, i) => {
      assert.deepEqual(t.discreteIds, inference[i].discreteIds, `image ${i} ids`);
      assert.deepEqual(t.keptPatches, inference[i].keptPatches, `image ${i} kept`);
      assert.deepEqual(t.keptFeatures.shape, [t.keptPatches.length, dv]);
      const all = encodings[i].features!.data as Float32Array;
      const kept = t.keptFeatures.data as Float32Array;
      t.keptPatches.forEach((p, j) => {
        for (let d = 0; d < dv; d++)
          assert.ok(
            Math.abs(kept[j * dv + d] - all[p * dv + d]) < 1e-6,
            `image ${i} patch ${p} feature ${d}`,
          );
      });
    });
    assert.deepEqual(
      trained.map((t) => t.keptPatches.length),
      [4, 0, 16, 4],
    );
    await assert.rejects(encodeInModes(model, images, ['hybrid']), /1 modes for 4 images/);
  });
});
