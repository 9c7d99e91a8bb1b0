/**
 * Multimodal language-model batches for stages 2–4, and the graph that takes them.
 *
 * Each example is laid out on the host exactly as at inference (maven/sequence.ts): text, and per
 * image `<img>`, discrete ids, kept patches, `</img>`. Patch positions carry a dummy token id plus
 * an index into the batch's kept patch features; in the graph the projector maps those features
 * and a per-position select puts them in place of the token embeddings. So one static graph
 * trains any mix of image counts, modes and lengths (right padding; loss on answer tokens only).
 */

import { IGNORE_INDEX } from '../data/collate.ts';
import { type Graph, HostTensor, ops, type Tensor } from '../engine/index.ts';
import type { MavenComponents } from '../maven/model.ts';
import { assembleSequence, type ImageTokens } from '../maven/sequence.ts';
import type { UnifiedVocabulary } from '../maven/vocabulary.ts';

export interface MultimodalExample {
  /** Tokenised text pieces around the images (n images → n + 1 pieces; the first starts with BOS). */
  pieces: readonly (readonly number[])[];
  images: readonly (ImageTokens & { keptFeatures?: HostTensor })[];
  /** Answer tokens (EOS included), appended after the last piece; the loss covers only these. */
  answer: readonly number[];
  /**
   * More questions about the same images after the answer, each followed by its answer (EOS
   * included): the loss covers every answer and no question.
   */
  followUps?: readonly { question: readonly number[]; answer: readonly number[] }[];
  /**
   * 'images' puts the loss on the images' discrete ids and `</img>` instead (stage 2's
   * caption → image direction); default 'answer'.
   */
  lossOn?: 'answer' | 'images';
}

export interface MultimodalLayout {
  vocabulary: UnifiedVocabulary;
  imageStartId: number;
  imageEndId: number;
  order: 'discrete-first' | 'continuous-first';
  padId: number;
  visionWidth: number;
}

export function collateMultimodal(
  examples: readonly MultimodalExample[],
  layout: MultimodalLayout,
): Record<string, HostTensor> {
  if (examples.length === 0) throw new Error('collateMultimodal: empty batch');
  // Each example's tail after its last piece (answer, then follow-ups), and where its answers lie in it.
  const tails = examples.map((ex) => {
    const tokens = [...ex.answer];
    const answers: [number, number][] = [[0, ex.answer.length]];
    for (const f of ex.followUps ?? []) {
      tokens.push(...f.question);
      answers.push([tokens.length, tokens.length + f.answer.length]);
      tokens.push(...f.answer);
    }
    return { tokens, answers };
  });
  const seqs = examples.map((ex, b) => {
    const pieces = ex.pieces.map((p) => [...p]);
    pieces[pieces.length - 1].push(...tails[b].tokens);
    return assembleSequence(pieces, ex.images, layout);
  });
  const B = examples.length;
  const T = Math.max(...seqs.map((s) => s.slots.length));
  const P = Math.max(1, ...examples.map((ex) => ex.images.reduce((n, im) => n + im.keptPatches.length, 0)));
  const dv = layout.visionWidth;
  const ids = new BigInt64Array(B * T).fill(BigInt(layout.padId));
  const targets = new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
  const patchIndex = new BigInt64Array(B * T);
  const isPatch = new Float32Array(B * T);
  const features = new Float32Array(B * P * dv);
  seqs.forEach((seq, b) => {
    const ex = examples[b];
    // Where each image's kept features start in this example's patch rows.
    const base: number[] = [];
    let rows = 0;
    ex.images.forEach((im, i) => {
      base.push(rows);
      if (im.keptPatches.length && !im.keptFeatures)
        throw new Error(`collateMultimodal: example ${b} image ${i} has kept patches but no features`);
      if (im.keptFeatures) features.set(im.keptFeatures.data as Float32Array, (b * P + rows) * dv);
      rows += im.keptPatches.length;
    });
    const tailFrom = seq.slots.length - tails[b].tokens.length;
    const isTarget = (t: number) =>
      ex.lossOn === 'images'
        ? seq.images.some((im) => (t >= im.discrete[0] && t < im.discrete[1]) || t === im.end - 1)
        : tails[b].answers.some(([from, to]) => t >= tailFrom + from && t < tailFrom + to);
    seq.slots.forEach((slot, t) => {
      if (slot.kind === 'token') ids[b * T + t] = BigInt(slot.id);
      else {
        isPatch[b * T + t] = 1;
        patchIndex[b * T + t] = BigInt(base[slot.image] + slot.index);
      }
      if (t > 0 && slot.kind === 'token' && isTarget(t)) targets[b * T + t - 1] = BigInt(slot.id);
    });
  });
  return {
    ids: new HostTensor('int64', [B, T], ids),
    targets: new HostTensor('int64', [B, T], targets),
    patch_index: new HostTensor('int64', [B, T], patchIndex),
    is_patch: new HostTensor('float32', [B, T, 1], isPatch),
    patch_features: new HostTensor('float32', [B, P, dv], features),
  };
}

/** The language-model loss over a collated multimodal batch; `withPatches` false for text/discrete-only batches. */
export function traceMultimodalLoss(
  g: Graph,
  c: MavenComponents,
  withPatches: boolean,
): { loss: Tensor; logits: Tensor } {
  const dv = c.projector.config.visionWidth;
  const ids = g.input('ids', 'int64', ['B', 'T']);
  const targets = g.input('targets', 'int64', ['B', 'T']);
  let embeds = c.llm.embedTokens(g, ids); // [B, T, D]
  if (withPatches) {
    const features = g.input('patch_features', 'float32', ['B', 'P', dv]);
    const index = g.input('patch_index', 'int64', ['B', 'T']);
    const isPatch = g.input('is_patch', 'float32', ['B', 'T', 1]);
    const projected = c.projector.forward(g, features); // [B, P, D]
    const rows = ops.expandAs(ops.unsqueeze(index, -1), embeds); // [B, T, D]: index repeated over D
    const placed = ops.gatherElements(projected, rows, 1); // [B, T, D]
    // is_patch is 0/1: a blend is a select whose gradient reaches both sides where they are used.
    embeds = ops.add(ops.mul(placed, isPatch), ops.mul(embeds, ops.sub(1, isPatch)));
  }
  const positions = ops.add(ops.unsqueeze(ops.arange(g, ops.dimOf(ids, 1), 'T'), 0), ops.mul(ids, 0)); // [B, T]
  const { hidden } = c.llm.forward(g, embeds, positions);
  const logits = c.llm.logits(g, hidden); // [B, T, V]
  return { loss: ops.crossEntropy(logits, targets), logits };
}
