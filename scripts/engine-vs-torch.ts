/**
 * Rules out the engine in long runs: trains the tiny recipe's stage 3 (projector) and stage 4
 * (instruction tuning) for N steps with our engine and with PyTorch eager on the same starting
 * weights, the same batches in the same order, the same learning rate at every step, the same
 * trainable set and the same AdamW settings, and puts the two loss curves side by side.
 *
 *   TORCH_PYTHON=/tmp/tv/bin/python npx tsx scripts/engine-vs-torch.ts --model DIR
 *     [--steps 300] [--stages 3,4] [--threads 2] [--float64-steps K] [--out docs/engine-vs-pytorch]
 *
 * Per stage: the StageDefinition exactly as the recipe builds it (`projectorStage` /
 * `instructionStage` on the model's config, weights and tokenizer; Fashion-MNIST training photos
 * and, for stage 4, the recipe's task mix and NLVR dev share when the data folder has them; the
 * recipe's batch size and peak learning rate; steps = --steps, so warm-up and cosine span the
 * run). Its first N batches are collated once and saved as safetensors in a temporary folder; the
 * stage's Trainer (as runStage creates it) steps through them recording loss, gradient norm,
 * learning rate and wall time; bench/baselines/torch_stage_run.py then runs the same N steps in
 * PyTorch. Both write their trained parameters, which are compared at the end.
 *
 * --float64-steps K also runs the first K steps in PyTorch float64: the curve without float32
 * rounding, which tells rounding drift (both float32 runs stray from it alike) from a real
 * difference (one of them strays further). float64 on the CPU is several times slower, hence K.
 *
 * Writes OUT/stage<k>-loss.{svg,png} (both curves), OUT/stage<k>-difference.{svg,png} (engine −
 * PyTorch per step), OUT/stage<k>.json (every per-step measurement) and OUT.md (the summary,
 * which is also printed). Without TORCH_PYTHON (or without torch there) the PyTorch half is
 * skipped with a message, the engine's numbers are printed, and nothing is written.
 * PyTorch setup: docs/benchmarks.md (a venv with the CPU wheel).
 */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { torchStageRun } from '../bench/baselines/torch-stage-run.ts';
import type { HostTensor } from '../src/engine/index.ts';
import { resolveAdamW } from '../src/engine/optim.ts';
import type { MavenModel } from '../src/maven/model.ts';
import { loadMaven } from '../src/node/model-directory.ts';
import { loadSafetensors, saveSafetensors } from '../src/node/safetensors-file.ts';
import { lossCurveSvg, svgToPng } from '../src/train/plot.ts';
import {
  fashionTrainingSource,
  nlvrDevForTraining,
  tinyInstructionStage,
  tinyProjectorStage,
} from '../src/train/recipe.ts';
import { type StageDefinition, stageTrainer } from '../src/train/stage.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv,
  options: {
    model: { type: 'string' },
    steps: { type: 'string', default: '300' },
    stages: { type: 'string', default: '3,4' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string', default: 'docs/engine-vs-pytorch' },
    'float64-steps': { type: 'string', default: '0' },
  },
});
if (!values.model)
  throw new Error('--model DIR (a MaVEn model directory, e.g. models/maven-tiny) is required');
const modelDir = values.model;
const steps = Number(values.steps);
const threads = Number(values.threads);
const stages = values.stages!.split(',').map((s) => Number(s.trim()));
if (!Number.isInteger(steps) || steps < 1)
  throw new Error(`--steps must be a positive integer, got ${values.steps}`);
if (!Number.isInteger(threads) || threads < 1)
  throw new Error(`--threads must be a positive integer, got ${values.threads}`);
if (stages.length === 0 || stages.some((s) => s !== 3 && s !== 4))
  throw new Error(`--stages takes 3, 4 or 3,4; got ${values.stages}`);
const float64Steps = Number(values['float64-steps']);
if (!Number.isInteger(float64Steps) || float64Steps < 0 || float64Steps > steps)
  throw new Error(`--float64-steps must be an integer from 0 to --steps, got ${values['float64-steps']}`);
const outDir = resolve(values.out!);
const mdPath = `${outDir}.md`;

const runtime = { threads };
const log = (line: string) => process.stderr.write(`${line}\n`);
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

// ---- the stages, as the recipe builds them ------------------------------------------------------

interface StageData {
  fashion: Awaited<ReturnType<typeof fashionTrainingSource>>;
  dev: Awaited<ReturnType<typeof nlvrDevForTraining>>;
}

function stageDefinition(stage: 3 | 4, model: MavenModel, data: StageData): StageDefinition {
  const base = {
    config: model.config,
    weights: model.hostWeights(),
    tokenizer: model.tokenizer,
    steps,
    seed: 0,
    fashion: data.fashion,
    runtime,
  };
  return stage === 3 ? tinyProjectorStage(base) : tinyInstructionStage(base, data.dev);
}

// ---- measurements -------------------------------------------------------------------------------

interface Curve {
  losses: number[];
  gradNorms: number[];
  stepMs: number[];
}

interface StageRun {
  stage: 3 | 4;
  name: string;
  description: string;
  batchSize: number;
  /** Positions per example and patch-feature rows per example, per batch. */
  positions: number[];
  patchRows: number[];
  collateMs: number[];
  lrs: number[];
  optimizer: { beta1: number; beta2: number; eps: number; weightDecay: number; clipNorm: number };
  trainableParams: number;
  frozenParams: number;
  compileMs: number;
  engine: Curve;
  torch: TorchCurve | { skipped: string };
  /** With --float64-steps K: the first K steps of the PyTorch run in float64, the curve without float32 rounding. */
  reference?: TorchCurve | { skipped: string };
  /** Trained parameters: engine vs PyTorch, and each float32 run vs the float64 reference. */
  params?: { torch: ParamGap; engineVsReference?: ParamGap; torchVsReference?: ParamGap };
}

type TorchCurve = Curve & { torch: string; threads: number; attn: string; python: string; dtype: string };

/** ‖ours − theirs‖ / ‖theirs − start‖ over all trained tensors together, and the worst tensor. */
interface ParamGap {
  relative: number;
  worst: { name: string; relative: number };
  tensors: number;
}

/** ‖a − b‖ / ‖b − start‖ over all the named tensors together, and for the worst single tensor. */
function parameterGap(
  names: readonly string[],
  ours: ReadonlyMap<string, HostTensor>,
  theirs: ReadonlyMap<string, HostTensor>,
  start: ReadonlyMap<string, HostTensor>,
): ParamGap {
  let gap = 0;
  let moved = 0;
  let worst = { name: '', relative: -1 };
  for (const name of names) {
    const a = ours.get(name)!.data as Float32Array;
    const b = theirs.get(name)?.data as Float32Array | undefined;
    const p = start.get(name)!.data as Float32Array;
    if (!b || b.length !== a.length)
      throw new Error(`PyTorch's trained parameters lack "${name}" or differ in size`);
    let g = 0;
    let m = 0;
    for (let i = 0; i < a.length; i++) {
      g += (a[i] - b[i]) ** 2;
      m += (b[i] - p[i]) ** 2;
    }
    gap += g;
    moved += m;
    const relative = Math.sqrt(g) / Math.max(Math.sqrt(m), 1e-30);
    if (relative > worst.relative) worst = { name, relative };
  }
  return { relative: Math.sqrt(gap) / Math.max(Math.sqrt(moved), 1e-30), worst, tensors: names.length };
}

async function runStageComparison(stage: 3 | 4, model: MavenModel, data: StageData): Promise<StageRun> {
  const def = stageDefinition(stage, model, data);
  const dir = mkdtempSync(join(os.tmpdir(), `engine-vs-torch-stage${stage}-`));
  try {
    // 1. The first N batches of the stage's stream, saved once: both sides read the same bytes.
    log(`${def.name}: collating ${steps} batches…`);
    const batches: string[] = [];
    const positions: number[] = [];
    const patchRows: number[] = [];
    const collateMs: number[] = [];
    let batchSize = 0;
    const it = def.batches(0);
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      const next = await it.next();
      collateMs.push(performance.now() - t0);
      if (next.done) throw new Error(`${def.name}: the batch stream ended after ${i} batches`);
      const feeds = next.value;
      batchSize = feeds.ids.shape[0];
      positions.push(feeds.ids.shape[1]);
      patchRows.push(feeds.patch_features.shape[1]);
      const path = join(dir, `batch-${String(i).padStart(5, '0')}.safetensors`);
      await saveSafetensors(path, feeds);
      batches.push(path);
      if ((i + 1) % 50 === 0) log(`  ${i + 1}/${steps} batches`);
    }
    await it.return?.();

    // 2. Our engine: the Trainer runStage creates, on those batches in order.
    const t0 = performance.now();
    const trainer = await stageTrainer(def, { runtime });
    const compileMs = performance.now() - t0;
    const summary = trainer.summary();
    const trainable = summary.trainable.map(([n]) => n);
    const read = [...trainable, ...summary.frozen.map(([n]) => n)];
    const weightsPath = join(dir, 'weights.safetensors');
    await saveSafetensors(weightsPath, new Map(read.map((n) => [n, def.params.get(n)!])));
    const engine: Curve = { losses: [], gradNorms: [], stepMs: [] };
    const lrs: number[] = [];
    log(`${def.name}: engine, ${steps} steps…`);
    for (const [i, path] of batches.entries()) {
      const feeds = Object.fromEntries(await loadSafetensors(path));
      const s0 = performance.now();
      const r = await trainer.trainStep(feeds);
      engine.stepMs.push(performance.now() - s0);
      engine.losses.push(r.loss);
      engine.gradNorms.push(r.gradNorm);
      lrs.push(r.lr);
      if ((i + 1) % 50 === 0) log(`  step ${i + 1}: loss ${r.loss.toFixed(5)}`);
    }
    const { beta1, beta2, eps, weightDecay, clipNorm } = resolveAdamW(def.optimizer);
    const optimizer = { beta1, beta2, eps, weightDecay, clipNorm };

    // 3. PyTorch: same weights, batches, learning rates, trainable set and AdamW settings.
    log(`${def.name}: PyTorch, ${steps} steps…`);
    const finalPath = join(dir, 'torch-final.safetensors');
    const torchRun = (dtype: 'float32' | 'float64', final: string | undefined, count = steps) =>
      torchStageRun({
        weights: weightsPath,
        config: join(dir, `config-${dtype}.json`),
        batches: batches.slice(0, count),
        lrs: lrs.slice(0, count),
        trainable,
        llm: model.config.llm,
        optimizer,
        threads,
        dtype,
        final,
      });
    const torch = await torchRun('float32', finalPath);
    const ours = trainer.parameters();
    let params: StageRun['params'];
    let reference: StageRun['reference'];
    if (!('skipped' in torch)) {
      const theirs = await loadSafetensors(finalPath);
      params = { torch: parameterGap(trainable, ours, theirs, def.params) };
      if (float64Steps > 0) {
        log(`${def.name}: PyTorch float64 reference, the first ${float64Steps} steps…`);
        // The trained parameters are compared only when the reference runs to the end.
        const refPath = float64Steps === steps ? join(dir, 'reference-final.safetensors') : undefined;
        reference = await torchRun('float64', refPath, float64Steps);
        if (!('skipped' in reference) && refPath) {
          const exact = await loadSafetensors(refPath);
          params.engineVsReference = parameterGap(trainable, ours, exact, def.params);
          params.torchVsReference = parameterGap(trainable, theirs, exact, def.params);
        }
      }
    }
    const count = (xs: [string, number][]) => xs.reduce((n, [, k]) => n + k, 0);
    return {
      stage,
      name: def.name,
      description: def.description,
      batchSize,
      positions,
      patchRows,
      collateMs,
      lrs,
      optimizer,
      trainableParams: count(summary.trainable),
      frozenParams: count(summary.frozen),
      compileMs,
      engine,
      torch,
      reference,
      params,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the comparison -----------------------------------------------------------------------------

/** Steps (1-based) shown in the table: 1, 10, 50, then every 50, and the last. */
function shownSteps(n: number): number[] {
  const out = [1, 10, 50].filter((s) => s <= n);
  for (let s = 100; s < n; s += 50) out.push(s);
  if (!out.includes(n)) out.push(n);
  return out;
}

interface Gap {
  maxAbs: { value: number; step: number };
  maxRel: { value: number; step: number };
  meanSigned: number;
  higher: number;
}

function gapOf(ours: readonly number[], theirs: readonly number[]): Gap {
  const maxAbs = { value: -1, step: 0 };
  const maxRel = { value: -1, step: 0 };
  let signed = 0;
  let higher = 0;
  ours.forEach((a, i) => {
    const b = theirs[i];
    const d = Math.abs(a - b);
    const r = d / Math.max(Math.abs(b), 1e-30);
    if (d > maxAbs.value) Object.assign(maxAbs, { value: d, step: i + 1 });
    if (r > maxRel.value) Object.assign(maxRel, { value: r, step: i + 1 });
    signed += a - b;
    if (a > b) higher++;
  });
  return { maxAbs, maxRel, meanSigned: signed / ours.length, higher };
}

/** First step (1-based) where |ours − theirs| / |theirs| exceeds each threshold, or '–' when none does. */
function onsets(ours: readonly number[], theirs: readonly number[]): string {
  return [1e-4, 1e-3, 1e-2]
    .map((t) => {
      const i = ours.findIndex((a, k) => Math.abs(a - theirs[k]) > t * Math.abs(theirs[k]));
      return `${t.toExponential(0)}: ${i < 0 ? '–' : `step ${i + 1}`}`;
    })
    .join(', ');
}

const e = (x: number) => x.toExponential(2);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const f5 = (x: number) => x.toFixed(5);
const ms = (x: number) => x.toFixed(1);

function report(runs: readonly StageRun[], torchInfo: string): string[] {
  const lines: string[] = [];
  const say = (s = '') => lines.push(s);
  for (const run of runs) {
    const torch = run.torch;
    const o = run.optimizer;
    const P = [Math.min(...run.patchRows), Math.max(...run.patchRows)];
    const T = [Math.min(...run.positions), Math.max(...run.positions)];
    say(`## Stage ${run.stage}: ${run.name}`);
    say('');
    say(
      `${run.description}. ${run.lrs.length} steps, batch ${run.batchSize}, ${T[0]}–${T[1]} positions and ${P[0]}–${P[1]} patch-feature rows per example over the batches; ${run.trainableParams.toLocaleString('en-US')} trainable parameters, ${run.frozenParams.toLocaleString('en-US')} frozen in the graph. AdamW β ${o.beta1}/${o.beta2}, ε ${o.eps}, weight decay ${o.weightDecay} (matrices only), clipping at ${o.clipNorm}; learning rate ${e(run.lrs[0])} at step 1, peak ${e(Math.max(...run.lrs))}, ${e(run.lrs[run.lrs.length - 1])} at step ${run.lrs.length}.`,
    );
    say('');
    if ('skipped' in torch) {
      say(`PyTorch: skipped (${torch.skipped}).`);
      say('');
      say(
        `Engine: loss ${f5(run.engine.losses[0])} at step 1, ${f5(run.engine.losses[run.engine.losses.length - 1])} at step ${run.engine.losses.length}; ${ms(median(run.engine.stepMs))} ms per step (median).`,
      );
      say('');
      continue;
    }
    const fig = relative(dirname(mdPath), outDir);
    say(
      `![stage ${run.stage}: engine and PyTorch loss](${fig}/stage${run.stage}-loss.png) ![stage ${run.stage}: engine − PyTorch loss per step](${fig}/stage${run.stage}-difference.png)`,
    );
    say('');
    const ref = run.reference && !('skipped' in run.reference) ? run.reference : undefined;
    say(
      `Left: the loss per step (the lines lie on top of each other where the runs agree). Right: the difference per step, engine − PyTorch${ref ? `, and each float32 run − the float64 reference over its ${ref.losses.length} steps` : ''}.`,
    );
    say('');
    say(
      `| step | learning rate | engine loss | PyTorch loss | engine − PyTorch | relative |${ref ? ' PyTorch float64 loss |' : ''} engine grad norm | PyTorch grad norm |`,
    );
    say(`|---:|---:|---:|---:|---:|---:|${ref ? '---:|' : ''}---:|---:|`);
    for (const s of shownSteps(run.lrs.length)) {
      const a = run.engine.losses[s - 1];
      const b = torch.losses[s - 1];
      say(
        `| ${s} | ${e(run.lrs[s - 1])} | ${f5(a)} | ${f5(b)} | ${e(a - b)} | ${e(Math.abs(a - b) / Math.abs(b))} |${ref ? ` ${s <= ref.losses.length ? f5(ref.losses[s - 1]) : '–'} |` : ''} ${run.engine.gradNorms[s - 1].toFixed(4)} | ${torch.gradNorms[s - 1].toFixed(4)} |`,
      );
    }
    say('');
    const loss = gapOf(run.engine.losses, torch.losses);
    const norms = gapOf(run.engine.gradNorms, torch.gradNorms);
    const n = run.engine.losses.length;
    const k = Math.min(20, n);
    const lastOurs = mean(run.engine.losses.slice(-k));
    const lastTheirs = mean(torch.losses.slice(-k));
    const step1 = Math.abs(run.engine.losses[0] - torch.losses[0]) / Math.abs(torch.losses[0]);
    say(
      `- Step 1 (same weights, so only the forward/backward numerics differ): relative loss difference ${e(step1)}, gradient norm ${e(Math.abs(run.engine.gradNorms[0] - torch.gradNorms[0]) / torch.gradNorms[0])}.`,
    );
    say(
      `- Largest per-step loss difference: ${e(loss.maxAbs.value)} absolute (step ${loss.maxAbs.step}); ${e(loss.maxRel.value)} relative (step ${loss.maxRel.step}).`,
    );
    say(
      `- First step past each relative loss difference (engine vs PyTorch): ${onsets(run.engine.losses, torch.losses)}.`,
    );
    say(
      `- Mean loss over the last ${k} steps: engine ${f5(lastOurs)}, PyTorch ${f5(lastTheirs)} (engine − PyTorch ${e(lastOurs - lastTheirs)}).`,
    );
    say(
      `- Signed loss difference (engine − PyTorch) averaged over all ${n} steps: ${e(loss.meanSigned)}; the engine's loss is the higher at ${loss.higher} of ${n} steps.`,
    );
    say(
      `- Gradient norm (before clipping): largest relative difference ${e(norms.maxRel.value)} (step ${norms.maxRel.step}).`,
    );
    const gap = (p: ParamGap) => `${e(p.relative)} (worst tensor: ${p.worst.name}, ${e(p.worst.relative)})`;
    if (run.params)
      say(
        `- Trained parameters after step ${n}, over the ${run.params.torch.tensors} trained tensors: ‖engine − PyTorch‖ / ‖PyTorch − start‖ = ${gap(run.params.torch)}.`,
      );
    if (ref) {
      const K = ref.losses.length;
      const within = (xs: readonly number[]) => xs.slice(0, K);
      const ours = gapOf(within(run.engine.losses), ref.losses);
      const theirs = gapOf(within(torch.losses), ref.losses);
      const both = gapOf(within(run.engine.losses), within(torch.losses));
      const kk = Math.min(20, K);
      const lastRef = mean(ref.losses.slice(-kk));
      const lastK = (xs: readonly number[]) => mean(within(xs).slice(-kk));
      say(
        `- Against the float64 reference (the same PyTorch run without float32 rounding, ${K === n ? `all ${n} steps` : `the first ${K} steps`}), first step past each relative loss difference — engine: ${onsets(within(run.engine.losses), ref.losses)}; PyTorch float32: ${onsets(within(torch.losses), ref.losses)}.`,
      );
      say(
        `- Over those ${K} steps, largest relative per-step loss difference: engine vs reference ${e(ours.maxRel.value)} (step ${ours.maxRel.step}), PyTorch float32 vs reference ${e(theirs.maxRel.value)} (step ${theirs.maxRel.step}), engine vs PyTorch float32 ${e(both.maxRel.value)} (step ${both.maxRel.step}); signed difference averaged over the steps: engine − reference ${e(ours.meanSigned)}, PyTorch float32 − reference ${e(theirs.meanSigned)}; mean over steps ${K - kk + 1}–${K}: reference ${f5(lastRef)}, engine − reference ${e(lastK(run.engine.losses) - lastRef)}, PyTorch float32 − reference ${e(lastK(torch.losses) - lastRef)}.`,
      );
      if (run.params?.engineVsReference && run.params.torchVsReference)
        say(
          `- Trained parameters against the float64 reference, ‖run − reference‖ / ‖reference − start‖: engine ${gap(run.params.engineVsReference)}; PyTorch float32 ${gap(run.params.torchVsReference)}.`,
        );
    } else if (run.reference && 'skipped' in run.reference) {
      say(`- Float64 reference: skipped (${run.reference.skipped}).`);
    }
    say(
      `- Wall time per step (median, mean): engine ${ms(median(run.engine.stepMs))}, ${ms(mean(run.engine.stepMs))} ms; PyTorch ${ms(median(torch.stepMs))}, ${ms(mean(torch.stepMs))} ms (engine/PyTorch ${(median(run.engine.stepMs) / median(torch.stepMs)).toFixed(2)} on medians). Batch collation (frozen encoders on the host, not in either step time): ${ms(median(run.collateMs))} ms median; engine graph compile ${ms(run.compileMs)} ms.`,
    );
    say('');
  }
  say(torchInfo);
  return lines;
}

async function writeFigures(run: StageRun): Promise<void> {
  if ('skipped' in run.torch) return;
  const torch = run.torch;
  const ref = run.reference && !('skipped' in run.reference) ? run.reference : undefined;
  const at = (xs: readonly number[]) => xs.map((y, i) => [i + 1, y] as [number, number]);
  const write = async (name: string, svg: string) => {
    writeFileSync(join(outDir, `${name}.svg`), svg);
    writeFileSync(join(outDir, `${name}.png`), await svgToPng(svg));
  };
  await write(
    `stage${run.stage}-loss`,
    lossCurveSvg(
      [
        { name: 'maven-ts engine', points: at(run.engine.losses) },
        { name: `PyTorch ${torch.torch}`, points: at(torch.losses) },
        ...(ref ? [{ name: 'PyTorch float64 reference', points: at(ref.losses) }] : []),
      ],
      // Unsmoothed: the plot is about step-by-step agreement, and series of different lengths
      // (the float64 reference) would otherwise be smoothed differently.
      { title: `${run.name}: training loss, same batches`, xLabel: 'step', yLabel: 'loss', smoothing: 0 },
    ),
  );
  await write(
    `stage${run.stage}-difference`,
    lossCurveSvg(
      [
        { name: 'engine − PyTorch', points: at(run.engine.losses.map((a, i) => a - torch.losses[i])) },
        ...(ref
          ? [
              { name: 'engine − float64', points: at(ref.losses.map((r, i) => run.engine.losses[i] - r)) },
              { name: 'PyTorch − float64', points: at(ref.losses.map((r, i) => torch.losses[i] - r)) },
            ]
          : []),
      ],
      {
        title: `${run.name}: loss difference per step`,
        xLabel: 'step',
        yLabel: 'loss difference',
        smoothing: 0,
      },
    ),
  );
  writeFileSync(
    join(outDir, `stage${run.stage}.json`),
    `${JSON.stringify({
      stage: run.name,
      steps: run.lrs.length,
      lr: run.lrs,
      optimizer: run.optimizer,
      positions: run.positions,
      patchRows: run.patchRows,
      engine: run.engine,
      torch: { version: torch.torch, threads: torch.threads, attn: torch.attn, ...pick(torch) },
      reference: ref ? { dtype: ref.dtype, ...pick(ref) } : undefined,
      params: run.params,
    })}\n`,
  );
}

const pick = (c: Curve): Curve => ({ losses: c.losses, gradNorms: c.gradNorms, stepMs: c.stepMs });

// ---- main ---------------------------------------------------------------------------------------

const started = new Date();
const t00 = performance.now();
const load = os.loadavg();
const model = await loadMaven(modelDir, runtime);
// Which weights these are (the model folder may be replaced by a later recipe run).
const weightsFile = ['model.safetensors', 'model.safetensors.index.json']
  .map((f) => join(modelDir, f))
  .find((f) => existsSync(f));
const fingerprint = weightsFile
  ? `${basename(weightsFile)} sha256 ${createHash('sha256').update(readFileSync(weightsFile)).digest('hex').slice(0, 12)}`
  : 'weights file unknown';
const needsData: StageData = {
  fashion: await fashionTrainingSource({}, log),
  dev: stages.includes(4) ? await nlvrDevForTraining({}, log) : [],
};
const runs: StageRun[] = [];
for (const stage of stages as (3 | 4)[]) runs.push(await runStageComparison(stage, model, needsData));

const ran = runs.map((r) => r.torch).find((t) => !('skipped' in t));
const skipped = runs.map((r) => r.torch).find((t) => 'skipped' in t);
const niceness = os.getPriority();
const shownModel = relative(ROOT, resolve(modelDir)).startsWith('..')
  ? modelDir
  : relative(ROOT, resolve(modelDir));
const command = `${process.env.TORCH_PYTHON ? `TORCH_PYTHON=${process.env.TORCH_PYTHON} ` : ''}${niceness ? `nice -n ${niceness} ` : ''}npx tsx scripts/engine-vs-torch.ts ${argv.join(' ')}`;
const cpus = os.cpus();
const ort = (await import('onnxruntime-node')).env.versions.node;
const torchInfo =
  ran && !('skipped' in ran)
    ? `PyTorch ${ran.torch} (${ran.python}), ${plural(ran.threads, 'thread')}, attention: ${ran.attn === 'sdpa' ? 'F.scaled_dot_product_attention(is_causal=True)' : 'manual softmax'}; float32, eager${float64Steps > 0 ? ' (and float64 for the reference)' : ''}.`
    : `PyTorch: skipped (${skipped && 'skipped' in skipped ? skipped.skipped : 'not run'}).`;

const header = [
  '# Engine vs PyTorch: stage 3–4 loss curves on the same weights and batches',
  '',
  'Written by `scripts/engine-vs-torch.ts` from its own measurements; rerun it rather than edit this file.',
  '',
  `The tiny recipe's stages 3 and 4 trained for the same number of steps by our engine (the stage's \`Trainer\`, onnxruntime-node on the CPU) and by PyTorch eager (\`bench/baselines/torch_stage_run.py\`), from the same starting weights (${shownModel}, ${fingerprint}), on the same collated batches in the same order (the stage's own stream from step 0, saved once and read by both), with the same learning rate at every step (the engine's warm-up + cosine schedule over the run), the same trainable parameters (the stage's \`trainable\`, everything else frozen) and the same AdamW settings. Both compute in float32, so the curves may drift apart by rounding; a systematic gap would be a real difference.${float64Steps > 0 ? ` To tell the two apart, PyTorch also runs ${float64Steps === steps ? 'the same steps' : `the first ${float64Steps} steps`} in float64 (weights, batches, activations and optimizer state; the rotary tables stay float32 as in HF and in the engine): the reference curve without float32 rounding, against which both float32 runs are measured.` : ''}`,
  '',
  `Command: \`${command}\`.`,
  '',
  `Machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; 1-minute load average ${load[0].toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end (other work on the machine slows both sides' step times, not their losses); ${((performance.now() - t00) / 60_000).toFixed(1)} min in all; node ${process.version}; onnxruntime-node ${ort}, ${plural(threads, 'thread')}; ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
  '',
];
const lines = [...header, ...report(runs, torchInfo)];
console.log(lines.join('\n'));
if (runs.some((r) => 'skipped' in r.torch)) {
  console.log(`\nThe PyTorch half was skipped: not writing ${relative(ROOT, mdPath)} or its figures.`);
} else {
  mkdirSync(outDir, { recursive: true });
  for (const run of runs) await writeFigures(run);
  writeFileSync(mdPath, `${lines.join('\n')}\n`);
  console.log(`\n(written to ${relative(ROOT, mdPath)} and ${relative(ROOT, outDir)}/)`);
}
