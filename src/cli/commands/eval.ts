/** `maven eval`: run benchmarks on a model directory; tables on stdout, progress on stderr, JSON on request. */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  BENCH_NAMES,
  type BenchName,
  type BenchResult,
  checkBenchName,
  DEFAULT_PER_TASK,
  runBenchmark,
} from '../../eval/benchmarks.ts';
import type { Normalization } from '../../eval/metrics.ts';
import { PATCH_SELECTIONS, type PatchSelection } from '../../eval/patch-strategies.ts';
import { EvalProgress } from '../../eval/progress.ts';
import { benchTable, evalJson } from '../../eval/report.ts';
import { ENCODING_MODES, type EncodingMode } from '../../maven/sequence.ts';
import { loadMaven } from '../../node/model-directory.ts';
import { type Command, numberOption, UsageError } from '../command.ts';
import { DEFAULT_MODEL_DIR } from '../default-model.ts';

const usage = `usage: maven eval [--model DIR] --bench NAME[,NAME...] [options]

benchmarks (--bench, comma-separated or repeated):
  nlvr-test    real NLVR test sentences in all six box orders: accuracy and consistency
  nlvr-dev     the same on NLVR dev
  seed-mc      SEED-Bench-style multiple choice (motion direction, procedure order) by likelihood
  demon        DEMON-style categories by generation: choice tasks matched to the closest option
               (accuracy), captions of held-out scenes (ROUGE-L)
  fashion      Fashion-MNIST multi-image tasks on the t10k photos, by likelihood
  perception   does the model see? single-image questions (photo class, box colour / shape /
               count / wall), captions (class named; ROUGE-L and colour/shape recall) and
               fashion-same, by summed likelihood, in all three encoding modes, each beside
               linear probes on the same frozen ViT features and discrete ids; codebook usage.
               ${2 * DEFAULT_PER_TASK} photos and ${DEFAULT_PER_TASK} examples per other task (--limit N: 2N and N); --mode
               and --normalize do not apply, --keep-ratio and --selection shape the hybrid rows;
               the box rows run without the data folder

options:
  --model DIR          model directory (default: the embedded models/maven-tiny)
  --mode MODE          hybrid (default) | discrete-only | continuous-only
  --keep-ratio R       share of patches kept per image, in (0, 1] (default: the model's)
  --selection S        how hybrid mode picks patches: selector (default) | random | grid | norm
  --limit N            NLVR: the first N sentences; generated benches: N examples per task
                       (default: all NLVR sentences, ${DEFAULT_PER_TASK} per generated task)
  --normalize N        likelihood benches: mean (length-normalised, default) | sum
  --seed S             dataset seed of the generated benches (default 0)
  --json FILE          also write every prediction and setting as JSON
  --data DIR           the data folder (default $MAVEN_DATA_DIR or ../shared/data)
  --quiet              no progress bar`;

export const evalCommand: Command = {
  name: 'eval',
  summary: 'benchmarks: NLVR, SEED-style multiple choice, DEMON-style tasks, Fashion-MNIST, perception',
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        bench: { type: 'string', multiple: true },
        mode: { type: 'string' },
        'keep-ratio': { type: 'string' },
        selection: { type: 'string' },
        limit: { type: 'string' },
        normalize: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'string' },
        data: { type: 'string' },
        quiet: { type: 'boolean' },
      },
    });
    const modelDir = values.model ?? DEFAULT_MODEL_DIR;
    const names = (values.bench ?? [])
      .flatMap((b) => b.split(','))
      .map((b) => b.trim())
      .filter(Boolean);
    if (names.length === 0)
      throw new UsageError(`--bench is required (${BENCH_NAMES.join(', ')})\n\n${usage}`);
    let benches: BenchName[];
    try {
      benches = [...new Set(names.map(checkBenchName))];
    } catch (e) {
      throw new UsageError(`--bench: ${(e as Error).message}`);
    }
    const mode = (values.mode ?? 'hybrid') as EncodingMode;
    if (!ENCODING_MODES.includes(mode))
      throw new UsageError(`--mode must be one of ${ENCODING_MODES.join(', ')}`);
    const selection = (values.selection ?? 'selector') as PatchSelection;
    if (!PATCH_SELECTIONS.includes(selection))
      throw new UsageError(`--selection must be one of ${PATCH_SELECTIONS.join(', ')}`);
    const normalization = (values.normalize ?? 'mean') as Normalization;
    if (normalization !== 'mean' && normalization !== 'sum')
      throw new UsageError(`--normalize must be mean or sum`);
    const settings = {
      mode,
      selection,
      keepRatio: numberOption(values['keep-ratio'], 'keep-ratio', (n) => n > 0 && n <= 1),
      limit: numberOption(values.limit, 'limit', (n) => Number.isInteger(n) && n > 0),
      normalization,
      seed: numberOption(values.seed, 'seed', Number.isInteger) ?? 0,
    };
    const model = await loadMaven(modelDir, {}, { weightsOnDisk: true });
    const progress = new EvalProgress('', { mode: values.quiet ? 'off' : undefined });
    const results: BenchResult[] = [];
    for (const bench of benches) {
      progress.restart(bench);
      const result = await runBenchmark(model, bench, {
        ...settings,
        dataDir: values.data,
        onProgress: progress.update,
      });
      progress.finish();
      results.push(result);
      console.log(`${benchTable(result)}\n`);
    }
    console.log(
      `model ${modelDir} (${model.config.name}); mode ${mode}, selection ${selection}, keep ratio ${settings.keepRatio ?? model.config.keepRatio}, normalisation ${normalization}${
        benches.includes('perception') ? ' (perception: every mode, summed log-likelihood)' : ''
      }`,
    );
    if (values.json) {
      await writeFile(
        values.json,
        evalJson({
          model: modelDir,
          settings: { ...settings, keepRatio: settings.keepRatio ?? model.config.keepRatio },
          results,
        }),
      );
      console.log(`every prediction: ${values.json}`);
    }
    return 0;
  },
};
