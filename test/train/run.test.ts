/**
 * The stage run loop on a tiny MLP stage: the parameter split printout, checkpoints at the
 * interval, exact resume, clean stops (abort signal and SIGINT), NaN handling that keeps the last
 * good checkpoint, half-written checkpoints ignored, metrics.jsonl, and the progress display.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Graph } from '../../src/engine/graph.ts';
import type { HostTensor } from '../../src/engine/host-tensor.ts';
import * as ops from '../../src/engine/ops/index.ts';
import { warmupCosine } from '../../src/engine/optim.ts';
import { loadSafetensors } from '../../src/node/safetensors-file.ts';
import type { StepMetrics } from '../../src/train/checkpoint.ts';
import { formatCount, formatDuration, Progress } from '../../src/train/progress.ts';
import { describeParams, paramGroup, runStage, TrainingDivergedError } from '../../src/train/run.ts';
import type { StageDefinition } from '../../src/train/stage.ts';
import { f32, i64, uniform } from '../engine/helpers.ts';

const root = await mkdtemp(join(tmpdir(), 'maven-run-test-'));
after(() => rm(root, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => join(root, `run-${dirCount++}`);

function mlpParams(): Map<string, HostTensor> {
  return new Map([
    ['fc1.weight', f32([16, 4], uniform([16, 4], 1, -0.5, 0.5))],
    ['fc1.bias', f32([16], new Array(16).fill(0))],
    ['fc2.weight', f32([3, 16], uniform([3, 16], 2, -0.5, 0.5))],
    ['fc2.bias', f32([3], [0, 0, 0])],
  ]);
}

function mlpLoss(g: Graph) {
  const x = g.input('x', 'float32', ['N', 4]);
  const y = g.input('y', 'int64', ['N']);
  const h = ops.relu(ops.linear(x, g.param('fc1.weight', [16, 4]), g.param('fc1.bias', [16])));
  const logits = ops.linear(h, g.param('fc2.weight', [3, 16]), g.param('fc2.bias', [3]));
  const accuracy = ops.mean(ops.cast(ops.equal(ops.argmax(logits, -1), y), 'float32'));
  return { loss: ops.crossEntropy(logits, y), metrics: { accuracy, logits } };
}

/** Batch for 0-based step `i`: a function of `i` alone, so any `fromStep` replays the same data. */
function batchAt(i: number, poisoned: boolean): Record<string, HostTensor> {
  const x = uniform([6, 4], 1000 + i);
  if (poisoned) x[0] = Number.NaN;
  const y = [0, 1, 2, 0, 1, 2].map((c) => (c + i) % 3);
  return { x: f32([6, 4], x), y: i64([6], y) };
}

interface StageOptions {
  steps?: number;
  /** 1-based step whose batch carries a NaN. */
  nanAt?: number;
  /** Called with the 1-based step about to run, when its batch is produced. */
  beforeStep?: (step: number) => void;
  trainable?: (name: string) => boolean;
  params?: Map<string, HostTensor>;
  evaluate?: StageDefinition['evaluate'];
}

function mlpStage(o: StageOptions = {}): StageDefinition {
  return {
    name: 'tiny-mlp',
    description: 'a 4-16-3 MLP on a deterministic stream of random batches',
    params: o.params ?? mlpParams(),
    build: mlpLoss,
    trainable: o.trainable ?? (() => true),
    // The schedule's horizon is fixed, so runs with a different `steps` still share a trajectory.
    optimizer: { lr: warmupCosine({ peak: 0.05, warmupSteps: 2, totalSteps: 10 }), weightDecay: 0.01 },
    steps: o.steps ?? 10,
    batches: function* (from) {
      for (let i = from; ; i++) {
        o.beforeStep?.(i + 1);
        yield batchAt(i, i + 1 === o.nanAt);
      }
    },
    batchSize: (feeds) => feeds.x.shape[0],
    batchUnit: 'examples',
    evaluate: o.evaluate,
  };
}

const quiet = { log: () => {}, progress: false, handleSigint: false };
const losses = (metrics: StepMetrics[]) => metrics.map((m) => m.loss);
const stateStep = (dir: string): number | null => {
  const path = join(dir, 'checkpoint', 'state.json');
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')).step : null;
};

function assertSameTrajectory(got: number[], want: number[], from: number): void {
  assert.equal(got.length, want.length);
  got.forEach((l, i) => {
    assert.ok(Math.abs(l - want[i]) < 1e-6, `step ${from + i}: loss ${l}, uninterrupted run had ${want[i]}`);
  });
}

// The uninterrupted reference run, shared by the resume tests.
const straightDir = freshDir();
const straight = await runStage(mlpStage(), { ...quiet, outDir: straightDir, checkpointEvery: 100 });
const straightLosses = losses(straight.metrics);

describe('runStage', () => {
  it('runs every step and learns (reference run)', () => {
    assert.equal(straight.steps, 10);
    assert.equal(straight.stoppedEarly, false);
    assert.deepEqual(
      straight.metrics.map((m) => m.step),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.ok(straightLosses.every(Number.isFinite));
    assert.ok(straight.metrics.every((m) => m.train && m.train.accuracy >= 0 && m.train.accuracy <= 1));
  });

  it('prints the description, step count and trainable / frozen split by group', async () => {
    const lines: string[] = [];
    const params = mlpParams();
    params.set('extra.unused.weight', f32([2], [1, 2]));
    await runStage(mlpStage({ steps: 1, params, trainable: (n) => n.startsWith('fc2.') }), {
      ...quiet,
      log: (l) => lines.push(l),
      outDir: freshDir(),
    });
    const text = lines.join('\n');
    assert.match(text, /stage tiny-mlp: a 4-16-3 MLP on a deterministic stream/);
    assert.match(text, /^1 steps, checkpoint every 100/m);
    // fc1: 16·4 + 16 = 80 frozen; fc2: 3·16 + 3 = 51 trainable; 51 / 131 = 38.9 %.
    assert.match(text, /^\s+fc1\s+—\s+80 \(80\)\s+2$/m);
    assert.match(text, /^\s+fc2\s+51 \(51\)\s+—\s+2$/m);
    assert.match(text, /^\s+total\s+51 \(51\) 38\.9%\s+80 \(80\)\s+4$/m);
    assert.match(text, /not read by the graph: 1 tensor\(s\), e\.g\. "extra\.unused\.weight"/);
  });

  it('groups parameters by their first two name parts', () => {
    assert.equal(paramGroup('model.layers.0.self_attn.q_proj.weight'), 'model.layers');
    assert.equal(paramGroup('lm_head.weight'), 'lm_head');
    assert.equal(paramGroup('w'), 'w');
    const lines = describeParams({
      trainable: [
        ['model.layers.0.mlp.up.weight', 2_000_000],
        ['model.layers.1.mlp.up.weight', 2_000_000],
      ],
      frozen: [['model.embed_tokens.weight', 1000]],
    });
    assert.match(lines.join('\n'), /model\.layers\s+4,000,000 \(4\.00M\)\s+—\s+2/);
  });

  it('writes checkpoints at the interval and at the end, and the final weights', async () => {
    const dir = freshDir();
    const seen: [number, number | null][] = [];
    const result = await runStage(mlpStage({ beforeStep: (s) => seen.push([s, stateStep(dir)]) }), {
      ...quiet,
      outDir: dir,
      checkpointEvery: 4,
    });
    // Before step s runs, the checkpoint on disk is the last multiple of 4 below s.
    assert.deepEqual(
      seen.slice(0, 10),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((s) => [s, s <= 4 ? null : 4 * Math.floor((s - 1) / 4)]),
    );
    assert.equal(stateStep(dir), 10);
    assert.deepEqual(readdirSync(join(dir, 'checkpoint')).sort(), [
      'optimizer.safetensors',
      'state.json',
      'weights.safetensors',
    ]);
    assert.deepEqual(readdirSync(dir).sort(), [
      'checkpoint',
      'final.safetensors',
      'loss.png',
      'loss.svg',
      'metrics.jsonl',
    ]);
    const state = JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8'));
    assert.equal(state.stage, 'tiny-mlp');
    assert.equal(state.metrics.length, 10);
    assert.match(state.paramsHash, /^[0-9a-f]{16}$/);
    const saved = await loadSafetensors(join(dir, 'checkpoint', 'weights.safetensors'));
    const final = await loadSafetensors(join(dir, 'final.safetensors'));
    const moments = await loadSafetensors(join(dir, 'checkpoint', 'optimizer.safetensors'));
    assert.deepEqual([...moments.keys()].sort(), [
      'fc1.bias@adam_m',
      'fc1.bias@adam_v',
      'fc1.weight@adam_m',
      'fc1.weight@adam_v',
      'fc2.bias@adam_m',
      'fc2.bias@adam_v',
      'fc2.weight@adam_m',
      'fc2.weight@adam_v',
    ]);
    for (const [name, value] of result.weights) {
      assert.deepEqual(final.get(name)!.data, value.data, name);
      assert.deepEqual(saved.get(name)!.data, value.data, name);
    }
    assert.notDeepEqual(final.get('fc1.weight')!.data, mlpParams().get('fc1.weight')!.data);
    assertSameTrajectory(losses(result.metrics), straightLosses, 1);
  });

  it('resumes from the checkpoint on the same loss trajectory (5 + 5 = 10 straight)', async () => {
    const dir = freshDir();
    const first = await runStage(mlpStage({ steps: 5 }), { ...quiet, outDir: dir });
    assert.equal(first.steps, 5);
    const lines: string[] = [];
    const fromSteps: number[] = [];
    const stage = mlpStage({ steps: 10 });
    const batches = stage.batches;
    stage.batches = (from) => {
      fromSteps.push(from);
      return batches(from);
    };
    const second = await runStage(stage, { ...quiet, outDir: dir, log: (l) => lines.push(l) });
    assert.deepEqual(fromSteps, [5]);
    assert.match(lines.join('\n'), /resuming tiny-mlp from step 5/);
    assert.equal(second.steps, 10);
    // The first run's training time is carried over (the recipe's report adds it to this run's).
    assert.equal(first.secondsBefore, 0);
    assert.equal(second.secondsBefore, first.metrics[4].elapsed);
    assert.ok(second.secondsBefore > 0);
    assertSameTrajectory(losses(second.metrics), straightLosses, 1);
    for (const [name, value] of second.weights) {
      const want = straight.weights.get(name)!.data as Float32Array;
      (value.data as Float32Array).forEach((v, i) => {
        assert.ok(Math.abs(v - want[i]) < 1e-6, `${name}[${i}]: ${v} vs ${want[i]}`);
      });
    }
    const jsonl = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.deepEqual(
      jsonl.map((l) => JSON.parse(l).step),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
  });

  it('an abort finishes the current step, saves a checkpoint, and the run resumes from it', async () => {
    const dir = freshDir();
    const controller = new AbortController();
    const lines: string[] = [];
    const stage = mlpStage({ beforeStep: (s) => s === 6 && controller.abort() });
    const stopped = await runStage(stage, {
      ...quiet,
      outDir: dir,
      checkpointEvery: 4,
      signal: controller.signal,
      log: (l) => lines.push(l),
    });
    assert.equal(stopped.stoppedEarly, true);
    assert.equal(stopped.steps, 6);
    assert.equal(stopped.finalPath, null);
    assert.equal(stateStep(dir), 6);
    assert.ok(!existsSync(join(dir, 'final.safetensors')));
    const text = lines.join('\n');
    assert.match(text, /stop requested: finishing step 6, then saving a checkpoint/);
    assert.ok(text.includes(`stopped at step 6/10`) && text.includes(join(dir, 'checkpoint')), text);
    assert.match(text, /resumes from step 6/);

    const resumed = await runStage(mlpStage(), { ...quiet, outDir: dir, checkpointEvery: 4 });
    assert.equal(resumed.stoppedEarly, false);
    assertSameTrajectory(losses(resumed.metrics), straightLosses, 1);
    assert.ok(existsSync(join(dir, 'final.safetensors')));
  });

  it('a stop between steps (while checkpointing) says it saves the step it has, not the next one', async () => {
    const dir = freshDir();
    const controller = new AbortController();
    const lines: string[] = [];
    const stopped = await runStage(mlpStage(), {
      ...quiet,
      outDir: dir,
      checkpointEvery: 4,
      signal: controller.signal,
      log: (l) => {
        lines.push(l);
        if (/checkpoint at step 4\b/.test(l)) controller.abort();
      },
    });
    assert.equal(stopped.steps, 4);
    assert.equal(stateStep(dir), 4);
    const text = lines.join('\n');
    assert.match(text, /stop requested: saving a checkpoint at step 4/);
    assert.doesNotMatch(text, /finishing step 5/);
  });

  it('Ctrl-C (SIGINT) takes the same path, and the handler is removed afterwards', async () => {
    const dir = freshDir();
    const listeners = process.listenerCount('SIGINT');
    const stage = mlpStage({ beforeStep: (s) => s === 3 && process.emit('SIGINT') });
    const lines: string[] = [];
    const stopped = await runStage(stage, {
      outDir: dir,
      progress: false,
      handleSigint: true,
      log: (l) => lines.push(l),
    });
    assert.equal(process.listenerCount('SIGINT'), listeners);
    assert.equal(stopped.stoppedEarly, true);
    assert.equal(stopped.steps, 3);
    assert.equal(stateStep(dir), 3);
    assert.match(lines.join('\n'), /Ctrl-C: finishing step 3/);
  });

  it('a NaN loss at step k stops with the last good checkpoint intact and named in the error', async () => {
    const dir = freshDir();
    const lines: string[] = [];
    await assert.rejects(
      runStage(mlpStage({ nanAt: 7 }), {
        ...quiet,
        outDir: dir,
        checkpointEvery: 3,
        log: (l) => lines.push(l),
      }),
      (e: unknown) => {
        assert.ok(e instanceof TrainingDivergedError);
        assert.equal(e.step, 7);
        assert.equal(e.lastCheckpoint?.step, 6);
        assert.match(e.message, /diverged at step 7: loss NaN/);
        assert.ok(
          e.message.includes(`last good checkpoint is step 6, at ${join(dir, 'checkpoint')}`),
          e.message,
        );
        return true;
      },
    );
    assert.match(lines.join('\n'), /step 7: loss NaN, gradient norm NaN/);
    assert.equal(stateStep(dir), 6);
    assert.ok(!existsSync(join(dir, 'final.safetensors')));
    // The checkpoint holds step 6 exactly: resuming with clean data rejoins the reference run.
    const resumed = await runStage(mlpStage(), { ...quiet, outDir: dir });
    assertSameTrajectory(losses(resumed.metrics), straightLosses, 1);
  });

  it('a NaN before the first checkpoint says that there is none', async () => {
    await assert.rejects(
      runStage(mlpStage({ nanAt: 2 }), { ...quiet, outDir: freshDir(), checkpointEvery: 5 }),
      /diverged at step 2[\s\S]*No checkpoint was written before it/,
    );
  });

  it('ignores and removes a half-written checkpoint temp dir on resume', async () => {
    const dir = freshDir();
    await runStage(mlpStage({ steps: 4 }), { ...quiet, outDir: dir });
    // A save killed while writing: its temp dir has a truncated weights file and a later step.
    const tmp = join(dir, '.checkpoint-tmp-4242-1');
    await mkdir(tmp);
    await writeFile(join(tmp, 'weights.safetensors'), new Uint8Array([1, 2, 3]));
    await writeFile(join(tmp, 'state.json'), '{"version":1,"stage":"tiny-mlp","step":9');
    const lines: string[] = [];
    const resumed = await runStage(mlpStage(), { ...quiet, outDir: dir, log: (l) => lines.push(l) });
    const text = lines.join('\n');
    assert.match(text, /removed 1 half-written checkpoint temp dir/);
    assert.match(text, /resuming tiny-mlp from step 4/);
    assert.ok(!existsSync(tmp));
    assertSameTrajectory(losses(resumed.metrics), straightLosses, 1);
  });

  it('a save killed between its two renames resumes from the previous checkpoint', async () => {
    const dir = freshDir();
    await runStage(mlpStage({ steps: 4 }), { ...quiet, outDir: dir });
    await rename(join(dir, 'checkpoint'), join(dir, 'checkpoint.prev'));
    const lines: string[] = [];
    const resumed = await runStage(mlpStage(), { ...quiet, outDir: dir, log: (l) => lines.push(l) });
    assert.match(lines.join('\n'), /resuming tiny-mlp from step 4 \(.*checkpoint\.prev/);
    assertSameTrajectory(losses(resumed.metrics), straightLosses, 1);
    assert.ok(!existsSync(join(dir, 'checkpoint.prev')));
    assert.equal(stateStep(dir), 10);
  });

  it('refuses to resume a different stage, and starts over when resume is off', async () => {
    const dir = freshDir();
    await runStage(mlpStage({ steps: 2 }), { ...quiet, outDir: dir });
    const other = mlpStage({ trainable: (n) => n.startsWith('fc2.') });
    await assert.rejects(
      runStage(other, { ...quiet, outDir: dir }),
      /belongs to stage "tiny-mlp" \(parameters hash [0-9a-f]+\), not to "tiny-mlp" \(hash [0-9a-f]+\)/,
    );
    const lines: string[] = [];
    const fresh = await runStage(other, { ...quiet, outDir: dir, resume: false, log: (l) => lines.push(l) });
    assert.match(lines.join('\n'), /resume is off: starting tiny-mlp over/);
    assert.equal(fresh.metrics[0].step, 1);
    assert.equal(fresh.steps, 10);
  });

  it('metrics.jsonl has one parseable line per step with throughput and evaluations', async () => {
    const dir = freshDir();
    const evaluatedAt: number[] = [];
    let steps = 0;
    const stage = mlpStage({
      beforeStep: (s) => {
        steps = s;
      },
      // An independent function of the weights it is given: checks they are the current ones.
      evaluate: async (weights) => {
        evaluatedAt.push(steps);
        const w = weights.get('fc2.weight')!.data as Float32Array;
        return { weightL1: w.reduce((a, v) => a + Math.abs(v), 0) };
      },
    });
    const result = await runStage(stage, { ...quiet, outDir: dir, evalEvery: 4 });
    assert.deepEqual(evaluatedAt, [4, 8, 10]);
    const records = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as StepMetrics);
    assert.deepEqual(records, result.metrics);
    assert.deepEqual(
      records.map((r) => r.step),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    for (const r of records) {
      for (const k of ['loss', 'gradNorm', 'lr', 'elapsed', 'examplesPerSecond'] as const) {
        assert.ok(typeof r[k] === 'number' && Number.isFinite(r[k]), `step ${r.step}: ${k} = ${r[k]}`);
      }
      assert.equal(r.eval !== undefined, [4, 8, 10].includes(r.step), `step ${r.step}`);
    }
    assert.ok(records.every((r, i) => i === 0 || r.elapsed >= records[i - 1].elapsed));
    const w = result.weights.get('fc2.weight')!.data as Float32Array;
    let l1 = 0;
    for (const v of w) l1 += Math.abs(v);
    assert.ok(Math.abs(records[9].eval!.weightL1 - l1) < 1e-4);
    // lr follows the schedule: 0.025 at step 1 of the 2-step warm-up, 0.05 at step 2.
    assert.ok(Math.abs(records[0].lr - 0.025) < 1e-9 && Math.abs(records[1].lr - 0.05) < 1e-9);
  });

  it('calls afterStep after each step: its metrics are logged and its in-place edits are read', async () => {
    const stage = mlpStage({ steps: 3 });
    const calls: number[] = [];
    stage.afterStep = (result, trainer) => {
      calls.push(result.step);
      // Overwrite a live trainable buffer; the next step must start from these values.
      if (result.step === 2) (trainer.parameters().get('fc2.bias')!.data as Float32Array).fill(7);
      return { doubled: 2 * result.step };
    };
    const result = await runStage(stage, { ...quiet, outDir: freshDir() });
    assert.deepEqual(calls, [1, 2, 3]);
    assert.deepEqual(
      result.metrics.map((m) => m.train?.doubled),
      [2, 4, 6],
    );
    // One AdamW step (lr ≤ 0.05, clipped) moves a bias by well under 0.1 from the 7 it was set to.
    for (const b of result.weights.get('fc2.bias')!.data as Float32Array)
      assert.ok(Math.abs(b - 7) < 0.1, `${b}`);
  });

  it('without a terminal, logs a progress line every logEvery steps', async () => {
    const lines: string[] = [];
    await runStage(mlpStage({ steps: 6 }), {
      ...quiet,
      outDir: freshDir(),
      logEvery: 3,
      log: (l) => lines.push(l),
    });
    const progress = lines.filter((l) => l.startsWith('tiny-mlp step '));
    assert.equal(progress.length, 2);
    assert.match(
      progress[0],
      /^tiny-mlp step 3\/6 \| loss \d\.\d{4} \(smoothed \d\.\d{4}\) \| grad \S+ \| lr \S+ \| \S+ ex\/s \| ETA \S+$/,
    );
    assert.match(progress[1], /^tiny-mlp step 6\/6 /);
  });

  it('rejects bad options and a batch stream that runs dry, naming them', async () => {
    await assert.rejects(
      runStage(mlpStage(), { ...quiet, outDir: freshDir(), checkpointEvery: 0 }),
      /checkpointEvery must be a positive integer, got 0/,
    );
    const stage = mlpStage();
    stage.batches = function* (from) {
      for (let i = from; i < 3; i++) yield batchAt(i, false);
    };
    await assert.rejects(
      runStage(stage, { ...quiet, outDir: freshDir() }),
      /batches\(0\) ran out after 3 batch\(es\), at step 3 of 10/,
    );
  });
});

describe('Progress', () => {
  it('draws a bar in place with step/total, smoothed loss, throughput and ETA', () => {
    let out = '';
    const lines: string[] = [];
    const p = new Progress({
      label: 'stage',
      total: 10,
      unit: 'tok',
      mode: 'bar',
      write: (t) => {
        out += t;
      },
      columns: () => 100,
      log: (l) => lines.push(l),
    });
    p.update({ step: 1, loss: 2, gradNorm: 1, lr: 1e-3, seconds: 0.5, items: 1000 });
    const clearLine = '\r\x1b[K'; // carriage return, then erase to the end of the line
    assert.ok(out.startsWith(clearLine));
    assert.match(out.slice(clearLine.length), /^stage █+░+ 1\/10 · loss 2\.0000 · 2\.00k tok\/s · ETA 5s$/);
    p.print('a log line');
    assert.deepEqual(lines, ['a log line']);
    assert.ok(out.endsWith('ETA 5s'), 'the bar is redrawn after the line');
    p.finish();
    assert.ok(out.endsWith('\n'));
  });

  it('smooths without bias toward zero, and formats durations and counts', () => {
    const p = new Progress({ label: 's', total: 4, mode: 'lines', log: () => {} });
    p.update({ step: 1, loss: 3, gradNorm: 1, lr: 1, seconds: 1 });
    assert.equal(p.smoothedLoss, 3);
    p.update({ step: 2, loss: 1, gradNorm: 1, lr: 1, seconds: 1 });
    // Debiased EMA, β = 0.95: (0.95·0.05·3 + 0.05·1) / (0.95·0.05 + 0.05).
    assert.ok(Math.abs(p.smoothedLoss - (0.1425 + 0.05) / 0.0975) < 1e-12);
    assert.equal(formatDuration(45), '45s');
    assert.equal(formatDuration(185), '3m05s');
    assert.equal(formatDuration(7380), '2h03m');
    assert.equal(formatDuration(93600), '1d02h');
    assert.equal(formatCount(950), '950');
    assert.equal(formatCount(12345), '12.3k');
    assert.equal(formatCount(7e9), '7.00B');
  });
});
