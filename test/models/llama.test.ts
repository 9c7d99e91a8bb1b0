/**
 * The LLaMA decoder: golden hidden states and logits against an independent PyTorch mirror of HF
 * (scripts/fixtures/llama_reference.py), tied and untied heads, a padded batch, far positions,
 * KV-cache decoding against full recomputation, a finite-difference gradient check, a training
 * smoke test, and configs read from a real LLaMA-2-7B config.json.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  compile,
  Graph,
  grad,
  HostTensor,
  KVCacheDecoder,
  ops,
  type Program,
  type Tensor,
  Trainer,
} from '../../src/engine/index.ts';
import { Llama, type LlamaConfig, llamaConfigFromHF } from '../../src/models/llama.ts';
import { loadSafetensors } from '../../src/node/safetensors-file.ts';
import {
  fixtureWeights,
  LLAMA_GOLDEN,
  LLAMA_TINY,
  LLAMA_WEIGHTS,
  type LlamaCase,
} from '../fixtures/llama-fixtures.ts';

interface GoldenCase extends LlamaCase {
  hidden: number[];
  logitsUntied: number[];
  logitsTied: number[];
}
const golden = JSON.parse(readFileSync(LLAMA_GOLDEN, 'utf8')) as { cases: GoldenCase[] };
const weightsPromise = loadSafetensors(LLAMA_WEIGHTS);

const i64 = (rows: number[][]) =>
  new HostTensor('int64', [rows.length, rows[0].length], BigInt64Array.from(rows.flat(), BigInt));
const f32 = (t: HostTensor) => t.data as Float32Array;

/** A compiled forward pass: ids, positions (and optionally a mask) → hidden and logits. */
async function forwardProgram(
  config: LlamaConfig,
  weights: ReadonlyMap<string, HostTensor>,
  withMask: boolean,
): Promise<Program> {
  const llama = new Llama(config);
  const g = new Graph();
  const ids = g.input('ids', 'int64', ['B', 'T']);
  const positions = g.input('positions', 'int64', ['B', 'T']);
  const attentionMask = withMask ? g.input('mask', 'int64', ['B', 'T']) : undefined;
  const { hidden } = llama.forward(g, llama.embedTokens(g, ids), positions, { attentionMask });
  const program = await compile(g, { hidden, logits: llama.logits(g, hidden) });
  for (const name of g.params.keys()) program.bind(name, weights.get(name)!);
  return program;
}

/** max |a − b| over the rows (b, t) that `keep` accepts, each row `width` wide. */
function maxDiffOnRows(
  actual: Float32Array,
  expected: number[],
  width: number,
  T: number,
  keep: (b: number, t: number) => boolean,
): number {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  for (let r = 0; r < actual.length / width; r++) {
    if (!keep(Math.floor(r / T), r % T)) continue;
    for (let j = 0; j < width; j++)
      worst = Math.max(worst, Math.abs(actual[r * width + j] - expected[r * width + j]));
  }
  return worst;
}

describe('Llama: golden outputs against the PyTorch mirror of HF LlamaForCausalLM', () => {
  it('the fixture file holds exactly the weights llama-fixtures.ts generates', async () => {
    const file = await weightsPromise;
    const regenerated = fixtureWeights();
    assert.deepEqual([...file.keys()].sort(), [...regenerated.keys()].sort());
    for (const [name, t] of regenerated) assert.deepEqual(f32(file.get(name)!), f32(t), name);
  });

  for (const tied of [false, true]) {
    it(`${tied ? 'tied' : 'untied'} head: hidden states and logits match on every case (tol 1e-4)`, async () => {
      const config = { ...LLAMA_TINY, tieWordEmbeddings: tied };
      const weights = await weightsPromise;
      if (tied) assert.equal(new Llama(config).paramShapes().has('lm_head.weight'), false);
      const masked = await forwardProgram(config, weights, true);
      const plain = await forwardProgram(config, weights, false);
      for (const c of golden.cases) {
        const T = c.ids[0].length;
        const real = (b: number, t: number) => (c.attentionMask ? c.attentionMask[b][t] === 1 : true);
        const feeds = { ids: i64(c.ids), positions: i64(c.positions) };
        const out = c.attentionMask
          ? await masked.run({ ...feeds, mask: i64(c.attentionMask) })
          : await plain.run(feeds);
        const expectedLogits = tied ? c.logitsTied : c.logitsUntied;
        const dh = maxDiffOnRows(f32(out.hidden), c.hidden, LLAMA_TINY.hiddenSize, T, real);
        const dl = maxDiffOnRows(f32(out.logits), expectedLogits, LLAMA_TINY.vocabSize, T, real);
        assert.ok(dh < 1e-4, `${c.name}: hidden differs by ${dh}`);
        assert.ok(dl < 1e-4, `${c.name}: logits differ by ${dl}`);
      }
    });
  }

  it('the padding mask matters: without it the left-padded row comes out different', async () => {
    const weights = await weightsPromise;
    const plain = await forwardProgram(LLAMA_TINY, weights, false);
    const c = golden.cases.find((x) => x.attentionMask)!;
    const out = await plain.run({ ids: i64(c.ids), positions: i64(c.positions) });
    const T = c.ids[0].length;
    const d = maxDiffOnRows(
      f32(out.logits),
      c.logitsUntied,
      LLAMA_TINY.vocabSize,
      T,
      (b, t) => b === 1 && t >= 3,
    );
    assert.ok(d > 1e-2, `padding ignored yet logits differ by only ${d}`);
  });
});

describe('Llama: KV cache', () => {
  const argmaxLast = (logits: HostTensor): number => {
    const [, T, V] = logits.shape;
    const row = f32(logits).subarray((T - 1) * V, T * V);
    return row.indexOf(Math.max(...row));
  };
  const range = (from: number, n: number) => [Array.from({ length: n }, (_, i) => from + i)];

  for (const ep of ['cpu', 'wasm'] as const)
    it(`greedy decoding with the cache equals full recomputation for 10 tokens (${ep === 'cpu' ? 'onnxruntime-node' : 'onnxruntime-web wasm'})`, async () => {
      const weights = await weightsPromise;
      const llama = new Llama(LLAMA_TINY);
      const decoder = await KVCacheDecoder.create(llama.decoderSpec(), weights, {
        embedWeights: false,
        runtime: { ep },
      });
      const full = await forwardProgram(LLAMA_TINY, weights, false);
      const ids = [5, 17, 42, 3];
      let out = await decoder.prefill(i64([ids]), i64(range(0, ids.length)));
      for (let step = 0; step < 10; step++) {
        const reference = (await full.run({ ids: i64([ids]), positions: i64(range(0, ids.length)) })).logits;
        const V = LLAMA_TINY.vocabSize;
        const cached = f32(out.logits).subarray(f32(out.logits).length - V);
        const recomputed = f32(reference).subarray(f32(reference).length - V);
        let worst = 0;
        for (let j = 0; j < V; j++) worst = Math.max(worst, Math.abs(cached[j] - recomputed[j]));
        assert.ok(worst < 1e-4, `step ${step}: cached logits differ by ${worst}`);
        const next = argmaxLast(out.logits);
        assert.equal(next, argmaxLast(reference), `step ${step}`);
        ids.push(next);
        assert.deepEqual(out.cache.read()[0].key.shape, [
          1,
          LLAMA_TINY.numKeyValueHeads,
          ids.length - 1,
          llama.headDim,
        ]);
        out = await decoder.decode(i64([[next]]), i64([[ids.length - 1]]), out.cache);
      }
    });

  it('prefill from embeddings, then a 3-token decode step, equals the ids path', async () => {
    const weights = await weightsPromise;
    const llama = new Llama(LLAMA_TINY);
    const D = LLAMA_TINY.hiddenSize;
    const fromIds = await KVCacheDecoder.create(llama.decoderSpec(), weights);
    const fromEmbeds = await KVCacheDecoder.create(llama.decoderSpec(), weights, { prefillInput: 'embeds' });
    const prompt = [9, 33, 21, 60, 2];
    const table = f32(weights.get('model.embed_tokens.weight')!);
    const embeds = new Float32Array(prompt.length * D);
    for (const [t, id] of prompt.entries()) embeds.set(table.subarray(id * D, (id + 1) * D), t * D);
    const a = await fromIds.prefill(i64([prompt]), i64(range(0, 5)));
    const b = await fromEmbeds.prefill(new HostTensor('float32', [1, 5, D], embeds), i64(range(0, 5)));
    assert.deepEqual(f32(b.logits), f32(a.logits));
    const step = await fromEmbeds.decode(i64([[1, 2, 3]]), i64(range(5, 3)), b.cache);
    const full = await forwardProgram(LLAMA_TINY, weights, false);
    const ref = await full.run({ ids: i64([[...prompt, 1, 2, 3]]), positions: i64(range(0, 8)) });
    const tail = f32(ref.logits).subarray(5 * LLAMA_TINY.vocabSize);
    const got = f32(step.logits);
    for (let j = 0; j < got.length; j++) assert.ok(Math.abs(got[j] - tail[j]) < 1e-4, `logit ${j}`);
  });
});

describe('Llama: gradients and training', () => {
  const MICRO: LlamaConfig = {
    vocabSize: 11,
    hiddenSize: 8,
    intermediateSize: 12,
    numHiddenLayers: 1,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    maxPositionEmbeddings: 32,
    tieWordEmbeddings: true,
  };

  it('float64 gradients match central finite differences (q, k, v, gate, embedding)', async () => {
    const llama = new Llama(MICRO);
    const weights = new Map(
      [...llama.init(3)].map(([n, t]) => {
        // Larger than the 0.02 init so that attention is far from uniform.
        const scale = n.endsWith('norm.weight') ? 1 : 20;
        return [
          n,
          new HostTensor(
            'float64',
            t.shape,
            Float64Array.from(f32(t), (x) => x * scale),
          ),
        ];
      }),
    );
    const g = new Graph('float64');
    const ids = g.input('ids', 'int64', [2, 5]);
    const positions = g.input('positions', 'int64', [2, 5]);
    const mask = g.input('mask', 'int64', [2, 5]);
    const { hidden } = llama.forward(g, llama.embedTokens(g, ids), positions, { attentionMask: mask });
    const logits = llama.logits(g, hidden);
    const projection = new Float64Array(2 * 5 * MICRO.vocabSize).map((_, i) => Math.sin(i * 1.7));
    const loss = ops.sum(
      ops.mul(logits, g.constant(new HostTensor('float64', [2, 5, MICRO.vocabSize], projection))),
    );
    const checked = [
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.k_proj.weight',
      'model.layers.0.self_attn.v_proj.weight',
      'model.layers.0.mlp.gate_proj.weight',
      'model.embed_tokens.weight',
    ];
    const grads = grad(
      loss,
      checked.map((n) => g.params.get(n)!.tensor),
    );
    const outputs: Record<string, Tensor> = { loss };
    grads.forEach((t, i) => {
      outputs[`g${i}`] = t;
    });
    const program = await compile(g, outputs);
    const feeds = {
      ids: i64([
        [1, 4, 9, 2, 7],
        [0, 3, 3, 10, 5],
      ]),
      positions: i64([
        [0, 1, 2, 3, 4],
        [0, 0, 0, 1, 2],
      ]),
      mask: i64([
        [1, 1, 1, 1, 1],
        [0, 0, 1, 1, 1],
      ]),
    };
    const run = async (w: Map<string, HostTensor>) => {
      for (const [n, t] of w) program.bind(n, t);
      return program.run(feeds);
    };
    const base = await run(weights);
    for (const [k, name] of checked.entries()) {
      const analytic = base[`g${k}`].data as Float64Array;
      const original = weights.get(name)!;
      for (const index of [0, 5, Math.floor(original.size / 2), original.size - 1]) {
        const eps = 1e-6;
        const probe = async (delta: number) => {
          const data = Float64Array.from(original.data as Float64Array);
          data[index] += delta;
          const out = await run(new Map([[name, new HostTensor('float64', original.shape, data)]]));
          return (out.loss.data as Float64Array)[0];
        };
        const numeric = ((await probe(eps)) - (await probe(-eps))) / (2 * eps);
        const err = Math.abs(numeric - analytic[index]);
        assert.ok(
          err < 1e-5 * Math.max(1, Math.abs(numeric)),
          `${name}[${index}]: analytic ${analytic[index]} vs numeric ${numeric}`,
        );
      }
      program.bind(name, original);
    }
  });

  it('a few AdamW steps lower the loss on a tiny batch', async () => {
    const llama = new Llama({
      ...MICRO,
      vocabSize: 16,
      hiddenSize: 16,
      intermediateSize: 32,
      numHiddenLayers: 2,
    });
    const trainer = await Trainer.create({
      params: llama.init(7),
      build: (g) => {
        const ids = g.input('ids', 'int64', ['B', 'T']);
        const positions = g.input('positions', 'int64', ['B', 'T']);
        const { hidden } = llama.forward(g, llama.embedTokens(g, ids), positions);
        return { loss: ops.crossEntropy(llama.logits(g, hidden), g.input('targets', 'int64', ['B', 'T'])) };
      },
      optimizer: { lr: 1e-2, weightDecay: 0, clipNorm: 1 },
    });
    const seqs = [
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
      [9, 7, 5, 3, 1, 15, 13, 11, 9],
    ];
    const feeds = {
      ids: i64(seqs.map((s) => s.slice(0, -1))),
      targets: i64(seqs.map((s) => s.slice(1))),
      positions: i64(seqs.map(() => Array.from({ length: 8 }, (_, i) => i))),
    };
    const first = (await trainer.trainStep(feeds)).loss;
    assert.ok(Math.abs(first - Math.log(16)) < 0.1, `initial loss ${first} should be near ln 16`);
    let last = first;
    for (let i = 0; i < 30; i++) last = (await trainer.trainStep(feeds)).loss;
    assert.ok(last < 0.5 * first, `loss went from ${first} to ${last}`);
  });
});

describe('Llama: configs and parameters', () => {
  // meta-llama/Llama-2-7b-hf config.json, as published.
  const LLAMA2_7B = {
    architectures: ['LlamaForCausalLM'],
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: 4096,
    initializer_range: 0.02,
    intermediate_size: 11008,
    max_position_embeddings: 4096,
    model_type: 'llama',
    num_attention_heads: 32,
    num_hidden_layers: 32,
    num_key_value_heads: 32,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    tie_word_embeddings: false,
    torch_dtype: 'float16',
    transformers_version: '4.31.0.dev0',
    use_cache: true,
    vocab_size: 32000,
  };

  it('reads LLaMA-2-7B: shapes by name and the published 6,738,415,616 parameters', () => {
    const config = llamaConfigFromHF(LLAMA2_7B);
    assert.equal(config.rmsNormEps, 1e-5);
    assert.equal(config.ropeTheta, 10000);
    assert.equal(config.maxPositionEmbeddings, 4096);
    const shapes = new Llama(config).paramShapes();
    assert.deepEqual(shapes.get('model.layers.31.mlp.down_proj.weight'), [4096, 11008]);
    assert.deepEqual(shapes.get('model.layers.0.mlp.gate_proj.weight'), [11008, 4096]);
    assert.deepEqual(shapes.get('model.layers.17.self_attn.k_proj.weight'), [4096, 4096]);
    assert.deepEqual(shapes.get('model.embed_tokens.weight'), [32000, 4096]);
    assert.deepEqual(shapes.get('lm_head.weight'), [32000, 4096]);
    assert.deepEqual(shapes.get('model.norm.weight'), [4096]);
    assert.equal(shapes.has('model.layers.32.input_layernorm.weight'), false);
    assert.equal(shapes.size, 2 + 1 + 32 * 9);
    let total = 0;
    for (const s of shapes.values()) total += s.reduce((a, b) => a * b, 1);
    assert.equal(total, 6_738_415_616);
  });

  it('reads grouped-query configs (LLaMA-2-70B: 64 heads over 8 KV heads) and HF defaults', () => {
    const config = llamaConfigFromHF({
      hidden_size: 8192,
      intermediate_size: 28672,
      num_attention_heads: 64,
      num_hidden_layers: 80,
      num_key_value_heads: 8,
      vocab_size: 32000,
      model_type: 'llama',
    });
    assert.equal(config.rmsNormEps, 1e-6);
    assert.equal(config.tieWordEmbeddings, false);
    const shapes = new Llama(config).paramShapes();
    assert.deepEqual(shapes.get('model.layers.79.self_attn.k_proj.weight'), [1024, 8192]);
    assert.deepEqual(shapes.get('model.layers.79.self_attn.q_proj.weight'), [8192, 8192]);
    const mha = llamaConfigFromHF({ ...LLAMA2_7B, num_key_value_heads: undefined });
    assert.equal(mha.numKeyValueHeads, 32);
  });

  it('rejects what it cannot run, naming the field', () => {
    assert.throws(
      () => llamaConfigFromHF({ ...LLAMA2_7B, rope_scaling: { rope_type: 'llama3', factor: 8 } }),
      /rope type "llama3"/,
    );
    assert.throws(() => llamaConfigFromHF({ ...LLAMA2_7B, model_type: 'mistral' }), /model_type "mistral"/);
    assert.throws(
      () => llamaConfigFromHF({ ...LLAMA2_7B, hidden_size: '4096' }),
      /hidden_size must be a number/,
    );
    assert.throws(
      () => llamaConfigFromHF({ ...LLAMA2_7B, num_key_value_heads: 5 }),
      /multiple of numKeyValueHeads 5/,
    );
    assert.throws(() => new Llama({ ...LLAMA_TINY, headDim: 7 }), /head dim 7 must be a positive even/);
  });

  it('init: HF scheme (normal 0.02, norms 1), deterministic, lm_head only when untied', () => {
    const untied = new Llama(LLAMA_TINY).init(1);
    const again = new Llama(LLAMA_TINY).init(1);
    const tied = new Llama({ ...LLAMA_TINY, tieWordEmbeddings: true }).init(1);
    assert.equal(untied.has('lm_head.weight'), true);
    assert.equal(tied.has('lm_head.weight'), false);
    assert.deepEqual(
      f32(untied.get('model.layers.1.mlp.up_proj.weight')!),
      f32(again.get('model.layers.1.mlp.up_proj.weight')!),
    );
    assert.ok(f32(untied.get('model.layers.0.input_layernorm.weight')!).every((x) => x === 1));
    const w = f32(untied.get('model.embed_tokens.weight')!);
    const std = Math.sqrt(w.reduce((a, x) => a + x * x, 0) / w.length);
    assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
  });

  it('bad inputs fail with the names and shapes', () => {
    const llama = new Llama(LLAMA_TINY);
    const g = new Graph();
    const positions = g.input('positions', 'int64', ['B', 'T']);
    assert.throws(
      () => llama.forward(g, g.input('embeds', 'float32', ['B', 'T', 31]), positions),
      /inputsEmbeds embeds\[B, T, 31\] must be \[B, T, 32\]/,
    );
    const embeds = g.input('x', 'float32', ['B', 'T', 32]);
    assert.throws(
      () => llama.forward(g, embeds, g.input('pos32', 'int32', ['B', 'T'])),
      /positions pos32: int32/,
    );
    assert.throws(
      () =>
        llama.forward(g, embeds, positions, {
          cache: { layers: [], mask: g.input('mask', 'float32', ['T', 'C+T']) },
        }),
      /the cache has 0 layers, the model has 2/,
    );
    assert.throws(() => llama.embedTokens(g, embeds), /ids x must be int64/);
  });
});
