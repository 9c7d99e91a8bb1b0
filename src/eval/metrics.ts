/**
 * Scoring rules of the benchmarks, as pure functions: ROUGE-L (the longest-common-subsequence
 * F-measure DEMON uses for open-ended answers), matching a free-form answer to the closest
 * option (DEMON's protocol for choice tasks), picking the option with the best (optionally
 * length-normalised) log-likelihood (SEED-Bench's), and accuracy / consistency summaries.
 *
 * Pure math: no Node I/O.
 */

/** Lower-cased words and numbers: "The small-yellow Circle." → ['the', 'small', 'yellow', 'circle']. */
export function rougeTokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Length of the longest common subsequence of two token lists (O(|a|·|b|) time, O(|b|) memory). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Int32Array(b.length + 1);
  let row = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      row[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], row[j - 1]);
    }
    [prev, row] = [row, prev];
  }
  return prev[b.length];
}

export interface RougeScore {
  precision: number;
  recall: number;
  /** F_β = (1 + β²)·P·R / (R + β²·P). */
  f: number;
}

/**
 * ROUGE-L of a candidate against one reference (Lin, 2004): P = LCS / |candidate|,
 * R = LCS / |reference|. β = 1 by default (the balanced F1 most toolkits report, e.g.
 * `rouge-score`); Lin's original weights recall with β = 1.2. Two empty texts score 1, one
 * empty text 0.
 */
export function rougeL(candidate: string, reference: string, beta = 1): RougeScore {
  if (!(beta > 0)) throw new Error(`rougeL: beta must be > 0, got ${beta}`);
  const c = rougeTokens(candidate);
  const r = rougeTokens(reference);
  if (c.length === 0 && r.length === 0) return { precision: 1, recall: 1, f: 1 };
  if (c.length === 0 || r.length === 0) return { precision: 0, recall: 0, f: 0 };
  const lcs = lcsLength(c, r);
  const precision = lcs / c.length;
  const recall = lcs / r.length;
  const b2 = beta * beta;
  const f = lcs === 0 ? 0 : ((1 + b2) * precision * recall) / (recall + b2 * precision);
  return { precision, recall, f };
}

export interface OptionMatch {
  /** Index of the closest option, or -1 when the answer shares no word with any option. */
  index: number;
  /** Its ROUGE-L F against the closest of its strings. */
  score: number;
  /** Another option scored the same: the match is a guess among them (the lowest index wins). */
  tie: boolean;
}

/**
 * The option a free-form answer means (DEMON's protocol for choice tasks): an exact match
 * (ignoring case and punctuation) wins, otherwise the highest ROUGE-L F. Each option may be
 * given by several strings — e.g. its letter and its text — and scores by the best of them.
 */
export function closestOption(answer: string, options: readonly (string | readonly string[])[]): OptionMatch {
  if (options.length === 0) throw new Error('closestOption: no options to match against');
  const forms = options.map((o) => (typeof o === 'string' ? [o] : [...o]));
  const words = rougeTokens(answer).join(' ');
  const exact = forms.findIndex((f) => f.some((s) => rougeTokens(s).join(' ') === words));
  if (exact >= 0) return { index: exact, score: 1, tie: false };
  const scores = forms.map((f) => Math.max(...f.map((s) => rougeL(answer, s).f)));
  const best = Math.max(...scores);
  if (best <= 0) return { index: -1, score: 0, tie: false };
  const index = scores.indexOf(best);
  return { index, score: best, tie: scores.filter((s) => s === best).length > 1 };
}

export type Normalization = 'mean' | 'sum';

export interface LikelihoodScore {
  logLikelihood: number;
  tokens: number;
}

/**
 * The option with the highest log-likelihood: summed over its tokens ('sum') or divided by its
 * token count ('mean', SEED-Bench's length normalisation, so long options are not penalised for
 * their length). Ties go to the lower index.
 */
export function bestOption(
  scores: readonly LikelihoodScore[],
  normalization: Normalization = 'mean',
): number {
  if (scores.length === 0) throw new Error('bestOption: no scores');
  const value = (s: LikelihoodScore) => {
    if (normalization === 'sum') return s.logLikelihood;
    if (normalization === 'mean') {
      if (!(s.tokens > 0)) throw new Error(`bestOption: an option has ${s.tokens} tokens`);
      return s.logLikelihood / s.tokens;
    }
    throw new Error(`normalization must be 'mean' or 'sum', got ${JSON.stringify(normalization)}`);
  };
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (value(scores[i]) > value(scores[best])) best = i;
  return best;
}

/**
 * Consistency (NLVR): the share of groups (sentences) whose every item (box order) is right.
 * `items` pairs a group key with whether that item was answered correctly.
 */
export function consistency(items: readonly { group: string; correct: boolean }[]): number {
  const allRight = new Map<string, boolean>();
  for (const { group, correct } of items) allRight.set(group, (allRight.get(group) ?? true) && correct);
  if (allRight.size === 0) return 0;
  return [...allRight.values()].filter(Boolean).length / allRight.size;
}

/** Mean of a list (0 for an empty one, so empty categories read as 0, not NaN). */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}
