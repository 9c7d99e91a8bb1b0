/**
 * NLVR (real, human-written): each sentence about three boxes, in all six box orders, answered
 * by comparing the likelihood of "true" and "false" after the same prompt the generated NLVR-style
 * task uses. Reports accuracy over all (sentence, order) pairs and consistency: the share of
 * sentences answered correctly in all six orders.
 */
import { createHash } from 'node:crypto';
import type { DataDirOptions } from '../data/data-dir.ts';
import { loadNlvr, loadNlvrImages, type NlvrSplit } from '../data/nlvr.ts';
import { nlvrStatementPrompt } from '../data/tasks/nlvr-statement.ts';
import type { MavenModel } from '../maven/model.ts';
import type { SelectedImage, SelectionOptions } from '../maven/patch-selection.ts';
import type { ImageTokens } from '../maven/sequence.ts';

export interface NlvrPrediction {
  identifier: string;
  order: number;
  label: boolean;
  predicted: boolean;
  /** log p("true") − log p("false") */
  margin: number;
  /** Length of the prompt the LLM read, in slots (tokens and patches). */
  promptTokens?: number;
  /** Visual tokens per image (discrete ids + kept patches), averaged over the three boxes. */
  visualTokens?: number;
}

export interface NlvrResult {
  split: NlvrSplit;
  examples: number;
  accuracy: number;
  consistency: number;
  /** Share of "true" answers given, to spot a model that always says one thing. */
  trueRate: number;
  predictions: NlvrPrediction[];
}

/** The prompt of the generated NLVR-style task, so the model reads real sentences as it was trained. */
export function nlvrPrompt(sentence: string): string {
  return nlvrStatementPrompt(sentence);
}

export async function evaluateNlvr(
  model: MavenModel,
  split: NlvrSplit,
  options: SelectionOptions &
    DataDirOptions & {
      limit?: number;
      orders?: readonly number[];
      onProgress?: (done: number, total: number) => void;
    } = {},
): Promise<NlvrResult> {
  const { examples } = await loadNlvr(split, options);
  const chosen = examples.slice(0, options.limit ?? examples.length);
  const orders = options.orders ?? [0, 1, 2, 3, 4, 5];
  const predictions: NlvrPrediction[] = [];
  let done = 0;
  for (const ex of chosen) {
    // The six orders show the same three boxes: encode them once, with the first order, and
    // find each box's encoding by its pixels in the other orders.
    const encodings = new Map<string, SelectedImage>();
    for (const order of orders) {
      const boxes = await loadNlvrImages(ex, order);
      const keys = boxes.map((b) => createHash('sha256').update(b.data).digest('hex'));
      if (keys.some((k) => !encodings.has(k))) {
        // As one batch, like an uncached run: a visual-token budget is spent over the picture.
        const images = model.preprocessRgb(
          boxes.map((b) => ({ width: b.width, height: b.height, rgb: b.data })),
        );
        const encoded = await model.selectPatches(await model.encodeImages(images, options), options);
        for (const [i, k] of keys.entries()) encodings.set(k, encoded[i]);
      }
      const prepared = model.prepareEncoded(
        nlvrPrompt(ex.sentence),
        keys.map((k) => encodings.get(k) as SelectedImage),
      );
      const [t, f] = await model.scorePrepared(prepared, ['true', 'false']);
      const margin = t.logLikelihood - f.logLikelihood;
      predictions.push({
        identifier: ex.identifier,
        order,
        label: ex.label,
        predicted: margin > 0,
        margin,
        promptTokens: prepared.sequence.slots.length,
        visualTokens: visualTokensPerImage(prepared.images),
      });
      options.onProgress?.(++done, chosen.length * orders.length);
    }
  }
  return summarizeNlvr(split, predictions);
}

/** Discrete ids plus kept patches per image, averaged over the images (0 without images). */
export function visualTokensPerImage(images: readonly ImageTokens[]): number {
  if (images.length === 0) return 0;
  return images.reduce((n, e) => n + e.discreteIds.length + e.keptPatches.length, 0) / images.length;
}

/** Accuracy, consistency and true-rate from per-(sentence, order) predictions. */
export function summarizeNlvr(split: NlvrSplit, predictions: readonly NlvrPrediction[]): NlvrResult {
  const bySentence = new Map<string, boolean>();
  let correct = 0;
  let saidTrue = 0;
  for (const p of predictions) {
    const ok = p.predicted === p.label;
    if (ok) correct++;
    if (p.predicted) saidTrue++;
    bySentence.set(p.identifier, (bySentence.get(p.identifier) ?? true) && ok);
  }
  const n = Math.max(1, predictions.length);
  return {
    split,
    examples: bySentence.size,
    accuracy: correct / n,
    consistency: [...bySentence.values()].filter(Boolean).length / Math.max(1, bySentence.size),
    trueRate: saidTrue / n,
    predictions: [...predictions],
  };
}
