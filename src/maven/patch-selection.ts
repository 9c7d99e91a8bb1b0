/**
 * Step 2 of the image path: from step-1 encodings (image-encoding.ts), the tokens a request asks
 * for — per image its mode, in hybrid mode the patches a strategy keeps (⌈ρ·N⌉ each, or a visual
 * token budget spent over the prompt's hybrid images), and the kept patches projected into the
 * LLM's space in one batch. Generation and scoring (MavenModel.prepare), evaluation, the server's
 * cache and training all choose patches here; training stops before the projection, which it
 * trains inside its own graph (`choosePatches`).
 */
import { HostTensor } from '../engine/index.ts';
import type { ImageEncoding } from './image-encoding.ts';
import type { MavenModel } from './model.ts';
import { allocateBudget, keepCount, topKInOrder } from './patch-selector.ts';
import { ENCODING_MODES, type EncodingMode, type ImageTokens } from './sequence.ts';

/**
 * How hybrid mode picks an image's continuous patches. The model's own is `selectorStrategy`;
 * evaluation passes simple rules (src/eval/patch-strategies.ts) to ask whether it beats them.
 */
export interface PatchStrategy {
  /** Named in errors and reports. */
  readonly name: string;
  /**
   * True when it ranks patches by the selector's scores: the encodings must then carry them
   * (encoded for hybrid), and the chosen patches report them (overlays tint by them).
   */
  readonly usesScores: boolean;
  /** `counts[i]` distinct patches of each image i, in raster order. */
  keep(images: readonly ImageEncoding[], counts: readonly number[]): number[][];
  /**
   * `budget` distinct patches over all the images together, raster order per image. A strategy
   * without it cannot spend a visual-token budget (it has no ranking across images).
   */
  spend?(images: readonly ImageEncoding[], budget: number): number[][];
}

const scoresOf = (e: ImageEncoding): Float32Array => e.scores!;

/** The paper's: the top ⌈ρ·N⌉ patches by selector score; a budget goes to the best patches of any image. */
export const selectorStrategy: PatchStrategy = {
  name: 'selector',
  usesScores: true,
  keep: (images, counts) => images.map((e, i) => topKInOrder(scoresOf(e), counts[i])),
  spend: (images, budget) => allocateBudget(images.map(scoresOf), budget),
};

export interface SelectionOptions {
  /** One mode for every image, or one per image; default the config's. */
  mode?: EncodingMode | readonly EncodingMode[];
  /** ρ ∈ (0, 1] for hybrid images; default the config's. */
  keepRatio?: number;
  /**
   * Instead of ρ: this many continuous tokens for the prompt's hybrid images together, spent by
   * the strategy (by selector score, for the selector). Ignored when no image is hybrid.
   */
  visualTokenBudget?: number;
  /** Default `selectorStrategy`. */
  strategy?: PatchStrategy;
}

/** An image's tokens as step 2 chose them, before projection. */
export interface ChosenPatches extends ImageTokens {
  /** The selector's logits per patch, when the image is hybrid and the strategy ranks by them. */
  scores: Float32Array | null;
  grid: number;
}

/** An image's tokens with its kept patches projected: what a prompt is assembled from. */
export interface SelectedImage extends ChosenPatches {
  /** Projected kept patches [k, D_llm], in the order of keptPatches. */
  projected: HostTensor;
}

function checkKept(strategy: PatchStrategy, image: number, kept: number[], total: number, count?: number) {
  const ok =
    Array.isArray(kept) &&
    (count === undefined || kept.length === count) &&
    kept.every((p, j) => Number.isInteger(p) && p >= 0 && p < total && (j === 0 || p > kept[j - 1]));
  if (!ok)
    throw new Error(
      `strategy '${strategy.name}' must give image ${image} ${count === undefined ? '' : `${count} `}distinct patch indices below ${total}, ascending; got [${String(kept)}]`,
    );
}

/**
 * The host half of step 2: the patches each image keeps (no model run). `mode` and `keepRatio`
 * must be resolved by the caller (MavenModel.selectPatches takes them from the config).
 */
export function choosePatches(
  encodings: readonly ImageEncoding[],
  options: SelectionOptions & { mode: EncodingMode | readonly EncodingMode[]; keepRatio: number },
): ChosenPatches[] {
  const { keepRatio, visualTokenBudget: budget } = options;
  const strategy = options.strategy ?? selectorStrategy;
  const modes =
    typeof options.mode === 'string' ? encodings.map(() => options.mode as EncodingMode) : options.mode;
  if (modes.length !== encodings.length)
    throw new Error(`${modes.length} encoding modes for ${encodings.length} images (need one per image)`);
  for (const m of modes)
    if (!ENCODING_MODES.includes(m))
      throw new Error(`mode must be one of ${ENCODING_MODES.join(', ')}, got ${JSON.stringify(m)}`);
  if (!(keepRatio > 0 && keepRatio <= 1)) throw new Error(`keep ratio must be in (0, 1], got ${keepRatio}`);
  if (budget !== undefined) {
    if (!Number.isInteger(budget) || budget < 0)
      throw new Error(`visual token budget must be a non-negative integer, got ${budget}`);
    if (!strategy.spend)
      throw new Error(
        `visualTokenBudget is spent by selector score; it cannot be used with selection '${strategy.name}'`,
      );
  }
  encodings.forEach((e, i) => {
    const missing =
      modes[i] !== 'continuous-only' && !e.discreteIds
        ? `discrete ids, which ${modes[i]} mode reads`
        : modes[i] !== 'discrete-only' && !e.features
          ? `patch features, which ${modes[i]} mode reads`
          : modes[i] === 'hybrid' && strategy.usesScores && !e.scores
            ? `selector scores, which strategy '${strategy.name}' reads`
            : null;
    if (missing)
      throw new Error(
        `image ${i} was encoded without its ${missing}; encode it for hybrid mode (the default)`,
      );
  });
  const hybrid = modes.flatMap((m, i) => (m === 'hybrid' ? [i] : []));
  const kept: number[][] = encodings.map((e, i) =>
    modes[i] === 'continuous-only' ? Array.from({ length: e.totalPatches }, (_, p) => p) : [],
  );
  if (hybrid.length) {
    const images = hybrid.map((i) => encodings[i]);
    const counts = images.map((e) => keepCount(e.totalPatches, keepRatio));
    const chosen = budget !== undefined ? strategy.spend!(images, budget) : strategy.keep(images, counts);
    if (!Array.isArray(chosen) || chosen.length !== images.length)
      throw new Error(
        `strategy '${strategy.name}' must give one patch list per hybrid image (${images.length})`,
      );
    hybrid.forEach((i, j) => {
      checkKept(
        strategy,
        i,
        chosen[j],
        encodings[i].totalPatches,
        budget === undefined ? counts[j] : undefined,
      );
      kept[i] = chosen[j];
    });
    if (budget !== undefined) {
      const spent = chosen.reduce((n, k) => n + k.length, 0);
      if (spent !== budget)
        throw new Error(`strategy '${strategy.name}' spent ${spent} of a visual token budget of ${budget}`);
    }
  }
  return encodings.map((e, i) => ({
    discreteIds: modes[i] === 'continuous-only' ? [] : e.discreteIds!,
    keptPatches: kept[i],
    totalPatches: e.totalPatches,
    scores: modes[i] === 'hybrid' && strategy.usesScores ? e.scores : null,
    grid: e.grid,
  }));
}

/**
 * Step 2: choose each image's patches (`choosePatches`, defaults from the config) and project
 * the kept ones, all images' in one projector run.
 */
export async function selectPatches(
  model: MavenModel,
  encodings: readonly ImageEncoding[],
  options: SelectionOptions = {},
): Promise<SelectedImage[]> {
  const chosen = choosePatches(encodings, {
    ...options,
    mode: options.mode ?? model.config.defaultMode,
    keepRatio: options.keepRatio ?? model.config.keepRatio,
  });
  const dv = model.config.vision.hiddenSize;
  const dl = model.config.llm.hiddenSize;
  const total = chosen.reduce((n, c) => n + c.keptPatches.length, 0);
  if (total === 0) return chosen.map((c) => ({ ...c, projected: HostTensor.zeros('float32', [0, dl]) }));
  const rows = new Float32Array(total * dv); // [K, Dv]: every kept patch of the prompt, image by image
  let r = 0;
  chosen.forEach((c, i) => {
    const features = encodings[i].features?.data as Float32Array;
    for (const p of c.keptPatches) rows.set(features.subarray(p * dv, (p + 1) * dv), r++ * dv);
  });
  const projected = (await model.project(new HostTensor('float32', [total, dv], rows))).data as Float32Array;
  let offset = 0;
  return chosen.map((c) => {
    const k = c.keptPatches.length;
    const data = projected.slice(offset * dl, (offset + k) * dl);
    offset += k;
    return { ...c, projected: new HostTensor('float32', [k, dl], data) };
  });
}
