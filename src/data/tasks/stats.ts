/**
 * Statistics of the generated data: per split and task, how many examples were planned, their
 * category, images per example, the answer distribution, how many draws the split filter
 * rejected, and planning speed; for NLVR statements, the true share per template. Plans only
 * (no pixels), so it runs in seconds. Backs `scripts/data-stats.ts` (and `maven data stats`).
 */
import { planExample, SCENE_TASK_NAMES, TASKS } from './registry.ts';
import type { ImageSource } from './task.ts';
import { type ExamplePlan, SPLITS, type Split, type TaskCategory, type TaskName } from './types.ts';

export interface TaskSplitStats {
  task: TaskName;
  category: TaskCategory;
  split: Split;
  examples: number;
  imagesPerExample: number;
  /** Answer → count. */
  answers: Record<string, number>;
  /** Draws rejected for belonging to the other split, per example. */
  rejectedPerExample: number;
  /** Planning speed (examples per second, no rendering). */
  perSecond: number;
  /** nlvr-statement only: template → [statements, true ones]. */
  templates?: Record<string, [number, number]>;
}

export interface StatsOptions {
  /** Examples planned per (task, split); default 500. */
  perTask?: number;
  seed?: number;
  /** Tasks to include; default all scene tasks, plus the fashion tasks when sources are given. */
  tasks?: TaskName[];
  /** Fashion-MNIST sources per split (train-* for 'train', t10k-* for 'heldout'). */
  fashion?: Partial<Record<Split, ImageSource>>;
}

export function taskStats(options: StatsOptions = {}): TaskSplitStats[] {
  const perTask = options.perTask ?? 500;
  const tasks =
    options.tasks ??
    (options.fashion === undefined
      ? SCENE_TASK_NAMES
      : [
          ...SCENE_TASK_NAMES,
          ...(Object.keys(TASKS) as TaskName[]).filter((t) => TASKS[t].splitBy === 'source'),
        ]);
  const out: TaskSplitStats[] = [];
  for (const task of tasks) {
    for (const split of SPLITS) {
      const fashion = options.fashion?.[split];
      if (TASKS[task].splitBy === 'source' && fashion === undefined) continue;
      const start = performance.now();
      const plans: ExamplePlan[] = [];
      for (let i = 0; i < perTask; i++)
        plans.push(planExample(task, split, i, { seed: options.seed, fashion }));
      const seconds = (performance.now() - start) / 1000;
      const answers: Record<string, number> = {};
      for (const p of plans) answers[p.answer] = (answers[p.answer] ?? 0) + 1;
      const stats: TaskSplitStats = {
        task,
        category: TASKS[task].category,
        split,
        examples: plans.length,
        imagesPerExample: plans.reduce((n, p) => n + p.visuals.length, 0) / plans.length,
        answers,
        rejectedPerExample: plans.reduce((n, p) => n + p.meta.rejected, 0) / plans.length,
        perSecond: plans.length / Math.max(seconds, 1e-9),
      };
      if (task === 'nlvr-statement') {
        const templates: Record<string, [number, number]> = {};
        for (const p of plans) {
          const key = `${p.meta.layout}/${p.meta.rule}`;
          const [n, t] = templates[key] ?? [0, 0];
          templates[key] = [n + 1, t + (p.answer === 'true' ? 1 : 0)];
        }
        stats.templates = templates;
      }
      out.push(stats);
    }
  }
  return out;
}

/** A plain-text table of the statistics. */
export function formatTaskStats(stats: readonly TaskSplitStats[]): string {
  const lines: string[] = [];
  const pad = (s: string | number, n: number) => String(s).padEnd(n);
  lines.push(
    `${pad('task', 21)}${pad('category', 27)}${pad('split', 9)}${pad('examples', 10)}${pad('images', 8)}${pad('rejected', 10)}${pad('plans/s', 9)}answers`,
  );
  for (const s of stats) {
    const answers = Object.entries(s.answers)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([a, n]) => `${a}:${n}`)
      .join(' ');
    lines.push(
      `${pad(s.task, 21)}${pad(s.category, 27)}${pad(s.split, 9)}${pad(s.examples, 10)}${pad(s.imagesPerExample.toFixed(1), 8)}${pad(s.rejectedPerExample.toFixed(2), 10)}${pad(Math.round(s.perSecond), 9)}${answers}`,
    );
  }
  const byCategory = new Map<string, number>();
  for (const s of stats)
    byCategory.set(
      `${s.split} ${s.category}`,
      (byCategory.get(`${s.split} ${s.category}`) ?? 0) + s.examples,
    );
  lines.push('', 'per split and category:');
  for (const [k, n] of [...byCategory].sort()) lines.push(`  ${pad(k, 40)}${n}`);
  for (const s of stats) {
    if (s.templates === undefined) continue;
    lines.push('', `nlvr-statement templates (${s.split}): statements, share true`);
    for (const [k, [n, t]] of Object.entries(s.templates).sort())
      lines.push(`  ${pad(k, 24)}${pad(n, 6)}${(t / n).toFixed(2)}`);
  }
  return lines.join('\n');
}
