/**
 * Runs one training stage to the end: resumes from `<outDir>/checkpoint` when one is there,
 * steps the compiled AdamW trainer through the stage's batches, shows progress, logs metrics to
 * `metrics.jsonl`, checkpoints every N steps (atomically), plots the loss curve, stops cleanly on
 * Ctrl-C or an abort signal (checkpoint saved, `stoppedEarly`), and on a NaN/Inf loss stops with
 * the last good checkpoint untouched. Every stage of the MaVEn recipe goes through this one loop.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type HostTensor, NonFiniteLossError, type RuntimeOptions, type Trainer } from '../engine/index.ts';
import { saveSafetensors } from '../node/safetensors-file.ts';
import {
  type CheckpointState,
  checkpointPath,
  findCheckpoint,
  loadCheckpoint,
  paramsHash,
  removeStaleTemps,
  type StepMetrics,
  saveCheckpoint,
  writeFileAtomic,
} from './checkpoint.ts';
import { lossCurveSvg, type PlotSeries, svgToPng } from './plot.ts';
import { formatCount, formatDuration, Progress } from './progress.ts';
import { type StageDefinition, stageTrainer } from './stage.ts';

export type { StepMetrics } from './checkpoint.ts';

export interface RunOptions {
  /** Where the checkpoint, metrics.jsonl, loss.svg/png and final.safetensors go. */
  outDir: string;
  /** Steps between checkpoints (default 100): the most work a crash can lose. */
  checkpointEvery?: number;
  /** Steps between `def.evaluate` calls (and once at the end); default: never. */
  evalEvery?: number;
  /** Continue from `<outDir>/checkpoint` when it exists (default true); false starts over. */
  resume?: boolean;
  /** Where lines for people go (default: stderr). */
  log?: (line: string) => void;
  /** Draw a progress bar on stderr (default: when stderr is a terminal); else log every `logEvery`. */
  progress?: boolean;
  /** Steps between plain progress lines when there is no bar (default 10). */
  logEvery?: number;
  /** Aborting stops like Ctrl-C: the current step finishes, a checkpoint is saved. */
  signal?: AbortSignal;
  /** Catch SIGINT (Ctrl-C) for a clean stop (default true); a second Ctrl-C exits at once (130). */
  handleSigint?: boolean;
  /** Execution provider etc. for the training step. */
  runtime?: RuntimeOptions;
}

export interface RunResult {
  /** `def.finalize` of all the stage's weights at the last completed step. */
  weights: Map<string, HostTensor>;
  /** Optimizer steps completed (over all resumed runs). */
  steps: number;
  /** One entry per step, from step 1 (including steps done before a resume). */
  metrics: StepMetrics[];
  /** True when stopped by Ctrl-C or the abort signal before `def.steps`. */
  stoppedEarly: boolean;
  /** The checkpoint directory (complete, at `steps`). */
  checkpointDir: string;
  /** `<outDir>/final.safetensors` when the stage ran to the end, else null. */
  finalPath: string | null;
  /** Training-loop seconds of the earlier runs this one resumed from (0 on a fresh start). */
  secondsBefore: number;
}

/** A NaN/Inf loss or gradient: the step was discarded and the last checkpoint left untouched. */
export class TrainingDivergedError extends Error {
  constructor(
    readonly stage: string,
    readonly step: number,
    readonly loss: number,
    readonly gradNorm: number,
    /** The last good checkpoint, or null when none was written yet. */
    readonly lastCheckpoint: { step: number; dir: string } | null,
  ) {
    const where = lastCheckpoint
      ? `The last good checkpoint is step ${lastCheckpoint.step}, at ${lastCheckpoint.dir}; running the stage again with the same output directory resumes from it (consider a lower learning rate or stronger clipping).`
      : 'No checkpoint was written before it; a rerun starts from step 0.';
    super(
      `${stage}: training diverged at step ${step}: loss ${loss}, gradient norm ${gradNorm} (the update was discarded). ${where}`,
    );
    this.name = 'TrainingDivergedError';
  }
}

export const METRICS_FILE = 'metrics.jsonl';
export const FINAL_FILE = 'final.safetensors';

/** Parameter-group key: the first two dot-separated parts of a name, leaving out the leaf. */
export function paramGroup(name: string): string {
  const parts = name.split('.');
  return parts.slice(0, Math.max(1, Math.min(2, parts.length - 1))).join('.');
}

/**
 * The trainable / frozen split as a small table, by parameter group, with totals. `unused` are
 * weights the stage provides that its graph never reads (reported, since it is usually a mistake).
 */
export function describeParams(
  summary: { trainable: [string, number][]; frozen: [string, number][] },
  unused: string[] = [],
): string[] {
  const groups = new Map<string, { trainable: number; frozen: number; tensors: number }>();
  const add = (name: string, n: number, kind: 'trainable' | 'frozen') => {
    const key = paramGroup(name);
    const g = groups.get(key) ?? { trainable: 0, frozen: 0, tensors: 0 };
    g[kind] += n;
    g.tensors += 1;
    groups.set(key, g);
  };
  for (const [name, n] of summary.trainable) add(name, n, 'trainable');
  for (const [name, n] of summary.frozen) add(name, n, 'frozen');
  const trainable = summary.trainable.reduce((a, [, n]) => a + n, 0);
  const frozen = summary.frozen.reduce((a, [, n]) => a + n, 0);
  const cell = (n: number) => (n === 0 ? '—' : `${n.toLocaleString('en-US')} (${formatCount(n)})`);
  const rows: [string, string, string, string][] = [['group', 'trainable', 'frozen', 'tensors']];
  for (const [key, g] of groups) rows.push([key, cell(g.trainable), cell(g.frozen), String(g.tensors)]);
  const share = trainable + frozen > 0 ? ((100 * trainable) / (trainable + frozen)).toFixed(1) : '0.0';
  rows.push([
    'total',
    `${cell(trainable)} ${share}%`,
    cell(frozen),
    String(summary.trainable.length + summary.frozen.length),
  ]);
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map(
    (r) =>
      `  ${r[0].padEnd(widths[0])}  ${r[1].padStart(widths[1])}  ${r[2].padStart(widths[2])}  ${r[3].padStart(widths[3])}`,
  );
  if (unused.length > 0) {
    lines.push(
      `  not read by the graph: ${unused.length} tensor(s), e.g. ${unused
        .slice(0, 3)
        .map((n) => JSON.stringify(n))
        .join(', ')}`,
    );
  }
  return lines;
}

/** Writes `loss.svg` and `loss.png`: training loss, plus any evaluation metric named like a loss. */
export async function writeLossPlots(
  outDir: string,
  stage: string,
  metrics: readonly StepMetrics[],
): Promise<void> {
  const series: PlotSeries[] = [{ name: 'train loss', points: metrics.map((m) => [m.step, m.loss]) }];
  const evalNames = new Set(metrics.flatMap((m) => Object.keys(m.eval ?? {})).filter((k) => /loss/i.test(k)));
  for (const name of evalNames) {
    series.push({
      name: `eval ${name}`,
      points: metrics.filter((m) => m.eval?.[name] !== undefined).map((m) => [m.step, m.eval![name]]),
    });
  }
  const ys = series.flatMap((s) => s.points.map(([, y]) => y)).filter((y) => Number.isFinite(y));
  // A log axis once the loss has fallen by more than 10×, so late progress stays visible.
  const logY = ys.length > 1 && Math.min(...ys) > 0 && Math.max(...ys) / Math.min(...ys) > 10;
  const svg = lossCurveSvg(series, { title: `${stage}: loss`, xLabel: 'step', yLabel: 'loss', logY });
  await writeFileAtomic(join(outDir, 'loss.svg'), svg);
  await writeFileAtomic(join(outDir, 'loss.png'), await svgToPng(svg));
}

function positiveInteger(
  value: number | undefined,
  name: string,
  fallback: number | undefined,
): number | undefined {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`runStage: ${name} must be a positive integer, got ${value}`);
  return value;
}

function scalarMetrics(metrics: Record<string, HostTensor>): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const [k, t] of Object.entries(metrics)) if (t.size === 1) out[k] = Number(t.data[0]);
  return Object.keys(out).length ? out : undefined;
}

/** Ends a batch generator (running its `finally`); an error there must not mask the run's own. */
async function closeQuietly(it: { return?: () => unknown }): Promise<void> {
  try {
    await it.return?.();
  } catch {
    // Already failing or finished; nothing more to release.
  }
}

function formatMetrics(values: Record<string, number>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`)
    .join(' | ');
}

export async function runStage(def: StageDefinition, options: RunOptions): Promise<RunResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const checkpointEvery = positiveInteger(options.checkpointEvery, 'checkpointEvery', 100)!;
  const evalEvery = positiveInteger(options.evalEvery, 'evalEvery', undefined);
  const logEvery = positiveInteger(options.logEvery, 'logEvery', 10);
  if (!Number.isInteger(def.steps) || def.steps < 0)
    throw new Error(`runStage: stage ${def.name} has steps = ${def.steps}; expected a non-negative integer`);
  const { outDir } = options;
  await mkdir(outDir, { recursive: true });
  const hash = paramsHash(def.params, def.trainable);

  // Resume, or start over.
  let params: ReadonlyMap<string, HostTensor> = def.params;
  let resume: { state: ReadonlyMap<string, HostTensor>; step: number } | undefined;
  let metrics: StepMetrics[] = [];
  let lastCheckpoint: { step: number; dir: string } | null = null;
  const stale = await removeStaleTemps(outDir);
  if (stale.length)
    log(`removed ${stale.length} half-written checkpoint temp dir(s) in ${outDir}: ${stale.join(', ')}`);
  if (options.resume ?? true) {
    const ck = await loadCheckpoint(outDir);
    if (ck) {
      const { state } = ck;
      if (state.stage !== def.name || state.paramsHash !== hash) {
        throw new Error(
          `${ck.dir} belongs to stage "${state.stage}" (parameters hash ${state.paramsHash}), not to "${def.name}" (hash ${hash}); ` +
            'use another output directory, or start over with resume off',
        );
      }
      if (state.step > def.steps) {
        throw new Error(
          `${ck.dir} is at step ${state.step}, past the stage's ${def.steps} steps; raise the step count or start over with resume off`,
        );
      }
      const merged = new Map(def.params);
      for (const [name, value] of ck.weights) merged.set(name, value);
      params = merged;
      resume = { state: ck.optimizer, step: state.step };
      metrics = state.metrics.filter((m) => m.step <= state.step);
      lastCheckpoint = { step: state.step, dir: ck.dir };
      log(`resuming ${def.name} from step ${state.step} (${ck.dir}, written ${state.time})`);
    }
  }
  if (!resume && !(options.resume ?? true) && (await findCheckpoint(outDir))) {
    log(
      `resume is off: starting ${def.name} over; the checkpoint in ${outDir} is replaced at the first save`,
    );
  }
  const startStep = resume?.step ?? 0;
  const trainer = await stageTrainer(def, { params, resume, runtime: options.runtime });

  const summary = trainer.summary();
  const read = new Set([...summary.trainable, ...summary.frozen].map(([n]) => n));
  const unused = [...def.params.keys()].filter((n) => !read.has(n));
  log(`stage ${def.name}: ${def.description}`);
  log(
    `${def.steps} steps${startStep ? ` (${def.steps - startStep} to go from step ${startStep})` : ''}, ` +
      `checkpoint every ${checkpointEvery} → ${checkpointPath(outDir)}`,
  );
  for (const line of describeParams(summary, unused)) log(line);

  // metrics.jsonl holds exactly the steps of the checkpoint we continue from (a killed run may
  // have logged steps past it, which the resumed run will redo).
  const metricsPath = join(outDir, METRICS_FILE);
  await writeFileAtomic(metricsPath, metrics.map((m) => `${JSON.stringify(m)}\n`).join(''));

  const unit = def.batchUnit ?? 'tokens';
  const progress = new Progress({
    label: def.name,
    total: def.steps,
    unit: unit === 'tokens' ? 'tok' : 'ex',
    mode: (options.progress ?? Boolean(process.stderr.isTTY)) ? 'bar' : 'lines',
    log,
    logEvery,
  });

  // Ctrl-C and the abort signal only raise a flag; the loop stops between steps.
  let stopReason: string | null = null;
  /** From fetching a step's batch to the end of its update: a stop request lets it finish. */
  let stepInFlight = false;
  const handleSigint = options.handleSigint ?? true;
  const requestStop = (why: string) => {
    if (stopReason) return;
    stopReason = why;
    // A signal between steps (while logging, evaluating or checkpointing) stops before the next one.
    const what = stepInFlight
      ? `finishing step ${trainer.step + 1}, then saving a checkpoint`
      : `saving a checkpoint at step ${trainer.step}`;
    progress.print(
      `${why}: ${what}` +
        (handleSigint ? ' (Ctrl-C again quits at once; the last complete checkpoint is kept)' : ''),
    );
  };
  const onSigint = () => {
    if (stopReason) {
      progress.finish();
      log('second Ctrl-C: quitting now; the last complete checkpoint is kept');
      process.exit(130);
    }
    requestStop('Ctrl-C');
  };
  const onAbort = () => requestStop('stop requested');
  if (handleSigint) process.on('SIGINT', onSigint);
  options.signal?.addEventListener('abort', onAbort);
  if (options.signal?.aborted) onAbort();

  const weightsNow = () => {
    const all = new Map(def.params);
    for (const [name, value] of trainer.parameters()) all.set(name, value);
    return all;
  };
  const plots = async () => {
    try {
      await writeLossPlots(outDir, def.name, metrics);
    } catch (e) {
      progress.print(`warning: could not write the loss plot: ${(e as Error).message}`);
    }
  };
  const checkpoint = async () => {
    const state: CheckpointState = {
      version: 1,
      stage: def.name,
      step: trainer.step,
      totalSteps: def.steps,
      time: new Date().toISOString(),
      paramsHash: hash,
      metrics,
    };
    const dir = await saveCheckpoint(outDir, {
      weights: trainer.parameters(),
      optimizer: trainer.optimizerState(),
      state,
    });
    lastCheckpoint = { step: trainer.step, dir };
    await plots();
    progress.print(`checkpoint at step ${trainer.step} → ${dir}`);
  };

  const priorElapsed = metrics.length ? metrics[metrics.length - 1].elapsed : 0;
  const started = performance.now();
  const batches = def.batches(startStep);
  try {
    while (trainer.step < def.steps && !stopReason) {
      const t0 = performance.now();
      stepInFlight = true;
      const next = await batches.next();
      if (next.done) {
        throw new Error(
          `${def.name}: batches(${startStep}) ran out after ${trainer.step - startStep} batch(es), at step ${trainer.step} of ${def.steps}; it must yield one batch per step`,
        );
      }
      const feeds = next.value;
      let result: Awaited<ReturnType<Trainer['trainStep']>>;
      try {
        result = await trainer.trainStep(feeds);
        stepInFlight = false;
      } catch (e) {
        if (!(e instanceof NonFiniteLossError)) throw e;
        progress.finish();
        log(
          `step ${e.step}: loss ${e.loss}, gradient norm ${e.gradNorm}; stopping without saving, the last good checkpoint stays as it is`,
        );
        await plots();
        throw new TrainingDivergedError(def.name, e.step, e.loss, e.gradNorm, lastCheckpoint);
      }
      const seconds = (performance.now() - t0) / 1000;
      const items = def.batchSize?.(feeds);
      const record: StepMetrics = {
        step: result.step,
        loss: result.loss,
        gradNorm: result.gradNorm,
        lr: result.lr,
        elapsed: priorElapsed + (performance.now() - started) / 1000,
      };
      if (items !== undefined && seconds > 0) {
        record[unit === 'tokens' ? 'tokensPerSecond' : 'examplesPerSecond'] = items / seconds;
      }
      // Host-side work on the live parameters (e.g. codebook restarts), before the next step reads them.
      const extra = def.afterStep ? await def.afterStep(result, trainer) : undefined;
      for (const [k, v] of Object.entries(extra ?? {})) {
        if (typeof v !== 'number')
          throw new Error(`${def.name}: afterStep() returned ${k} = ${String(v)}, not a number`);
      }
      const train = { ...scalarMetrics(result.metrics), ...extra };
      if (Object.keys(train).length) record.train = train;
      progress.update({ ...result, seconds, items });

      if (evalEvery && def.evaluate && (result.step % evalEvery === 0 || result.step === def.steps)) {
        const values = await def.evaluate(weightsNow());
        for (const [k, v] of Object.entries(values)) {
          if (typeof v !== 'number')
            throw new Error(`${def.name}: evaluate() returned ${k} = ${String(v)}, not a number`);
        }
        record.eval = values;
        progress.print(`eval at step ${result.step}: ${formatMetrics(values)}`);
      }
      metrics.push(record);
      await appendFile(metricsPath, `${JSON.stringify(record)}\n`);
      if (result.step % checkpointEvery === 0) await checkpoint();
    }
    if (lastCheckpoint?.step !== trainer.step) await checkpoint();
    else await plots();
  } finally {
    progress.finish();
    if (handleSigint) process.off('SIGINT', onSigint);
    options.signal?.removeEventListener('abort', onAbort);
    await closeQuietly(batches);
  }

  const dir = lastCheckpoint!.dir;
  const raw = weightsNow();
  const weights = def.finalize ? def.finalize(raw) : raw;
  const took = formatDuration((performance.now() - started) / 1000);
  if (stopReason && trainer.step < def.steps) {
    log(
      `stopped at step ${trainer.step}/${def.steps} after ${took}; checkpoint at ${dir}. ` +
        `To continue, run the same stage again with the same output directory (${outDir}): it resumes from step ${trainer.step}.`,
    );
    return {
      weights,
      steps: trainer.step,
      metrics,
      stoppedEarly: true,
      checkpointDir: dir,
      finalPath: null,
      secondsBefore: priorElapsed,
    };
  }
  const finalPath = join(outDir, FINAL_FILE);
  await saveSafetensors(finalPath, weights, { stage: def.name, step: String(trainer.step) });
  log(`${def.name}: done, ${trainer.step} steps (${took} this run); final weights → ${finalPath}`);
  return {
    weights,
    steps: trainer.step,
    metrics,
    stoppedEarly: false,
    checkpointDir: dir,
    finalPath,
    secondsBefore: priorElapsed,
  };
}
