/**
 * The engine end to end, in one short file: trace a tiny character-level GPT, train it with the
 * compiled forward + backward + AdamW step, then generate with the KV-cache decoder.
 *
 *   npx tsx examples/char-gpt.ts [--steps 500]
 *
 * (`npm start` runs the MaVEn demo on the embedded default model; this shows the engine alone.)
 */
import {
  type DecoderSpec,
  KVCacheDecoder,
  type KVCacheInputs,
  type LayerCache,
} from '../src/engine/decoder.ts';
import type { Graph } from '../src/engine/graph.ts';
import { HostTensor } from '../src/engine/host-tensor.ts';
import * as ops from '../src/engine/ops/index.ts';
import { warmupCosine } from '../src/engine/optim.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import { Trainer } from '../src/engine/trainer.ts';

const TEXT = `MaVEn encodes each image twice. A discrete tokenizer turns the image into a short
sequence of codebook ids that the language model reads like words. A vision transformer gives
one continuous feature per patch. The hidden state at the end of the discrete tokens summarises
the image, and a small selector uses it to keep only the patches that matter. The language model
then reads both: a few discrete tokens for the gist, a few continuous tokens for the detail.
Many images, few visual tokens, one answer.`.replace(/\s+/g, ' ');

const vocab = [...new Set(TEXT)].sort();
const V = vocab.length;
const cfg = { layers: 2, dModel: 64, heads: 4, context: 64 }; // small enough to train in seconds on 2 cores
const hs = cfg.dModel / cfg.heads;
const steps = Number(process.argv[process.argv.indexOf('--steps') + 1]) || 500;

function initialWeights(seed: number): Map<string, HostTensor> {
  let s = seed;
  const normal = (shape: number[], std = 0.02) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      const u1 = (s + 1) / 2 ** 31;
      s = (s * 1103515245 + 12345) % 2 ** 31;
      data[i] = std * Math.sqrt(-2 * Math.log(u1)) * Math.cos((2 * Math.PI * s) / 2 ** 31);
    }
    return new HostTensor('float32', shape, data);
  };
  const ones = (n: number) => new HostTensor('float32', [n], new Float32Array(n).fill(1));
  const D = cfg.dModel;
  const w = new Map<string, HostTensor>([
    ['wte', normal([V, D])],
    ['wpe', normal([cfg.context, D])],
    ['norm', ones(D)],
  ]);
  for (let l = 0; l < cfg.layers; l++) {
    for (const n of ['q', 'k', 'v', 'o']) w.set(`h.${l}.attn.${n}`, normal([D, D]));
    w.set(`h.${l}.norm1`, ones(D));
    w.set(`h.${l}.norm2`, ones(D));
    w.set(`h.${l}.mlp.up`, normal([4 * D, D]));
    w.set(`h.${l}.mlp.down`, normal([D, 4 * D]));
  }
  return w;
}

/**
 * One forward pass to the final hidden states [B, T, D]. Training attends over the input alone;
 * with `cache` (the KV-cache decoder's), over the cached positions too, returning this step's
 * keys and values for the decoder to append.
 */
function forward(g: Graph, ids: Tensor, positions: Tensor, cache: KVCacheInputs | null) {
  const D = cfg.dModel;
  let x = ops.add(
    ops.gather(g.param('wte', [V, D]), ids),
    ops.gather(g.param('wpe', [cfg.context, D]), positions),
  ); // [B, T, D]
  const added: LayerCache<Tensor>[] = [];
  for (let l = 0; l < cfg.layers; l++) {
    const h = ops.rmsNorm(x, g.param(`h.${l}.norm1`, [D]));
    const [q, k, v] = ['q', 'k', 'v'].map((n) => ops.linear(h, g.param(`h.${l}.attn.${n}`, [D, D]))); // [B, T, D]
    let y: Tensor; // [B, T, D]
    if (cache) {
      y = ops.cachedAttention(
        q,
        k,
        v,
        { ...cache.layers[l], mask: cache.mask },
        { heads: cfg.heads, kvHeads: cfg.heads },
      );
      added.push({ key: k, value: v });
    } else {
      const heads = (t: Tensor) => ops.reshape(t, ['B', 'T', cfg.heads, hs]).transpose([0, 2, 1, 3]); // [B, nh, T, hs]
      const [qh, kh, vh] = [heads(q), heads(k), heads(v)];
      y = ops.reshape(ops.attention(qh, kh, vh, ops.causalMask(qh, kh)).transpose([0, 2, 1, 3]), [
        'B',
        'T',
        D,
      ]);
    }
    x = ops.add(x, ops.linear(y, g.param(`h.${l}.attn.o`, [D, D])));
    const m = ops.rmsNorm(x, g.param(`h.${l}.norm2`, [D]));
    x = ops.add(
      x,
      ops.linear(
        ops.silu(ops.linear(m, g.param(`h.${l}.mlp.up`, [4 * D, D]))),
        g.param(`h.${l}.mlp.down`, [D, 4 * D]),
      ),
    );
  }
  return { hidden: ops.rmsNorm(x, g.param('norm', [D])), added };
}

/** Tied head: hidden states [B, T, D] → logits [B, T, V]. */
const head = (g: Graph, hidden: Tensor) => ops.linear(hidden, g.param('wte', [V, cfg.dModel]));

function batch(size: number, T: number, seed: number): Record<string, HostTensor> {
  const ids = new BigInt64Array(size * T);
  const targets = new BigInt64Array(size * T);
  const positions = new BigInt64Array(size * T);
  for (let b = 0; b < size; b++) {
    const start = (seed * 7919 + b * 104729) % (TEXT.length - T - 1);
    for (let t = 0; t < T; t++) {
      ids[b * T + t] = BigInt(vocab.indexOf(TEXT[start + t]));
      targets[b * T + t] = BigInt(vocab.indexOf(TEXT[start + t + 1]));
      positions[b * T + t] = BigInt(t);
    }
  }
  return {
    ids: new HostTensor('int64', [size, T], ids),
    targets: new HostTensor('int64', [size, T], targets),
    positions: new HostTensor('int64', [size, T], positions),
  };
}

const trainer = await Trainer.create({
  params: initialWeights(1),
  build: (g) => {
    const ids = g.input('ids', 'int64', ['B', 'T']);
    const { hidden } = forward(g, ids, g.input('positions', 'int64', ['B', 'T']), null);
    return { loss: ops.crossEntropy(head(g, hidden), g.input('targets', 'int64', ['B', 'T'])) };
  },
  optimizer: {
    lr: warmupCosine({ peak: 3e-3, warmupSteps: 20, totalSteps: steps, min: 3e-4 }),
    weightDecay: 0.01,
  },
});
const { trainable } = trainer.summary();
console.log(
  `char-GPT: ${trainable.reduce((n, [, c]) => n + c, 0).toLocaleString()} parameters, vocabulary ${V} characters`,
);
const t0 = performance.now();
for (let i = 1; i <= steps; i++) {
  const r = await trainer.trainStep(batch(16, cfg.context, i));
  if (i % 50 === 0 || i === 1) {
    const s = (performance.now() - t0) / 1000;
    console.log(
      `step ${String(i).padStart(4)}  loss ${r.loss.toFixed(3)}  lr ${r.lr.toExponential(1)}  ${((i * 16 * cfg.context) / s).toFixed(0)} tokens/s`,
    );
  }
}

const spec: DecoderSpec = { layers: cfg.layers, kvHeads: cfg.heads, headDim: hs, build: forward, head };
const decoder = await KVCacheDecoder.create(spec, trainer.parameters());
for (const prompt of ['MaVEn encodes', 'The language model']) {
  const ids = [...prompt].map((ch) => vocab.indexOf(ch));
  const tensor = (xs: number[]) => new HostTensor('int64', [1, xs.length], BigInt64Array.from(xs, BigInt));
  let out = await decoder.prefill(tensor(ids), tensor(ids.map((_, i) => i)));
  let text = prompt;
  while (ids.length < cfg.context) {
    const T = out.logits.shape[1];
    const row = (out.logits.data as Float32Array).subarray((T - 1) * V, T * V);
    const next = row.indexOf(Math.max(...row));
    text += vocab[next];
    ids.push(next);
    out = await decoder.decode(tensor([next]), tensor([ids.length - 1]), out.cache);
  }
  console.log(`> ${text}`);
}
