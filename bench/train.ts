/**
 * Training benchmark: throughput of the tiny recipe's stage-4 step (instruction tuning: projector
 * + patch placement + LLaMA + loss on the answers + AdamW, through the same Trainer that runStage
 * uses) against the same step in PyTorch eager on the same weights and the same batch, plus the
 * host-side cost of preparing a stage-4 batch, and peak memory (process maxRSS): our training
 * process vs the PyTorch one, and `maven demo`-like inference vs the size of the model files.
 *
 *   npm run bench:train                      # print the report
 *   npm run bench:train -- --write           # also replace the training section of docs/benchmarks.md
 *   npm run bench:train -- --steps 3         # fewer timed steps (smoke run)
 *   TORCH_PYTHON=/tmp/tv/bin/python npm run bench:train   # with the PyTorch baseline (see docs/benchmarks.md)
 *
 * Every measurement runs in its own child process (this script with --child), so each peak RSS is
 * that of one job alone: preparing batches (frozen encoders), training on one fixed pre-collated
 * batch (data generation and encoding excluded from the step time), the PyTorch step, inference.
 * The model is models/maven-tiny (or --model DIR); without TORCH_PYTHON the PyTorch rows say so.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '../src/engine/index.ts';
import { resolveAdamW } from '../src/engine/optim.ts';
import { buildComponents } from '../src/maven/model.ts';
import { loadMaven, loadMavenConfig } from '../src/node/model-directory.ts';
import { preprocessImages } from '../src/node/preprocess-images.ts';
import { loadSafetensors, saveSafetensors } from '../src/node/safetensors-file.ts';
import {
  fashionTrainingSource,
  nlvrDevForTraining,
  TINY_SCHEDULE,
  tinyInstructionStage,
} from '../src/train/recipe.ts';
import { stageTrainer } from '../src/train/stage.ts';
import { lastJsonLine } from './baselines/torch.ts';
import { torchStage4Step } from './baselines/torch-stage4.ts';
import { writeBenchSection } from './write-section.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const modelDir = option('--model') ?? join(ROOT, 'models', 'maven-tiny');
const steps = Number(option('--steps') ?? 20);
const warmup = Number(option('--warmup') ?? 3);
/** Batches collated after the first (which also compiles the frozen encoders' sessions). */
const collateBatches = Number(option('--collate') ?? 3);
if (![steps, warmup, collateBatches].every((n) => Number.isInteger(n) && n >= 1))
  throw new Error('--steps, --warmup and --collate must be positive integers');
const INFER_IMAGES = ['fashion-test-0.png', 'fashion-test-2.png'];
const INFER_PROMPT = '<image>\n<image>\nAre images 1 and 2 the same kind of item? Answer yes or no.';
const INFER_TOKENS = 16;

const KiB = 1024;
const maxRssKiB = () => process.resourceUsage().maxRSS; // KiB on Linux, like Python's ru_maxrss
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- children: each job in its own process, reporting one JSON line on stdout ------------------

interface PrepareResult {
  fashion: boolean;
  nlvrDev: boolean;
  collateMs: number[];
  batch: number;
  positions: number;
  patchRows: number;
  patchPositions: number;
  lossTokens: number;
  images: number;
  startRssKiB: number;
  maxRssKiB: number;
}

interface TrainResult {
  compileMs: number;
  stepMs: number[];
  losses: number[];
  lrs: number[];
  trainableParams: number;
  frozenParams: number;
  optimizer: { beta1: number; beta2: number; eps: number; weightDecay: number; clipNorm: number };
  startRssKiB: number;
  maxRssKiB: number;
}

interface InferResult {
  loadMs: number;
  generateMs: number;
  text: string;
  startRssKiB: number;
  maxRssKiB: number;
}

/**
 * The stage-4 definition exactly as the tiny recipe builds it (task mix, Fashion-MNIST and the
 * NLVR dev share when the data folder has them), on the weights in `modelDir`. `withData` false
 * skips loading the data sets: the step's graph, optimizer and trainable set do not depend on
 * them, only the batches do, so the training process does not hold them.
 */
async function stage4(withData: boolean) {
  const model = await loadMaven(modelDir);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const fashion = withData ? await fashionTrainingSource({}, () => {}) : undefined;
  const dev = withData ? await nlvrDevForTraining({}, log) : [];
  const def = tinyInstructionStage(
    { config: model.config, weights: model.hostWeights(), tokenizer: model.tokenizer, seed: 0, fashion },
    dev,
  );
  return { model, def, data: { fashion: fashion !== undefined, nlvrDev: dev.length > 0 } };
}

/** Collates the first stage-4 batches (timed) and writes batch 0 and the LLM + projector weights. */
async function childPrepare(dir: string): Promise<PrepareResult> {
  const { model, def, data } = await stage4(true);
  const startRssKiB = maxRssKiB();
  const batches = def.batches(0);
  const collateMs: number[] = [];
  let fixed: Record<string, HostTensor> | undefined;
  for (let i = 0; i <= collateBatches; i++) {
    const t0 = performance.now();
    const next = await batches.next();
    collateMs.push(performance.now() - t0);
    if (next.done) throw new Error('stage-4 batches ended early');
    fixed ??= next.value;
  }
  await batches.return?.();
  const feeds = fixed!;
  const c = buildComponents(model.config);
  const names = [...c.llm.paramShapes().keys(), ...c.projector.paramShapes().keys()];
  await saveSafetensors(
    join(dir, 'weights.safetensors'),
    new Map(names.map((n) => [n, model.hostWeights().get(n)!])),
  );
  await saveSafetensors(join(dir, 'batch.safetensors'), new Map(Object.entries(feeds)));
  const [B, T] = feeds.ids.shape;
  const ids = feeds.ids.data as BigInt64Array;
  const startId = BigInt(model.imageStartId);
  return {
    ...data,
    collateMs,
    batch: B,
    positions: T,
    patchRows: feeds.patch_features.shape[1],
    patchPositions: (feeds.is_patch.data as Float32Array).reduce((n, x) => n + x, 0),
    lossTokens: (feeds.targets.data as BigInt64Array).reduce((n, x) => n + (x === -100n ? 0 : 1), 0),
    images: ids.reduce((n, x) => n + (x === startId ? 1 : 0), 0),
    startRssKiB,
    maxRssKiB: maxRssKiB(),
  };
}

/** The stage's Trainer (as runStage creates it) stepping `warmup` + `steps` times on the fixed batch. */
async function childTrain(dir: string): Promise<TrainResult> {
  const { def } = await stage4(false);
  const feeds = Object.fromEntries(await loadSafetensors(join(dir, 'batch.safetensors')));
  const startRssKiB = maxRssKiB();
  const t0 = performance.now();
  const trainer = await stageTrainer(def);
  const compileMs = performance.now() - t0;
  const stepMs: number[] = [];
  const losses: number[] = [];
  const lrs: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const s0 = performance.now();
    const r = await trainer.trainStep(feeds);
    if (i >= warmup) stepMs.push(performance.now() - s0);
    losses.push(r.loss);
    lrs.push(r.lr);
  }
  const count = (xs: [string, number][]) => xs.reduce((n, [, k]) => n + k, 0);
  const summary = trainer.summary();
  const { beta1, beta2, eps, weightDecay, clipNorm } = resolveAdamW(def.optimizer);
  return {
    compileMs,
    stepMs,
    losses,
    lrs,
    trainableParams: count(summary.trainable),
    frozenParams: count(summary.frozen),
    optimizer: { beta1, beta2, eps, weightDecay, clipNorm },
    startRssKiB,
    maxRssKiB: maxRssKiB(),
  };
}

/** What `maven demo` does per question, as generation: load the model, encode 2 images, answer. */
async function childInfer(): Promise<InferResult> {
  const t0 = performance.now();
  const model = await loadMaven(modelDir);
  const loadMs = performance.now() - t0;
  const startRssKiB = maxRssKiB();
  const t1 = performance.now();
  const images = await preprocessImages(
    model,
    INFER_IMAGES.map((f) => join(ROOT, 'assets', 'samples', f)),
  );
  const { text } = await model.generate(INFER_PROMPT, images, { maxNewTokens: INFER_TOKENS });
  return { loadMs, generateMs: performance.now() - t1, text, startRssKiB, maxRssKiB: maxRssKiB() };
}

function runChild<R>(kind: string, dir: string): Promise<R> {
  const argv = [...process.execArgv, SELF, '--child', kind, '--dir', dir, '--model', modelDir];
  argv.push('--steps', String(steps), '--warmup', String(warmup), '--collate', String(collateBatches));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const json = lastJsonLine(out);
      if (code === 0 && json) resolve(json as R);
      else
        reject(
          new Error(
            `bench:train child "${kind}" exited with ${code}: ${err.trim().split('\n').slice(-5).join('\n')}`,
          ),
        );
    });
  });
}

const childKind = option('--child');
if (childKind) {
  const dir = option('--dir')!;
  const result =
    childKind === 'prepare'
      ? await childPrepare(dir)
      : childKind === 'train'
        ? await childTrain(dir)
        : childKind === 'infer'
          ? await childInfer()
          : null;
  if (!result) throw new Error(`unknown --child ${childKind}`);
  console.log(JSON.stringify(result));
} else {
  await main();
}

// ---- the report -------------------------------------------------------------------------------

async function main(): Promise<void> {
  const lines: string[] = [];
  const say = (s = '') => {
    lines.push(s);
    console.log(s);
  };
  const started = new Date();
  const config = await loadMavenConfig(modelDir);
  const modelFiles = readdirSync(modelDir).filter((f) =>
    /\.safetensors$|^(config|tokenizer)\.json$|\.index\.json$/.test(f),
  );
  const modelBytes = modelFiles.reduce((n, f) => n + statSync(join(modelDir, f)).size, 0);
  const shown = args.filter((a) => a !== '--write');
  const command = `${process.env.TORCH_PYTHON ? `TORCH_PYTHON=${process.env.TORCH_PYTHON} ` : ''}npm run bench:train${shown.length ? ` -- ${shown.join(' ')}` : ''}`;

  const dir = mkdtempSync(join(os.tmpdir(), 'maven-bench-train-'));
  let prep: PrepareResult;
  let train: TrainResult;
  let infer: InferResult;
  let torch: Awaited<ReturnType<typeof torchStage4Step>>;
  try {
    prep = await runChild<PrepareResult>('prepare', dir);
    train = await runChild<TrainResult>('train', dir);
    torch = await torchStage4Step({
      dir,
      llm: config.llm,
      lrs: train.lrs,
      warmup,
      optimizer: train.optimizer,
      threads: os.cpus().length,
    });
    infer = await runChild<InferResult>('infer', dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const llm = config.llm;
  const B = prep.batch;
  const T = prep.positions;
  const ours = median(train.stepMs);
  const collate = median(prep.collateMs.slice(1));
  const perSecond = (items: number, ms: number) => ((items * 1000) / ms).toFixed(items > 1000 ? 0 : 1);
  const mib = (kib: number) => (kib / KiB).toFixed(0);
  const loss = (xs: readonly number[]) => `${xs[0].toFixed(3)} → ${xs[xs.length - 1].toFixed(3)}`;

  say('## Training (`npm run bench:train`)');
  say('');
  say(
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; onnxruntime-node ${(await import('onnxruntime-node')).env.versions.node}; ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
  );
  say(`Command: \`${command}\`.`);
  say('');
  say(
    `### Stage-4 training step (tiny recipe: batch ${B}, ${T} positions, LLaMA ${llm.numHiddenLayers} × ${llm.hiddenSize}, vocabulary ${llm.vocabSize})`,
  );
  say('');
  say(
    `Model: ${modelDir === join(ROOT, 'models', 'maven-tiny') ? 'models/maven-tiny' : modelDir} (LLaMA ${llm.numHiddenLayers} layers, width ${llm.hiddenSize}, ${llm.numAttentionHeads} heads / ${llm.numKeyValueHeads} KV heads, MLP ${llm.intermediateSize}, tied ${llm.vocabSize}-word embedding; projector ${config.vision.hiddenSize} → ${llm.hiddenSize} → ${llm.hiddenSize}, GELU), ${train.trainableParams.toLocaleString('en-US')} trainable parameters (vision tower, tokenizer and selector frozen and not in the graph).`,
  );
  say(
    `Batch: one fixed batch, the first of stage 4's stream (seed 0; ${[`generated tasks`, prep.fashion ? 'Fashion-MNIST' : '', prep.nlvrDev ? `NLVR dev sentences (${Math.round(TINY_SCHEDULE.instruction.realShare * 100)} %)` : ''].filter(Boolean).join(' + ')}${prep.fashion && prep.nlvrDev ? '' : '; the data folder lacks the rest'}): ${B} examples, ${prep.images} images, ${T} positions per example after padding (${prep.patchPositions} of the ${B * T} are kept patches, ${prep.lossTokens} are answer tokens under the loss), ${prep.patchRows} patch-feature rows per example. tokens/s counts all ${B} × ${T} positions, as \`maven train\` does.`,
  );
  say(
    `Step: forward + backward + AdamW (weight decay ${train.optimizer.weightDecay} on matrices, clipping at ${train.optimizer.clipNorm}), learning rate from the stage's warm-up + cosine schedule; ${warmup} warm-up steps, then the median of ${steps} timed steps. PyTorch runs the same step on the same weights and batch (projector, patch placement, LLaMA, masked cross-entropy, AdamW), so both start from the same loss.`,
  );
  say('');
  say('| implementation | ms / step | examples/s | tokens/s | ours is … × faster | notes |');
  say('|---|---:|---:|---:|---:|---|');
  say(
    `| maven-ts Trainer, stage-4 graph (onnxruntime-node, CPU) | ${ours.toFixed(1)} | ${perSecond(B, ours)} | ${perSecond(B * T, ours)} | 1.00 | loss ${loss(train.losses)}; graph compiled once in ${train.compileMs.toFixed(0)} ms |`,
  );
  if ('skipped' in torch)
    say(`| PyTorch eager, same step | – | – | – | missing | ${torch.skipped}: no ratio |`);
  else
    say(
      `| PyTorch ${torch.torch} eager, same weights and batch (${torch.python}) | ${torch.msPerStep.toFixed(1)} | ${perSecond(B, torch.msPerStep)} | ${perSecond(B * T, torch.msPerStep)} | ${(torch.msPerStep / ours).toFixed(2)} | loss ${loss(torch.losses)}; ${torch.threads} threads; attention: ${torch.attn} |`,
    );
  say('');
  say(
    `Preparing a stage-4 batch on the host (render ${B} examples' images, encode them with the frozen ViT, tokenizer, h_EOS pass and selector, tokenise, lay out; not in the step time above): ${collate.toFixed(0)} ms per batch (median of ${collateBatches}; the first batch, which also compiles the encoders, took ${prep.collateMs[0].toFixed(0)} ms), ${(collate / ours).toFixed(2)} × the training step; step + preparation back to back: ${perSecond(B, ours + collate)} examples/s.`,
  );
  say('');
  say('### Peak memory (process maxRSS, each job in its own process)');
  say('');
  say('"At start" is the peak after imports and loading the weights (and the batch), before any work.');
  say('');
  say('| process | peak RSS MiB | at start MiB | ratio | notes |');
  say('|---|---:|---:|---:|---|');
  const torchRss = 'skipped' in torch ? null : torch.maxRssKiB;
  say(
    `| maven-ts stage-4 training (Trainer on the fixed batch, ${warmup + steps} steps) | ${mib(train.maxRssKiB)} | ${mib(train.startRssKiB)} | ${torchRss ? `${(train.maxRssKiB / torchRss).toFixed(2)} × PyTorch` : 'missing'} | graph compile + steps; node + tsx + onnxruntime |`,
  );
  if ('skipped' in torch) say(`| PyTorch eager, same step | – | – | – | ${torch.skipped} |`);
  else
    say(
      `| PyTorch ${torch.torch} eager, same step | ${mib(torch.maxRssKiB)} | ${mib(torch.startRssKiB)} | 1.00 | ${warmup + steps} steps |`,
    );
  say(
    `| maven-ts stage-4 batch preparation (${collateBatches + 1} batches) | ${mib(prep.maxRssKiB)} | ${mib(prep.startRssKiB)} | – | frozen encoders' sessions; in \`maven train\` it shares the training process |`,
  );
  say(
    `| maven-ts inference, \`maven demo\`-like: load the model, answer one question about 2 images | ${mib(infer.maxRssKiB)} | ${mib(infer.startRssKiB)} | ${(infer.maxRssKiB / (modelBytes / KiB)).toFixed(1)} × the model files | model files ${(modelBytes / 2 ** 20).toFixed(1)} MiB (${modelFiles.join(', ')}); load ${infer.loadMs.toFixed(0)} ms, encode + ${INFER_TOKENS} tokens max ${infer.generateMs.toFixed(0)} ms |`,
  );
  say('');

  if (args.includes('--write')) writeBenchSection('train', lines);
}
