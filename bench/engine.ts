/**
 * Engine benchmark: in-graph GEMM throughput, and the reference transformer-block training step
 * (bench/transformer-block.ts) in this engine vs @tensorflow/tfjs on its wasm backend and, where a
 * Python with torch is installed, PyTorch eager — all measured in this one run.
 *
 *   npm run bench:engine                 # print the report
 *   npm run bench:engine -- --write      # also replace the engine section of docs/benchmarks.md
 *   npm run bench:engine -- --quick      # fewer repetitions, tfjs skipped (smoke run)
 */
import os from 'node:os';
import { Graph } from '../src/engine/graph.ts';
import { HostTensor } from '../src/engine/host-tensor.ts';
import * as ops from '../src/engine/ops/index.ts';
import { compile } from '../src/engine/session.ts';
import { Trainer } from '../src/engine/trainer.ts';
import { tfjsBlockStepMs } from './baselines/tfjs-block.ts';
import { torchBlockStepMs } from './baselines/torch.ts';
import {
  BENCH_BLOCK,
  type BlockConfig,
  blockParams,
  buildBlockLoss,
  randn,
  randomTokens,
} from './transformer-block.ts';
import { writeBenchSection } from './write-section.ts';

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const lines: string[] = [];
const say = (s = '') => {
  lines.push(s);
  console.log(s);
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median, min and max wall time of `reps` calls after `warmup` untimed ones. */
async function timeRuns(
  fn: () => Promise<unknown>,
  warmup: number,
  reps: number,
): Promise<{ median: number; min: number; max: number }> {
  for (let i = 0; i < warmup; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return { median: median(ts), min: Math.min(...ts), max: Math.max(...ts) };
}

async function timeIt(fn: () => Promise<unknown>, warmup: number, reps: number): Promise<number> {
  return (await timeRuns(fn, warmup, reps)).median;
}

const spread = (t: { min: number; max: number }) => `${t.min.toFixed(1)}–${t.max.toFixed(1)} ms`;

/** Forward FLOPs of one block step (matmuls only; attention counted in full, as PyTorch computes it). */
function blockForwardFlops(c: BlockConfig): number {
  const n = c.batch * c.seq;
  const linears = 2 * n * (4 * c.dModel * c.dModel + 2 * c.dModel * c.mlp);
  const head = 2 * n * c.dModel * c.vocab;
  const attention = 2 * 2 * c.batch * c.seq * c.seq * c.dModel;
  return linears + head + attention;
}

async function gemm(): Promise<void> {
  say('### GEMM (float32, C = A·B, n×n)');
  say('');
  say('| n | one MatMul per call, GFLOP/s | 8 chained MatMuls in one graph, GFLOP/s |');
  say('|---:|---:|---:|');
  for (const n of [256, 512, 1024, 2048]) {
    const a = new HostTensor('float32', [n, n], randn(n * n, 1 / Math.sqrt(n), 1));
    const b = new HostTensor('float32', [n, n], randn(n * n, 1 / Math.sqrt(n), 2));
    const g1 = new Graph();
    const p1 = await compile(g1, {
      c: ops.matmul(g1.input('a', 'float32', [n, n]), g1.input('b', 'float32', [n, n])),
    });
    const g8 = new Graph();
    let x = g8.input('a', 'float32', [n, n]);
    const w = g8.input('b', 'float32', [n, n]);
    for (let i = 0; i < 8; i++) x = ops.matmul(x, w);
    const p8 = await compile(g8, { c: x });
    const reps = quick ? 3 : n >= 2048 ? 5 : 20;
    const t1 = await timeIt(() => p1.run({ a, b }), 2, reps);
    const t8 = await timeIt(() => p8.run({ a, b }), 1, Math.max(3, Math.floor(reps / 2)));
    const flops = 2 * n ** 3;
    say(`| ${n} | ${(flops / t1 / 1e6).toFixed(0)} | ${((8 * flops) / t8 / 1e6).toFixed(0)} |`);
  }
  say('');
}

async function blockStep(): Promise<void> {
  const c = BENCH_BLOCK;
  const fwd = blockForwardFlops(c);
  say(
    `### Transformer-block training step (batch ${c.batch}, seq ${c.seq}, d_model ${c.dModel}, ${c.heads} heads, MLP ${c.mlp}, tied ${c.vocab}-word embedding, AdamW + clipping)`,
  );
  say('');
  say(
    `Work per step: ${(fwd / 1e9).toFixed(2)} GFLOP forward, ${((3 * fwd) / 1e9).toFixed(2)} GFLOP forward + backward.`,
  );
  say('');
  const t0 = performance.now();
  const trainer = await Trainer.create({
    params: blockParams(c),
    build: (g) => buildBlockLoss(g, c),
    optimizer: { lr: 3e-4, weightDecay: 0.01, clipNorm: 1 },
    decay: () => true,
  });
  const compileMs = performance.now() - t0;
  const data = randomTokens(c, 7);
  const losses: number[] = [];
  const oursRuns = await timeRuns(
    async () => losses.push((await trainer.trainStep(data)).loss),
    quick ? 2 : 4,
    quick ? 3 : 15,
  );
  const ours = oursRuns.median;
  const rows: [string, number | null, string][] = [
    [
      'maven-ts engine (onnxruntime-node, CPU)',
      ours,
      `median of ${quick ? 3 : 15} steps (range ${spread(oursRuns)}); loss ${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)}; graph compiled once in ${compileMs.toFixed(0)} ms; ${os.cpus().length} threads`,
    ],
  ];

  if (!quick) {
    const tf = await tfjsBlockStepMs({ warmup: 1, steps: 3, backend: 'wasm', log: () => {} });
    rows.push([
      `@tensorflow/tfjs 4.22 + wasm backend`,
      tf.msPerStep,
      `median of 3 steps; loss ${tf.loss0.toFixed(3)} → ${tf.lossN.toFixed(3)}; ${tf.threads ?? 1} thread(s) (tfjs gets no wasm threads under Node) against this engine's ${os.cpus().length}`,
    ]);
    const tuned = await tfjsBlockStepMs({
      warmup: 1,
      steps: 3,
      backend: 'wasm',
      explicitTranspose: true,
      log: () => {},
    });
    rows.push([
      `@tensorflow/tfjs 4.22 + wasm, matmul gradients rewritten without transpose flags`,
      tuned.msPerStep,
      `a tuned tfjs: same maths, avoids wasm's slow transposed BatchMatMul; loss ${tuned.loss0.toFixed(3)} → ${tuned.lossN.toFixed(3)}`,
    ]);
  } else rows.push(['@tensorflow/tfjs 4.22 + wasm backend', null, 'skipped (--quick)']);

  // TORCH_PYTHON picks the interpreter (e.g. a venv with an MKL build of torch); see docs/benchmarks.md.
  const torch = await torchBlockStepMs({ warmup: 2, steps: quick ? 3 : 10 });
  if ('skipped' in torch) rows.push(['PyTorch eager', null, `skipped: ${torch.skipped}`]);
  else
    rows.push([
      `PyTorch ${torch.torch} eager (${torch.python})`,
      torch.msPerStep,
      `median of ${quick ? 3 : 10} steps (range ${spread({ min: torch.msMin, max: torch.msMax })}); loss ${torch.loss0.toFixed(3)} → ${torch.lossN.toFixed(3)}; ${torch.threads} threads; attention: ${torch.attn}`,
    ]);

  say(
    `| implementation | ms / step (median) | effective GFLOP/s | its time / this engine's (this engine on ${os.cpus().length} threads) | notes |`,
  );
  say('|---|---:|---:|---:|---|');
  for (const [name, ms, note] of rows) {
    if (ms === null) say(`| ${name} | – | – | – | ${note} |`);
    else
      say(
        `| ${name} | ${ms.toFixed(1)} | ${((3 * fwd) / ms / 1e6).toFixed(0)} | ${(ms / ours).toFixed(2)} | ${note} |`,
      );
  }
  say('');
}

const started = new Date();
say(`## Engine (\`npm run bench:engine${quick ? ' -- --quick' : ''}\`)`);
say('');
say(
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; onnxruntime-node ${(await import('onnxruntime-node')).env.versions.node}; ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
);
say('');
await gemm();
await blockStep();

if (args.has('--write')) writeBenchSection('engine', lines);
