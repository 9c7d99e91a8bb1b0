/**
 * The `mode` option of stages 3–4 that the retrained encoding ablation (Table 4) uses: each mode's
 * batches carry exactly that encoding's tokens — no patches for discrete-only, every patch and no
 * discrete ids for continuous-only, the selector's share for hybrid — and the retrained rows run
 * the recipe's own list of stages after stage 2.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ImageSource } from '../../src/data/tasks/task.ts';
import type { HostTensor } from '../../src/engine/index.ts';
import type { EncodingMode } from '../../src/maven/sequence.ts';
import { TINY_SCHEDULE, tinyLaterStages } from '../../src/train/recipe.ts';
import { projectorStage } from '../../src/train/stages/stage3-projector.ts';
import { instructionStage } from '../../src/train/stages/stage4-instruction.ts';
import { ROUTING_PHASES, routingStage } from '../../src/train/stages/stage4a-routing.ts';
import { smallModel } from '../maven/small-model.ts';

const model = smallModel();
const options = (mode?: EncodingMode) => ({
  config: model.config,
  weights: model.hostWeights(),
  tokenizer: model.tokenizer,
  steps: 2,
  batchSize: 2,
  lr: 1e-3,
  mode,
});

/** 28×28 photos whose bytes encode their index, ten classes. */
const photos: ImageSource = {
  count: 60,
  image: (i) => new Uint8Array(784).fill((i * 37) % 251),
  label: (i) => i % 10,
  name: 'fake',
};

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

  it('stages 4a–4b route discrete-only unless a mode is given', async () => {
    const find = (mode?: EncodingMode) =>
      routingStage({ ...options(mode), fashion: photos }, ROUTING_PHASES.find);
    const recipe = counts(await firstBatch(find()));
    const continuous = counts(await firstBatch(find('continuous-only')));
    assert.ok(recipe.codes > 0 && recipe.patches === 0, JSON.stringify(recipe));
    assert.ok(continuous.patches > 0 && continuous.codes === 0, JSON.stringify(continuous));
    assert.match(find('continuous-only').description, /every image continuous-only/);
  });
});

describe("the recipe's stages after stage 2", () => {
  const base = (mode?: EncodingMode, fashion?: ImageSource) => ({
    config: model.config,
    tokenizer: model.tokenizer,
    fashion,
    mode,
  });
  const folders = (mode?: EncodingMode, fashion?: ImageSource) =>
    tinyLaterStages(base(mode, fashion), []).map((s) => s.folder);

  it('3, 4a, 4b, 4 with photos; 4a–4b need them; discrete-only has no stage 3', () => {
    const all = ['stage3-projector', 'stage4a-find-image', 'stage4b-compare-images', 'stage4-instruction'];
    assert.deepEqual(folders(undefined, photos), all);
    assert.deepEqual(folders('continuous-only', photos), all);
    assert.deepEqual(folders('discrete-only', photos), all.slice(1));
    assert.deepEqual(folders(), ['stage3-projector', 'stage4-instruction']);
  });

  it('each stage is built from the weights it is given, at the scaled schedule', () => {
    const [projector, , , instruction] = tinyLaterStages(base(undefined, photos), [], 0.5);
    const def = projector.build(model.hostWeights());
    assert.equal(def.steps, Math.round(TINY_SCHEDULE.projector.steps / 2));
    assert.equal(instruction.build(model.hostWeights()).steps, TINY_SCHEDULE.instruction.steps / 2);
    const norm = model.weights.get('model.norm.weight');
    assert.ok(norm, 'the small model has a final norm');
    assert.equal(def.params.get('model.norm.weight'), norm);
  });

  it('with a mode, every image of stage 4 is read in it', async () => {
    const stage4 = (mode?: EncodingMode) =>
      tinyLaterStages(base(mode), [], 0.001).at(-1)!.build(model.hostWeights());
    const continuous = counts(await firstBatch(stage4('continuous-only')));
    assert.ok(continuous.patches > 0 && continuous.codes === 0, JSON.stringify(continuous));
    const discrete = counts(await firstBatch(stage4('discrete-only')));
    assert.ok(discrete.codes > 0 && discrete.patches === 0, JSON.stringify(discrete));
  });
});
