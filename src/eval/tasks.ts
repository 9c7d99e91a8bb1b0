/**
 * The generated multi-image tasks (DEMON-style categories, SEED-Bench-style multiple choice) on
 * their held-out split: each example's options are scored by log-likelihood after the prompt,
 * length-normalised by default (the SEED-Bench protocol), and the best one is the prediction.
 */
import { generateExample, type PlanOptions } from '../data/tasks/registry.ts';
import { OPTION_LETTERS, type TaskExample, type TaskName } from '../data/tasks/types.ts';
import type { MavenModel } from '../maven/model.ts';
import type { SelectionOptions } from '../maven/patch-selection.ts';
import { bestOption, type Normalization } from './metrics.ts';
import { visualTokensPerImage } from './nlvr.ts';

export interface TaskPrediction {
  task: TaskName;
  category: string;
  index: number;
  answerIndex: number;
  predicted: number;
  /** Each option's score (mean or summed log-likelihood, as compared). */
  scores?: number[];
  promptTokens?: number;
  visualTokens?: number;
}

export interface TaskAccuracy {
  category: string;
  task: TaskName;
  examples: number;
  accuracy: number;
  /** 1 / number of options: what guessing scores. */
  chance: number;
}

/**
 * The strings the model may answer with, one per option, in the task's answer format: the option
 * text itself ("left", "true", "3"), or its letter when the prompt lists lettered options.
 */
export function answerCandidates(
  ex: Pick<TaskExample, 'options' | 'answer' | 'answerIndex' | 'task' | 'index'>,
): string[] {
  const options = ex.options ?? [];
  if (options.length === 0 || ex.answerIndex === undefined) {
    throw new Error(`task ${ex.task} example ${ex.index} has no options to choose from`);
  }
  return options[ex.answerIndex] === ex.answer ? [...options] : OPTION_LETTERS.slice(0, options.length);
}

export interface ScoredOptions {
  /** Index of the chosen option. */
  predicted: number;
  /** Each option's score as compared: mean or summed log-likelihood. */
  scores: number[];
  /** Prompt length in slots (tokens and patches), and visual tokens per image. */
  promptTokens: number;
  visualTokens: number;
}

/** Score every option of `ex` after its prompt and pick the best (SEED-Bench protocol). */
export async function scoreOptions(
  model: MavenModel,
  ex: TaskExample,
  options: SelectionOptions & { normalization?: Normalization } = {},
): Promise<ScoredOptions> {
  const prepared = await model.prepare(ex.prompt, model.preprocessRgb(ex.images), options);
  const raw = await model.scorePrepared(
    prepared,
    answerCandidates(ex).map((o) => ` ${o}`),
  );
  const normalization = options.normalization ?? 'mean';
  return {
    predicted: bestOption(raw, normalization),
    scores: raw.map((r) => (normalization === 'mean' ? r.meanLogLikelihood : r.logLikelihood)),
    promptTokens: prepared.sequence.slots.length,
    visualTokens: visualTokensPerImage(prepared.images),
  };
}

export async function predictOption(
  model: MavenModel,
  ex: TaskExample,
  options: SelectionOptions & { lengthNormalize?: boolean } = {},
): Promise<number> {
  const normalization = (options.lengthNormalize ?? true) ? 'mean' : 'sum';
  return (await scoreOptions(model, ex, { ...options, normalization })).predicted;
}

export async function evaluateTasks(
  model: MavenModel,
  tasks: readonly TaskName[],
  options: SelectionOptions & {
    perTask: number;
    seed?: number;
    /** 'mean' (default): length-normalised log-likelihood, SEED-Bench's; 'sum': total. */
    normalization?: Normalization;
    generation?: Omit<PlanOptions, 'seed'>;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<{ accuracies: TaskAccuracy[]; predictions: TaskPrediction[] }> {
  const predictions: TaskPrediction[] = [];
  const accuracies: TaskAccuracy[] = [];
  let done = 0;
  for (const task of tasks) {
    let correct = 0;
    let chance = 0;
    let category = '';
    for (let i = 0; i < options.perTask; i++) {
      const ex = generateExample(task, 'heldout', i, { seed: options.seed, ...options.generation });
      const { predicted, scores, promptTokens, visualTokens } = await scoreOptions(model, ex, options);
      category = ex.category;
      chance += 1 / (ex.options?.length ?? 1);
      if (predicted === ex.answerIndex) correct++;
      predictions.push({
        task,
        category: ex.category,
        index: i,
        answerIndex: ex.answerIndex ?? -1,
        predicted,
        scores,
        promptTokens,
        visualTokens,
      });
      options.onProgress?.(++done, tasks.length * options.perTask);
    }
    accuracies.push({
      category,
      task,
      examples: options.perTask,
      accuracy: correct / options.perTask,
      chance: chance / options.perTask,
    });
  }
  return { accuracies, predictions };
}
