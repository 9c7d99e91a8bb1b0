/**
 * Stage 0b: pretraining the SEED-style discrete tokenizer on the frozen vision tower. As in SEED,
 * the ViT is frozen (its features are the input), and the causal Q-Former, the task layers and
 * the codebook learn from two losses: the VQ loss (codebook term + β·commitment, β = 0.25) and
 * the reconstruction of the Q-Former's query features from the quantised codes
 * (`decode_task_layer`, 1 − cosine, SEED's `calculate_rec_loss`).
 *
 * A VQ codebook trained by gradient alone collapses onto a few codes, so between steps the stage
 * restarts codes unused for a while onto recent encoder outputs (`codebook.ts`, through the
 * `afterStep` hook). Usage is reported as metrics: per batch from the graph (`perplexity`,
 * `codesUsed`), over the restart window from the hook (`windowPerplexity`, `windowCodesUsed`,
 * `restarted`). Evaluation: reconstruction loss and code usage on held-out images.
 */
import { type CaptionPair, captionPair, captionPairs } from '../../data/tasks/stage-datasets.ts';
import { type Graph, type HostTensor, ops, type Tensor } from '../../engine/index.ts';
import {
  buildComponents,
  TOKENIZER_SCOPE,
  TOKENIZER_VISION_SCOPE,
  traceDiscrete,
  VISION_SCOPE,
} from '../../maven/model.ts';
import { CodebookUsage, type DeadCodeOptions } from '../codebook.ts';
import type { StageDefinition } from '../stage.ts';
import {
  checkSteps,
  collateImages,
  declaredParams,
  EvalProgram,
  type PretrainOptions,
  preprocessFor,
  pretrainOptimizer,
  resumableBatches,
  startingWeights,
} from './pretrain-common.ts';

export const CODEBOOK = `${TOKENIZER_SCOPE}quantize.embedding.weight`;

export interface TokenizerPretrainOptions extends PretrainOptions {
  /** Must hold the (CLIP-pretrained) vision tower the tokenizer reads; it stays frozen. */
  weights: ReadonlyMap<string, HostTensor>;
  /** Dead-code restarts (window, buffer, noise); false turns them off. */
  restarts?: Omit<DeadCodeOptions, 'codebookSize' | 'codebookDim'> | false;
}

/** Whether a parameter belongs to a ViT (frozen here): the shared tower or the tokenizer's own. */
export function isVisionTower(name: string): boolean {
  return name.startsWith(VISION_SCOPE) || name.startsWith(TOKENIZER_VISION_SCOPE);
}

/**
 * Batch code statistics in the graph, from ids [B, Q]: perplexity exp(−Σ p log p) of the code
 * frequencies p [K], and the number of distinct codes.
 */
function codeUsage(g: Graph, ids: Tensor, codebookSize: number): { perplexity: Tensor; codesUsed: Tensor } {
  const onehot = ops.cast(ops.equal(ops.unsqueeze(ids, -1), ops.arange(g, codebookSize)), g.floatType); // [B, Q, K]
  const p = ops.mean(onehot, [0, 1]); // [K]
  const entropy = ops.neg(ops.sum(ops.mul(p, ops.log(ops.add(p, 1e-10)))));
  return { perplexity: ops.exp(entropy), codesUsed: ops.sum(ops.cast(ops.greater(p, 0), g.floatType)) };
}

/** The Q-Former proper (queries, vision LayerNorm, BERT layers), frozen in this stage. */
export function isQFormerBody(name: string): boolean {
  return ['Qformer.', 'query_tokens', 'ln_vision.'].some((p) => name.startsWith(TOKENIZER_SCOPE + p));
}

export function tokenizerPretrainStage(o: TokenizerPretrainOptions): StageDefinition {
  const stage = 'stage0-tokenizer';
  checkSteps(stage, o);
  const config = o.config;
  const c = buildComponents(config);
  const size =
    config.tokenizerVision === 'shared' ? config.vision.imageSize : config.tokenizerVision.imageSize;
  const { codebookSize, codebookDim } = config.seed;
  const seed = o.seed ?? 0;

  const encode = (g: Graph) => {
    const pixels = g.input('pixel_values', 'float32', ['B', 3, size, size]);
    const encoding = traceDiscrete(g, config, c, pixels);
    const reconstructed = g.scoped(TOKENIZER_SCOPE, () => c.tokenizer.decode(g, encoding.quantized)); // [B, Q, Dq]
    const recLoss = c.tokenizer.reconstructionLoss(reconstructed, encoding.queries);
    return { ...encoding, recLoss, ...codeUsage(g, encoding.ids, codebookSize) };
  };
  const build = (g: Graph) => {
    const e = encode(g);
    return {
      loss: ops.add(e.vqLoss, e.recLoss),
      // ids and z (not scalars, so not logged) feed the dead-code restarts in afterStep.
      metrics: {
        vqLoss: e.vqLoss,
        recLoss: e.recLoss,
        perplexity: e.perplexity,
        codesUsed: e.codesUsed,
        ids: e.ids,
        z: e.z,
      },
    };
  };

  const params = startingWeights(
    stage,
    declaredParams(build),
    o.weights,
    () => new Map([...c.tokenizer.init(seed + 3)].map(([k, v]) => [TOKENIZER_SCOPE + k, v])),
    isVisionTower,
  );

  const usage =
    o.restarts === false ? null : new CodebookUsage({ codebookSize, codebookDim, seed, ...o.restarts });
  const preprocess = preprocessFor(config, size);
  const data = { seed, split: 'train' as const, fashion: o.fashion };
  const collate = (pairs: CaptionPair[]) => ({
    pixel_values: collateImages(
      pairs.map((p) => p.image),
      preprocess,
    ),
  });

  let evalPixels: HostTensor | null = null;
  const evaluator = new EvalProgram(
    `${stage} eval`,
    (g) => {
      const e = encode(g);
      return { recLoss: e.recLoss, vqLoss: e.vqLoss, perplexity: e.perplexity, codesUsed: e.codesUsed };
    },
    o.runtime,
  );

  return {
    name: stage,
    description:
      'SEED tokenizer task layers + codebook on the frozen vision tower and causal Q-Former: VQ + reconstruction loss, dead-code restarts',
    params,
    build,
    // The Q-Former stays as initialised, as SEED keeps its (BLIP-2-pretrained) Q-Former frozen
    // while training the tokenizer: its query features are the reconstruction target, and a
    // trainable target collapses (every image to the same few codes, reconstruction trivially
    // perfect: seen here, 5 codes in use). Only the task layers and the codebook learn.
    trainable: (name) => !isVisionTower(name) && !isQFormerBody(name),
    // No weight decay: it would pull every code towards the origin, where unused codes go dead.
    optimizer: pretrainOptimizer(o, { lr: 1e-3, weightDecay: 0 }),
    steps: o.steps,
    batches: (fromStep) =>
      resumableBatches(fromStep, o.batchSize, (start) => captionPairs({ ...data, start }), collate),
    batchSize: (feeds) => feeds.pixel_values.shape[0],
    batchUnit: 'examples',
    afterStep: usage
      ? (result, trainer) => {
          const { ids, z } = result.metrics;
          usage.observe(result.step, ids.data as BigInt64Array, z.data as Float32Array);
          const codebook = trainer.parameters().get(CODEBOOK);
          if (!codebook) throw new Error(`${stage}: the trainer has no trainable "${CODEBOOK}"`);
          const state = trainer.optimizerState();
          const moments = [state.get(`${CODEBOOK}@adam_m`), state.get(`${CODEBOOK}@adam_v`)].filter(
            (m): m is HostTensor => m !== undefined,
          );
          const restarted = usage.restart(
            result.step,
            codebook.data as Float32Array,
            moments.map((m) => m.data as Float32Array),
          );
          const window = usage.stats();
          return {
            windowPerplexity: window.perplexity,
            windowCodesUsed: window.used,
            restarted: restarted.length,
          };
        }
      : undefined,
    evaluate: async (weights) => {
      evalPixels ??= collate(
        Array.from({ length: o.evalCount ?? 64 }, (_, i) =>
          captionPair(i, { ...data, split: 'heldout', fashion: undefined }),
        ),
      ).pixel_values;
      const r = await evaluator.run(weights, { pixel_values: evalPixels });
      const value = (k: string) => Number(r[k].data[0]);
      return {
        recLoss: value('recLoss'),
        vqLoss: value('vqLoss'),
        perplexity: value('perplexity'),
        codesUsed: value('codesUsed'),
      };
    },
  };
}
