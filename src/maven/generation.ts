/**
 * Decoding and scoring over a KV-cache decoder: greedy, temperature / top-k / top-p sampling
 * (seeded), stop strings, token streaming; and the log-likelihood of candidate answers, the
 * SEED-Bench way of answering multiple choice.
 */
import { HostTensor, type KVCacheDecoder } from '../engine/index.ts';
import { uniformSource } from '../models/init.ts';

export interface SamplingOptions {
  /** Stop after this many new tokens (default 64). */
  maxNewTokens?: number;
  /** 0 = greedy (default). */
  temperature?: number;
  /** Keep only the k most likely tokens before sampling (0 = off). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = off). */
  topP?: number;
  seed?: number;
  /** Stop when the decoded text contains any of these; the stop string is not returned. */
  stop?: readonly string[];
  /** Only ids below this can be generated (e.g. the text vocabulary, so no visual codes). */
  vocabLimit?: number;
}

export interface GenerationPiece {
  id: number;
  /** Text added by this token (may be '' while a multi-byte character is incomplete). */
  text: string;
}

/** Pick the next token from one row of logits. */
export function sampleToken(logits: Float32Array, options: SamplingOptions, rand: () => number): number {
  const limit = Math.min(options.vocabLimit ?? logits.length, logits.length);
  const temperature = options.temperature ?? 0;
  if (temperature < 0) throw new Error(`temperature must be >= 0, got ${temperature}`);
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < limit; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let candidates = Array.from({ length: limit }, (_, i) => i).sort((a, b) => logits[b] - logits[a]);
  const topK = options.topK ?? 0;
  if (topK > 0) candidates = candidates.slice(0, topK);
  const maxLogit = logits[candidates[0]];
  let probs = candidates.map((i) => Math.exp((logits[i] - maxLogit) / temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  const topP = options.topP ?? 1;
  if (topP < 1) {
    let acc = 0;
    let keep = 0;
    while (keep < probs.length && acc < topP * total) acc += probs[keep++];
    candidates = candidates.slice(0, Math.max(1, keep));
    probs = probs.slice(0, candidates.length);
    total = probs.reduce((a, b) => a + b, 0);
  }
  let r = rand() * total;
  for (let j = 0; j < candidates.length; j++) {
    r -= probs[j];
    if (r <= 0) return candidates[j];
  }
  return candidates[candidates.length - 1];
}

function lastRow(logits: HostTensor): Float32Array {
  const [, t, v] = logits.shape;
  return (logits.data as Float32Array).subarray((t - 1) * v, t * v);
}

const idsTensor = (ids: readonly number[]) =>
  new HostTensor('int64', [1, ids.length], BigInt64Array.from(ids, BigInt));
const range = (from: number, n: number) => idsTensor(Array.from({ length: n }, (_, i) => from + i));

export interface DecodeSource {
  decoder: KVCacheDecoder;
  /** Prompt as token ids [1, T] or embeddings [1, T, D]. */
  prompt: HostTensor;
  eosId: number;
  decodeText: (ids: readonly number[]) => string;
}

/**
 * Stream new tokens after the prompt. Ends at EOS, a stop string, or maxNewTokens; the text of
 * a stop string is withheld from the stream.
 */
export async function* generateTokens(
  src: DecodeSource,
  options: SamplingOptions = {},
): AsyncGenerator<GenerationPiece> {
  const max = options.maxNewTokens ?? 64;
  if (!Number.isInteger(max) || max < 0)
    throw new Error(`maxNewTokens must be a non-negative integer, got ${max}`);
  const rand = uniformSource(options.seed ?? 0);
  const stops = (options.stop ?? []).filter((s) => s.length > 0);
  const promptLength = src.prompt.shape[1];
  // A stream keeps the cache in two buffers that take turns (no per-token allocation or copy-out).
  const stream = src.decoder.stream(promptLength + max);
  let logits = await stream.prefill(src.prompt, range(0, promptLength));
  const ids: number[] = [];
  let emitted = '';
  for (let step = 0; step < max; step++) {
    const next = sampleToken(lastRow(logits), options, rand);
    if (next === src.eosId) return;
    ids.push(next);
    const text = src.decodeText(ids);
    const stopAt = stops.map((s) => text.indexOf(s)).filter((i) => i >= 0);
    if (stopAt.length) {
      const cut = Math.min(...stopAt);
      if (cut > emitted.length) yield { id: next, text: text.slice(emitted.length, cut) };
      return;
    }
    // Hold back a tail that could still grow into a stop string.
    const holdBack = Math.max(0, ...stops.map((s) => overlapSuffixPrefix(text, s)));
    const safe = text.length - holdBack;
    if (safe > emitted.length) {
      yield { id: next, text: text.slice(emitted.length, safe) };
      emitted = text.slice(0, safe);
    } else yield { id: next, text: '' };
    if (step + 1 < max)
      logits = await stream.decode(idsTensor([next]), range(promptLength + ids.length - 1, 1));
  }
  if (emitted.length < src.decodeText(ids).length)
    yield { id: -1, text: src.decodeText(ids).slice(emitted.length) };
}

/** Length of the longest suffix of `text` that is a proper prefix of `stop`. */
function overlapSuffixPrefix(text: string, stop: string): number {
  for (let n = Math.min(stop.length - 1, text.length); n > 0; n--)
    if (text.endsWith(stop.slice(0, n))) return n;
  return 0;
}

export interface CandidateScore {
  /** Σ log p(token | prefix) over the candidate's tokens. */
  logLikelihood: number;
  tokens: number;
  /** logLikelihood / tokens: the length-normalised score. */
  meanLogLikelihood: number;
}

/**
 * Log-likelihood of each candidate continuation after the prompt. The prompt is prefilled once;
 * each candidate runs as one multi-token decode step after it, written over the previous one's.
 */
export async function scoreCandidates(
  decoder: KVCacheDecoder,
  prompt: HostTensor,
  candidates: readonly (readonly number[])[],
): Promise<CandidateScore[]> {
  const promptLength = prompt.shape[1];
  const longest = Math.max(0, ...candidates.map((c) => c.length));
  const pre = await decoder.prefill(prompt, range(0, promptLength), { capacity: promptLength + longest });
  const first = logSoftmaxRow(lastRow(pre.logits));
  const results: CandidateScore[] = [];
  for (const cand of candidates) {
    if (cand.length === 0) throw new Error('scoreCandidates: a candidate answer has no tokens');
    let total = first[cand[0]];
    if (cand.length > 1) {
      const out = await decoder.decode(
        idsTensor(cand.slice(0, -1)),
        range(promptLength, cand.length - 1),
        pre.cache,
      );
      const v = out.logits.shape[2];
      for (let j = 1; j < cand.length; j++) {
        const row = logSoftmaxRow((out.logits.data as Float32Array).subarray((j - 1) * v, j * v));
        total += row[cand[j]];
      }
    }
    results.push({ logLikelihood: total, tokens: cand.length, meanLogLikelihood: total / cand.length });
  }
  return results;
}

function logSoftmaxRow(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (v) => v - lse);
}
