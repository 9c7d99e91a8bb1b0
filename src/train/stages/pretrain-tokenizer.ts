/**
 * Stage 0b: pretraining the SEED-style discrete tokenizer on the frozen vision tower. As in SEED,
 * the ViT is frozen (its features are the input), and the causal Q-Former, the task layers and
 * the codebook learn from two losses: the VQ loss (codebook term + β·commitment, β = 0.25) and
 * the reconstruction of the Q-Former's query features from the quantised codes
 * (`decode_task_layer`, 1 − cosine, SEED's `calculate_rec_loss`).
 *
 * SEED's Q-Former arrives pretrained (BLIP-2, then SEED's own image–text contrastive stage); ours
 * would start random, and a random Q-Former's queries carry little of the image: frozen that way,
 * the 8 ids of a Fashion-MNIST photo held 39 % of its class for a linear probe (the ViT's patches:
 * 74 %), and unrelated pictures got the same ids. So the Q-Former trains here too, with a third,
 * semantic loss standing in for SEED's contrastive stage: from the quantised codes alone (decoded,
 * mean over queries, a linear head) predict the frozen CLIP image embedding of stage 0a (1 −
 * cosine). The codes then have to carry what the caption space knows of the image, which also
 * keeps the Q-Former from collapsing onto a trivial reconstruction target.
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
import { ClipContrastiveHead } from '../../models/clip-text.ts';
import { ParamInit } from '../../models/init.ts';
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

/** The pretraining-only head of the semantic loss: mean decoded query → CLIP embedding space. */
export const SEMANTIC_HEAD = 'tokenizer_probe.semantic.weight';

export function tokenizerPretrainStage(o: TokenizerPretrainOptions): StageDefinition {
  const stage = 'stage0-tokenizer';
  checkSteps(stage, o);
  const config = o.config;
  const c = buildComponents(config);
  const size =
    config.tokenizerVision === 'shared' ? config.vision.imageSize : config.tokenizerVision.imageSize;
  const { codebookSize, codebookDim } = config.seed;
  const seed = o.seed ?? 0;

  // Stage 0a's CLIP image projection (required below, with the vision tower) sets the target's width.
  const projectionDim = o.weights.get('visual_projection.weight')?.shape[0] ?? config.vision.hiddenSize;
  const dv = config.vision.hiddenSize;
  const dq = config.seed.qformer.hiddenSize;
  const clipHead = new ClipContrastiveHead({ textWidth: dv, visionWidth: dv, projectionDim });

  const encode = (g: Graph) => {
    const pixels = g.input('pixel_values', 'float32', ['B', 3, size, size]);
    const encoding = traceDiscrete(g, config, c, pixels);
    const reconstructed = g.scoped(TOKENIZER_SCOPE, () => c.tokenizer.decode(g, encoding.quantized)); // [B, Q, Dq]
    const recLoss = c.tokenizer.reconstructionLoss(reconstructed, encoding.queries);
    // The semantic loss: the frozen CLIP image embedding, predicted from the codes alone.
    const target = clipHead.imageEmbeds(
      g,
      g.scoped(VISION_SCOPE, () => c.vision.pooled(g, pixels)),
    ); // [B, P], unit length
    const predicted = ops.linear(ops.mean(reconstructed, 1), g.param(SEMANTIC_HEAD, [projectionDim, dq])); // [B, P]
    const unitPredicted = ops.mul(predicted, ops.rsqrt(ops.sum(ops.square(predicted), -1, true)));
    const semLoss = ops.mean(ops.sub(1, ops.sum(ops.mul(unitPredicted, ops.stopGradient(target)), -1)));
    return { ...encoding, recLoss, semLoss, ...codeUsage(g, encoding.ids, codebookSize) };
  };
  const build = (g: Graph) => {
    const e = encode(g);
    return {
      loss: ops.add(ops.add(e.vqLoss, e.recLoss), e.semLoss),
      // ids and z (not scalars, so not logged) feed the dead-code restarts in afterStep.
      metrics: {
        vqLoss: e.vqLoss,
        recLoss: e.recLoss,
        semLoss: e.semLoss,
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
    () =>
      new Map([
        ...[...c.tokenizer.init(seed + 3)].map(([k, v]) => [TOKENIZER_SCOPE + k, v] as const),
        [SEMANTIC_HEAD, new ParamInit(seed + 10).normal(SEMANTIC_HEAD, [projectionDim, dq], dq ** -0.5)],
      ]),
    (name) => isVisionTower(name) || name === 'visual_projection.weight',
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
      return {
        recLoss: e.recLoss,
        vqLoss: e.vqLoss,
        semLoss: e.semLoss,
        perplexity: e.perplexity,
        codesUsed: e.codesUsed,
      };
    },
    o.runtime,
  );

  return {
    name: stage,
    description:
      'SEED tokenizer (causal Q-Former, task layers, codebook) on the frozen vision tower: VQ + reconstruction + semantic (CLIP embedding) loss, dead-code restarts',
    params,
    build,
    // The tokenizer (Q-Former included) and the semantic head; the ViT and CLIP head stay frozen.
    trainable: (name) => (name.startsWith(TOKENIZER_SCOPE) && !isVisionTower(name)) || name === SEMANTIC_HEAD,
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
        semLoss: value('semLoss'),
        perplexity: value('perplexity'),
        codesUsed: value('codesUsed'),
      };
    },
  };
}
