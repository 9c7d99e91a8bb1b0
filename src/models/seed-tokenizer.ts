/**
 * SEED's discrete image tokenizer (Ge et al. 2023, "Planting a SEED of Vision in Large Language
 * Model"): frozen ViT features → `ln_vision` → causal Q-Former → `encode_task_layer` → nearest
 * entry of an 8192 × 32 codebook. The ids are the image's "words"; MaVEn reads them as the
 * coarse, semantic half of its hybrid visual encoding.
 *
 * Names follow SEED's `Blip2QformerQuantizer` (`ln_vision`, `query_tokens`, `Qformer.bert.…`,
 * `encode_task_layer.{0,2}`, `quantize.embedding.weight`, `decode_task_layer.{0,2}`) so its
 * checkpoint loads by name. As in SEED, z is not L2-normalised before the lookup (the quantizer's
 * `l2norm` is commented out there). The ViT itself (EVA-ViT-g in SEED) lives outside this class.
 */
import { type Graph, type HostTensor, ops, type Tensor } from '../engine/index.ts';
import { ParamInit } from './init.ts';
import { QFormer, type QFormerConfig } from './qformer.ts';

export interface SeedTokenizerConfig {
  qformer: QFormerConfig;
  codebookSize: number;
  codebookDim: number;
  /** β of the VQ loss (VQ-VAE / SEED: 0.25). */
  commitmentBeta: number;
  /**
   * Which VQ-loss term β scales. 'standard' (default, VQ-VAE): ‖sg(z) − q‖² + β‖z − sg(q)‖².
   * 'taming-legacy': ‖z − sg(q)‖² + β‖sg(z) − q‖², taming-transformers' `VectorQuantizer2(legacy=True)`
   * that SEED trained with. Both have the same value; only the gradients differ.
   */
  vqLossVariant?: 'standard' | 'taming-legacy';
  /** eps of `ln_vision` (LAVIS uses torch's LayerNorm default, 1e-5). */
  visionLayerNormEps?: number;
}

/** SEED tokenizer v1 as released: BLIP-2's causal Q-Former on EVA-ViT-g (1408 wide), 8192 codes × 32. */
export const SEED_TOKENIZER_CONFIG: SeedTokenizerConfig = {
  qformer: {
    hiddenSize: 768,
    numHiddenLayers: 12,
    numAttentionHeads: 12,
    intermediateSize: 3072,
    crossAttentionFrequency: 2,
    encoderHiddenSize: 1408,
    numQueryTokens: 32,
    layerNormEps: 1e-12,
    causal: true,
  },
  codebookSize: 8192,
  codebookDim: 32,
  commitmentBeta: 0.25,
  vqLossVariant: 'taming-legacy',
  visionLayerNormEps: 1e-5,
};

export interface SeedEncoding {
  /** Q-Former outputs [B, Q, Dq] (the target of SEED's reconstruction loss). */
  queries: Tensor;
  /** encode_task_layer output before quantisation [B, Q, codeDim]. */
  z: Tensor;
  /** Nearest codebook entry per query, int64 [B, Q]. */
  ids: Tensor;
  /** The codebook rows in the forward pass, the gradient of z in the backward pass [B, Q, codeDim]. */
  quantized: Tensor;
  /** Codebook + commitment loss, a scalar (means over every element, as SEED). */
  vqLoss: Tensor;
}

export class SeedTokenizer {
  readonly qformer: QFormer;

  constructor(readonly config: SeedTokenizerConfig) {
    for (const k of ['codebookSize', 'codebookDim'] as const) {
      if (!Number.isInteger(config[k]) || config[k] <= 0) {
        throw new Error(`SeedTokenizerConfig: ${k} must be a positive integer, got ${config[k]}`);
      }
    }
    if (!(config.commitmentBeta >= 0)) {
      throw new Error(`SeedTokenizerConfig: commitmentBeta must be >= 0, got ${config.commitmentBeta}`);
    }
    this.qformer = new QFormer(config.qformer);
  }

  paramShapes(): Map<string, number[]> {
    const { hiddenSize: d, encoderHiddenSize: dv } = this.config.qformer;
    const { codebookSize: k, codebookDim: c } = this.config;
    return new Map<string, number[]>([
      ['ln_vision.weight', [dv]],
      ['ln_vision.bias', [dv]],
      ...this.qformer.paramShapes(),
      ['encode_task_layer.0.weight', [d, d]],
      ['encode_task_layer.0.bias', [d]],
      ['encode_task_layer.2.weight', [c, d]],
      ['encode_task_layer.2.bias', [c]],
      ['quantize.embedding.weight', [k, c]],
      // SEED's decoder is codeDim → codeDim → Dq (not → Dq → Dq).
      ['decode_task_layer.0.weight', [c, c]],
      ['decode_task_layer.0.bias', [c]],
      ['decode_task_layer.2.weight', [d, c]],
      ['decode_task_layer.2.bias', [d]],
    ]);
  }

  /**
   * Fresh weights: the Q-Former as BERT, the task layers as torch's nn.Linear default
   * (uniform ±1/√fan_in), the codebook uniform ±1/K as taming's VectorQuantizer2.
   */
  init(source: number | ParamInit): Map<string, HostTensor> {
    const init = typeof source === 'number' ? new ParamInit(source) : source;
    const out = this.qformer.init(init);
    const shapes = this.paramShapes();
    for (const [name, shape] of shapes) {
      if (out.has(name)) continue;
      if (name === 'ln_vision.weight') out.set(name, init.ones(name, shape));
      else if (name === 'ln_vision.bias') out.set(name, init.zeros(name, shape));
      else if (name === 'quantize.embedding.weight') out.set(name, uniform(init, name, shape, 1 / shape[0]));
      else {
        const fanIn = shapes.get(name.replace(/bias$/, 'weight'))![1];
        out.set(name, uniform(init, name, shape, 1 / Math.sqrt(fanIn)));
      }
    }
    return out;
  }

  /** `ln_vision` then the Q-Former: [B, N, Dv] ViT features → [B, Q, Dq] query features. */
  queryFeatures(g: Graph, imageFeatures: Tensor): Tensor {
    const dv = this.config.qformer.encoderHiddenSize;
    if (imageFeatures.rank !== 3 || imageFeatures.shape[2] !== dv) {
      throw new Error(
        `SeedTokenizer: image features ${imageFeatures.name} must be [B, N, ${dv}], got [${imageFeatures.shape.join(', ')}]`,
      );
    }
    const normed = ops.layerNorm(
      imageFeatures,
      g.param('ln_vision.weight', [dv]),
      g.param('ln_vision.bias', [dv]),
      this.config.visionLayerNormEps ?? 1e-5,
    );
    return this.qformer.forward(g, normed);
  }

  /** Image features → codes: z = encode_task_layer(queries), ids = nearest code, straight-through quantized, VQ loss. */
  encode(g: Graph, imageFeatures: Tensor): SeedEncoding {
    const d = this.config.qformer.hiddenSize;
    const c = this.config.codebookDim;
    const queries = this.queryFeatures(g, imageFeatures); // [B, Q, Dq]
    const h = ops.tanh(
      ops.linear(
        queries,
        g.param('encode_task_layer.0.weight', [d, d]),
        g.param('encode_task_layer.0.bias', [d]),
      ),
    );
    const z = ops.linear(
      h,
      g.param('encode_task_layer.2.weight', [c, d]),
      g.param('encode_task_layer.2.bias', [c]),
    ); // [B, Q, c]
    return { queries, z, ...this.quantize(g, z) };
  }

  /** Vector quantisation of z [..., codeDim]: nearest code by squared L2, straight-through, VQ loss. */
  quantize(g: Graph, z: Tensor): Omit<SeedEncoding, 'queries' | 'z'> {
    const { codebookSize: k, codebookDim: c, commitmentBeta: beta } = this.config;
    if (z.shape[z.rank - 1] !== c) {
      throw new Error(`SeedTokenizer.quantize: z ${z.name} must end in ${c}, got [${z.shape.join(', ')}]`);
    }
    const codebook = g.param('quantize.embedding.weight', [k, c]);
    const ids = ops.nearestCode(z, codebook); // [...] int64
    const q = ops.gather(codebook, ids); // [..., c]; the codebook's gradient is a scatter-add
    const codebookTerm = ops.mean(ops.square(ops.sub(ops.stopGradient(z), q))); // moves codes to the encoder
    const commitTerm = ops.mean(ops.square(ops.sub(z, ops.stopGradient(q)))); // keeps the encoder near its code
    const vqLoss =
      this.config.vqLossVariant === 'taming-legacy'
        ? ops.add(commitTerm, ops.mul(codebookTerm, beta))
        : ops.add(codebookTerm, ops.mul(commitTerm, beta));
    return { ids, quantized: ops.straightThrough(z, q), vqLoss };
  }

  /** Codebook rows for ids [...] int64 → [..., codeDim] (SEED's `get_codebook_entry`). */
  codeEmbeddings(g: Graph, ids: Tensor): Tensor {
    const { codebookSize: k, codebookDim: c } = this.config;
    return ops.gather(g.param('quantize.embedding.weight', [k, c]), ids);
  }

  /** decode_task_layer: quantized codes [B, Q, codeDim] → [B, Q, Dq], SEED's reconstruction of the query features. */
  decode(g: Graph, quantized: Tensor): Tensor {
    const d = this.config.qformer.hiddenSize;
    const c = this.config.codebookDim;
    if (quantized.shape[quantized.rank - 1] !== c) {
      throw new Error(
        `SeedTokenizer.decode: codes ${quantized.name} must end in ${c}, got [${quantized.shape.join(', ')}]`,
      );
    }
    const h = ops.tanh(
      ops.linear(
        quantized,
        g.param('decode_task_layer.0.weight', [c, c]),
        g.param('decode_task_layer.0.bias', [c]),
      ),
    );
    return ops.linear(
      h,
      g.param('decode_task_layer.2.weight', [d, c]),
      g.param('decode_task_layer.2.bias', [d]),
    );
  }

  /**
   * SEED's `calculate_rec_loss`: mean over tokens of 1 − cos(reconstruction, target). The target
   * (the Q-Former output) gets no gradient, as SEED computes it under `torch.no_grad()`.
   */
  reconstructionLoss(reconstructed: Tensor, target: Tensor): Tensor {
    const unit = (t: Tensor) => ops.mul(t, ops.rsqrt(ops.sum(ops.square(t), -1, true))); // [..., D], ‖·‖ = 1
    const cos = ops.sum(ops.mul(unit(reconstructed), unit(ops.stopGradient(target))), -1); // [...]
    return ops.mean(ops.sub(1, cos));
  }
}

/** Uniform ±bound from the initialiser's stream for `name` (ParamInit only draws normals). */
function uniform(init: ParamInit, name: string, shape: number[], bound: number): HostTensor {
  // A unit normal through its CDF is uniform on (0, 1); this keeps each tensor's stream keyed by (seed, name).
  const t = init.normal(name, shape, 1);
  const data = t.data as Float32Array;
  for (let i = 0; i < data.length; i++) data[i] = bound * (2 * normalCdf(data[i]) - 1);
  return t;
}

/** Φ(x) via the Abramowitz–Stegun 7.1.26 erf approximation (|error| < 1.5e-7, plenty for init). */
function normalCdf(x: number): number {
  const u = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * u);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-u * u);
  return 0.5 * (1 + (x < 0 ? -erf : erf));
}
