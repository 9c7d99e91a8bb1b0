/**
 * The caption oracle (src/eval/caption-oracle.ts) on a recipe run: fine-tune the LLM as stage 4
 * would receive it on exact captions instead of images, on generated statements with each given
 * share of NLVR dev sentences mixed in (a run each), then score held-out generated statements (per
 * template), NLVR test (all six box orders) and NLVR dev (first order; a training figure when
 * dev sentences were mixed in). NLVR test is also split into sentences that mention positions or
 * relations between objects (which captions leave out) and the others. A finished run in
 * RUN/caption-oracle-dev<share>-steps<steps> is reused. Writes RUN/caption-oracle.json, which
 * scripts/training-report.ts puts into docs/training.md.
 *
 *   npx tsx scripts/caption-oracle.ts --run RUN [--steps 3000] [--dev-shares 0,0.3,1] [--generated 600]
 *     [--nlvr-limit N] [--json FILE (default RUN/caption-oracle.json)]
 */

import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadNlvr } from '../src/data/nlvr.ts';
import {
  BOX_ORDERS,
  type CaptionOracleScore,
  captionOracleStage,
  generatedOracleItem,
  mentionsPositions,
  nlvrOracleItem,
  scoreCaptionOracle,
} from '../src/eval/caption-oracle.ts';
import { pct } from '../src/eval/report.ts';
import { MavenModel } from '../src/maven/model.ts';
import { loadMaven } from '../src/node/model-directory.ts';
import { loadSafetensors } from '../src/node/safetensors-file.ts';
import { runStage } from '../src/train/run.ts';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    steps: { type: 'string', default: '3000' },
    'batch-size': { type: 'string', default: '16' },
    lr: { type: 'string', default: '1e-3' },
    'dev-shares': { type: 'string', default: '0,0.3,1' },
    generated: { type: 'string', default: '600' },
    'nlvr-limit': { type: 'string' },
    json: { type: 'string' },
  },
});
if (!values.run) throw new Error('--run RUN (the --out of maven train --recipe tiny) is required');
const run = values.run;
const steps = Number(values.steps);
const shares = values['dev-shares']!.split(',').map(Number);
if (!Number.isInteger(steps) || steps < 1)
  throw new Error(`--steps must be a positive integer, got ${values.steps}`);
if (shares.some((s) => !(s >= 0 && s <= 1)))
  throw new Error(`--dev-shares must be numbers in [0, 1], got ${values['dev-shares']}`);

// The LLM exactly as stage 4 receives it: the recipe's stage-3 checkpoint, restricted to the
// tensors the model reads (the run's final model gives config and tokenizer).
const final = await loadMaven(join(run, 'model'));
const stage3 = await loadSafetensors(join(run, 'stage3-projector', 'final.safetensors'));
const start = new Map(final.hostWeights());
for (const name of start.keys()) {
  const w = stage3.get(name);
  if (w === undefined) throw new Error(`caption oracle: ${name} missing from the stage-3 checkpoint`);
  start.set(name, w);
}
const dev = (await loadNlvr('dev')).examples;
const test = (await loadNlvr('test')).examples.slice(
  0,
  values['nlvr-limit'] ? Number(values['nlvr-limit']) : undefined,
);
const generatedHeldout = Array.from({ length: Number(values.generated) }, (_, i) =>
  generatedOracleItem('heldout', i),
);
const devItems = dev.map((ex) => nlvrOracleItem(ex, 0));
const testItems = test.flatMap((ex) => BOX_ORDERS.map((_, order) => nlvrOracleItem(ex, order)));
const positional = test.map((ex) => mentionsPositions(ex.sentence));
/** Accuracy over the test pairs whose sentence does (`want`) or does not mention positions. */
function splitScore(correct: readonly boolean[], want: boolean) {
  let right = 0;
  let pairs = 0;
  let trueLabels = 0;
  let sentences = 0;
  test.forEach((ex, e) => {
    if (positional[e] !== want) return;
    sentences++;
    if (ex.label) trueLabels++;
    for (let o = 0; o < BOX_ORDERS.length; o++) {
      pairs++;
      if (correct[e * BOX_ORDERS.length + o]) right++;
    }
  });
  const majority = sentences ? Math.max(trueLabels, sentences - trueLabels) / sentences : Number.NaN;
  return { pairs, accuracy: pairs ? right / pairs : Number.NaN, majority };
}
const progress = (label: string) => (done: number, total: number) => {
  if (done % 500 === 0 || done === total) process.stderr.write(`\r${label} ${done}/${total}`);
  if (done === total) process.stderr.write('\n');
};

const runs: {
  devShare: number;
  steps: number;
  seconds: number;
  lastLoss: number;
  generated: CaptionOracleScore;
  nlvrTest: CaptionOracleScore & {
    consistency: number;
    /** Test split by `mentionsPositions`: accuracy, pairs and majority-class share of each part. */
    byPositionWords: Record<'with' | 'without', { pairs: number; accuracy: number; majority: number }>;
  };
  nlvrDev: CaptionOracleScore;
}[] = [];
for (const share of shares) {
  const t0 = performance.now();
  const result = await runStage(
    captionOracleStage({
      config: final.config,
      weights: start,
      tokenizer: final.tokenizer,
      steps,
      batchSize: Number(values['batch-size']),
      lr: Number(values.lr),
      dev: share > 0 ? { examples: dev, share } : undefined,
    }),
    {
      outDir: join(run, `caption-oracle-dev${share}-steps${steps}`),
      checkpointEvery: Math.max(100, Math.round(steps / 5)),
    },
  );
  const seconds = (performance.now() - t0) / 1000;
  const weights = new Map(start);
  for (const [k, v] of result.weights) weights.set(k, v);
  const model = new MavenModel(final.config, weights, final.tokenizer);
  const generated = await scoreCaptionOracle(
    model,
    generatedHeldout,
    progress(`generated (dev share ${share})`),
  );
  const nlvrTest = await scoreCaptionOracle(model, testItems, progress(`NLVR test (dev share ${share})`));
  // Dev in its first box order: a training figure when share > 0 (how well the sentences are fit).
  const nlvrDev = await scoreCaptionOracle(model, devItems, progress(`NLVR dev (dev share ${share})`));
  const byPositionWords = {
    with: splitScore(nlvrTest.correct, true),
    without: splitScore(nlvrTest.correct, false),
  };
  // Consistency: sentences right in all six orders (the items are six in a row per example).
  let consistent = 0;
  for (let e = 0; e < test.length; e++)
    if (nlvrTest.correct.slice(e * BOX_ORDERS.length, (e + 1) * BOX_ORDERS.length).every(Boolean))
      consistent++;
  runs.push({
    devShare: share,
    steps,
    // Training time across resumes, from the metrics log (this invocation may only have evaluated).
    seconds: Math.round(result.metrics.at(-1)?.elapsed ?? seconds),
    lastLoss: result.metrics.at(-1)?.loss ?? Number.NaN,
    generated: { ...generated, correct: [] },
    nlvrTest: {
      ...nlvrTest,
      correct: [],
      consistency: consistent / Math.max(1, test.length),
      byPositionWords,
    },
    nlvrDev: { ...nlvrDev, correct: [], perRule: {} },
  });
  console.log(
    `dev share ${share}: generated held-out ${pct(generated.accuracy)}, NLVR test ${pct(nlvrTest.accuracy)} (answered "true" ${pct(nlvrTest.trueRate)}), NLVR dev ${pct(nlvrDev.accuracy)}`,
  );
}
await writeFile(
  values.json ?? join(run, 'caption-oracle.json'),
  `${JSON.stringify({ machine: `${os.cpus()[0]?.model} (${os.cpus().length} cores)`, date: new Date().toISOString().slice(0, 10), testExamples: test.length, runs }, null, 2)}\n`,
);
