/**
 * What the three stage-0 pretraining stages (CLIP, SEED tokenizer, LLM) share: their options,
 * starting weights (given ones kept, missing ones freshly initialised, shapes checked), image
 * batches in the model's preprocessing, a resumable batch stream, and a forward program for
 * held-out evaluation that is compiled once and fed the current weights on every call.
 */
import { batches } from '../../data/tasks/stage-datasets.ts';
import type { ImageSource } from '../../data/tasks/task.ts';
import {
  type AdamWConfig,
  compile,
  formatShape,
  Graph,
  HostTensor,
  type Program,
  type RuntimeOptions,
  type Tensor,
  warmupCosine,
} from '../../engine/index.ts';
import type { MavenConfig } from '../../maven/config.ts';
import {
  type DecodedImage,
  fitToSquare,
  type ImagePreprocessConfig,
  normalizeImage,
} from '../../models/image.ts';

export interface PretrainOptions {
  /** The MaVEn config whose component this stage pretrains (its widths, vocabulary, image size). */
  config: MavenConfig;
  /**
   * Weights to start from, by checkpoint name (e.g. the previous stage's output). Whatever the
   * stage needs and does not find here is freshly initialised (or is an error, where a stage
   * needs it pretrained); everything here is passed on, so weights flow from stage to stage.
   */
  weights?: ReadonlyMap<string, HostTensor>;
  steps: number;
  batchSize: number;
  /** Peak learning rate: linear warm-up over 5 % of the steps, then cosine down to 10 % of it. */
  lr?: number;
  /** AdamW weight decay (decoupled; matrices and embeddings only). */
  weightDecay?: number;
  /** Seeds the fresh weights and the data stream. Default 0. */
  seed?: number;
  /** Fashion-MNIST training photos, mixed into the image–caption pairs when given. */
  fashion?: ImageSource;
  /** Held-out examples `evaluate` reads (default 64). */
  evalCount?: number;
  runtime?: RuntimeOptions;
}

export function checkSteps(stage: string, o: PretrainOptions): void {
  for (const k of ['steps', 'batchSize'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1)
      throw new Error(`${stage}: ${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.evalCount !== undefined && (!Number.isInteger(o.evalCount) || o.evalCount < 2)) {
    throw new Error(`${stage}: evalCount must be an integer ≥ 2, got ${o.evalCount}`);
  }
}

/** AdamW with warm-up (5 % of the steps) and cosine decay to 10 % of the peak. */
export function pretrainOptimizer(
  o: PretrainOptions,
  defaults: { lr: number; weightDecay: number },
): AdamWConfig {
  const peak = o.lr ?? defaults.lr;
  if (!(peak > 0)) throw new Error(`pretraining: lr must be > 0, got ${peak}`);
  return {
    lr: warmupCosine({
      peak,
      warmupSteps: Math.max(1, Math.round(o.steps * 0.05)),
      totalSteps: o.steps,
      min: peak * 0.1,
    }),
    weightDecay: o.weightDecay ?? defaults.weightDecay,
    clipNorm: 1,
  };
}

/**
 * The given weights plus, for every name in `needed` they lack, the fresh value from `fresh()`
 * (called at most once). Given weights that `needed` names must have its shape; names for which
 * `required` holds must be given. Errors list every problem at once.
 */
export function startingWeights(
  stage: string,
  needed: ReadonlyMap<string, readonly number[]>,
  given: ReadonlyMap<string, HostTensor> | undefined,
  fresh: () => ReadonlyMap<string, HostTensor>,
  required: (name: string) => boolean = () => false,
): Map<string, HostTensor> {
  const out = new Map(given ?? []);
  const problems: string[] = [];
  let made: ReadonlyMap<string, HostTensor> | null = null;
  for (const [name, shape] of needed) {
    const have = given?.get(name);
    if (have) {
      if (
        have.dtype !== 'float32' ||
        have.shape.length !== shape.length ||
        have.shape.some((d, i) => d !== shape[i])
      ) {
        problems.push(
          `"${name}": expected float32${formatShape(shape)}, got ${have.dtype}${formatShape(have.shape)}`,
        );
      }
      continue;
    }
    if (required(name)) {
      problems.push(`missing "${name}" ${formatShape(shape)}`);
      continue;
    }
    made ??= fresh();
    const value = made.get(name);
    if (!value) throw new Error(`${stage}: no initial value for "${name}" (a bug in the stage)`);
    out.set(name, value);
  }
  if (problems.length) {
    const shown = problems.slice(0, 12).join('\n  ');
    const more = problems.length > 12 ? `\n  … and ${problems.length - 12} more` : '';
    throw new Error(
      `${stage}: the starting weights do not fit (${problems.length} problem(s)):\n  ${shown}${more}`,
    );
  }
  return out;
}

/** Names and shapes of the parameters `build` declares (traced once, nothing compiled). */
export function declaredParams(build: (g: Graph) => unknown): Map<string, number[]> {
  const g = new Graph();
  build(g);
  return new Map([...g.params].map(([name, info]) => [name, info.tensor.shape as number[]]));
}

/** How the vision towers see images: CLIP's resize-and-crop at `size`, the config's statistics. */
export function preprocessFor(config: MavenConfig, size = config.vision.imageSize): ImagePreprocessConfig {
  return { size, mean: config.imageMean, std: config.imageStd, resample: 'bicubic', mode: 'clip' };
}

/** RGB images → float32 [B, 3, S, S], exactly as `preprocessImage` does each one. */
export function collateImages(
  images: readonly DecodedImage[],
  preprocess: ImagePreprocessConfig,
): HostTensor<'float32'> {
  if (images.length === 0) throw new Error('collateImages: no images');
  const S = preprocess.size;
  const out = new Float32Array(images.length * 3 * S * S);
  images.forEach((image, b) => {
    const t = normalizeImage(fitToSquare(image, preprocess), preprocess.mean, preprocess.std);
    out.set(t.data, b * 3 * S * S);
  });
  return new HostTensor('float32', [images.length, 3, S, S], out);
}

/**
 * Batches from an indexed stream: batch k holds items k·size … (k+1)·size − 1, so starting at
 * step k is O(1) and yields exactly what the uninterrupted stream yields from batch k on.
 */
export function* resumableBatches<T, R>(
  fromStep: number,
  size: number,
  stream: (start: number) => Iterable<T>,
  collate: (items: T[]) => R,
): Generator<R> {
  if (!Number.isInteger(fromStep) || fromStep < 0) {
    throw new Error(`batches: fromStep must be an integer ≥ 0, got ${fromStep}`);
  }
  for (const items of batches(stream(fromStep * size), size, { dropLast: true })) yield collate(items);
}

/** A forward-only program over a stage's graph, compiled on first use and fed the weights given on each call. */
export class EvalProgram {
  private program: Promise<{ program: Program; params: string[] }> | null = null;

  constructor(
    private readonly label: string,
    private readonly build: (g: Graph) => Record<string, Tensor>,
    private readonly runtime: RuntimeOptions = {},
  ) {}

  async run(
    weights: ReadonlyMap<string, HostTensor>,
    feeds: Record<string, HostTensor>,
  ): Promise<Record<string, HostTensor>> {
    this.program ??= (async () => {
      const g = new Graph();
      const outputs = this.build(g);
      const program = await compile(g, outputs, { ...this.runtime, label: this.label });
      return { program, params: [...g.params.keys()].filter((n) => program.reads(n)) };
    })();
    const { program, params } = await this.program;
    const all: Record<string, HostTensor> = { ...feeds };
    const missing: string[] = [];
    for (const name of params) {
      const w = weights.get(name);
      if (w) all[name] = w;
      else missing.push(name);
    }
    if (missing.length) {
      throw new Error(
        `${this.label}: the weights lack ${missing.length} tensor(s) the graph reads, e.g. "${missing[0]}"`,
      );
    }
    return program.run(all);
  }
}
