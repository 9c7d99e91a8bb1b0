/**
 * The statistics behind every interval and "higher / lower" verdict we print, in one place.
 *
 * - **The unit is what is independent.** An NLVR sentence is asked in six box orders and a model
 *   almost always gives it the same answer in all six, so the six are one sample, not six: intervals
 *   are computed over per-sentence means (a cluster interval). Other questions are their own unit.
 * - **Comparisons are paired.** Two modes or baselines answer the same questions, so a difference
 *   is judged by the spread of the per-unit differences (a paired t interval; on 0/1 outcomes this
 *   is McNemar's test in its large-sample form), not by the two means' independent noise.
 * - **Baselines come from the data.** The chance of a yes/no benchmark is the share of its commonest
 *   expected answer in the subset evaluated, not 0.5.
 * - **Degenerate outputs are flagged whatever they are**: a column whose every score is the same
 *   (all zeros included) or whose predictions are nearly all one text measures no visual encoding.
 *
 * Pure math: no Node I/O.
 */
import { mean } from './metrics.ts';

/** A score of one independent unit of evaluation (a question, or an NLVR sentence over its orders). */
export interface Unit {
  id: string;
  value: number;
}

/** z for a two-sided 95 % interval. */
export const Z95 = 1.96;

/** Share of one prediction above which outputs count as constant. */
export const DEGENERATE_SHARE = 0.9;

/** Sample variance (n − 1); 0 for fewer than two values. */
export function sampleVariance(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  return values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1);
}

/**
 * Half-width of the 95 % Wilson score interval around an accuracy measured on n independent
 * questions.
 */
export function wilsonHalfWidth(accuracy: number, n: number): number {
  if (n <= 0) return 1;
  const z2n = (Z95 * Z95) / n;
  return (Z95 * Math.sqrt((accuracy * (1 - accuracy)) / n + z2n / (4 * n))) / (1 + z2n);
}

/** The NLVR sentence of a prediction id `identifier/order`; other ids are their own unit. */
export function nlvrSentence(id: string): string {
  const slash = id.lastIndexOf('/');
  return slash < 0 ? id : id.slice(0, slash);
}

/** Mean value per cluster, in order of first appearance: the independent units of clustered data. */
export function clusterMeans(items: readonly { cluster: string; value: number }[]): Unit[] {
  const sums = new Map<string, { sum: number; n: number }>();
  for (const { cluster, value } of items) {
    const s = sums.get(cluster) ?? { sum: 0, n: 0 };
    s.sum += value;
    s.n++;
    sums.set(cluster, s);
  }
  return [...sums].map(([id, s]) => ({ id, value: s.sum / s.n }));
}

/**
 * Half-width of a 95 % interval for the mean of independent units' scores: 1.96 · sd / √n; when
 * every unit scores the same (sd 0) and the scores are rates, the Wilson half-width over the units,
 * so a perfect or null score still has an honest interval.
 */
export function meanHalfWidth(values: readonly number[]): number {
  const n = values.length;
  if (n === 0) return 1;
  const sd = Math.sqrt(sampleVariance(values));
  if (sd > 0) return (Z95 * sd) / Math.sqrt(n);
  const m = mean(values);
  return m >= 0 && m <= 1 ? wilsonHalfWidth(m, n) : 0;
}

/** Accuracy over clustered 0/1 outcomes with the interval of its clusters (the independent units). */
export function clusteredAccuracy(items: readonly { cluster: string; correct: boolean }[]): {
  value: number;
  halfWidth: number;
  units: number;
} {
  const units = clusterMeans(items.map((i) => ({ cluster: i.cluster, value: i.correct ? 1 : 0 })));
  return {
    value: mean(items.map((i) => (i.correct ? 1 : 0))),
    halfWidth: meanHalfWidth(units.map((u) => u.value)),
    units: units.length,
  };
}

export type Verdict = 'higher' | 'lower' | 'within noise';

export interface Comparison {
  verdict: Verdict;
  /** mean(a) − mean(b) over the units compared. */
  difference: number;
  /** 95 % half-width of that difference. */
  halfWidth: number;
  /** Units compared (paired: the units both sides scored). */
  units: number;
  paired: boolean;
}

/**
 * Is `a` higher than `b` beyond noise? Paired over the units both scored (the same questions under
 * two settings) when they share all their units; otherwise (different question sets) the difference
 * of two independent means. A difference of 0 on identical outcomes is "within noise".
 */
export function compareUnits(a: readonly Unit[], b: readonly Unit[]): Comparison {
  const bById = new Map(b.map((u) => [u.id, u.value]));
  const shared = a.length === b.length && a.length > 0 && a.every((u) => bById.has(u.id));
  if (shared) {
    const d = a.map((u) => u.value - (bById.get(u.id) as number));
    const difference = mean(d);
    const halfWidth = (Z95 * Math.sqrt(sampleVariance(d))) / Math.sqrt(d.length);
    return {
      verdict: verdictOf(difference, halfWidth),
      difference,
      halfWidth,
      units: d.length,
      paired: true,
    };
  }
  const va = a.map((u) => u.value);
  const vb = b.map((u) => u.value);
  const difference = mean(va) - mean(vb);
  const halfWidth =
    Z95 *
    Math.sqrt(sampleVariance(va) / Math.max(1, va.length) + sampleVariance(vb) / Math.max(1, vb.length));
  return {
    verdict: verdictOf(difference, halfWidth),
    difference,
    halfWidth,
    units: Math.min(va.length, vb.length),
    paired: false,
  };
}

function verdictOf(difference: number, halfWidth: number): Verdict {
  if (difference > halfWidth && difference > 0) return 'higher';
  if (difference < -halfWidth && difference < 0) return 'lower';
  return 'within noise';
}

/** The most frequent value and its share (ties: the first seen; empty input: share 0). */
export function mostCommon(values: readonly string[]): { answer: string; share: number } {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = { answer: '', count: 0 };
  for (const [answer, count] of counts) if (count > best.count) best = { answer, count };
  return { answer: best.answer, share: values.length ? best.count / values.length : 0 };
}

/**
 * Why a set of outputs says nothing about the images, or null: every score the same (all zero, all
 * one, …), or one prediction text for ≥ 90 % of the questions.
 */
export function degenerate(scores: readonly number[], predictions: readonly string[] = []): string | null {
  if (scores.length > 1 && scores.every((s) => s === scores[0]))
    return `every score is ${Number.isInteger(scores[0]) ? scores[0] : scores[0].toFixed(3)}`;
  if (predictions.length > 1) {
    const top = mostCommon(predictions.map((p) => p.trim()));
    if (top.share >= DEGENERATE_SHARE)
      return `${Math.round(100 * top.share)} % of the outputs are ${top.answer === '' ? 'empty' : JSON.stringify(top.answer)}`;
  }
  return null;
}
