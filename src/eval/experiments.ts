/**
 * The paper's experiments at small scale, on one trained model and without retraining:
 * - keep-ratio sweep (Figure 4): ρ ∈ {0.1, 0.25, 0.5, 0.75, 1.0} with the selector → visual
 *   tokens per image and the score of every benchmark;
 * - selection ablation: the selector against random / grid / norm patches at the same budget;
 * - encoding ablation: hybrid vs discrete-only vs continuous-only on the same weights (the
 *   paper's Table 4 retrains each; `scripts/experiments.ts --retrain` does that separately);
 * - patch coverage and overlays (Figure 5), codebook ids and what they mean (Figure 6);
 * - cost per question of each encoding.
 * Variants that coincide (hybrid + selector + ρ = 0.25 appears in three lists) run once.
 */
import type { DataDirOptions } from '../data/data-dir.ts';
import { generateExample, SCENE_TASK_NAMES } from '../data/tasks/registry.ts';
import type { ImageSource } from '../data/tasks/task.ts';
import type { TaskExample } from '../data/tasks/types.ts';
import type { MavenModel } from '../maven/model.ts';
import type { EncodingMode } from '../maven/sequence.ts';
import { type BenchName, type BenchResult, loadFashionTest, runBenchmark } from './benchmarks.ts';
import { type CostRow, measureCost } from './cost.ts';
import {
  type CodebookStudy,
  type Coverage,
  codebookStudy,
  heldoutBoxes,
  overlaySheet,
  patchCoverage,
} from './figures.ts';
import type { EncodingSettings, PatchSelection } from './patch-strategies.ts';

export const KEEP_RATIOS = [0.1, 0.25, 0.5, 0.75, 1.0] as const;
export const SELECTIONS: readonly PatchSelection[] = ['selector', 'random', 'grid', 'norm'];
export const MODES: readonly EncodingMode[] = ['hybrid', 'discrete-only', 'continuous-only'];

export interface ExperimentSizes {
  /** NLVR sentences (each in six orders). */
  nlvrSentences: number;
  /** Held-out examples per generated task. */
  perTask: number;
  /** Held-out boxes for the patch-coverage measurement and the codebook study. */
  coverageImages: number;
  codebookImages: number;
  /** Questions for the cost measurement (each timed in every mode). */
  costQuestions: number;
}

/** `npm run experiments`: about 40 minutes on 2 cores with the tiny model. */
export const FULL_SIZES: ExperimentSizes = {
  nlvrSentences: 300,
  perTask: 80,
  coverageImages: 300,
  codebookImages: 600,
  costQuestions: 40,
};

/** `--quick`: a few minutes; numbers are noisy (see the confidence intervals). */
export const QUICK_SIZES: ExperimentSizes = {
  nlvrSentences: 20,
  perTask: 16,
  coverageImages: 64,
  codebookImages: 160,
  costQuestions: 8,
};

export interface Variant {
  /** Stable key, e.g. `hybrid/selector/0.25`. */
  key: string;
  mode: EncodingMode;
  selection: PatchSelection;
  keepRatio: number;
}

export function variantKey(mode: EncodingMode, selection: PatchSelection, keepRatio: number): string {
  return mode === 'hybrid' ? `${mode}/${selection}/${keepRatio}` : mode;
}

/** Every variant the three studies need, each once. */
export function experimentVariants(baseRatio = 0.25): Variant[] {
  const out = new Map<string, Variant>();
  const add = (mode: EncodingMode, selection: PatchSelection, keepRatio: number) =>
    out.set(variantKey(mode, selection, keepRatio), {
      key: variantKey(mode, selection, keepRatio),
      mode,
      selection,
      keepRatio,
    });
  for (const r of KEEP_RATIOS) add('hybrid', 'selector', r);
  for (const s of SELECTIONS) add('hybrid', s, baseRatio);
  for (const m of MODES) add(m, 'selector', baseRatio);
  return [...out.values()];
}

export const encodeOptionsOf = (v: Variant): EncodingSettings => ({
  mode: v.mode,
  selection: v.selection,
  keepRatio: v.keepRatio,
});

export interface ExperimentOptions extends DataDirOptions {
  benches: readonly BenchName[];
  sizes: ExperimentSizes;
  baseRatio?: number;
  fashion?: ImageSource;
  /** Called with a phase label before each phase, and with per-question progress. */
  onPhase?: (label: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface ExperimentResults {
  sizes: ExperimentSizes;
  baseRatio: number;
  benches: BenchName[];
  /** Per variant key, one result per bench (predictions included). */
  runs: Record<string, BenchResult[]>;
  variants: Variant[];
  coverage: { coverage: Coverage[]; objectShare: number; images: number };
  codebook: CodebookStudy;
  overlays: Uint8Array;
  cost: CostRow[];
  costQuestions: number;
}

/** The benchmark runs of every variant (the expensive part). */
export async function runVariants(
  model: MavenModel,
  variants: readonly Variant[],
  options: ExperimentOptions,
): Promise<Record<string, BenchResult[]>> {
  const fashion =
    options.fashion ??
    (options.benches.includes('fashion') ? await loadFashionTest({ dataDir: options.dataDir }) : undefined);
  const runs: Record<string, BenchResult[]> = {};
  for (const v of variants) {
    runs[v.key] = [];
    for (const bench of options.benches) {
      options.onPhase?.(`${v.key} ${bench}`);
      runs[v.key].push(
        await runBenchmark(model, bench, {
          ...encodeOptionsOf(v),
          limit: bench.startsWith('nlvr') ? options.sizes.nlvrSentences : options.sizes.perTask,
          dataDir: options.dataDir,
          fashion,
          onProgress: options.onProgress,
        }),
      );
    }
  }
  return runs;
}

/** Held-out multi-image questions of every scene task, round-robin (the cost measurement's set). */
export function costQuestions(count: number): TaskExample[] {
  return Array.from({ length: count }, (_, i) =>
    generateExample(
      SCENE_TASK_NAMES[i % SCENE_TASK_NAMES.length],
      'heldout',
      Math.floor(i / SCENE_TASK_NAMES.length),
    ),
  );
}

export async function runExperiments(
  model: MavenModel,
  options: ExperimentOptions,
): Promise<ExperimentResults> {
  const baseRatio = options.baseRatio ?? model.config.keepRatio;
  const variants = experimentVariants(baseRatio);
  const runs = await runVariants(model, variants, options);

  options.onPhase?.('patch coverage');
  const boxes = heldoutBoxes(options.sizes.coverageImages);
  const coverage = { ...(await patchCoverage(model, boxes, SELECTIONS, baseRatio)), images: boxes.length };

  options.onPhase?.('codebook');
  const codebook = await codebookStudy(model, heldoutBoxes(options.sizes.codebookImages));

  options.onPhase?.('overlays');
  const overlays = await overlaySheet(
    model,
    boxes.slice(0, 6).map((b) => b.image),
    SELECTIONS,
    baseRatio,
  );

  options.onPhase?.('cost');
  const questions = costQuestions(options.sizes.costQuestions);
  const cost = await measureCost(
    model,
    questions,
    MODES.map((mode) => ({ label: mode, options: { mode, keepRatio: baseRatio } })),
    { onProgress: options.onProgress },
  );
  return {
    sizes: options.sizes,
    baseRatio,
    benches: [...options.benches],
    runs,
    variants,
    coverage,
    codebook,
    overlays,
    cost,
    costQuestions: questions.length,
  };
}
