/**
 * The `mode` option of stages 3–4 that the retrained encoding ablation (Table 4) uses: each mode's
 * batches carry exactly that encoding's tokens — no patches for discrete-only, every patch and no
 * discrete ids for continuous-only, the selector's share for hybrid.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HostTensor } from '../../src/engine/index.ts';
import type { EncodingMode } from '../../src/maven/sequence.ts';
import { projectorStage } from '../../src/train/stages/stage3-projector.ts';
import { instructionStage } from '../../src/train/stages/stage4-instruction.ts';
import { smallModel } from '../maven/small-model.ts';

const model = smallModel();
const options = (mode?: EncodingMode) => ({
  config: model.config,
  weights: model.weights,
  tokenizer: model.tokenizer,
  steps: 2,
  batchSize: 2,
  lr: 1e-3,
  mode,
});

async function firstBatch(def: ReturnType<typeof instructionStage>): Promise<Record<string, HostTensor>> {
  return (await def.batches(0).next()).value as Record<string, HostTensor>;
}

/** Patch positions and visual-code positions in a collated batch. */
function counts(batch: Record<string, HostTensor>) {
  const isPatch = batch.is_patch.data as Float32Array;
  const ids = batch.ids.data as BigInt64Array;
  const textVocab = model.config.textVocabSize;
  let patches = 0;
  let codes = 0;
  ids.forEach((id, t) => {
    if (isPatch[t]) patches++;
    else if (Number(id) >= textVocab) codes++;
  });
  return { patches, codes };
}

describe('stage 3–4 encoding modes', () => {
  it('stage 4 batches carry only the chosen encoding', async () => {
    const hybrid = counts(await firstBatch(instructionStage(options())));
    const discrete = counts(await firstBatch(instructionStage(options('discrete-only'))));
    const continuous = counts(await firstBatch(instructionStage(options('continuous-only'))));
    // Small model: 4 ids per image and a 4×4 grid; ρ = 0.25 keeps 4 patches. Same examples in each.
    assert.ok(hybrid.codes > 0 && hybrid.patches === hybrid.codes, `hybrid ${JSON.stringify(hybrid)}`);
    assert.deepEqual(discrete, { patches: 0, codes: hybrid.codes });
    assert.deepEqual(continuous, { patches: 4 * hybrid.patches, codes: 0 });
  });

  it('stage 3 captions from every patch in continuous-only mode', async () => {
    const selected = counts(await firstBatch(projectorStage(options())));
    const all = counts(await firstBatch(projectorStage(options('continuous-only'))));
    assert.equal(selected.codes, 0);
    assert.equal(all.patches, 4 * selected.patches);
  });
});
