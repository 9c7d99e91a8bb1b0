/**
 * What each encoding costs per question, measured in one run on the same questions: prompt
 * length (slots the LLM reads), image encoding + prompt assembly time, prefill time, and the total
 * time to answer a multiple-choice question by likelihood. Each mode runs the questions as a block
 * after an untimed pass (steady state), in two rounds of opposite order.
 */

import type { TaskExample } from '../data/tasks/types.ts';
import { HostTensor } from '../engine/index.ts';
import type { MavenModel } from '../maven/model.ts';
import type { SelectionOptions } from '../maven/patch-selection.ts';
import { answerCandidates } from './tasks.ts';

export interface CostVariant {
  label: string;
  options: SelectionOptions;
}

export interface CostRow {
  label: string;
  questions: number;
  /** Means per question. */
  promptTokens: number;
  visualTokensPerImage: number;
  encodeMs: number;
  prefillMs: number;
  totalMs: number;
  /** Medians (robust to a stall of the machine). */
  medianPrefillMs: number;
  medianTotalMs: number;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const avg = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

/** Time one question: encode + assemble, a separate prefill (timed alone), then likelihood scoring. */
async function timeQuestion(model: MavenModel, ex: TaskExample, options: SelectionOptions) {
  const t0 = performance.now();
  const prepared = await model.prepare(ex.prompt, model.preprocessRgb(ex.images), options);
  const t1 = performance.now();
  const decoder = await model.llmDecoder();
  const length = prepared.embeds.shape[1];
  const positions = new HostTensor(
    'int64',
    [1, length],
    BigInt64Array.from({ length }, (_, i) => BigInt(i)),
  );
  const t2 = performance.now();
  await decoder.prefill(prepared.embeds, positions);
  const t3 = performance.now();
  await model.scorePrepared(
    prepared,
    answerCandidates(ex).map((o) => ` ${o}`),
  );
  const t4 = performance.now();
  const images = prepared.images;
  return {
    promptTokens: prepared.sequence.slots.length,
    visualTokens: images.length
      ? images.reduce((n, e) => n + e.discreteIds.length + e.keptPatches.length, 0) / images.length
      : 0,
    encodeMs: t1 - t0,
    prefillMs: t3 - t2,
    // The answer's cost: encoding plus scoring (which prefills once itself); the extra timed prefill is not counted.
    totalMs: t1 - t0 + (t4 - t3),
  };
}

export async function measureCost(
  model: MavenModel,
  questions: readonly TaskExample[],
  variants: readonly CostVariant[],
  options: { onProgress?: (done: number, total: number) => void } = {},
): Promise<CostRow[]> {
  if (questions.length === 0) throw new Error('measureCost: no questions');
  // Each variant answers all questions in a block, first untimed (compilation, first-run
  // allocations at each input shape), then timed: steady state, as when serving one mode.
  // Interleaving variants question by question would also time their programs evicting each
  // other from the caches. Two rounds in opposite orders balance any drift in machine load.
  const samples = variants.map(() => [] as Awaited<ReturnType<typeof timeQuestion>>[]);
  const order = [...variants.keys()];
  const total = 2 * questions.length * variants.length;
  let done = 0;
  for (const round of [order, [...order].reverse()]) {
    for (const i of round) {
      for (const ex of questions) await timeQuestion(model, ex, variants[i].options);
      for (const ex of questions) {
        samples[i].push(await timeQuestion(model, ex, variants[i].options));
        options.onProgress?.(++done, total);
      }
    }
  }
  return variants.map((v, i) => {
    const s = samples[i];
    return {
      label: v.label,
      questions: s.length,
      promptTokens: avg(s.map((x) => x.promptTokens)),
      visualTokensPerImage: avg(s.map((x) => x.visualTokens)),
      encodeMs: avg(s.map((x) => x.encodeMs)),
      prefillMs: avg(s.map((x) => x.prefillMs)),
      totalMs: avg(s.map((x) => x.totalMs)),
      medianPrefillMs: median(s.map((x) => x.prefillMs)),
      medianTotalMs: median(s.map((x) => x.totalMs)),
    };
  });
}
