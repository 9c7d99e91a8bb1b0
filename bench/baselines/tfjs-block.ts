/**
 * Baseline: one training step of a 1-block pre-norm transformer LM (B=4, T=256, D=512, H=8, MLP 2048,
 * V=1000, tied embedding, causal attention, mean CE loss, AdamW + global-norm clip 1.0) in TensorFlow.js
 * (tfjs-core 4.22, wasm backend by default, or the pure-JS cpu backend). Same step as torch_block.py.
 *
 * Workarounds, as a plain tfjs user would do them:
 * - tfjs-core alone registers no gradients (the @tensorflow/tfjs umbrella does). We load tfjs-core's own
 *   `dist/register_all_gradients.js` through require (tsx transpiles that ESM tree; it shares the global
 *   engine and gradient registry with the main tfjs-core bundle).
 * - The wasm backend has no UnsortedSegmentSum kernel, so the gradient of tf.gather fails there. The token
 *   embedding lookup is a one-hot matmul (oneHot(ids) @ E) on both backends; positions are 0..T-1, so the
 *   positional "lookup" is just P broadcast over the batch.
 * - tfjs has Adam but no AdamW: decoupled weight decay p *= (1 - lr*wd) is applied just before the Adam
 *   update (the torch.optim.AdamW order), and global-norm clipping (coef = min(1, 1/(norm+1e-6)), like
 *   torch clip_grad_norm_) is done by hand.
 * Node gets no wasm threads (tfjs disables them under Node), so wasm runs single-threaded (SIMD build).
 * Opt-in `explicitTranspose`: tfjs-wasm's BatchMatMul is fast only without transpose flags, and the stock
 * BatchMatMul gradient uses them; this variant transposes explicitly (forward and a temporarily overridden
 * BatchMatMul gradient). Same math; default off (= stock tfjs).
 * CLI: npx tsx bench/baselines/tfjs-block.ts [--backend wasm|cpu] [--warmup 1] [--steps 3] [--explicit-transpose]
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);

const B = 4;
const T = 256;
const D = 512;
const H = 8;
const HS = D / H;
const FF = 4 * D;
const V = 1000;
const LR = 3e-4;
const WD = 0.01;
const LN_EPS = 1e-5;
const SEED = 1234;

export interface TfjsBlockResult {
  msPerStep: number;
  loss0: number;
  lossN: number;
  backend: string;
  threads?: number;
  explicitTranspose?: boolean;
}

let gradientsRegistered = false;
let wasmPathsSet = false;

async function initBackend(backend: 'wasm' | 'cpu'): Promise<void> {
  if (!gradientsRegistered) {
    require('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    gradientsRegistered = true;
  }
  if (backend === 'wasm' && !wasmPathsSet) {
    // A plain directory path with a trailing slash works in Node (emscripten reads it with fs);
    // so does pathToFileURL(dir).href + '/'.
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    setWasmPaths(dir + path.sep);
    wasmPathsSet = true;
  }
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs backend ${backend} failed to initialize`);
  await tf.ready();
}

/** mulberry32: small deterministic PRNG for the token ids. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomIds(rand: () => number, n: number): Int32Array {
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = Math.floor(rand() * V);
  return ids;
}

type Params = Record<string, tf.Variable>;

function makeParams(): Params {
  let seed = SEED;
  const make = (name: string, init: tf.Tensor) => {
    const v = tf.variable(init, true, name);
    init.dispose(); // the variable holds its own reference to the data
    return v;
  };
  const mat = (name: string, shape: number[]) =>
    make(name, tf.randomNormal(shape, 0, 0.02, 'float32', seed++));
  const zeros = (name: string, n: number) => make(name, tf.zeros([n]));
  const ones = (name: string, n: number) => make(name, tf.ones([n]));
  return {
    wte: mat('wte', [V, D]),
    wpe: mat('wpe', [T, D]),
    ln1_g: ones('ln1_g', D),
    ln1_b: zeros('ln1_b', D),
    wq: mat('wq', [D, D]),
    bq: zeros('bq', D),
    wk: mat('wk', [D, D]),
    bk: zeros('bk', D),
    wv: mat('wv', [D, D]),
    bv: zeros('bv', D),
    wo: mat('wo', [D, D]),
    bo: zeros('bo', D),
    ln2_g: ones('ln2_g', D),
    ln2_b: zeros('ln2_b', D),
    w1: mat('w1', [D, FF]),
    b1: zeros('b1', FF),
    w2: mat('w2', [FF, D]),
    b2: zeros('b2', D),
    lnf_g: ones('lnf_g', D),
    lnf_b: zeros('lnf_b', D),
  };
}

function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  const mu = tf.mean(x, -1, true);
  const xc = tf.sub(x, mu);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, LN_EPS))), g), b);
}

function linear(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return tf.add(tf.matMul(x, w as tf.Tensor2D), b);
}

/** Swap the last two axes. */
function swapLast2(x: tf.Tensor): tf.Tensor {
  const perm = [...Array(x.rank).keys()];
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return tf.transpose(x, perm);
}

/** a @ b^T, with or without the transposeB flag. */
function matMulNT<R extends tf.Rank>(a: tf.Tensor<R>, b: tf.Tensor, explicit: boolean): tf.Tensor<R> {
  return explicit ? tf.matMul(a, swapLast2(b) as tf.Tensor<R>) : tf.matMul(a, b as tf.Tensor<R>, false, true);
}

/** BatchMatMul gradient that passes no transpose flags to matMul (see header). */
const explicitTransposeMatMulGrad: tf.GradConfig = {
  kernelName: tf.BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved;
    const g = dy as tf.Tensor;
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    if (transposeA) throw new Error('explicitTranspose gradient: transposeA is not used by this model');
    if (!transposeB) return { a: () => tf.matMul(g, swapLast2(b)), b: () => tf.matMul(swapLast2(a), g) };
    return { a: () => tf.matMul(g, b), b: () => tf.matMul(swapLast2(g), a) };
  },
};

/** [B*T, D] -> [B, H, T, HS] */
function splitHeads(x: tf.Tensor2D): tf.Tensor4D {
  return tf.transpose(tf.reshape(x, [B, T, H, HS]), [0, 2, 1, 3]);
}

function lossFn(
  p: Params,
  tokOneHot: tf.Tensor2D,
  tgtOneHot: tf.Tensor2D,
  mask: tf.Tensor2D,
  explicitT: boolean,
): tf.Scalar {
  const N = B * T;
  // Embedding: one-hot matmul (see header), plus learned positions broadcast over the batch.
  const tok = tf.reshape(tf.matMul(tokOneHot, p.wte), [B, T, D]);
  const x = tf.reshape(tf.add(tok, p.wpe), [N, D]) as tf.Tensor2D;

  // Attention (pre-norm, causal).
  const a = layerNorm(x, p.ln1_g, p.ln1_b);
  const q = splitHeads(linear(a, p.wq, p.bq));
  const k = splitHeads(linear(a, p.wk, p.bk));
  const v = splitHeads(linear(a, p.wv, p.bv));
  const scores = tf.add(tf.mul(matMulNT(q, k, explicitT), 1 / Math.sqrt(HS)), mask);
  const att = tf.softmax(scores, -1);
  const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [N, D]) as tf.Tensor2D;
  const h1 = tf.add(x, linear(y, p.wo, p.bo)) as tf.Tensor2D;

  // MLP with exact (erf) GELU.
  const m = layerNorm(h1, p.ln2_g, p.ln2_b);
  const u = linear(m, p.w1, p.b1);
  const gelu = tf.mul(tf.mul(u, 0.5), tf.add(tf.erf(tf.mul(u, Math.SQRT1_2)), 1)) as tf.Tensor2D;
  const h2 = tf.add(h1, linear(gelu, p.w2, p.b2)) as tf.Tensor2D;

  // Final LN, tied logits, mean cross-entropy.
  const hf = layerNorm(h2, p.lnf_g, p.lnf_b);
  const logits = matMulNT(hf, p.wte, explicitT);
  const nll = tf.neg(tf.sum(tf.mul(tgtOneHot, tf.logSoftmax(logits, -1)), -1));
  return tf.mean(nll) as tf.Scalar;
}

export async function tfjsBlockStepMs(opts: {
  warmup: number;
  steps: number;
  backend: 'wasm' | 'cpu';
  /** Opt-in, see header. Default false (stock tfjs). */
  explicitTranspose?: boolean;
  log?: (msg: string) => void;
}): Promise<TfjsBlockResult> {
  const log = opts.log ?? ((msg: string) => console.error(msg));
  const explicitT = opts.explicitTranspose ?? false;
  const tag = `tfjs ${opts.backend}${explicitT ? ' explicit-transpose' : ''}`;
  await initBackend(opts.backend);

  const rand = mulberry32(SEED);
  const ids = randomIds(rand, B * T);
  const targets = randomIds(rand, B * T);

  const params = makeParams();
  const varList = Object.values(params);
  const tokOneHot = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(ids, 'int32'), V), 'float32')) as tf.Tensor2D;
  const tgtOneHot = tf.tidy(() =>
    tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), V), 'float32'),
  ) as tf.Tensor2D;
  // Additive causal mask: 0 on/below the diagonal, -1e9 above.
  const maskData = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskData[i * T + j] = -1e9;
  const mask = tf.tensor2d(maskData, [T, T]);

  const opt = tf.train.adam(LR, 0.9, 0.999, 1e-8);

  const step = (): number => {
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => lossFn(params, tokOneHot, tgtOneHot, mask, explicitT),
        varList,
      );
      // Global-norm clipping to 1.0 (torch clip_grad_norm_ semantics).
      const names = Object.keys(grads);
      const norm = tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n])))));
      const coef = tf.minimum(tf.div(1.0, tf.add(norm, 1e-6)), 1.0);
      const clipped = names.map((name) => ({ name, tensor: tf.mul(grads[name], coef) }));
      // Decoupled weight decay (AdamW), then the Adam update.
      for (const v of varList) v.assign(tf.mul(v, 1 - LR * WD));
      opt.applyGradients(clipped);
      return value;
    });
    const l = loss.dataSync()[0];
    loss.dispose();
    return l;
  };

  // The gradient registry is global: swap the BatchMatMul gradient only for this run, then restore it.
  const stockMatMulGrad = tf.getGradient(tf.BatchMatMul);
  if (explicitT) {
    tf.unregisterGradient(tf.BatchMatMul);
    tf.registerGradient(explicitTransposeMatMulGrad);
  }
  let loss0 = Number.NaN;
  let lossN = Number.NaN;
  const times: number[] = [];
  try {
    for (let i = 0; i < opts.warmup; i++) {
      const t0 = performance.now();
      const l = step();
      if (i === 0) loss0 = l;
      log(`[${tag}] warmup ${i}: loss ${l.toFixed(4)} (${(performance.now() - t0).toFixed(0)} ms)`);
    }
    for (let i = 0; i < opts.steps; i++) {
      const t0 = performance.now();
      lossN = step();
      const dt = performance.now() - t0;
      times.push(dt);
      if (Number.isNaN(loss0)) loss0 = lossN;
      log(`[${tag}] step ${i}: loss ${lossN.toFixed(4)} (${dt.toFixed(0)} ms)`);
    }
  } finally {
    if (explicitT) {
      tf.unregisterGradient(tf.BatchMatMul);
      tf.registerGradient(stockMatMulGrad);
    }
  }

  const result: TfjsBlockResult = {
    // The median, as the engine side reports.
    msPerStep: times.length ? [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)] : Number.NaN,
    loss0,
    lossN,
    backend: tf.getBackend(),
  };
  if (opts.backend === 'wasm') result.threads = getThreadsCount();
  if (explicitT) result.explicitTranspose = true;

  opt.dispose();
  tf.dispose([...varList, tokOneHot, tgtOneHot, mask]);
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const arg = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
  };
  const backend = arg('backend', 'wasm');
  if (backend !== 'wasm' && backend !== 'cpu')
    throw new Error(`--backend must be wasm or cpu, got ${backend}`);
  const res = await tfjsBlockStepMs({
    warmup: Number(arg('warmup', '1')),
    steps: Number(arg('steps', '3')),
    backend,
    explicitTranspose: args.includes('--explicit-transpose'),
  });
  console.log(JSON.stringify(res));
}
