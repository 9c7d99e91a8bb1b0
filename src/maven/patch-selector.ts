/**
 * The patch selector (MaVEn §3.3): an MLP scores each continuous patch from
 * concat(patch feature, h_EOS), where h_EOS is the LLM's summary of the image's discrete tokens.
 * The top ⌈ρ·N⌉ patches are kept, in their original spatial order. Trained alone (stage 1)
 * with binary cross-entropy against patch pseudo-labels from object masks.
 */
import { type Graph, HostTensor, ops, type Tensor } from '../engine/index.ts';
import { ParamInit } from '../models/init.ts';

export interface PatchSelectorConfig {
  /** Width of the ViT patch features. */
  visionWidth: number;
  /** Width of h_EOS (the LLM hidden size). */
  llmWidth: number;
  /** Hidden width of the MLP; the paper does not give one, 1/4 of the input keeps it cheap. */
  hiddenSize: number;
}

export class PatchSelector {
  constructor(
    readonly config: PatchSelectorConfig,
    readonly prefix = 'patch_selector',
  ) {}

  paramShapes(): Map<string, number[]> {
    const { visionWidth, llmWidth, hiddenSize } = this.config;
    return new Map([
      [`${this.prefix}.fc1.weight`, [hiddenSize, visionWidth + llmWidth]],
      [`${this.prefix}.fc1.bias`, [hiddenSize]],
      [`${this.prefix}.fc2.weight`, [1, hiddenSize]],
      [`${this.prefix}.fc2.bias`, [1]],
    ]);
  }

  init(seed: number): Map<string, HostTensor> {
    const init = new ParamInit(seed);
    for (const [name, shape] of this.paramShapes()) {
      if (name.endsWith('.bias')) init.zeros(name, shape);
      else init.normal(name, shape, 1 / Math.sqrt(shape[1]));
    }
    return init.params;
  }

  /** Selection logits [B, N] for patch features [B, N, Dv] and h_EOS [B, Dl]. */
  scores(g: Graph, patches: Tensor, hEos: Tensor): Tensor {
    const { visionWidth: dv, llmWidth: dl, hiddenSize: h } = this.config;
    const w1 = g.param(`${this.prefix}.fc1.weight`, [h, dv + dl]);
    // fc1(concat(p, e)) = W_p·p + W_e·e + b: the h_EOS half is computed once per image and
    // broadcast over its patches instead of copying h_EOS N times.
    const fromPatch = ops.linear(patches, ops.slice(w1, 1, 0, dv)); // [B, N, h]
    const fromEos = ops.unsqueeze(
      ops.linear(hEos, ops.slice(w1, 1, dv), g.param(`${this.prefix}.fc1.bias`, [h])),
      1,
    ); // [B, 1, h]
    const hidden = ops.gelu(ops.add(fromPatch, fromEos)); // [B, N, h]
    const logit = ops.linear(
      hidden,
      g.param(`${this.prefix}.fc2.weight`, [1, h]),
      g.param(`${this.prefix}.fc2.bias`, [1]),
    ); // [B, N, 1]
    return ops.squeeze(logit, -1); // [B, N]
  }
}

/** ⌈ρ·N⌉, the number of patches kept at keep ratio ρ ∈ (0, 1]. */
export function keepCount(numPatches: number, keepRatio: number): number {
  if (!(keepRatio > 0 && keepRatio <= 1)) throw new Error(`keep ratio must be in (0, 1], got ${keepRatio}`);
  // Guard against ρ·N landing a hair above an integer through floating point (0.25 · 576).
  return Math.min(numPatches, Math.ceil(keepRatio * numPatches - 1e-9));
}

/** Indices of the k highest scores, ascending (original spatial order); ties go to the lower index. */
export function topKInOrder(scores: ArrayLike<number>, k: number): number[] {
  if (!Number.isInteger(k) || k < 0 || k > scores.length)
    throw new Error(`cannot keep ${k} of ${scores.length} patches`);
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  return order.slice(0, k).sort((a, b) => a - b);
}

/**
 * Global budget (beyond the paper): spend `budget` continuous tokens over all images of a
 * prompt, taking the highest-scoring patches wherever they are, so a busy image gets more than
 * a blank one. `minPerImage` patches are reserved for each image first.
 */
export function allocateBudget(
  scores: readonly ArrayLike<number>[],
  budget: number,
  minPerImage = 0,
): number[][] {
  const total = scores.reduce((n, s) => n + s.length, 0);
  if (!Number.isInteger(budget) || budget < 0)
    throw new Error(`visual token budget must be a non-negative integer, got ${budget}`);
  if (budget > total)
    throw new Error(
      `visual token budget ${budget} exceeds the ${total} patches of ${scores.length} image(s)`,
    );
  if (minPerImage * scores.length > budget) {
    throw new Error(
      `budget ${budget} cannot give ${minPerImage} patch(es) to each of ${scores.length} images`,
    );
  }
  const kept = scores.map((s) => new Set(topKInOrder(s, Math.min(minPerImage, s.length))));
  const rest: [number, number, number][] = []; // [score, image, patch]
  scores.forEach((s, i) => {
    for (let p = 0; p < s.length; p++) if (!kept[i].has(p)) rest.push([s[p], i, p]);
  });
  rest.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
  let left = budget - kept.reduce((n, k) => n + k.size, 0);
  for (const [, i, p] of rest) {
    if (left-- <= 0) break;
    kept[i].add(p);
  }
  return kept.map((k) => [...k].sort((a, b) => a - b));
}

/** Gather rows `indices` of a [N, D] float32 matrix stored row-major: [k, D]. */
export function gatherRows(matrix: Float32Array, width: number, indices: readonly number[]): HostTensor {
  const out = new Float32Array(indices.length * width);
  indices.forEach((r, i) => {
    out.set(matrix.subarray(r * width, (r + 1) * width), i * width);
  });
  return new HostTensor('float32', [indices.length, width], out);
}
