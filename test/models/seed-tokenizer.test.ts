/**
 * SEED tokenizer: causal Q-Former, task layers and vector quantiser. Forward outputs are checked
 * against scripts/fixtures/vision_reference.py (a PyTorch mirror of LAVIS's causal Q-Former and
 * SEED's quantizer, float64); ids, VQ loss and gradients against plain-TS loops over the z and
 * codebook the graph itself reports.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  compile,
  Graph,
  grad,
  HostTensor,
  ops,
  type Program,
  type Tensor,
  Trainer,
} from '../../src/engine/index.ts';
import { ClipVisionModel } from '../../src/models/clip-vision.ts';
import {
  SEED_TOKENIZER_CONFIG,
  SeedTokenizer,
  type SeedTokenizerConfig,
} from '../../src/models/seed-tokenizer.ts';
import { loadSafetensors } from '../../src/node/safetensors-file.ts';
import {
  CLIP_CONFIGS,
  fixtureWeights,
  SEED_CONFIG,
  SEED_FIXTURE,
  SEED_GOLDEN,
} from '../fixtures/vision-fixtures.ts';

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  assert.equal(
    actual.length,
    expected.length,
    `${what}: ${actual.length} values, expected ${expected.length}`,
  );
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(
      worst,
      Math.abs(Number(actual[i]) - Number(expected[i])) / (1 + Math.abs(Number(expected[i]))),
    );
  }
  assert.ok(worst <= tol, `${what}: largest relative difference ${worst.toExponential(2)} > ${tol}`);
}

const floats = (t: HostTensor): number[] => Array.from(t.data as Float32Array);

/** Compile, then bind every parameter the graph declares from `weights` (feeds may still override). */
async function build(
  weights: Map<string, HostTensor>,
  body: (g: Graph, features: Tensor) => Record<string, Tensor>,
  featureWidth = SEED_CONFIG.qformer.encoderHiddenSize,
): Promise<{ program: Program; graph: Graph }> {
  const g = new Graph();
  const outputs = body(g, g.input('image_features', 'float32', ['B', 'N', featureWidth]));
  const program = await compile(g, outputs);
  for (const name of g.params.keys()) {
    const w = weights.get(name);
    assert.ok(w, `no weight "${name}"`);
    program.bind(name, w);
  }
  return { program, graph: g };
}

/** Nearest codebook row (squared L2) of each codeDim-vector of z, by brute force. */
function nearest(z: number[], codebook: number[], dim: number): number[] {
  const ids: number[] = [];
  for (let v = 0; v < z.length / dim; v++) {
    let best = -1;
    let bestDist = Number.POSITIVE_INFINITY;
    for (let k = 0; k < codebook.length / dim; k++) {
      let dist = 0;
      for (let j = 0; j < dim; j++) dist += (z[v * dim + j] - codebook[k * dim + j]) ** 2;
      if (dist < bestDist) [best, bestDist] = [k, dist];
    }
    ids.push(best);
  }
  return ids;
}

describe('SeedTokenizer against the PyTorch reference', () => {
  let fixture: Map<string, HostTensor>;
  let golden: Map<string, HostTensor>;
  let features: HostTensor;
  before(async () => {
    fixture = await loadSafetensors(SEED_FIXTURE);
    golden = await loadSafetensors(SEED_GOLDEN);
    features = fixture.get('image_features')!;
  });

  it('query features, z, ids, quantized codes, VQ loss and decoded features match', async () => {
    const tok = new SeedTokenizer(SEED_CONFIG);
    for (const [name, shape] of tok.paramShapes()) assert.deepEqual(fixture.get(name)?.shape, shape, name);
    const { program } = await build(fixture, (g, f) => {
      const e = tok.encode(g, f);
      return { ...e, decoded: tok.decode(g, e.quantized), direct: tok.queryFeatures(g, f) };
    });
    const r = await program.run({ image_features: features });
    const [b, q, c] = [2, SEED_CONFIG.qformer.numQueryTokens, SEED_CONFIG.codebookDim];
    assert.deepEqual(r.queries.shape, [b, q, SEED_CONFIG.qformer.hiddenSize]);
    assert.deepEqual(r.z.shape, [b, q, c]);
    assert.deepEqual(r.ids.shape, [b, q]);
    assert.equal(r.ids.dtype, 'int64');
    const g64 = (name: string) => golden.get(name)!.data as Float64Array;
    assertClose(floats(r.queries), g64('query_features'), 1e-4, 'query features');
    assertClose(floats(r.direct), g64('query_features'), 1e-4, 'queryFeatures()');
    assertClose(floats(r.z), g64('z'), 1e-4, 'z');
    assert.deepEqual(
      Array.from(r.ids.data as BigInt64Array, Number),
      Array.from(golden.get('ids')!.data as BigInt64Array, Number),
    );
    assertClose(floats(r.quantized), g64('quantized'), 1e-5, 'quantized');
    assertClose(floats(r.vqLoss), g64('vq_loss'), 1e-5, 'VQ loss');
    assertClose(floats(r.decoded), g64('decoded'), 1e-4, 'decoded');
  });

  it('without the causal mask it matches the bidirectional (BLIP-2) Q-Former instead', async () => {
    const tok = new SeedTokenizer({ ...SEED_CONFIG, qformer: { ...SEED_CONFIG.qformer, causal: false } });
    const { program } = await build(fixture, (g, f) => ({ queries: tok.queryFeatures(g, f) }));
    const r = await program.run({ image_features: features });
    assertClose(
      floats(r.queries),
      golden.get('query_features_bidirectional')!.data as Float64Array,
      1e-4,
      'bidirectional',
    );
  });

  it('causal: changing queries k.. leaves the outputs of queries 0..k-1 unchanged', async () => {
    const k = 2;
    const d = SEED_CONFIG.qformer.hiddenSize;
    const tokens = fixture.get('query_tokens')!; // [1, Q, D]
    const shifted = floats(tokens).map((v, i) => (i >= k * d ? v + 0.5 * Math.sin(i) : v)); // not a constant shift, which the embeddings' LayerNorm would remove
    const perturbed = new HostTensor('float32', tokens.shape, Float32Array.from(shifted));
    const q = SEED_CONFIG.qformer.numQueryTokens;
    const maxDiff = (a: HostTensor, b: HostTensor, from: number, to: number) => {
      let m = 0;
      for (let img = 0; img < 2; img++)
        for (let i = from * d; i < to * d; i++)
          m = Math.max(m, Math.abs(Number(a.data[img * q * d + i]) - Number(b.data[img * q * d + i])));
      return m;
    };
    for (const causal of [true, false]) {
      const tok = new SeedTokenizer({ ...SEED_CONFIG, qformer: { ...SEED_CONFIG.qformer, causal } });
      const { program } = await build(fixture, (g, f) => ({ queries: tok.queryFeatures(g, f) }));
      const base = (await program.run({ image_features: features })).queries;
      const moved = (await program.run({ image_features: features, query_tokens: perturbed })).queries;
      const early = maxDiff(base, moved, 0, k);
      const late = maxDiff(base, moved, k, q);
      assert.ok(late > 1e-2, `causal=${causal}: the perturbed queries themselves must change (${late})`);
      if (causal) assert.equal(early, 0, `causal: queries before ${k} changed by ${early}`);
      else assert.ok(early > 1e-3, `bidirectional: queries before ${k} should see later ones (${early})`);
    }
  });
});

describe('SeedTokenizer quantiser', () => {
  let fixture: Map<string, HostTensor>;
  let features: HostTensor;
  before(async () => {
    fixture = await loadSafetensors(SEED_FIXTURE);
    features = fixture.get('image_features')!;
  });

  it('ids are the nearest codes and the VQ loss is (1 + β)·mean((q − z)²), from TS loops', async () => {
    // A codebook of 24 random codes spread like z, so each vector has a clear nearest code.
    const tok = new SeedTokenizer(SEED_CONFIG);
    const { program } = await build(fixture, (g, f) => ({ ...tok.encode(g, f) }));
    const r = await program.run({ image_features: features });
    const c = SEED_CONFIG.codebookDim;
    const z = floats(r.z);
    const codebook = floats(fixture.get('quantize.embedding.weight')!);
    const ids = nearest(z, codebook, c);
    assert.deepEqual(Array.from(r.ids.data as BigInt64Array, Number), ids);
    assert.ok(new Set(ids).size >= 3, `the fixture should use several codes, got ${ids}`);
    let sq = 0;
    ids.forEach((id, v) => {
      for (let j = 0; j < c; j++) {
        // z + (q − z) in float32: the codebook row to within rounding.
        assert.ok(
          Math.abs(Number(r.quantized.data[v * c + j]) - codebook[id * c + j]) < 1e-6,
          'quantized = codebook row',
        );
        sq += (codebook[id * c + j] - z[v * c + j]) ** 2;
      }
    });
    const expected = (1 + SEED_CONFIG.commitmentBeta) * (sq / z.length);
    assertClose(floats(r.vqLoss), [expected], 1e-5, 'VQ loss');
  });

  it('the straight-through estimator passes the gradient of the codes to z and on into the Q-Former', async () => {
    const tok = new SeedTokenizer(SEED_CONFIG);
    const [b, q, c] = [2, SEED_CONFIG.qformer.numQueryTokens, SEED_CONFIG.codebookDim];
    const proj = Array.from({ length: b * q * c }, (_, i) => Math.sin(i + 1));
    const names = [
      'encode_task_layer.2.bias',
      'quantize.embedding.weight',
      'Qformer.bert.encoder.layer.0.crossattention.self.key.weight',
      'query_tokens',
    ];
    const { program } = await build(fixture, (g, f) => {
      const { quantized } = tok.encode(g, f);
      const loss = ops.sum(
        ops.mul(quantized, g.constant(new HostTensor('float32', [b, q, c], Float32Array.from(proj)))),
      );
      const grads = grad(
        loss,
        names.map((n) => g.params.get(n)!.tensor),
      );
      return Object.fromEntries(names.map((n, i) => [`d:${n}`, grads[i]]));
    });
    const r = await program.run({ image_features: features });
    // d(Σ quantized ⊙ R)/dz = R, so the last bias collects R summed over images and queries.
    const expectedBias = Array.from({ length: c }, (_, j) =>
      proj.reduce((s, v, i) => (i % c === j ? s + v : s), 0),
    );
    assertClose(
      floats(r['d:encode_task_layer.2.bias']),
      expectedBias,
      1e-5,
      'encode_task_layer.2.bias gradient',
    );
    assert.ok(
      floats(r['d:quantize.embedding.weight']).every((v) => v === 0),
      'no gradient reaches the codebook through quantized',
    );
    for (const n of names.slice(2)) {
      const norm = Math.hypot(...floats(r[`d:${n}`]));
      assert.ok(norm > 1e-4 && Number.isFinite(norm), `${n}: gradient norm ${norm}`);
    }
  });

  for (const variant of ['standard', 'taming-legacy'] as const) {
    it(`VQ-loss gradients (${variant}) match the TS formula`, async () => {
      const config: SeedTokenizerConfig = { ...SEED_CONFIG, vqLossVariant: variant };
      const tok = new SeedTokenizer(config);
      const { program } = await build(fixture, (g, f) => {
        const { z, ids, vqLoss } = tok.encode(g, f);
        const [dBias, dCodebook] = grad(vqLoss, [
          g.params.get('encode_task_layer.2.bias')!.tensor,
          g.params.get('quantize.embedding.weight')!.tensor,
        ]);
        return { z, ids, dBias, dCodebook };
      });
      const r = await program.run({ image_features: features });
      const { codebookDim: c, codebookSize: k, commitmentBeta: beta } = config;
      const z = floats(r.z);
      const ids = Array.from(r.ids.data as BigInt64Array, Number);
      const codebook = floats(fixture.get('quantize.embedding.weight')!);
      const n = z.length;
      // standard: ‖sg(z) − q‖² + β‖z − sg(q)‖²; taming-legacy: ‖z − sg(q)‖² + β‖sg(z) − q‖² (means).
      const zWeight = variant === 'standard' ? beta : 1;
      const codeWeight = variant === 'standard' ? 1 : beta;
      const dBias = new Array(c).fill(0);
      const dCodebook = new Array(k * c).fill(0);
      ids.forEach((id, v) => {
        for (let j = 0; j < c; j++) {
          const diff = z[v * c + j] - codebook[id * c + j];
          dBias[j] += (zWeight * 2 * diff) / n;
          dCodebook[id * c + j] -= (codeWeight * 2 * diff) / n;
        }
      });
      assertClose(floats(r.dBias), dBias, 1e-5, 'dL/d(encode_task_layer.2.bias)');
      assertClose(floats(r.dCodebook), dCodebook, 1e-5, 'dL/d(codebook)');
    });
  }

  it('codeEmbeddings(ids) → decode gives the same features as decoding the quantized codes', async () => {
    const tok = new SeedTokenizer(SEED_CONFIG);
    const { program } = await build(fixture, (g, f) => {
      const { ids, quantized } = tok.encode(g, f);
      return { fromCodes: tok.decode(g, quantized), fromIds: tok.decode(g, tok.codeEmbeddings(g, ids)) };
    });
    const r = await program.run({ image_features: features });
    assertClose(floats(r.fromIds), floats(r.fromCodes), 1e-6, 'decode(codeEmbeddings(ids))');
  });

  it('reconstructionLoss is the mean of 1 − cosine similarity', async () => {
    const tok = new SeedTokenizer(SEED_CONFIG);
    const a = [3, 4, 0, 1, 0, 0];
    const b = [4, 3, 0, 0, 2, 0];
    const g = new Graph();
    const t = (v: number[]) => g.constant(new HostTensor('float32', [2, 3], Float32Array.from(v)));
    const program = await compile(g, { loss: tok.reconstructionLoss(t(a), t(b)) });
    const r = await program.run({});
    // cos = 24/25 for the first pair, 0 for the second (orthogonal).
    assertClose(floats(r.loss), [(1 - 24 / 25 + 1) / 2], 1e-6, 'reconstruction loss');
  });
});

describe('SeedTokenizer training and configuration', () => {
  it('a few Trainer steps with the ViT and Q-Former frozen (as SEED trains its quantiser) lower VQ + reconstruction loss', async () => {
    const vitConfig = CLIP_CONFIGS.quick;
    const vit = new ClipVisionModel(vitConfig);
    const tok = new SeedTokenizer({
      ...SEED_CONFIG,
      qformer: { ...SEED_CONFIG.qformer, encoderHiddenSize: vitConfig.hiddenSize },
    });
    // SEED starts from a trained Q-Former; random fixture weights with a codebook spread like z
    // stand in for it (from init's ±1/K codebook every z first maps to one code).
    const start = new Map([...vit.init(1), ...fixtureWeights(tok.paramShapes(), 21)]);
    const frozen = (name: string) =>
      name.startsWith('vision_model.') || name.startsWith('Qformer.') || name === 'query_tokens';
    const trainer = await Trainer.create({
      params: start,
      build: (g) => {
        const s = vitConfig.imageSize;
        const pixels = g.input('pixel_values', 'float32', ['B', 3, s, s]);
        const enc = tok.encode(g, vit.patchFeatures(g, pixels));
        const recon = tok.reconstructionLoss(tok.decode(g, enc.quantized), enc.queries);
        return { loss: ops.add(enc.vqLoss, recon), metrics: { vq: enc.vqLoss, recon } };
      },
      optimizer: { lr: 3e-3, weightDecay: 0 },
      trainable: (name) => !frozen(name),
    });
    const { trainable } = trainer.summary();
    const expected = [...tok.paramShapes().keys()].filter((n) => !frozen(n));
    assert.deepEqual(trainable.map(([n]) => n).sort(), expected.sort());
    const s = vitConfig.imageSize;
    const pixels = new HostTensor(
      'float32',
      [4, 3, s, s],
      Float32Array.from({ length: 4 * 3 * s * s }, (_, i) => Math.sin(i * 0.37)),
    );
    const losses: number[] = [];
    for (let step = 0; step < 20; step++)
      losses.push((await trainer.trainStep({ pixel_values: pixels })).loss);
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[19] < 0.7 * losses[0], `loss ${losses[0]} → ${losses[19]}`);
    // The frozen encoders are untouched.
    const after = trainer.parameters();
    const read = [...start].filter(([name]) => frozen(name) && after.has(name));
    assert.ok(read.length > 20, `only ${read.length} frozen tensors in the graph`);
    for (const [name, value] of read) assert.deepEqual(after.get(name)!.data, value.data, name);
  });

  it('the released SEED config has the checkpoint shapes', () => {
    const shapes = new SeedTokenizer(SEED_TOKENIZER_CONFIG).paramShapes();
    assert.deepEqual(shapes.get('query_tokens'), [1, 32, 768]);
    assert.deepEqual(shapes.get('ln_vision.weight'), [1408]);
    assert.deepEqual(shapes.get('Qformer.bert.embeddings.LayerNorm.weight'), [768]);
    assert.deepEqual(shapes.get('Qformer.bert.encoder.layer.10.crossattention.self.key.weight'), [768, 1408]);
    assert.deepEqual(
      shapes.get('Qformer.bert.encoder.layer.10.crossattention.self.query.weight'),
      [768, 768],
    );
    assert.equal(shapes.has('Qformer.bert.encoder.layer.11.crossattention.self.key.weight'), false);
    assert.deepEqual(shapes.get('Qformer.bert.encoder.layer.11.attention.self.value.weight'), [768, 768]);
    assert.deepEqual(
      shapes.get('Qformer.bert.encoder.layer.11.intermediate_query.dense.weight'),
      [3072, 768],
    );
    assert.deepEqual(shapes.get('Qformer.bert.encoder.layer.11.output_query.dense.weight'), [768, 3072]);
    assert.equal(shapes.has('Qformer.bert.encoder.layer.0.intermediate.dense.weight'), false); // text FFN dropped
    assert.deepEqual(shapes.get('encode_task_layer.0.weight'), [768, 768]);
    assert.deepEqual(shapes.get('encode_task_layer.2.weight'), [32, 768]);
    assert.deepEqual(shapes.get('quantize.embedding.weight'), [8192, 32]);
    assert.deepEqual(shapes.get('decode_task_layer.0.weight'), [32, 32]);
    assert.deepEqual(shapes.get('decode_task_layer.2.weight'), [768, 32]);
    // 12 layers × 16 (self-attention + query FFN) + 6 × 10 cross-attention + query tokens + embedding LN
    // + ln_vision 2 + encode 4 + codebook 1 + decode 4.
    assert.equal(shapes.size, 12 * 16 + 6 * 10 + 3 + 2 + 4 + 1 + 4);
  });

  it('rejects image features of the wrong width and codes of the wrong size, naming the shapes', () => {
    const tok = new SeedTokenizer(SEED_CONFIG);
    const g = new Graph();
    assert.throws(
      () => tok.encode(g, g.input('feats', 'float32', ['B', 'N', 16])),
      /image features feats must be \[B, N, 12\], got \[B, N, 16\]/,
    );
    assert.throws(
      () => tok.decode(g, g.input('codes', 'float32', ['B', 5, 8])),
      /codes codes must end in 4, got \[B, 5, 8\]/,
    );
    assert.throws(
      () => new SeedTokenizer({ ...SEED_CONFIG, qformer: { ...SEED_CONFIG.qformer, numAttentionHeads: 3 } }),
      /hiddenSize 16 is not divisible by numAttentionHeads 3/,
    );
    assert.throws(
      () => new SeedTokenizer({ ...SEED_CONFIG, codebookSize: 0 }),
      /codebookSize must be a positive integer/,
    );
  });
});
