/**
 * Data statistics: counts per split / task / category of the generated multi-image tasks (and
 * the Fashion-MNIST ones when the data folder has it), then a contact sheet PNG of sample
 * examples with their questions and answers. Run as `maven data stats`.
 */
import { writeFile } from 'node:fs/promises';
import { type DataDirOptions, DataUnavailableError } from './data-dir.ts';
import { idxImage, loadFashionMnist } from './fashion-mnist.ts';
import { taskContactSheet } from './tasks/contact-sheet.ts';
import { generateExample, TASK_NAMES, TASKS } from './tasks/registry.ts';
import { formatTaskStats, taskStats } from './tasks/stats.ts';
import type { ImageSource } from './tasks/task.ts';
import type { Split, TaskExample } from './tasks/types.ts';

export interface DataStatsOptions extends DataDirOptions {
  perTask?: number;
  seed?: number;
  /** Examples per task on the contact sheet. */
  samples?: number;
  /** Contact sheet path; none written when empty. */
  out?: string;
  log?: (line: string) => void;
}

/** Fashion-MNIST sources per split, or undefined (with a note) when the files are absent. */
async function fashionSources(options: DataDirOptions, log: (line: string) => void) {
  try {
    const sources: Partial<Record<Split, ImageSource>> = {};
    for (const [split, file] of [
      ['train', 'train'],
      ['heldout', 'test'],
    ] as const) {
      const data = await loadFashionMnist(file, options);
      sources[split] = {
        count: data.images.count,
        image: (i) => idxImage(data.images, i),
        label: (i) => data.labels[i],
        rows: data.images.rows,
        cols: data.images.cols,
        name: `fashion-mnist/${file}`,
      };
    }
    return sources;
  } catch (err) {
    if (!(err instanceof DataUnavailableError)) throw err;
    log(`(Fashion-MNIST tasks skipped: ${err.message})`);
    return undefined;
  }
}

export async function runDataStats(options: DataStatsOptions = {}): Promise<void> {
  const log = options.log ?? console.log;
  const fashion = await fashionSources(options, log);
  const stats = taskStats({ perTask: options.perTask ?? 500, seed: options.seed, fashion });
  log(formatTaskStats(stats));
  const out = options.out ?? 'data-stats.png';
  if (out === '') return;
  const examples: TaskExample[] = [];
  for (const task of TASK_NAMES) {
    if (TASKS[task].splitBy === 'source' && fashion === undefined) continue;
    for (let i = 0; i < (options.samples ?? 2); i++) {
      examples.push(generateExample(task, 'train', i, { seed: options.seed, fashion: fashion?.train }));
    }
  }
  await writeFile(out, await taskContactSheet(examples));
  log(`\ncontact sheet of ${examples.length} examples: ${out}`);
}
