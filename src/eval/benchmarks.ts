/**
 * The benchmark harness: every benchmark `maven eval` and the experiments run, each a table of
 * (category, task, metric) rows plus every prediction, under one set of encoding options.
 *
 * - nlvr-test / nlvr-dev: real NLVR sentences in all six box orders, answered by comparing the
 *   likelihood of "true" and "false"; accuracy and consistency (all six orders right).
 * - seed-mc: SEED-Bench-style multiple choice on generated frame sequences (action recognition:
 *   motion-direction; procedure understanding: procedure-order); the option with the highest
 *   log-likelihood (length-normalised by default, as SEED-Bench does) is the answer.
 * - demon: DEMON-style categories answered by free generation (greedy), as DEMON scores them:
 *   choice tasks (NLVR-style statements, what-changed, sequence completion) match the generated
 *   text to the closest option; open-ended captioning of held-out scenes is scored by ROUGE-L
 *   against the exact reference caption.
 * - fashion: the Fashion-MNIST multi-image tasks on the t10k photos (never seen in training), by
 *   likelihood like seed-mc.
 * - perception: single-image questions and captions in each encoding mode, beside linear probes
 *   on the same frozen features (src/eval/perception.ts).
 *
 * Examples come in a fixed order and answers are greedy / argmax, so a rerun gives the same
 * predictions.
 */
import { type DataDirOptions, DataUnavailableError } from '../data/data-dir.ts';
import { idxImage, loadFashionMnist } from '../data/fashion-mnist.ts';
import { loadNlvr, type NlvrSplit } from '../data/nlvr.ts';
import { generateExample } from '../data/tasks/registry.ts';
import { captionPair } from '../data/tasks/stage-datasets.ts';
import type { ImageSource } from '../data/tasks/task.ts';
import { IMAGE_TOKEN, OPTION_LETTERS, type TaskExample, type TaskName } from '../data/tasks/types.ts';
import type { MavenModel } from '../maven/model.ts';
import { closestOption, mean, type Normalization, rougeL } from './metrics.ts';
import { evaluateNlvr, visualTokensPerImage } from './nlvr.ts';
import { type EncodingSettings, selectionOptions } from './patch-strategies.ts';
import { type PerceptionOptions, perceptionBench } from './perception.ts';
import { clusteredAccuracy, mostCommon } from './statistics.ts';
import { answerCandidates, scoreOptions } from './tasks.ts';

export const BENCH_NAMES = ['nlvr-test', 'nlvr-dev', 'seed-mc', 'demon', 'fashion', 'perception'] as const;
export type BenchName = (typeof BENCH_NAMES)[number];

/** SEED-Bench-style dimensions: frame sequences, multiple choice by likelihood. */
export const SEED_TASKS: readonly TaskName[] = ['motion-direction', 'procedure-order'];
/** DEMON-style choice tasks, answered by generation and matched to the closest option. */
export const DEMON_CHOICE_TASKS: readonly TaskName[] = [
  'nlvr-statement',
  'what-changed',
  'sequence-completion',
];
export const FASHION_TASKS: readonly TaskName[] = [
  'fashion-name',
  'fashion-which',
  'fashion-same',
  'fashion-count',
];
/** The open-ended DEMON-style task: caption a held-out generated box. */
export const CAPTION_TASK = 'scene-caption';
export const CAPTION_CATEGORY = 'image-captioning';
/** Captioning prompt: the image alone, as stages 2–3 trained captioning (BOS, image, caption). */
export const CAPTION_PROMPT = IMAGE_TOKEN;

/** Examples per task when no limit is given (NLVR: every sentence of the split). */
export const DEFAULT_PER_TASK = 100;

export interface BenchOptions extends EncodingSettings, DataDirOptions {
  /** NLVR: the first N sentences (each in six orders); generated benches: N examples per task. */
  limit?: number;
  /** Likelihood benches: 'mean' (length-normalised, default) or 'sum' of the option's token log-probs. */
  normalization?: Normalization;
  /** Dataset seed of the generated tasks (default 0; the held-out split is disjoint for every seed). */
  seed?: number;
  /** Fashion-MNIST t10k photos; loaded from the data folder when not given. */
  fashion?: ImageSource;
  /** Most new tokens for a generated choice answer (default 16) and a caption (default 64). */
  maxAnswerTokens?: number;
  maxCaptionTokens?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * attribute-recall: share of a reference caption's colour and shape words the generated one has;
 * pair-precision: share of the colour–shape pairs a generated caption names that the box has;
 * codebook-usage: share of the discrete codebook the held-out images use (perception bench).
 */
export type BenchMetric =
  | 'accuracy'
  | 'consistency'
  | 'rouge-l'
  | 'attribute-recall'
  | 'pair-precision'
  | 'codebook-usage';

export interface BenchRow {
  category: string;
  task: string;
  metric: BenchMetric;
  examples: number;
  value: number;
  /** What guessing scores (accuracy rows): uniform over the options, or the commonest expected answer's share. */
  chance?: number;
  /**
   * 95 % half-width of `value` when its `examples` are not independent (NLVR: six orders of one
   * sentence), computed over `units` independent units; absent: the examples are independent.
   */
  interval?: { halfWidth: number; units: number };
  /**
   * Accuracy rows: the answer given most often and its share of the predictions — a model that
   * says the same thing whatever the images shows up here, not in the accuracy.
   */
  commonAnswer?: { answer: string; share: number };
}

export interface BenchPrediction {
  task: string;
  category: string;
  /** NLVR: `identifier/order`; generated: `heldout/index`. */
  id: string;
  expected: string;
  predicted: string;
  /** Choice questions: was the chosen option the right one? */
  correct?: boolean;
  /** Open-ended questions: ROUGE-L F against the reference. */
  rougeL?: number;
  /** Captions of boxes: share of the reference's colour and shape words the caption has. */
  attributeRecall?: number;
  /** Captions of boxes: share of the colour–shape pairs the caption names that the box has. */
  pairPrecision?: number;
  /** Likelihood questions: each option's score as compared (NLVR: log p(true), log p(false)). */
  scores?: number[];
  /** Generation questions: the raw generated text, and whether the option match was a tie. */
  generated?: string;
  tie?: boolean;
  promptTokens: number;
  /** Discrete ids + kept patches per image. */
  visualTokens: number;
}

export interface BenchResult {
  bench: BenchName;
  /** How answers were obtained and scored, in words. */
  protocol: string;
  rows: BenchRow[];
  /** The bench's one number: mean accuracy over its choice rows (or ROUGE-L if it has no choice rows). */
  headline: { metric: BenchMetric; value: number };
  predictions: BenchPrediction[];
  /** Mean over questions. */
  visualTokensPerImage: number;
  promptTokens: number;
  seconds: number;
}

export function checkBenchName(name: string): BenchName {
  if (!(BENCH_NAMES as readonly string[]).includes(name))
    throw new Error(`unknown benchmark ${JSON.stringify(name)} (known: ${BENCH_NAMES.join(', ')})`);
  return name as BenchName;
}

/** Fashion-MNIST t10k as an image source; throws DataUnavailableError when the files are absent. */
export async function loadFashionTest(options: DataDirOptions = {}): Promise<ImageSource> {
  const data = await loadFashionMnist('test', options);
  return {
    count: data.images.count,
    image: (i: number) => idxImage(data.images, i),
    label: (i: number) => data.labels[i],
    name: 'fashion-mnist/t10k',
  };
}

/**
 * Is the data a bench needs present? null when it is, else the reason (for skipping). perception
 * always runs: its box rows need no data, and it says in its protocol which photo rows it skipped.
 */
export async function benchUnavailable(
  bench: BenchName,
  options: DataDirOptions = {},
): Promise<string | null> {
  try {
    if (bench === 'nlvr-test' || bench === 'nlvr-dev')
      await loadNlvr(bench === 'nlvr-test' ? 'test' : 'dev', options);
    else if (bench === 'fashion') await loadFashionTest(options);
    return null;
  } catch (e) {
    if (e instanceof DataUnavailableError) return e.message;
    throw e;
  }
}

function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
    throw new Error(`limit must be a positive integer, got ${limit}`);
}

/** `options`: the common BenchOptions, plus PerceptionOptions' own for the perception bench. */
export async function runBenchmark(
  model: MavenModel,
  bench: BenchName,
  options: BenchOptions & Omit<PerceptionOptions, keyof BenchOptions> = {},
): Promise<BenchResult> {
  checkBenchName(bench);
  checkLimit(options.limit);
  const t0 = performance.now();
  // A bench may set its own headline and cost figures (perception: its hybrid rows only).
  let partial: Omit<BenchResult, 'bench' | 'headline' | 'visualTokensPerImage' | 'promptTokens' | 'seconds'> &
    Partial<Pick<BenchResult, 'headline' | 'visualTokensPerImage' | 'promptTokens'>>;
  switch (bench) {
    case 'nlvr-test':
    case 'nlvr-dev':
      partial = await nlvrBench(model, bench === 'nlvr-test' ? 'test' : 'dev', options);
      break;
    case 'seed-mc':
      partial = await likelihoodBench(model, SEED_TASKS, options);
      break;
    case 'fashion':
      partial = await likelihoodBench(model, FASHION_TASKS, {
        ...options,
        fashion: options.fashion ?? (await loadFashionTest(options)),
      });
      break;
    case 'demon':
      partial = await demonBench(model, options);
      break;
    case 'perception':
      partial = await perceptionBench(model, options);
      break;
  }
  const rows = partial.rows.map((row) =>
    row.metric === 'accuracy'
      ? {
          ...row,
          commonAnswer: mostCommon(
            partial.predictions.filter((p) => p.task === row.task).map((p) => p.predicted),
          ),
        }
      : row,
  );
  return {
    bench,
    ...partial,
    rows,
    headline: partial.headline ?? headline(rows),
    visualTokensPerImage:
      partial.visualTokensPerImage ?? mean(partial.predictions.map((p) => p.visualTokens)),
    promptTokens: partial.promptTokens ?? mean(partial.predictions.map((p) => p.promptTokens)),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Mean accuracy over a bench's per-task accuracy rows; ROUGE-L when it has none. */
export function headline(rows: readonly BenchRow[]): { metric: BenchMetric; value: number } {
  const accuracy = rows.filter((r) => r.metric === 'accuracy');
  if (accuracy.length) return { metric: 'accuracy', value: mean(accuracy.map((r) => r.value)) };
  const rouge = rows.filter((r) => r.metric === 'rouge-l');
  return { metric: 'rouge-l', value: mean(rouge.map((r) => r.value)) };
}

/**
 * NLVR's accuracy row: its interval over sentences (the six orders of a sentence are one sample:
 * their answers nearly always agree) and its chance the commonest label's share in the sentences
 * evaluated (a subset need not be half true).
 */
export function nlvrAccuracyRow(
  split: NlvrSplit,
  predictions: readonly { identifier: string; label: boolean; predicted: boolean }[],
): BenchRow {
  const clustered = clusteredAccuracy(
    predictions.map((p) => ({ cluster: p.identifier, correct: p.predicted === p.label })),
  );
  return {
    category: 'multi-image-reasoning',
    task: `nlvr-${split}`,
    metric: 'accuracy',
    examples: predictions.length,
    value: clustered.value,
    chance: mostCommon(predictions.map((p) => String(p.label))).share,
    interval: { halfWidth: clustered.halfWidth, units: clustered.units },
  };
}

async function nlvrBench(model: MavenModel, split: NlvrSplit, options: BenchOptions) {
  const r = await evaluateNlvr(model, split, {
    ...selectionOptions(options),
    dataDir: options.dataDir,
    limit: options.limit,
    onProgress: options.onProgress,
  });
  return {
    protocol: `NLVR ${split}: each sentence in all six box orders; answer = the likelier of "true" / "false"; consistency = share of sentences right in all six orders; interval over sentences (the six orders of one sentence are one sample); chance = the commonest label's share in the sentences evaluated`,
    rows: [
      nlvrAccuracyRow(split, r.predictions),
      {
        category: 'multi-image-reasoning',
        task: `nlvr-${split}`,
        metric: 'consistency' as const,
        examples: r.examples,
        value: r.consistency,
      },
    ],
    predictions: r.predictions.map((p) => ({
      task: `nlvr-${split}`,
      category: 'multi-image-reasoning',
      id: `${p.identifier}/${p.order}`,
      expected: String(p.label),
      predicted: String(p.predicted),
      correct: p.predicted === p.label,
      scores: [p.margin],
      promptTokens: p.promptTokens ?? 0,
      visualTokens: p.visualTokens ?? 0,
    })),
  };
}

function heldout(task: TaskName, index: number, options: BenchOptions): TaskExample {
  return generateExample(task, 'heldout', index, { seed: options.seed, fashion: options.fashion });
}

async function likelihoodBench(model: MavenModel, tasks: readonly TaskName[], options: BenchOptions) {
  const perTask = options.limit ?? DEFAULT_PER_TASK;
  const normalization = options.normalization ?? 'mean';
  const rows: BenchRow[] = [];
  const predictions: BenchPrediction[] = [];
  let done = 0;
  for (const task of tasks) {
    let correct = 0;
    let chance = 0;
    let category = '';
    for (let i = 0; i < perTask; i++) {
      const ex = heldout(task, i, options);
      const scored = await scoreOptions(model, ex, { ...selectionOptions(options), normalization });
      const candidates = answerCandidates(ex);
      category = ex.category;
      chance += 1 / candidates.length;
      if (scored.predicted === ex.answerIndex) correct++;
      predictions.push({
        task,
        category,
        id: `heldout/${i}`,
        expected: ex.answer,
        predicted: candidates[scored.predicted],
        correct: scored.predicted === ex.answerIndex,
        scores: scored.scores,
        promptTokens: scored.promptTokens,
        visualTokens: scored.visualTokens,
      });
      options.onProgress?.(++done, tasks.length * perTask);
    }
    rows.push({
      category,
      task,
      metric: 'accuracy',
      examples: perTask,
      value: correct / perTask,
      chance: chance / perTask,
    });
  }
  return {
    protocol: `option with the highest ${normalization === 'mean' ? 'length-normalised (mean per token)' : 'summed'} log-likelihood after the prompt (SEED-Bench protocol); ${perTask} held-out examples per task`,
    rows,
    predictions,
  };
}

/**
 * The strings that name option i: its answer-format string (letter or text) and, when that is a
 * letter, also the option's text — a model that answers with the text still means that option.
 */
export function optionForms(
  ex: Pick<TaskExample, 'options' | 'answer' | 'answerIndex' | 'task' | 'index'>,
): string[][] {
  const candidates = answerCandidates(ex);
  const texts = ex.options ?? [];
  return candidates.map((c, i) =>
    c === OPTION_LETTERS[i] && texts[i] !== undefined && texts[i] !== c ? [c, texts[i]] : [c],
  );
}

async function demonBench(model: MavenModel, options: BenchOptions) {
  const perTask = options.limit ?? DEFAULT_PER_TASK;
  const rows: BenchRow[] = [];
  const predictions: BenchPrediction[] = [];
  const total = (DEMON_CHOICE_TASKS.length + 1) * perTask;
  let done = 0;
  const generate = async (prompt: string, images: TaskExample['images'], maxNewTokens: number) => {
    const out = await model.generate(prompt, model.preprocessRgb(images), {
      ...selectionOptions(options),
      maxNewTokens,
      temperature: 0,
      stop: ['\n'],
    });
    return {
      text: out.text,
      promptTokens: out.prepared.sequence.slots.length,
      visualTokens: visualTokensPerImage(out.prepared.images),
    };
  };
  for (const task of DEMON_CHOICE_TASKS) {
    let correct = 0;
    let chance = 0;
    let category = '';
    for (let i = 0; i < perTask; i++) {
      const ex = heldout(task, i, options);
      const candidates = answerCandidates(ex);
      const out = await generate(ex.prompt, ex.images, options.maxAnswerTokens ?? 16);
      const match = closestOption(out.text, optionForms(ex));
      category = ex.category;
      chance += 1 / candidates.length;
      const right = match.index === ex.answerIndex;
      if (right) correct++;
      predictions.push({
        task,
        category,
        id: `heldout/${i}`,
        expected: ex.answer,
        predicted: match.index >= 0 ? candidates[match.index] : '',
        correct: right,
        generated: out.text,
        tie: match.tie,
        promptTokens: out.promptTokens,
        visualTokens: out.visualTokens,
      });
      options.onProgress?.(++done, total);
    }
    rows.push({
      category,
      task,
      metric: 'accuracy',
      examples: perTask,
      value: correct / perTask,
      chance: chance / perTask,
    });
  }
  const rouge: number[] = [];
  for (let i = 0; i < perTask; i++) {
    // Scene boxes only (no fashion source): a caption is exact for a generated box.
    const pair = captionPair(i, { seed: options.seed, split: 'heldout' });
    const out = await generate(CAPTION_PROMPT, [pair.image], options.maxCaptionTokens ?? 64);
    const score = rougeL(out.text, pair.caption).f;
    rouge.push(score);
    predictions.push({
      task: CAPTION_TASK,
      category: CAPTION_CATEGORY,
      id: `heldout/${i}`,
      expected: pair.caption,
      predicted: out.text,
      rougeL: score,
      promptTokens: out.promptTokens,
      visualTokens: out.visualTokens,
    });
    options.onProgress?.(++done, total);
  }
  rows.push({
    category: CAPTION_CATEGORY,
    task: CAPTION_TASK,
    metric: 'rouge-l',
    examples: perTask,
    value: mean(rouge),
  });
  return {
    protocol: `greedy generation (stop at a newline); choice tasks: the generated text matched to the closest option (exact, else highest ROUGE-L), accuracy; captions of held-out boxes: ROUGE-L F1 against the exact caption; ${perTask} held-out examples per task`,
    rows,
    predictions,
  };
}
