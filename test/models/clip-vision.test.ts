/**
 * CLIP vision transformer. Expected outputs come from scripts/fixtures/vision_reference.py, a
 * PyTorch mirror of HF `CLIPVisionModel` (real strided conv, float64), run on weights written
 * by test/fixtures/vision-fixtures.ts and loaded here by their HF names.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { compile, Graph, HostTensor, type Program, type Tensor } from '../../src/engine/index.ts';
import {
  CLIP_VIT_L_14_336,
  type ClipVisionConfig,
  ClipVisionModel,
  clipVisionConfigFromHF,
} from '../../src/models/clip-vision.ts';
import { loadSafetensors } from '../../src/node/safetensors-file.ts';
import { CLIP_CONFIGS, CLIP_FIXTURE, CLIP_GOLDEN } from '../fixtures/vision-fixtures.ts';

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

/** Rows [start, end) of the leading axis of a host tensor, as numbers. */
function rows(t: HostTensor, start: number, end: number): number[] {
  const per = t.size / t.shape[0];
  return Array.from(t.data.subarray(start * per, end * per) as Float64Array);
}

/** hidden_states[k] of the golden [L+1, B, N+1, D], optionally without the CLS token. */
function goldenHidden(hidden: HostTensor, k: number, dropCls: boolean): number[] {
  const [, b, t, d] = hidden.shape;
  const all = rows(hidden, k, k + 1);
  if (!dropCls) return all;
  const out: number[] = [];
  for (let i = 0; i < b; i++) out.push(...all.slice((i * t + 1) * d, (i + 1) * t * d));
  return out;
}

async function program(
  model: ClipVisionModel,
  build: (g: Graph, pixels: Tensor) => Record<string, Tensor>,
  weights: Map<string, HostTensor>,
): Promise<Program> {
  const g = new Graph();
  const s = model.config.imageSize;
  const outputs = build(g, g.input('pixel_values', 'float32', ['B', 3, s, s]));
  const p = await compile(g, outputs);
  for (const name of g.params.keys()) {
    const w = weights.get(name);
    assert.ok(w, `fixture has no weight "${name}"`);
    p.bind(name, w);
  }
  return p;
}

describe('ClipVisionModel against the PyTorch reference', () => {
  let fixture: Map<string, HostTensor>;
  let golden: Map<string, HostTensor>;
  before(async () => {
    fixture = await loadSafetensors(CLIP_FIXTURE);
    golden = await loadSafetensors(CLIP_GOLDEN);
  });

  for (const key of ['quick', 'gelu'] as const) {
    it(`${key}: every hidden state, patch features at −2 and the pooled output match`, async () => {
      const config = CLIP_CONFIGS[key];
      const model = new ClipVisionModel(config, `${key}.vision_model`);
      const L = config.numHiddenLayers;
      // Every weight the model declares is in the fixture under its HF name, with its shape.
      for (const [name, shape] of model.paramShapes()) {
        assert.deepEqual(fixture.get(name)?.shape, shape, name);
      }
      const p = await program(
        model,
        (g, px) => {
          const out: Record<string, Tensor> = {
            patches: model.patchFeatures(g, px),
            pooled: model.pooled(g, px),
          };
          for (let k = 0; k <= L; k++) out[`h${k}`] = model.hiddenState(g, px, k);
          out.hMinus1 = model.hiddenState(g, px, -1);
          out.first = model.patchFeatures(g, px, { layer: 0 });
          return out;
        },
        fixture,
      );
      const r = await p.run({ pixel_values: fixture.get('pixel_values')! });
      const hidden = golden.get(`${key}.hidden_states`)!;
      const n = model.numPatches;
      assert.deepEqual(r.patches.shape, [2, n, config.hiddenSize]);
      assert.deepEqual(r.pooled.shape, [2, config.hiddenSize]);
      for (let k = 0; k <= L; k++)
        assertClose(
          r[`h${k}`].data as Float32Array,
          goldenHidden(hidden, k, false),
          1e-4,
          `hidden_states[${k}]`,
        );
      assertClose(r.hMinus1.data as Float32Array, goldenHidden(hidden, L, false), 1e-4, 'hidden_states[-1]');
      assertClose(
        r.patches.data as Float32Array,
        goldenHidden(hidden, L - 1, true),
        1e-4,
        'patch features (−2, no CLS)',
      );
      assertClose(
        r.first.data as Float32Array,
        goldenHidden(hidden, 0, true),
        1e-4,
        'patch features (layer 0)',
      );
      assertClose(
        r.pooled.data as Float32Array,
        golden.get(`${key}.pooled`)!.data as Float64Array,
        1e-4,
        'pooled',
      );
    });
  }

  it('one compiled graph serves any batch size', async () => {
    const model = new ClipVisionModel(CLIP_CONFIGS.quick, 'quick.vision_model');
    const p = await program(model, (g, px) => ({ pooled: model.pooled(g, px) }), fixture);
    const px = fixture.get('pixel_values')!;
    const second = px.data.slice(px.size / 2) as Float32Array;
    const r = await p.run({ pixel_values: new HostTensor('float32', [1, ...px.shape.slice(1)], second) });
    assertClose(
      r.pooled.data as Float32Array,
      rows(golden.get('quick.pooled')!, 1, 2),
      1e-4,
      'pooled of image 2 alone',
    );
  });
});

describe('ClipVisionModel configuration and names', () => {
  it('ViT-L/14-336 has 576 patches and the HF checkpoint shapes', () => {
    const model = new ClipVisionModel(CLIP_VIT_L_14_336);
    assert.equal(model.gridSize, 24);
    assert.equal(model.numPatches, 576);
    const shapes = model.paramShapes();
    assert.deepEqual(shapes.get('vision_model.encoder.layers.23.mlp.fc1.weight'), [4096, 1024]);
    assert.deepEqual(shapes.get('vision_model.encoder.layers.23.mlp.fc2.weight'), [1024, 4096]);
    assert.deepEqual(shapes.get('vision_model.embeddings.position_embedding.weight'), [577, 1024]);
    assert.deepEqual(shapes.get('vision_model.embeddings.patch_embedding.weight'), [1024, 3, 14, 14]);
    assert.deepEqual(shapes.get('vision_model.embeddings.class_embedding'), [1024]);
    assert.deepEqual(shapes.get('vision_model.pre_layrnorm.weight'), [1024]);
    assert.deepEqual(shapes.get('vision_model.encoder.layers.0.self_attn.k_proj.bias'), [1024]);
    assert.equal(shapes.has('vision_model.encoder.layers.24.mlp.fc1.weight'), false);
    // 4 embedding/pre-LN tensors + 16 per layer + 2 post-LN, as in the HF state dict.
    assert.equal(shapes.size, 5 + 16 * 24 + 2);
    // Per layer: 4 projections (1024² + 1024) + 2 LayerNorms (2·1024) + fc1 (4096·1024 + 4096) +
    // fc2 (1024·4096 + 1024) = 12,596,224; embeddings 1024·3·14² + 1024 + 577·1024; 2 outer LayerNorms.
    const perLayer = 4 * (1024 * 1024 + 1024) + 2 * 2 * 1024 + (4096 * 1024 + 4096) + (1024 * 4096 + 1024);
    const embeddings = 1024 * 3 * 14 * 14 + 1024 + 577 * 1024;
    const total = [...shapes.values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
    assert.equal(total, 24 * perLayer + embeddings + 2 * 2 * 1024); // 303,507,456
  });

  it('reads a Hugging Face config.json (full CLIPConfig or vision_config alone)', () => {
    // The vision_config of openai/clip-vit-large-patch14-336's config.json (fields as published).
    const hf = {
      architectures: ['CLIPModel'],
      projection_dim: 768,
      vision_config: {
        dropout: 0.0,
        hidden_act: 'quick_gelu',
        hidden_size: 1024,
        image_size: 336,
        intermediate_size: 4096,
        layer_norm_eps: 1e-5,
        num_attention_heads: 16,
        num_hidden_layers: 24,
        patch_size: 14,
        projection_dim: 768,
      },
    };
    assert.deepEqual(clipVisionConfigFromHF(hf), CLIP_VIT_L_14_336);
    assert.deepEqual(clipVisionConfigFromHF(hf.vision_config), CLIP_VIT_L_14_336);
    // Missing fields take CLIPVisionConfig's defaults (ViT-B/32 at 224 px).
    const defaults: ClipVisionConfig = {
      imageSize: 224,
      patchSize: 32,
      hiddenSize: 768,
      intermediateSize: 3072,
      numHiddenLayers: 12,
      numAttentionHeads: 12,
      layerNormEps: 1e-5,
      hiddenAct: 'quick_gelu',
      numChannels: 3,
    };
    assert.deepEqual(clipVisionConfigFromHF({ vision_config: {} }), defaults);
    assert.throws(() => clipVisionConfigFromHF({ hidden_act: 'relu' }), /hidden_act "relu" is not supported/);
    assert.throws(() => clipVisionConfigFromHF({ patch_size: '14' }), /patch_size must be a number/);
  });

  it('rejects bad configs, images and layer indices with errors that name them', () => {
    assert.throws(
      () => new ClipVisionModel({ ...CLIP_CONFIGS.quick, imageSize: 13 }),
      /imageSize 13 is not a multiple of patchSize 4/,
    );
    assert.throws(
      () => new ClipVisionModel({ ...CLIP_CONFIGS.quick, numAttentionHeads: 3 }),
      /hiddenSize 16 is not divisible by numAttentionHeads 3/,
    );
    const model = new ClipVisionModel(CLIP_CONFIGS.quick);
    const g = new Graph();
    assert.throws(
      () => model.pooled(g, g.input('px', 'float32', ['B', 3, 16, 16])),
      /pixelValues px must be float32\[B, 3, 12, 12\], got float32\[B, 3, 16, 16\]/,
    );
    assert.throws(
      () => model.pooled(g, g.input('gray', 'float32', ['B', 1, 12, 12])),
      /got float32\[B, 1, 12, 12\]/,
    );
    const px = g.input('ok', 'float32', ['B', 3, 12, 12]);
    assert.throws(
      () => model.patchFeatures(g, px, { layer: 4 }),
      /layer 4 is outside HF's hidden_states \(4 entries: -4\.\.3\)/,
    );
    assert.throws(() => model.patchFeatures(g, px, { layer: -5 }), /layer -5 is outside/);
  });

  it('init is a pure function of the seed and follows CLIP init scales', () => {
    const model = new ClipVisionModel(CLIP_CONFIGS.quick);
    const a = model.init(5);
    const b = model.init(5);
    const c = model.init(6);
    assert.deepEqual([...a.keys()], [...model.paramShapes().keys()]);
    const name = 'vision_model.encoder.layers.1.self_attn.q_proj.weight';
    assert.deepEqual(a.get(name)!.data, b.get(name)!.data);
    assert.notDeepEqual(a.get(name)!.data, c.get(name)!.data);
    assert.ok(
      (a.get('vision_model.encoder.layers.0.layer_norm1.weight')!.data as Float32Array).every((v) => v === 1),
    );
    assert.ok((a.get('vision_model.pre_layrnorm.bias')!.data as Float32Array).every((v) => v === 0));
    const std = (t: HostTensor) =>
      Math.sqrt((t.data as Float32Array).reduce((s, v) => s + v * v, 0) / t.size);
    // q/k/v: D^-½·(2L)^-½ = 0.25 · 0.408 ≈ 0.102 for D = 16, L = 3 (a 256-sample estimate).
    assert.ok(Math.abs(std(a.get(name)!) - 0.102) < 0.02, `q_proj std ${std(a.get(name)!)}`);
  });
});
