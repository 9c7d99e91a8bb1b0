/**
 * The paper's experiments at small scale, on a trained model, writing docs/results.md with its
 * charts in docs/results/ (see src/eval/experiments.ts for what runs):
 *
 *   npm run experiments                              # models/maven-tiny, ~20 min on 2 cores (17–19 min measured)
 *   npm run experiments -- --quick                   # a few minutes, noisy
 *   npm run experiments -- --retrain --run RUN       # + Table 4 retrained: stages 3, 4a, 4b, 4 once per encoding
 *
 * options: --model DIR, --docs DIR, --quick, --nlvr N (sentences), --per-task N, --bench a,b,
 * --json FILE (every prediction of every variant), --data DIR, --retrain, --run RUN (the --out of
 * `maven train --recipe tiny`), --retrain-dir DIR (default runs/table4), --retrain-scale F.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_NAMES,
  type BenchName,
  type BenchResult,
  benchUnavailable,
  checkBenchName,
} from '../src/eval/benchmarks.ts';
import {
  type ExperimentSizes,
  FULL_SIZES,
  MODES,
  QUICK_SIZES,
  runExperiments,
  runVariants,
  variantKey,
} from '../src/eval/experiments.ts';
import { svgToPng } from '../src/eval/plots.ts';
import { EvalProgress } from '../src/eval/progress.ts';
import { type RetrainedResults, resultsDoc } from '../src/eval/results-doc.ts';
import { buildComponents, MavenModel, mavenParamShapes } from '../src/maven/model.ts';
import type { EncodingMode } from '../src/maven/sequence.ts';
import { loadMaven, saveMaven } from '../src/node/model-directory.ts';
import { loadSafetensors } from '../src/node/safetensors-file.ts';
import { fashionTrainingSource, nlvrDevForTraining, tinyLaterStages } from '../src/train/recipe.ts';
import { runStage } from '../src/train/run.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/maven-tiny' },
    docs: { type: 'string', default: 'docs' },
    quick: { type: 'boolean' },
    nlvr: { type: 'string' },
    'per-task': { type: 'string' },
    bench: { type: 'string' },
    json: { type: 'string' },
    data: { type: 'string' },
    retrain: { type: 'boolean' },
    run: { type: 'string' },
    'retrain-dir': { type: 'string', default: 'runs/table4' },
    'retrain-scale': { type: 'string', default: '1' },
  },
});

const positiveInt = (v: string | undefined, name: string) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
};
const sizes: ExperimentSizes = {
  ...(values.quick ? QUICK_SIZES : FULL_SIZES),
  ...(values.nlvr ? { nlvrSentences: positiveInt(values.nlvr, 'nlvr')! } : {}),
  ...(values['per-task'] ? { perTask: positiveInt(values['per-task'], 'per-task')! } : {}),
};
const dataDir = values.data;
const modelDir = values.model!;
if (!existsSync(join(modelDir, 'config.json')))
  throw new Error(
    `${modelDir} is not a model directory (no config.json); train one with 'maven train --recipe tiny'`,
  );
if (values.retrain && !values.run)
  throw new Error(
    '--retrain needs --run RUN: the output folder of `maven train --recipe tiny` (its stage-2 weights)',
  );
const retrainScale = Number(values['retrain-scale']);
if (!(retrainScale > 0)) throw new Error(`--retrain-scale must be > 0, got '${values['retrain-scale']}'`);

const t0 = performance.now();
const log = (line: string) => process.stderr.write(`${line}\n`);
const model = await loadMaven(modelDir);

// Benchmarks whose data is here; the others are reported as skipped.
const wanted = (
  values.bench
    ? values.bench.split(',').map((b) => checkBenchName(b.trim()))
    : ['nlvr-test', 'seed-mc', 'demon', 'fashion']
) as BenchName[];
const benches: BenchName[] = [];
const skipped: { bench: string; reason: string }[] = [];
for (const b of wanted) {
  const why = await benchUnavailable(b, { dataDir });
  if (why) skipped.push({ bench: b, reason: why });
  else benches.push(b);
}
if (skipped.length) log(`skipping ${skipped.map((s) => s.bench).join(', ')}: data not found`);
log(`benchmarks: ${benches.join(', ')} (${BENCH_NAMES.length} known)`);

const progress = new EvalProgress('');
const results = await runExperiments(model, {
  benches,
  sizes,
  dataDir,
  onPhase: (label) => progress.restart(label),
  onProgress: progress.update,
});
progress.finish();

// ---- Table 4, retrained: the recipe's stages after stage 2, once per encoding -------------------
let retrained: RetrainedResults | undefined;
if (values.retrain) {
  const run = values.run!;
  const stage2 = join(run, 'stage2-visual-embeddings', 'final.safetensors');
  if (!existsSync(stage2))
    throw new Error(`${stage2} not found: is ${run} a finished 'maven train --recipe tiny' run?`);
  const expected = mavenParamShapes(buildComponents(model.config));
  const start = new Map([...(await loadSafetensors(stage2))].filter(([name]) => expected.has(name)));
  const report = existsSync(join(run, 'report.json'))
    ? (JSON.parse(await readFile(join(run, 'report.json'), 'utf8')) as { seed?: number })
    : {};
  const fashion = await fashionTrainingSource({ dataDir }, log);
  const dev = await nlvrDevForTraining({ dataDir }, log);
  retrained = { runs: {}, steps: {}, from: stage2, scale: retrainScale };
  // Every mode retrains, hybrid too: the recipe's own model reads single images in a mix of
  // encodings and routes discrete-only (stages 4a–4b), so it is no pure-hybrid row.
  for (const mode of MODES as EncodingMode[]) {
    const dir = join(values['retrain-dir']!, mode);
    const began = performance.now();
    let weights = new Map(start);
    const stageSteps: Record<string, number> = {};
    const base = { config: model.config, tokenizer: model.tokenizer, seed: report.seed ?? 0, fashion, mode };
    for (const later of tinyLaterStages(base, dev, retrainScale)) {
      const def = later.build(weights);
      const r = await runStage(def, {
        outDir: join(dir, later.folder),
        checkpointEvery: Math.max(10, Math.round(def.steps / 5)),
        log,
      });
      if (r.stoppedEarly)
        throw new Error(`interrupted in ${mode} ${later.folder}; rerun the same command to resume`);
      weights = new Map([...weights, ...[...r.weights].filter(([n]) => expected.has(n))]);
      stageSteps[later.folder] = def.steps;
    }
    const trained = new MavenModel(model.config, weights, model.tokenizer);
    await saveMaven(join(dir, 'model'), trained, {
      metadata: { ablation: mode, scale: String(retrainScale) },
    });
    const variant = { key: mode, mode, selection: 'selector' as const, keepRatio: results.baseRatio };
    const runs = await runVariants(trained, [variant], {
      benches,
      sizes,
      dataDir,
      onPhase: (label) => progress.restart(`retrained ${label}`),
      onProgress: progress.update,
    });
    progress.finish();
    retrained.runs[mode] = runs[variantKey(mode, 'selector', results.baseRatio)] ?? runs[mode];
    retrained.steps[mode] = { stages: stageSteps, seconds: (performance.now() - began) / 1000 };
  }
}

// ---- write docs/results.md, its charts, and a compact JSON record ---------------------------------
const argv = process.argv.slice(2);
const command = `npm run experiments${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
const doc = await resultsDoc(
  results,
  {
    command,
    machine: `${os.cpus()[0]?.model ?? 'a CPU'} (${os.cpus().length} cores, shared), node ${process.version}`,
    date: new Date().toISOString().slice(0, 10),
    modelDir,
    modelName: model.config.name,
    skipped,
    seconds: (performance.now() - t0) / 1000,
    retrained,
    retrainCommand: 'npm run experiments -- --retrain --run RUN',
  },
  svgToPng,
);
const docs = values.docs!;
await mkdir(join(docs, 'results'), { recursive: true });
for (const [name, content] of Object.entries(doc.files))
  await writeFile(join(docs, 'results', name), content);
await writeFile(join(docs, 'results.md'), doc.markdown);
const strip = (rs: BenchResult[]) => rs.map(({ predictions: _, ...rest }) => rest);
const summary = {
  command,
  sizes,
  baseRatio: results.baseRatio,
  variants: results.variants,
  runs: Object.fromEntries(Object.entries(results.runs).map(([k, rs]) => [k, strip(rs)])),
  coverage: results.coverage,
  codebook: { ...results.codebook, sheet: undefined, meanings: results.codebook.meanings.slice(0, 20) },
  cost: results.cost,
  retrained: retrained && {
    ...retrained,
    runs: Object.fromEntries(Object.entries(retrained.runs).map(([k, rs]) => [k, strip(rs)])),
  },
};
await writeFile(join(docs, 'results', 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
if (values.json) {
  await writeFile(values.json, `${JSON.stringify({ command, runs: results.runs, retrained }, null, 1)}\n`);
  log(`every prediction: ${values.json}`);
}
log(
  `wrote ${join(docs, 'results.md')} and ${Object.keys(doc.files).length + 1} files in ${join(docs, 'results')} (${Math.round((performance.now() - t0) / 60000)} min)`,
);
