/**
 * The reference workload of the engine benchmark (and of the overfit test): a GPT-style
 * pre-norm transformer block with learned positions and a tied embedding, trained with AdamW.
 * The same step is implemented in tfjs (bench/baselines/tfjs-block.ts) and PyTorch
 * (bench/baselines/torch_block.py).
 */
import type { Graph } from '../src/engine/graph.ts';
import { HostTensor } from '../src/engine/host-tensor.ts';
import * as ops from '../src/engine/ops/index.ts';
import type { TrainGraph } from '../src/engine/trainer.ts';

export interface BlockConfig {
  batch: number;
  seq: number;
  dModel: number;
  heads: number;
  mlp: number;
  vocab: number;
}

export const BENCH_BLOCK: BlockConfig = { batch: 4, seq: 256, dModel: 512, heads: 8, mlp: 2048, vocab: 1000 };

/** Deterministic normal(0, std) values (mulberry32 + Box–Muller). */
export function randn(n: number, std: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  }
  return out;
}

export function blockParams(cfg: BlockConfig, seed = 1): Map<string, HostTensor> {
  const { dModel: D, mlp: F, vocab: V, seq: T } = cfg;
  const p = new Map<string, HostTensor>();
  let k = seed;
  const normal = (shape: number[]) =>
    new HostTensor(
      'float32',
      shape,
      randn(
        shape.reduce((a, b) => a * b, 1),
        0.02,
        k++,
      ),
    );
  const fill = (shape: number[], v: number) =>
    new HostTensor('float32', shape, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v));
  p.set('wte.weight', normal([V, D]));
  p.set('wpe.weight', normal([T, D]));
  for (const ln of ['ln_1', 'ln_2', 'ln_f']) {
    p.set(`${ln}.weight`, fill([D], 1));
    p.set(`${ln}.bias`, fill([D], 0));
  }
  for (const name of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) {
    p.set(`attn.${name}.weight`, normal([D, D]));
    p.set(`attn.${name}.bias`, fill([D], 0));
  }
  p.set('mlp.fc_in.weight', normal([F, D]));
  p.set('mlp.fc_in.bias', fill([F], 0));
  p.set('mlp.fc_out.weight', normal([D, F]));
  p.set('mlp.fc_out.bias', fill([D], 0));
  return p;
}

export function buildBlockLoss(
  g: Graph,
  cfg: BlockConfig,
): TrainGraph & { logits: ReturnType<typeof ops.linear> } {
  const { dModel: D, heads: H, mlp: F, vocab: V, seq: Tmax } = cfg;
  const hs = D / H;
  const ids = g.input('ids', 'int64', ['B', 'T']);
  const targets = g.input('targets', 'int64', ['B', 'T']);
  const lin = (x: ReturnType<typeof g.input>, name: string, outF: number, inF: number) =>
    ops.linear(x, g.param(`${name}.weight`, [outF, inF]), g.param(`${name}.bias`, [outF]));
  const ln = (x: ReturnType<typeof g.input>, name: string) =>
    ops.layerNorm(x, g.param(`${name}.weight`, [D]), g.param(`${name}.bias`, [D]));

  const wte = g.param('wte.weight', [V, D]);
  const pos = ops.arange(g, ops.dimOf(ids, 1), 'T');
  let x = ops.add(ops.gather(wte, ids), ops.gather(g.param('wpe.weight', [Tmax, D]), pos)); // [B, T, D]

  const h = ln(x, 'ln_1');
  const heads = (name: string) =>
    ops.reshape(lin(h, `attn.${name}`, D, D), ['B', 'T', H, hs]).transpose([0, 2, 1, 3]); // [B, H, T, hs]
  const q = heads('q_proj');
  const att = ops.attention(q, heads('k_proj'), heads('v_proj'), ops.causalMask(q)); // [B, H, T, hs]
  const merged = ops.reshape(att.transpose([0, 2, 1, 3]), ['B', 'T', D]); // [B, T, D]
  x = ops.add(x, lin(merged, 'attn.o_proj', D, D));
  x = ops.add(x, lin(ops.gelu(lin(ln(x, 'ln_2'), 'mlp.fc_in', F, D)), 'mlp.fc_out', D, F));
  const logits = ops.linear(ln(x, 'ln_f'), wte); // tied head, [B, T, V]
  return { loss: ops.crossEntropy(logits, targets), logits };
}

export function randomTokens(cfg: BlockConfig, seed: number): { ids: HostTensor; targets: HostTensor } {
  const n = cfg.batch * cfg.seq;
  const u = randn(2 * n, 1, seed);
  const toks = (off: number) =>
    BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.floor(Math.abs(u[off + i] * 7919)) % cfg.vocab));
  return {
    ids: new HostTensor('int64', [cfg.batch, cfg.seq], toks(0)),
    targets: new HostTensor('int64', [cfg.batch, cfg.seq], toks(n)),
  };
}
