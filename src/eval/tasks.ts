/**
 * The generated multi-image tasks (DEMON-style categories, SEED-Bench-style multiple choice) on
 * their held-out split: each example's options are scored by length-normalised log-likelihood
 * after the prompt (the SEED-Bench protocol) and the best one is the prediction.
 */
import { generateExample, type PlanOptions } from '../data/tasks/registry.ts';
import { OPTION_LETTERS, type TaskExample, type TaskName } from '../data/tasks/types.ts';
import type { EncodeOptions, MavenModel } from '../maven/model.ts';

export interface TaskPrediction {
  task: TaskName;
  category: string;
  index: number;
  answerIndex: number;
  predicted: number;
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

export async function predictOption(
  model: MavenModel,
  ex: TaskExample,
  options: EncodeOptions & { lengthNormalize?: boolean } = {},
): Promise<number> {
  const images = model.preprocessRgb(ex.images);
  const scores = await model.score(
    ex.prompt,
    images,
    answerCandidates(ex).map((o) => ` ${o}`),
    options,
  );
  const value = (i: number) =>
    (options.lengthNormalize ?? true) ? scores[i].meanLogLikelihood : scores[i].logLikelihood;
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (value(i) > value(best)) best = i;
  return best;
}

export async function evaluateTasks(
  model: MavenModel,
  tasks: readonly TaskName[],
  options: EncodeOptions & {
    perTask: number;
    seed?: number;
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
      const predicted = await predictOption(model, ex, options);
      category = ex.category;
      chance += 1 / (ex.options?.length ?? 1);
      if (predicted === ex.answerIndex) correct++;
      predictions.push({
        task,
        category: ex.category,
        index: i,
        answerIndex: ex.answerIndex ?? -1,
        predicted,
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
