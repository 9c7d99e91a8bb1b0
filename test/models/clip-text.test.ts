/**
 * CLIP text tower and contrastive head. Expected outputs come from
 * scripts/fixtures/clip_text_reference.py, a PyTorch mirror of HF `CLIPTextModel` / `CLIPModel`
 * (additive causal + padding masks, EOS found as the argmax of the ids, float64), run on weights
 * written by test/fixtures/clip-text-fixtures.ts and loaded here by their HF names.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { compile, Graph, HostTensor, type Program, type Tensor } from '../../src/engine/index.ts';
import {
  CLIP_LOGIT_SCALE_INIT,
  CLIP_TEXT_L_14,
  ClipContrastiveHead,
  ClipTextModel,
} from '../../src/models/clip-text.ts';
import { loadSafetensors } from '../../src/node/safetensors-file.ts';
import {
  CLIP_TEXT_FIXTURE,
  CLIP_TEXT_GOLDEN,
  EOS_ID,
  HEAD_CONFIG,
  LOGIT_SCALE_CLAMPED,
  TEXT_CONFIGS,
  TEXT_IDS,
} from '../fixtures/clip-text-fixtures.ts';

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
    const e = Number(expected[i]);
    worst = Math.max(worst, Math.abs(Number(actual[i]) - e) / (1 + Math.abs(e)));
  }
  assert.ok(worst <= tol, `${what}: largest relative difference ${worst.toExponential(2)} > ${tol}`);
}

async function program(
  build: (g: Graph) => Record<string, Tensor>,
  weights: ReadonlyMap<string, HostTensor>,
): Promise<Program> {
  const g = new Graph();
  const p = await compile(g, build(g));
  for (const name of g.params.keys()) {
    const w = weights.get(name);
    assert.ok(w, `fixture has no weight "${name}"`);
    p.bind(name, w);
  }
  return p;
}

/** EOS positions from the fixture's texts (where the EOS id is), independent of the model. */
function eosPositions(): HostTensor<'int64'> {
  return new HostTensor(
    'int64',
    [TEXT_IDS.length],
    BigInt64Array.from(TEXT_IDS, (r) => BigInt(r.indexOf(EOS_ID))),
  );
}

describe('ClipTextModel against the PyTorch reference', () => {
  let fixture: Map<string, HostTensor>;
  let golden: Map<string, HostTensor>;
  before(async () => {
    fixture = await loadSafetensors(CLIP_TEXT_FIXTURE);
    golden = await loadSafetensors(CLIP_TEXT_GOLDEN);
  });

  it('the fixture texts put EOS where the reference found it (ids.argmax)', () => {
    assert.deepEqual(
      Array.from(golden.get('eos_positions')!.data as BigInt64Array, Number),
      Array.from(eosPositions().data, Number),
    );
  });

  for (const key of ['quick', 'gelu'] as const) {
    it(`${key}: last hidden state and pooled output (EOS given, or from the mask) match`, async () => {
      const model = new ClipTextModel(TEXT_CONFIGS[key], `${key}.text_model`);
      for (const [name, shape] of model.paramShapes())
        assert.deepEqual(fixture.get(name)?.shape, shape, name);
      const p = await program((g) => {
        const ids = g.input('input_ids', 'int64', ['B', 'T']);
        const mask = g.input('attention_mask', 'int64', ['B', 'T']);
        const eos = g.input('eos', 'int64', ['B']);
        return {
          last: model.hiddenStates(g, ids, mask),
          pooledFromMask: model.pooled(g, ids, { attentionMask: mask }),
          // Without a padding mask: causal attention alone never lets EOS see the padding after it.
          pooledFromEos: model.pooled(g, ids, { eosPositions: eos }),
        };
      }, fixture);
      const r = await p.run({
        input_ids: fixture.get('input_ids')!,
        attention_mask: fixture.get('attention_mask')!,
        eos: eosPositions(),
      });
      const d = TEXT_CONFIGS[key].hiddenSize;
      assert.deepEqual(r.last.shape, [3, 7, d]);
      assert.deepEqual(r.pooledFromMask.shape, [3, d]);
      // Padded positions differ from HF only where every key is masked; none is (causal keeps position 0).
      const lastGold = golden.get(`${key}.last_hidden_state`)!.data as Float64Array;
      assertClose(r.last.data as Float32Array, lastGold, 1e-4, 'last_hidden_state');
      const pooledGold = golden.get(`${key}.pooled`)!.data as Float64Array;
      assertClose(r.pooledFromMask.data as Float32Array, pooledGold, 1e-4, 'pooled (attention mask)');
      assertClose(r.pooledFromEos.data as Float32Array, pooledGold, 1e-4, 'pooled (eos positions)');
    });
  }

  it('the contrastive head: embeddings, logits_per_image and clip_loss, with the clamp at 100', async () => {
    const text = new ClipTextModel(TEXT_CONFIGS.quick, 'quick.text_model');
    const head = new ClipContrastiveHead(HEAD_CONFIG);
    for (const [name, shape] of head.paramShapes()) assert.deepEqual(fixture.get(name)?.shape, shape, name);
    const build = (g: Graph) => {
      const ids = g.input('input_ids', 'int64', ['B', 'T']);
      const mask = g.input('attention_mask', 'int64', ['B', 'T']);
      const image = g.input('image_pooled', 'float32', ['B', HEAD_CONFIG.visionWidth]);
      const textEmbeds = head.textEmbeds(g, text.pooled(g, ids, { attentionMask: mask }));
      const imageEmbeds = head.imageEmbeds(g, image);
      return {
        textEmbeds,
        imageEmbeds,
        logits: head.logitsPerImage(g, imageEmbeds, textEmbeds),
        loss: head.loss(g, imageEmbeds, textEmbeds),
      };
    };
    const feeds = {
      input_ids: fixture.get('input_ids')!,
      attention_mask: fixture.get('attention_mask')!,
      image_pooled: fixture.get('image_pooled')!,
    };
    const r = await (await program(build, fixture)).run(feeds);
    assertClose(
      r.textEmbeds.data as Float32Array,
      golden.get('text_embeds')!.data as Float64Array,
      1e-4,
      'text_embeds',
    );
    assertClose(
      r.imageEmbeds.data as Float32Array,
      golden.get('image_embeds')!.data as Float64Array,
      1e-4,
      'image_embeds',
    );
    assertClose(
      r.logits.data as Float32Array,
      golden.get('logits_per_image')!.data as Float64Array,
      1e-4,
      'logits',
    );
    assertClose(r.loss.data as Float32Array, golden.get('loss')!.data as Float64Array, 1e-4, 'loss');

    const clamped = new Map(fixture);
    clamped.set('logit_scale', new HostTensor('float32', [], Float32Array.of(LOGIT_SCALE_CLAMPED)));
    const rc = await (await program(build, clamped)).run(feeds);
    assertClose(
      rc.logits.data as Float32Array,
      golden.get('logits_per_image_clamped')!.data as Float64Array,
      1e-4,
      'logits (scale clamped)',
    );
    assertClose(
      rc.loss.data as Float32Array,
      golden.get('loss_clamped')!.data as Float64Array,
      1e-4,
      'loss (clamped)',
    );
  });
});

describe('ClipTextModel names, init and errors', () => {
  it('ViT-L/14 text tower has the HF state-dict names and shapes', () => {
    const shapes = new ClipTextModel(CLIP_TEXT_L_14).paramShapes();
    assert.deepEqual(shapes.get('text_model.embeddings.token_embedding.weight'), [49408, 768]);
    assert.deepEqual(shapes.get('text_model.embeddings.position_embedding.weight'), [77, 768]);
    assert.deepEqual(shapes.get('text_model.encoder.layers.11.self_attn.out_proj.bias'), [768]);
    assert.deepEqual(shapes.get('text_model.encoder.layers.11.mlp.fc1.weight'), [3072, 768]);
    assert.deepEqual(shapes.get('text_model.final_layer_norm.weight'), [768]);
    assert.equal(shapes.has('text_model.encoder.layers.12.mlp.fc1.weight'), false);
    assert.equal(shapes.size, 2 + 16 * 12 + 2); // embeddings, 16 per layer, final LayerNorm
    const head = new ClipContrastiveHead({
      textWidth: 768,
      visionWidth: 1024,
      projectionDim: 768,
    }).paramShapes();
    assert.deepEqual(
      [...head],
      [
        ['text_projection.weight', [768, 768]],
        ['visual_projection.weight', [768, 1024]],
        ['logit_scale', []],
      ],
    );
  });

  it('init follows HF: logit_scale ln(1/0.07), unit LayerNorms, zero biases, seeded', () => {
    const model = new ClipTextModel(TEXT_CONFIGS.quick);
    const w = model.init(5);
    assert.deepEqual([...w.keys()], [...model.paramShapes().keys()]);
    assert.ok((w.get('text_model.final_layer_norm.weight')!.data as Float32Array).every((x) => x === 1));
    assert.ok(
      (w.get('text_model.encoder.layers.0.mlp.fc1.bias')!.data as Float32Array).every((x) => x === 0),
    );
    const tok = w.get('text_model.embeddings.token_embedding.weight')!.data as Float32Array;
    const std = Math.sqrt(tok.reduce((s, x) => s + x * x, 0) / tok.length);
    assert.ok(std > 0.015 && std < 0.025, `token embedding std ${std}`);
    assert.deepEqual(
      model.init(5).get('text_model.encoder.layers.1.self_attn.q_proj.weight')!.data,
      w.get('text_model.encoder.layers.1.self_attn.q_proj.weight')!.data,
    );
    const head = new ClipContrastiveHead(HEAD_CONFIG).init(5);
    assert.equal(head.get('logit_scale')!.shape.length, 0);
    assert.ok(Math.abs(Number(head.get('logit_scale')!.data[0]) - Math.log(1 / 0.07)) < 1e-6);
    assert.ok(Math.abs(CLIP_LOGIT_SCALE_INIT - 2.6592600369327779) < 1e-12);
  });

  it('rejects bad configs and inputs with messages naming them', () => {
    assert.throws(
      () => new ClipTextModel({ ...TEXT_CONFIGS.quick, numAttentionHeads: 3 }),
      /hiddenSize 16 is not divisible by numAttentionHeads 3/,
    );
    assert.throws(
      () => new ClipTextModel({ ...TEXT_CONFIGS.quick, maxPositionEmbeddings: 0 }),
      /maxPositionEmbeddings must be a positive integer/,
    );
    assert.throws(
      () => new ClipContrastiveHead({ ...HEAD_CONFIG, projectionDim: 0 }),
      /projectionDim must be a positive integer/,
    );
    const model = new ClipTextModel(TEXT_CONFIGS.quick);
    const g = new Graph();
    const ids = g.input('ids', 'int64', ['B', 'T']);
    assert.throws(
      () => model.hiddenStates(g, g.input('f', 'float32', ['B', 'T'])),
      /inputIds f must be int64 \[B, T\], got float32\[B, T\]/,
    );
    assert.throws(
      () => model.hiddenStates(g, g.input('long', 'int64', [2, 10])),
      /long has 10 tokens, more than maxPositionEmbeddings 9/,
    );
    assert.throws(
      () => model.hiddenStates(g, ids, g.input('m3', 'int64', ['B', 'T', 1])),
      /attentionMask m3 must be int64 \[B, T\] like the ids, got int64\[B, T, 1\]/,
    );
    assert.throws(() => model.pooled(g, ids, {}), /give eosPositions \[B\] or an attentionMask/);
    assert.throws(
      () => model.pooled(g, ids, { eosPositions: g.input('e', 'int32', ['B']) }),
      /eosPositions e must be int64 \[B\], got int32\[B\]/,
    );
    const head = new ClipContrastiveHead(HEAD_CONFIG);
    assert.throws(
      () => head.imageEmbeds(g, g.input('img', 'float32', ['B', 16])),
      /pooled image img must be \[B, 12\], got \[B, 16\]/,
    );
  });
});
