/**
 * Stage-0 pretraining: the CLIP, SEED-tokenizer and LLM stages on a narrowed tiny config (same
 * structure, small widths, 32 px images), and the codebook dead-code restarts. Each stage's
 * graph traces, a few steps through the engine's Trainer lower its loss, `batches(k)` resumes
 * exactly, frozen weights stay bit-identical, and the contrastive stage learns to retrieve.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IGNORE_INDEX } from '../../src/data/collate.ts';
import { PATCH_CLASS_COUNT, patchObjectClasses } from '../../src/data/patch-labels.ts';
import { type CaptionPair, captionPair } from '../../src/data/tasks/stage-datasets.ts';
import type { ImageSource } from '../../src/data/tasks/task.ts';
import { type Graph, HostTensor, ops, Trainer } from '../../src/engine/index.ts';
import { type MavenConfig, tinyConfig } from '../../src/maven/config.ts';
import { buildComponents, initMavenParams, VISION_SCOPE } from '../../src/maven/model.ts';
import { ClipContrastiveHead } from '../../src/models/clip-text.ts';
import { WordTokenizer } from '../../src/models/tokenizer.ts';
import { CodebookUsage } from '../../src/train/codebook.ts';
import { type StageDefinition, stageTrainer } from '../../src/train/stage.ts';
import {
  clipPretrainStage,
  collatePatchTargets,
  retrievalAccuracy,
} from '../../src/train/stages/pretrain-clip.ts';
import { llmPretrainStage, pretrainText } from '../../src/train/stages/pretrain-llm.ts';
import { photoPretrainStage } from '../../src/train/stages/pretrain-photos.ts';
import {
  CODEBOOK,
  SEMANTIC_HEAD,
  tokenizerPretrainStage,
} from '../../src/train/stages/pretrain-tokenizer.ts';

// ---- a narrowed tiny config and a word tokenizer over the generators' text ----------------

const corpus = [
  ...Array.from({ length: 200 }, (_, i) => captionPair(i).caption),
  ...Array.from({ length: 200 }, (_, i) => pretrainText(i).text),
];
const tokenizer = WordTokenizer.build(corpus);
tokenizer.addSpecialTokens(['<img>', '</img>']);

function smallConfig(): MavenConfig {
  const base = tinyConfig(tokenizer.vocabSize);
  const codebookSize = 16;
  return {
    ...base,
    vision: {
      ...base.vision,
      imageSize: 32,
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 2,
    },
    seed: {
      ...base.seed,
      qformer: {
        ...base.seed.qformer,
        hiddenSize: 32,
        intermediateSize: 64,
        encoderHiddenSize: 32,
        numQueryTokens: 4,
        numAttentionHeads: 2,
      },
      codebookSize,
      codebookDim: 8,
    },
    llm: {
      ...base.llm,
      vocabSize: tokenizer.vocabSize + codebookSize,
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 2,
      numKeyValueHeads: 1,
    },
    selectorHiddenSize: 16,
  };
}
const config = smallConfig();
const TEXT = { hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 1, numAttentionHeads: 2 };

// ---- helpers --------------------------------------------------------------------------------

function take<T>(it: Iterator<T> | AsyncIterator<T>, n: number): Promise<T[]> {
  return (async () => {
    const out: T[] = [];
    for (let i = 0; i < n; i++) {
      const r = await it.next();
      assert.ok(!r.done, `the stream ended after ${i} batches`);
      out.push(r.value);
    }
    return out;
  })();
}

function assertSameFeeds(a: Record<string, HostTensor>, b: Record<string, HostTensor>, what: string): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), what);
  for (const k of Object.keys(a)) {
    assert.deepEqual(a[k].shape, b[k].shape, `${what}: ${k} shape`);
    assert.equal(a[k].dtype, b[k].dtype, `${what}: ${k} dtype`);
    assert.ok(
      a[k].data.every((x, i) => x === b[k].data[i]),
      `${what}: ${k} differs`,
    );
  }
}

/** batches(k) starts exactly where batches(0) is after k batches. */
async function checkResume(stage: StageDefinition, k: number): Promise<void> {
  const fromStart = await take(stage.batches(0), k + 1);
  const [resumed] = await take(stage.batches(k), 1);
  assertSameFeeds(resumed, fromStart[k], `batches(${k})`);
  assert.throws(() => assertSameFeeds(fromStart[0], fromStart[1], 'distinct'), /differs|shape/);
}

function trainerFor(stage: StageDefinition, lr?: number): Promise<Trainer> {
  return stageTrainer(stage, lr === undefined ? {} : { optimizer: { ...stage.optimizer, lr } });
}

function copyOf(t: HostTensor): HostTensor {
  return new HostTensor(t.dtype, t.shape, t.data.slice() as HostTensor['data']);
}

// ---- CLIP --------------------------------------------------------------------------------

describe('CLIP pretraining stage', () => {
  const stage = clipPretrainStage({
    config,
    tokenizer,
    text: TEXT,
    steps: 40,
    batchSize: 8,
    evalSplit: 'train', // the 8 pairs of batch 0: the test memorises them
    evalCount: 8,
  });

  it('has the vision tower under MaVEn names and the text tower and head under CLIPModel names', () => {
    const names = [...stage.params.keys()];
    const vision = buildComponents(config).vision;
    for (const name of vision.paramShapes().keys()) assert.ok(stage.params.has(VISION_SCOPE + name), name);
    assert.ok(names.includes('text_model.embeddings.token_embedding.weight'));
    assert.ok(names.includes('text_model.final_layer_norm.bias'));
    assert.deepEqual(stage.params.get('visual_projection.weight')!.shape, [32, 32]);
    assert.ok(Math.abs(Number(stage.params.get('logit_scale')!.data[0]) - Math.log(1 / 0.07)) < 1e-6);
    assert.ok(names.every((n) => stage.trainable(n)));
  });

  it('batches(k) equals the k-th batch of batches(0)', async () => {
    await checkResume(stage, 2);
    const [b] = await take(stage.batches(0), 1);
    assert.deepEqual(b.pixel_values.shape, [8, 3, 32, 32]);
    assert.equal(b.input_ids.shape[0], 8);
    // Each row: BOS first, EOS at eos_positions, padding after.
    const [, T] = b.input_ids.shape;
    for (let r = 0; r < 8; r++) {
      const eos = Number(b.eos_positions.data[r]);
      assert.equal(Number(b.input_ids.data[r * T]), tokenizer.bosId);
      assert.equal(Number(b.input_ids.data[r * T + eos]), tokenizer.eosId);
      for (let t = eos + 1; t < T; t++) assert.equal(Number(b.input_ids.data[r * T + t]), tokenizer.padId);
    }
  });

  it('training on fixed pairs lowers the loss and lifts retrieval far above chance', async () => {
    const trainer = await trainerFor(stage, 2e-3);
    const [fixed] = await take(stage.batches(0), 1);
    const before = await stage.evaluate!(stage.params);
    let first = Number.NaN;
    let last = Number.NaN;
    for (let i = 0; i < 45; i++) {
      const r = await trainer.trainStep(fixed);
      if (i === 0) first = r.loss;
      last = r.loss;
      assert.equal(r.metrics.imageToText.shape.length, 0);
    }
    const after = await stage.evaluate!(trainer.parameters());
    assert.ok(last < first * 0.5, `loss ${first} → ${last}`);
    assert.ok(after.loss < before.loss, `eval loss ${before.loss} → ${after.loss}`);
    // Chance is 1/8 (7 distinct captions among the 8: a repeated one counts as right either way).
    assert.ok(after.imageToText >= 0.625, `image→text ${before.imageToText} → ${after.imageToText}`);
    assert.ok(after.textToImage >= 0.625, `text→image ${before.textToImage} → ${after.textToImage}`);
  });

  it('retrievalAccuracy: row-wise and column-wise top-1, identical captions count as right', () => {
    // Image 0 → text 1 (wrong), image 1 → text 1, image 2 → text 0 (same caption as 2: right).
    const logits = Float32Array.from([0, 5, 1, 0, 5, 1, 9, 0, 1]);
    const r = retrievalAccuracy(logits, ['a', 'b', 'a']);
    assert.deepEqual(r, { imageToText: 2 / 3, textToImage: 2 / 3 });
    assert.throws(() => retrievalAccuracy(logits, ['a', 'b']), /9 logits for 2 pairs/);
  });

  it('rejects bad options and mismatched starting weights', () => {
    assert.throws(
      () => clipPretrainStage({ config, tokenizer, steps: 0, batchSize: 4 }),
      /stage0-clip: steps must be a positive integer, got 0/,
    );
    const weights = new Map([['text_projection.weight', HostTensor.zeros('float32', [3, 3])]]);
    assert.throws(
      () => clipPretrainStage({ config, tokenizer, text: TEXT, steps: 1, batchSize: 2, weights }),
      /"text_projection\.weight": expected float32\[32, 32\], got float32\[3, 3\]/,
    );
    assert.throws(
      () => clipPretrainStage({ config, tokenizer, text: { vocabSize: 5 }, steps: 1, batchSize: 2 }),
      /5 token embeddings, the tokenizer \d+ ids/,
    );
  });
});

// ---- CLIP with dense patch supervision ----------------------------------------------------

describe('CLIP pretraining with patch supervision', () => {
  // 32 px images, 8 px patches: a 4×4 grid, N = 16 patches per image.
  const N = 16;
  const grid = { imageSize: 32, patchSize: 8 };
  const photos: ImageSource = {
    count: 10,
    image: (i) => new Uint8Array(784).fill(20 * i + 10),
    label: (i) => i,
    name: 'fake-fashion',
  };
  const options = { config, tokenizer, text: TEXT, steps: 20, batchSize: 8, fashion: photos };
  const dense = clipPretrainStage({ ...options, patchSupervision: 1 });
  const plain = clipPretrainStage(options);
  const PROBES = [
    ['patch_probe.class.weight', [10, 32]],
    ['patch_probe.class.bias', [10]],
    ['patch_probe.center.weight', [2, 32]],
    ['patch_probe.center.bias', [2]],
  ] as const;

  /** Row `b` of an int64 [B, N] tensor as numbers. */
  const row = (t: HostTensor, b: number): number[] =>
    Array.from(t.data.subarray(b * N, (b + 1) * N) as BigInt64Array, Number);

  it('declares the two trainable probe heads on the patch features, and only with the option', () => {
    for (const [name, shape] of PROBES) {
      assert.deepEqual(dense.params.get(name)?.shape, shape, name);
      assert.ok(dense.trainable(name), name);
    }
    assert.deepEqual(
      [...plain.params.keys()].filter((n) => n.startsWith('patch_probe.')),
      [],
    );
    // Everything else is the same set of weights, initialised identically.
    const rest = [...dense.params.keys()].filter((n) => !n.startsWith('patch_probe.')).sort();
    assert.deepEqual(rest, [...plain.params.keys()].sort());
    for (const name of rest)
      assert.deepEqual(dense.params.get(name)!.data, plain.params.get(name)!.data, name);
  });

  it('collatePatchTargets: scene rows from the objects, photo rows all ignored (−100)', () => {
    const scene = captionPair(3);
    assert.ok(scene.objects && scene.objects.length > 0);
    const photo: CaptionPair = {
      key: 'photo',
      image: { width: 2, height: 2, rgb: new Uint8Array(12) },
      caption: 'A photo of a bag.',
      source: 'fashion',
      label: 8,
    };
    const empty: CaptionPair = { ...scene, key: 'empty', objects: [] };
    const { patch_classes, patch_objects, patch_centers, photo_classes } = collatePatchTargets(
      [photo, scene, empty],
      grid,
    );
    // The photo's class for the photo head; scene boxes are ignored there.
    assert.deepEqual(photo_classes.shape, [3, 1]);
    assert.deepEqual(Array.from(photo_classes.data as BigInt64Array, Number), [
      8,
      IGNORE_INDEX,
      IGNORE_INDEX,
    ]);
    for (const t of [patch_classes, patch_objects, patch_centers]) {
      assert.equal(t.dtype, 'int64');
      assert.deepEqual(t.shape, [3, N]);
    }
    const ignored = new Array(N).fill(IGNORE_INDEX);
    assert.deepEqual(row(patch_classes, 0), ignored);
    assert.deepEqual(row(patch_centers, 0), ignored);
    const want = patchObjectClasses(scene.objects, grid);
    assert.deepEqual(row(patch_classes, 1), Array.from(want.classes));
    assert.deepEqual(row(patch_centers, 1), Array.from(want.centers));
    // The object-only targets: the same classes on object patches, background ignored too.
    assert.deepEqual(
      row(patch_objects, 1),
      Array.from(want.classes, (c) => (c > 0 ? c : IGNORE_INDEX)),
    );
    assert.deepEqual(row(patch_objects, 2), ignored);
    assert.deepEqual(row(patch_objects, 0), ignored);
    assert.ok(row(patch_classes, 1).some((c) => c > 0) && row(patch_centers, 1).includes(1));
    // A scene box with no objects is all background, not ignored.
    assert.deepEqual(row(patch_classes, 2), new Array(N).fill(0));
    assert.deepEqual(row(patch_centers, 2), new Array(N).fill(0));
  });

  it('batches carry patch targets [B, N] that match each pair; without the option they do not', async () => {
    const [b0, b1] = await take(dense.batches(0), 2);
    const [p0] = await take(plain.batches(0), 1);
    assert.deepEqual(Object.keys(p0).sort(), ['eos_positions', 'input_ids', 'pixel_values']);
    assert.deepEqual(Object.keys(b0).sort(), [
      'eos_positions',
      'input_ids',
      'patch_centers',
      'patch_classes',
      'photo_classes',
      'pixel_values',
    ]);
    // The rest of the batch is the plain stage's batch.
    for (const k of Object.keys(p0)) assert.deepEqual(b0[k].data, p0[k].data, k);
    let photoRows = 0;
    let sceneRows = 0;
    [b0, b1].forEach((batch, k) => {
      assert.deepEqual(batch.patch_classes.shape, [8, N]);
      assert.deepEqual(batch.patch_centers.shape, [8, N]);
      for (let b = 0; b < 8; b++) {
        // Batch k holds pairs k·8 … k·8 + 7 of the training stream (seed 0).
        const pair = captionPair(k * 8 + b, { seed: 0, split: 'train', fashion: photos });
        if (pair.objects) {
          sceneRows++;
          const want = patchObjectClasses(pair.objects, grid);
          assert.deepEqual(row(batch.patch_classes, b), Array.from(want.classes), `batch ${k} row ${b}`);
          assert.deepEqual(row(batch.patch_centers, b), Array.from(want.centers), `batch ${k} row ${b}`);
          assert.equal(Number(batch.photo_classes.data[b]), IGNORE_INDEX);
        } else {
          photoRows++;
          assert.equal(Number(batch.photo_classes.data[b]), pair.label, `batch ${k} row ${b}`);
          assert.deepEqual(row(batch.patch_classes, b), new Array(N).fill(IGNORE_INDEX));
          assert.deepEqual(row(batch.patch_centers, b), new Array(N).fill(IGNORE_INDEX));
        }
      }
    });
    assert.ok(photoRows > 0 && sceneRows > 0, `${photoRows} photo and ${sceneRows} scene rows`);
    await checkResume(dense, 1);
  });

  it('adds the weighted patch losses to InfoNCE, and training lowers the class loss', async () => {
    const [fixed] = await take(dense.batches(0), 1);
    const [plainBatch] = await take(plain.batches(0), 1);
    // Step 1 reports the loss at the starting weights, which the three stages share.
    const double = clipPretrainStage({ ...options, patchSupervision: 2 });
    const r1 = await (await trainerFor(dense)).trainStep(fixed);
    const r2 = await (await trainerFor(double)).trainStep(fixed);
    const r0 = await (await trainerFor(plain)).trainStep(plainBatch);
    const classLoss = Number(r1.metrics.classLoss.data[0]);
    const centerLoss = Number(r1.metrics.centerLoss.data[0]);
    const photoLoss = Number(r1.metrics.photoLoss.data[0]);
    const patch = classLoss + centerLoss + photoLoss;
    // InfoNCE alone (the plain stage) + 1× or 2× the patch losses.
    assert.ok(Math.abs(r1.loss - (r0.loss + patch)) < 1e-4, `${r1.loss} vs ${r0.loss} + ${patch}`);
    assert.ok(Math.abs(r2.loss - (r0.loss + 2 * patch)) < 1e-4, `${r2.loss} vs ${r0.loss} + 2·${patch}`);
    assert.ok(
      classLoss > 0 && centerLoss > 0 && photoLoss > 0,
      `class ${classLoss}, centre ${centerLoss}, photo ${photoLoss}`,
    );
    assert.equal(r0.metrics.classLoss, undefined);

    const trainer = await trainerFor(dense, 3e-3);
    const classLosses: number[] = [];
    for (let i = 0; i < 15; i++)
      classLosses.push(Number((await trainer.trainStep(fixed)).metrics.classLoss.data[0]));
    assert.ok(classLosses[14] < classLosses[0] * 0.8, `class loss ${classLosses[0]} → ${classLosses[14]}`);
    // Evaluation reads only the contrastive part: it runs on the trained dense weights.
    const evaluation = await dense.evaluate!(trainer.parameters());
    assert.ok(Number.isFinite(evaluation.loss) && evaluation.imageToText >= 0);
  });

  it('objectSupervision adds its weight × the class loss over object patches alone', async () => {
    const objects = clipPretrainStage({ ...options, patchSupervision: 1, objectSupervision: 3 });
    const [withObjects] = await take(objects.batches(0), 1);
    const [fixed] = await take(dense.batches(0), 1);
    assert.deepEqual(Object.keys(withObjects).sort(), [...Object.keys(fixed), 'patch_objects'].sort());
    const r1 = await (await trainerFor(dense)).trainStep(fixed);
    const r3 = await (await trainerFor(objects)).trainStep(withObjects);
    const objectLoss = Number(r3.metrics.objectLoss.data[0]);
    assert.ok(
      Math.abs(r3.loss - (r1.loss + 3 * objectLoss)) < 1e-4,
      `${r3.loss} vs ${r1.loss} + 3·${objectLoss}`,
    );
    // Over objects alone the loss differs from the class loss over every patch (most are background).
    const classLoss = Number(r3.metrics.classLoss.data[0]);
    assert.ok(
      objectLoss > 0 && Math.abs(objectLoss - classLoss) > 1e-3,
      `object ${objectLoss}, class ${classLoss}`,
    );
    assert.equal(r1.metrics.objectLoss, undefined);
  });
});

// ---- SEED tokenizer -----------------------------------------------------------------------

describe('tokenizer pretraining stage', () => {
  const weights = initMavenParams(buildComponents(config), 3); // stands in for a CLIP-pretrained tower
  // The vision tower and stage 0a's CLIP image projection (the semantic loss's target).
  const visionOnly = new Map([
    ...[...weights].filter(([n]) => n.startsWith(VISION_SCOPE)),
    ...[
      ...new ClipContrastiveHead({
        textWidth: config.vision.hiddenSize,
        visionWidth: config.vision.hiddenSize,
        projectionDim: config.vision.hiddenSize,
      }).init(5),
    ].filter(([n]) => n === 'visual_projection.weight'),
  ]);
  const stage = tokenizerPretrainStage({
    config,
    weights: visionOnly,
    steps: 20,
    batchSize: 4,
    restarts: { window: 3 },
  });

  it('batches(k) equals the k-th batch of batches(0)', async () => {
    await checkResume(stage, 3);
  });

  it('trains the tokenizer with the vision tower frozen bit for bit, restarting dead codes', async () => {
    const trainer = await trainerFor(stage);
    const { trainable, frozen } = trainer.summary();
    assert.ok(
      trainable.length > 0 &&
        trainable.every(([n]) => n.startsWith('visual_tokenizer.') || n === SEMANTIC_HEAD),
    );
    // Frozen: the vision tower and the CLIP projection (the semantic target); the Q-Former trains.
    assert.ok(
      frozen.length > 0 &&
        frozen.every(([n]) => n.startsWith(VISION_SCOPE) || n === 'visual_projection.weight'),
    );
    assert.ok(frozen.some(([n]) => n === 'visual_projection.weight'));
    assert.ok(
      trainable.some(([n]) => n.includes('encode_task_layer')) &&
        trainable.some(([n]) => n === CODEBOOK) &&
        trainable.some(([n]) => n.includes('Qformer.')) &&
        trainable.some(([n]) => n === SEMANTIC_HEAD),
    );
    const visionBefore = new Map(
      [...stage.params].filter(([n]) => n.startsWith(VISION_SCOPE)).map(([n, t]) => [n, copyOf(t)]),
    );
    const codebookBefore = copyOf(stage.params.get(CODEBOOK)!);

    const [fixed] = await take(stage.batches(0), 1);
    const losses: number[] = [];
    let restartedTotal = 0;
    let last: Record<string, number> | undefined;
    for (let i = 0; i < 12; i++) {
      const r = await trainer.trainStep(fixed);
      losses.push(r.loss);
      assert.deepEqual(r.metrics.ids.shape, [4, 4]);
      assert.deepEqual(r.metrics.z.shape, [4, 4, 8]);
      const perplexity = Number(r.metrics.perplexity.data[0]);
      assert.ok(perplexity >= 1 - 1e-4 && perplexity <= Number(r.metrics.codesUsed.data[0]) + 1e-3);
      last = (await stage.afterStep!(r, trainer)) ?? undefined;
      restartedTotal += last!.restarted;
    }
    assert.ok(losses[losses.length - 1] < losses[0], `loss ${losses[0]} → ${losses[losses.length - 1]}`);
    assert.ok(restartedTotal > 0, 'some codes were dead after 3 steps and got restarted');
    assert.ok(last!.windowCodesUsed >= 1 && last!.windowPerplexity >= 1);

    const now = trainer.parameters();
    for (const [name, before] of visionBefore) {
      const after = now.get(name);
      if (!after) continue; // e.g. post_layernorm: not read by the tokenizer's graph
      assert.ok(
        after.data.every((x, i) => x === before.data[i]),
        `${name} changed`,
      );
    }
    assert.ok(!now.get(CODEBOOK)!.data.every((x, i) => x === codebookBefore.data[i]), 'the codebook moved');
    const evaluation = await stage.evaluate!(now);
    for (const k of ['recLoss', 'vqLoss', 'perplexity', 'codesUsed'])
      assert.ok(Number.isFinite(evaluation[k]), k);
  });

  it('needs the vision tower, and says which weights are missing', () => {
    assert.throws(
      () => tokenizerPretrainStage({ config, weights: new Map(), steps: 1, batchSize: 2 }),
      /stage0-tokenizer: the starting weights do not fit .*\n {2}missing "vision_tower\.vision_model\.embeddings\.patch_embedding\.weight" \[32, 3, 8, 8\]/,
    );
  });
});

// ---- codebook restarts ------------------------------------------------------------------------

describe('codebook dead-code restarts', () => {
  /**
   * 16 tight clusters on a 4 × 4 grid around (10, 10); a codebook that starts in a tiny ball at
   * the origin, so one code is nearest to every cluster: the classic collapse.
   */
  const K = 16;
  const N = 128;
  const points = new Float32Array(N * 2);
  for (let i = 0; i < N; i++) {
    const c = i % K;
    points[2 * i] = 10 + 4 * ((c % 4) - 1.5) + 0.1 * Math.sin(i * 1.7);
    points[2 * i + 1] = 10 + 4 * (Math.floor(c / 4) - 1.5) + 0.1 * Math.cos(i * 2.3);
  }
  const codebook0 = new Float32Array(K * 2);
  for (let i = 0; i < K * 2; i++) codebook0[i] = 0.01 * Math.sin(i * 12.9898 + 1);

  async function codesUsed(restarts: boolean): Promise<number> {
    const trainer = await Trainer.create({
      params: new Map([['codebook', new HostTensor('float32', [K, 2], codebook0.slice())]]),
      build: (g: Graph) => {
        const z = g.input('z', 'float32', [N, 2]);
        const codebook = g.param('codebook', [K, 2]);
        const ids = ops.nearestCode(z, codebook);
        const q = ops.gather(codebook, ids);
        return { loss: ops.mean(ops.square(ops.sub(ops.stopGradient(z), q))), metrics: { ids } };
      },
      optimizer: { lr: 0.1, weightDecay: 0 },
    });
    const usage = new CodebookUsage({ codebookSize: K, codebookDim: 2, window: 5, seed: 1 });
    const feeds = { z: new HostTensor('float32', [N, 2], points) };
    for (let step = 1; step <= 60; step++) {
      const r = await trainer.trainStep(feeds);
      usage.observe(step, r.metrics.ids.data as BigInt64Array, points);
      if (restarts) {
        const state = trainer.optimizerState();
        usage.restart(step, trainer.parameters().get('codebook')!.data as Float32Array, [
          state.get('codebook@adam_m')!.data as Float32Array,
          state.get('codebook@adam_v')!.data as Float32Array,
        ]);
      }
    }
    return usage.stats().used;
  }

  it('restarts raise the number of codes in use on a toy problem', async () => {
    const without = await codesUsed(false);
    const withRestarts = await codesUsed(true);
    assert.ok(without <= 2, `without restarts ${without} codes in use`);
    assert.ok(withRestarts >= 14, `with restarts ${withRestarts} codes in use`);
  });

  it('tracks usage over the window, restarts only dead codes, and zeroes their moments', () => {
    const usage = new CodebookUsage({ codebookSize: 4, codebookDim: 2, window: 2, noise: 0, seed: 7 });
    const z = Float32Array.from([1, 1, 2, 2, 3, 3, 4, 4]);
    usage.observe(1, BigInt64Array.from([0n, 0n, 1n, 1n]), z);
    assert.deepEqual(usage.stats(), { used: 2, perplexity: 2 });
    assert.deepEqual(usage.dead(1), []);
    usage.observe(2, BigInt64Array.from([0n, 0n, 0n, 0n]), z);
    assert.deepEqual(usage.dead(2), [2, 3]); // unused for the 2 steps since the tracker started
    const codebook = new Float32Array(8).fill(9);
    const m = new Float32Array(8).fill(5);
    assert.deepEqual(usage.restart(2, codebook, [m]), [2, 3]);
    assert.deepEqual(Array.from(codebook.subarray(0, 4)), [9, 9, 9, 9], 'live codes untouched');
    for (const code of [2, 3]) {
      const [a, b] = codebook.subarray(code * 2, code * 2 + 2);
      assert.ok(a === b && [1, 2, 3, 4].includes(a), `code ${code} sits on a buffered z row, got ${a}, ${b}`);
    }
    assert.notEqual(codebook[4], codebook[6], 'two restarted codes get distinct rows');
    assert.deepEqual(Array.from(m), [5, 5, 5, 5, 0, 0, 0, 0]);
    assert.deepEqual(usage.dead(2), [], 'restarted codes get a new window');
    usage.observe(3, BigInt64Array.from([0n, 0n, 0n, 0n]), z);
    assert.deepEqual(usage.stats(), { used: 1, perplexity: 1 }, 'step 1 left the window');
    assert.throws(
      () => usage.observe(4, BigInt64Array.from([4n]), z.subarray(0, 2)),
      /id 4 at 0 is outside the codebook \[0, 4\)/,
    );
    assert.throws(
      () => usage.observe(4, BigInt64Array.from([0n]), z),
      /1 ids need 1 × 2 = 2 z values, got 8/,
    );
    assert.throws(() => usage.restart(4, new Float32Array(3)), /codebook has 3 values, expected 4 × 2 = 8/);
  });
});

// ---- LLM --------------------------------------------------------------------------------

describe('LLM pretraining stage', () => {
  const stage = llmPretrainStage({ config, tokenizer, steps: 20, batchSize: 8, maxLength: 64 });

  it('draws captions, statements and task text deterministically, with no image placeholders', () => {
    const texts = Array.from({ length: 40 }, (_, i) => pretrainText(i));
    assert.deepEqual(new Set(texts.map((t) => t.kind)), new Set(['caption', 'statement', 'qa']));
    assert.deepEqual(pretrainText(17), texts[17]);
    assert.ok(texts.every((t) => t.text.length > 0 && !t.text.includes('<image>')));
    assert.notDeepEqual(pretrainText(0, { split: 'heldout' }), texts[0]);
  });

  it('batches(k) equals the k-th batch of batches(0)', async () => {
    await checkResume(stage, 2);
    const [b] = await take(stage.batches(0), 1);
    assert.equal(stage.batchSize!(b), (b.targets.data as BigInt64Array).filter((t) => t !== -100n).length);
    assert.equal(Number(b.input_ids.data[0]), tokenizer.bosId);
  });

  it('a few steps lower the next-token loss; evaluation is finite', async () => {
    const trainer = await trainerFor(stage, 3e-3);
    const [fixed] = await take(stage.batches(0), 1);
    const losses: number[] = [];
    for (let i = 0; i < 12; i++) losses.push((await trainer.trainStep(fixed)).loss);
    assert.ok(losses[0] > Math.log(config.llm.vocabSize) * 0.9, `starts near uniform: ${losses[0]}`);
    assert.ok(losses[11] < losses[0] - 0.5, `loss ${losses[0]} → ${losses[11]}`);
    const evaluation = await stage.evaluate!(trainer.parameters());
    assert.ok(Number.isFinite(evaluation.loss) && evaluation.perplexity > 1 && evaluation.accuracy >= 0);
  });

  it('rejects a tokenizer that does not fit the config', () => {
    assert.throws(
      () => llmPretrainStage({ config: { ...config, textVocabSize: 5 }, tokenizer, steps: 1, batchSize: 1 }),
      /stage0-llm: the tokenizer has \d+ ids, the config's text vocabulary 5/,
    );
  });
});

// ---- stage 0a's photo phase ------------------------------------------------------------------

describe('photo phase of stage 0a (the tower on photos alone)', () => {
  // Two classes a linear head on pooled patches separates at once: dark and bright photos.
  const drawn: number[] = [];
  const photos: ImageSource = {
    count: 60,
    image: (i) => {
      drawn.push(i);
      return new Uint8Array(784).map((_, p) => (i % 2 ? 180 : 40) + ((p * 7 + i) % 30));
    },
    label: (i) => i % 2,
    name: 'fake-fashion',
  };
  const head = new Map([
    ['patch_probe.photo_class.weight', HostTensor.zeros('float32', [10, 32])],
    ['patch_probe.photo_class.bias', HostTensor.zeros('float32', [10])],
  ]);
  const weights = new Map([...initMavenParams(buildComponents(config), 0), ...head]);
  const stage = photoPretrainStage({
    config,
    weights,
    fashion: photos,
    steps: 30,
    batchSize: 8,
    evalCount: 10,
  });

  it('batches(k) equals the k-th batch of batches(0), across an epoch boundary', async () => {
    await checkResume(stage, 2);
    await checkResume(stage, 6); // photos 48–55 of 50 training ones: the second epoch starts inside
  });

  it('draws each training photo once per epoch and never the held-out ones', async () => {
    drawn.length = 0;
    await take(stage.batches(0), 12); // 96 draws: all of epoch 1 (50), most of epoch 2
    assert.ok(
      drawn.every((i) => i < 50),
      `held-out photos drawn: ${drawn.filter((i) => i >= 50)}`,
    );
    assert.equal(new Set(drawn.slice(0, 50)).size, 50);
    assert.notDeepEqual(drawn.slice(0, 50), drawn.slice(50, 96).concat(drawn.slice(0, 4)));
  });

  it('training lowers the loss and the held-out accuracy reaches the separable level', async () => {
    const trainer = await trainerFor(stage, 2e-3);
    const before = await stage.evaluate!(stage.params);
    const it = stage.batches(0);
    const losses: number[] = [];
    for (const feeds of await take(it, 30)) losses.push((await trainer.trainStep(feeds)).loss);
    const after = await stage.evaluate!(trainer.parameters());
    assert.ok(losses.at(-1)! < losses[0] * 0.5, `loss ${losses[0]} → ${losses.at(-1)}`);
    assert.equal(before.accuracy, 0.5); // a zero head ties every class: class 0 for every photo
    assert.equal(after.accuracy, 1);
  });

  describe('with scene boxes riding along (boxesPerStep)', () => {
    const N = (config.vision.imageSize / config.vision.patchSize) ** 2;
    const boxHeads = new Map([
      ['patch_probe.class.weight', HostTensor.zeros('float32', [PATCH_CLASS_COUNT, 32])],
      ['patch_probe.class.bias', HostTensor.zeros('float32', [PATCH_CLASS_COUNT])],
      ['patch_probe.center.weight', HostTensor.zeros('float32', [2, 32])],
      ['patch_probe.center.bias', HostTensor.zeros('float32', [2])],
    ]);
    const withBoxes = photoPretrainStage({
      config,
      weights: new Map([...weights, ...boxHeads]),
      fashion: photos,
      steps: 30,
      batchSize: 8,
      evalCount: 10,
      boxesPerStep: 4,
      objectSupervision: 4,
    });

    it('a batch is the photos then the boxes, each row labelled for its own heads only', async () => {
      const [feeds] = await take(withBoxes.batches(0), 1);
      assert.deepEqual(feeds.pixel_values.shape, [12, 3, config.vision.imageSize, config.vision.imageSize]);
      const photo = Array.from(feeds.photo_classes.data as BigInt64Array, Number);
      assert.ok(photo.slice(0, 8).every((c) => c === 0 || c === 1));
      assert.deepEqual(photo.slice(8), [-100, -100, -100, -100]);
      const classes = Array.from(feeds.patch_classes.data as BigInt64Array, Number);
      assert.ok(
        classes.slice(0, 8 * N).every((c) => c === -100),
        'photo rows carry no patch labels',
      );
      assert.ok(
        classes.slice(8 * N).some((c) => c > 0),
        'box rows name their objects',
      );
      assert.deepEqual(feeds.patch_objects.shape, [12, N]);
      await checkResume(withBoxes, 5);
    });

    it('trains both heads and reports the class head on held-out boxes', async () => {
      const trainer = await trainerFor(withBoxes, 2e-3);
      const before = await withBoxes.evaluate!(withBoxes.params);
      const losses: number[] = [];
      for (const feeds of await take(withBoxes.batches(0), 30))
        losses.push((await trainer.trainStep(feeds)).loss);
      const after = await withBoxes.evaluate!(trainer.parameters());
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const [first, last] = [mean(losses.slice(0, 5)), mean(losses.slice(-5))];
      assert.ok(last < first * 0.7, `loss ${first} → ${last} (means of the first and last 5 steps)`);
      assert.equal(after.accuracy, 1);
      // A zero class head names background (class 0) for every patch, so no object patch at first.
      assert.equal(before.boxObjectPatches, 0);
      assert.ok(after.boxObjectPatches > 0 && after.boxObjectPatches <= 1, `${after.boxObjectPatches}`);
    });

    it('needs stage 0a’s patch heads and a whole number of boxes', () => {
      const stageWith = (boxesPerStep: number) => () =>
        photoPretrainStage({
          config,
          weights,
          fashion: photos,
          steps: 2,
          batchSize: 8,
          evalCount: 10,
          boxesPerStep,
        });
      assert.throws(stageWith(2), /missing "patch_probe\.class\.weight"/);
      assert.throws(stageWith(1.5), /boxesPerStep must be a whole number/);
    });
  });

  it('needs stage 0a’s tower and photo head, and says which weights are missing', () => {
    const without = new Map([...weights].filter(([n]) => !n.startsWith('patch_probe.')));
    assert.throws(
      () =>
        photoPretrainStage({
          config,
          weights: without,
          fashion: photos,
          steps: 2,
          batchSize: 8,
          evalCount: 10,
        }),
      /missing "patch_probe\.photo_class\.weight"/,
    );
    assert.throws(
      () => photoPretrainStage({ config, weights, fashion: photos, steps: 2, batchSize: 8, evalCount: 55 }),
      /60 photos leave 5 to train on/,
    );
  });
});
