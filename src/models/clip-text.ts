/**
 * CLIP text transformer (Hugging Face `CLIPTextModel`) and the contrastive head of `CLIPModel`
 * (`text_projection`, `visual_projection`, `logit_scale`). MaVEn assumes a CLIP-pretrained ViT;
 * nothing can be downloaded, so the tiny recipe pretrains one against this text tower (stage 0).
 *
 * Parameter names are HF's: the tower under `text_model.` (`embeddings.token_embedding.weight`,
 * `embeddings.position_embedding.weight`, `encoder.layers.{i}.…` laid out as in the vision tower,
 * `final_layer_norm`), the head at the top level as in `CLIPModel`'s state dict, so a real
 * checkpoint (e.g. openai/clip-vit-large-patch14-336) loads by name.
 *
 * The tower is the vision tower's pre-LN block with causal self-attention; the sentence
 * embedding is the final hidden state at the EOS token (the last real token). The encoder layer
 * is written out again here rather than shared with `clip-vision.ts` because it takes a mask
 * and one file per model keeps each readable on its own.
 */
import { type Graph, type HostTensor, ops, type Tensor } from '../engine/index.ts';
import { clipEncoderLayer, clipLayerShapes } from './clip-encoder-layer.ts';
import { ParamInit } from './init.ts';

export interface ClipTextConfig {
  /** Ids 0..vocabSize−1 (openai's BPE: 49,408). */
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** Longest text in tokens, BOS and EOS included (openai: 77); the position table has this many rows. */
  maxPositionEmbeddings: number;
  layerNormEps: number;
  /** OpenAI's checkpoints use quick_gelu (x·σ(1.702x)); some retrained ones use exact gelu. */
  hiddenAct: 'quick_gelu' | 'gelu';
}

/** The text tower of openai/clip-vit-large-patch14(-336): 12 layers, 768 wide, 77 tokens. */
export const CLIP_TEXT_L_14: ClipTextConfig = {
  vocabSize: 49408,
  hiddenSize: 768,
  intermediateSize: 3072,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  maxPositionEmbeddings: 77,
  layerNormEps: 1e-5,
  hiddenAct: 'quick_gelu',
};

function validate(c: ClipTextConfig): void {
  const bad = (msg: string) => {
    throw new Error(`ClipTextConfig: ${msg}`);
  };
  for (const k of [
    'vocabSize',
    'hiddenSize',
    'intermediateSize',
    'numHiddenLayers',
    'numAttentionHeads',
    'maxPositionEmbeddings',
  ] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.hiddenSize % c.numAttentionHeads !== 0) {
    bad(`hiddenSize ${c.hiddenSize} is not divisible by numAttentionHeads ${c.numAttentionHeads}`);
  }
  if (!(c.layerNormEps > 0)) bad(`layerNormEps must be > 0, got ${c.layerNormEps}`);
  if (c.hiddenAct !== 'quick_gelu' && c.hiddenAct !== 'gelu') bad(`unknown hiddenAct ${String(c.hiddenAct)}`);
}

/** Where the sentence embedding is read: explicit EOS positions, or the last 1 of an attention mask. */
export interface PoolOptions {
  /** int64 [B]: index of each row's EOS token. */
  eosPositions?: Tensor;
  /** int64 [B, T], 1 on real tokens (right padding): EOS is taken at sum(mask) − 1. */
  attentionMask?: Tensor;
}

export class ClipTextModel {
  constructor(
    readonly config: ClipTextConfig,
    readonly prefix = 'text_model',
  ) {
    validate(config);
  }

  paramShapes(): Map<string, number[]> {
    const { vocabSize: v, hiddenSize: d, maxPositionEmbeddings: t } = this.config;
    const e = `${this.prefix}.embeddings`;
    const shapes = new Map<string, number[]>([
      [`${e}.token_embedding.weight`, [v, d]],
      [`${e}.position_embedding.weight`, [t, d]],
    ]);
    for (let i = 0; i < this.config.numHiddenLayers; i++) {
      for (const [name, shape] of clipLayerShapes(`${this.prefix}.encoder.layers.${i}`, this.config))
        shapes.set(name, shape);
    }
    shapes.set(`${this.prefix}.final_layer_norm.weight`, [d]);
    shapes.set(`${this.prefix}.final_layer_norm.bias`, [d]);
    return shapes;
  }

  /**
   * Fresh weights as HF's `CLIPPreTrainedModel._init_weights` (factor 1): embeddings N(0, 0.02),
   * attention input projections N(0, d^−½·(2L)^−½) so the residual stream does not grow with
   * depth, out_proj N(0, d^−½), fc1 N(0, (2d)^−½), fc2 as the input projections.
   */
  init(source: number | ParamInit): Map<string, HostTensor> {
    const init = typeof source === 'number' ? new ParamInit(source) : source;
    const { hiddenSize: d, numHiddenLayers: layers } = this.config;
    const inProjStd = d ** -0.5 * (2 * layers) ** -0.5;
    const out = new Map<string, HostTensor>();
    for (const [name, shape] of this.paramShapes()) {
      let t: HostTensor;
      if (name.endsWith('embedding.weight')) t = init.normal(name, shape, 0.02);
      else if (/norm\d?\.weight$/.test(name)) t = init.ones(name, shape);
      else if (name.endsWith('.bias')) t = init.zeros(name, shape);
      else if (name.includes('out_proj')) t = init.normal(name, shape, d ** -0.5);
      else if (name.includes('self_attn')) t = init.normal(name, shape, inProjStd);
      else if (name.includes('fc1')) t = init.normal(name, shape, (2 * d) ** -0.5);
      else t = init.normal(name, shape, inProjStd); // fc2
      out.set(name, t);
    }
    return out;
  }

  /**
   * `last_hidden_state` [B, T, D] (after `final_layer_norm`) for ids [B, T] int64. Causal
   * self-attention; with `attentionMask` [B, T] padded keys are masked too, as HF does.
   */
  hiddenStates(g: Graph, inputIds: Tensor, attentionMask?: Tensor): Tensor {
    const { hiddenSize: d, layerNormEps: eps, maxPositionEmbeddings: maxT } = this.config;
    if (inputIds.rank !== 2 || (inputIds.dtype !== 'int64' && inputIds.dtype !== 'int32')) {
      throw new Error(
        `ClipTextModel: inputIds ${inputIds.name} must be int64 [B, T], got ${inputIds.dtype}[${inputIds.shape.join(', ')}]`,
      );
    }
    const t = inputIds.shape[1];
    if (typeof t === 'number' && t > maxT) {
      throw new Error(
        `ClipTextModel: inputIds ${inputIds.name} has ${t} tokens, more than maxPositionEmbeddings ${maxT}`,
      );
    }
    if (attentionMask) this.checkMask(inputIds, attentionMask);
    const e = `${this.prefix}.embeddings`;
    const tokens = ops.gather(g.param(`${e}.token_embedding.weight`, [this.config.vocabSize, d]), inputIds); // [B, T, D]
    const positionIds = ops.arange(g, ops.dimOf(inputIds, 1), t); // [T]
    const positions = ops.gather(g.param(`${e}.position_embedding.weight`, [maxT, d]), positionIds); // [T, D]
    let x = ops.add(tokens, positions); // [B, T, D]

    let mask: Tensor | null = null; // [T, T] or [B, 1, T, T]; built once, every layer has the same lengths
    const maskFor = (q: Tensor, k: Tensor): Tensor => {
      if (mask) return mask;
      const causal = ops.causalMask(q, k); // [T, T]
      mask = attentionMask ? ops.combineMasks(causal, ops.paddingMask(attentionMask)) : ops.maskBias(causal); // [B, 1, T, T]
      return mask;
    };
    for (let i = 0; i < this.config.numHiddenLayers; i++) x = this.encoderLayer(g, x, i, maskFor);
    return ops.layerNorm(
      x,
      g.param(`${this.prefix}.final_layer_norm.weight`, [d]),
      g.param(`${this.prefix}.final_layer_norm.bias`, [d]),
      eps,
    );
  }

  /**
   * `pooler_output` [B, D]: the last hidden state at each row's EOS token. HF finds EOS as the
   * argmax of the ids (the legacy configs, where EOS is the largest id) or as the first EOS id;
   * here it is given, or read from the attention mask, so any tokenizer works.
   */
  pooled(g: Graph, inputIds: Tensor, options: PoolOptions): Tensor {
    const hidden = this.hiddenStates(g, inputIds, options.attentionMask); // [B, T, D]
    return this.poolAt(hidden, this.eosPositions(inputIds, options));
  }

  /** Row b of `hidden` [B, T, D] at position `positions[b]` (int64 [B]): [B, D]. */
  poolAt(hidden: Tensor, positions: Tensor): Tensor {
    const index = ops.unsqueeze(positions, [1, 2]); // [B, 1, 1]
    const wide = ops.expandAs(index, ops.slice(hidden, 1, 0, 1)); // [B, 1, D]
    return ops.squeeze(ops.gatherElements(hidden, wide, 1), 1); // [B, 1, D] → [B, D]
  }

  private eosPositions(inputIds: Tensor, options: PoolOptions): Tensor {
    const { eosPositions, attentionMask } = options;
    if (eosPositions) {
      if (eosPositions.dtype !== 'int64' || eosPositions.rank !== 1) {
        throw new Error(
          `ClipTextModel: eosPositions ${eosPositions.name} must be int64 [B], got ${eosPositions.dtype}[${eosPositions.shape.join(', ')}]`,
        );
      }
      return eosPositions;
    }
    if (attentionMask) {
      this.checkMask(inputIds, attentionMask);
      // ReduceSum in float (exact below 2^24 tokens), since the engine's sum is for floats.
      const lengths = ops.sum(ops.cast(attentionMask, 'float32'), -1); // [B]
      return ops.cast(ops.sub(lengths, 1), 'int64'); // [B]
    }
    throw new Error(
      'ClipTextModel.pooled: give eosPositions [B] or an attentionMask [B, T] to find the EOS token',
    );
  }

  private checkMask(inputIds: Tensor, mask: Tensor): void {
    const sameDims = mask.rank === 2 && mask.shape.every((d, i) => d === inputIds.shape[i]);
    if (mask.dtype !== 'int64' || !sameDims) {
      throw new Error(
        `ClipTextModel: attentionMask ${mask.name} must be int64 [${inputIds.shape.join(', ')}] like the ids, got ${mask.dtype}[${mask.shape.join(', ')}]`,
      );
    }
  }

  /** Pre-LN block: x + attn(ln1(x)) under the causal (and padding) mask, then + mlp(ln2(x)). */
  private encoderLayer(g: Graph, x: Tensor, i: number, maskFor: (q: Tensor, k: Tensor) => Tensor): Tensor {
    return clipEncoderLayer(g, this.config, `${this.prefix}.encoder.layers.${i}`, x, maskFor);
  }
}

// ---- CLIPModel's contrastive head --------------------------------------------------------

export interface ClipHeadConfig {
  /** Width of the text tower's pooled output. */
  textWidth: number;
  /** Width of the vision tower's pooled output. */
  visionWidth: number;
  /** Shared embedding width (openai ViT-L/14: 768). */
  projectionDim: number;
  /** Initial value of the learnable `logit_scale` (a log temperature); CLIP: ln(1/0.07) ≈ 2.659. */
  logitScaleInit?: number;
  /**
   * Largest multiplier exp(logit_scale) may reach; CLIP clips it at 100 "to prevent training
   * instability". Applied in the graph as min(exp(s), max), so above it no gradient pushes s further.
   */
  maxLogitScale?: number;
}

export const CLIP_LOGIT_SCALE_INIT = Math.log(1 / 0.07);
export const CLIP_MAX_LOGIT_SCALE = 100;

/** `text_projection.weight` [P, Dt], `visual_projection.weight` [P, Dv] (no biases), `logit_scale` []. */
export class ClipContrastiveHead {
  constructor(readonly config: ClipHeadConfig) {
    for (const k of ['textWidth', 'visionWidth', 'projectionDim'] as const) {
      if (!Number.isInteger(config[k]) || config[k] <= 0) {
        throw new Error(`ClipHeadConfig: ${k} must be a positive integer, got ${config[k]}`);
      }
    }
    const max = config.maxLogitScale ?? CLIP_MAX_LOGIT_SCALE;
    if (!(max > 0)) throw new Error(`ClipHeadConfig: maxLogitScale must be > 0, got ${max}`);
  }

  paramShapes(): Map<string, number[]> {
    const { textWidth: dt, visionWidth: dv, projectionDim: p } = this.config;
    return new Map<string, number[]>([
      ['text_projection.weight', [p, dt]],
      ['visual_projection.weight', [p, dv]],
      ['logit_scale', []],
    ]);
  }

  /** HF's init: projections N(0, width^−½), logit_scale = ln(1/0.07). */
  init(source: number | ParamInit): Map<string, HostTensor> {
    const init = typeof source === 'number' ? new ParamInit(source) : source;
    const { textWidth: dt, visionWidth: dv, projectionDim: p } = this.config;
    return new Map([
      ['text_projection.weight', init.normal('text_projection.weight', [p, dt], dt ** -0.5)],
      ['visual_projection.weight', init.normal('visual_projection.weight', [p, dv], dv ** -0.5)],
      ['logit_scale', init.constant('logit_scale', [], this.config.logitScaleInit ?? CLIP_LOGIT_SCALE_INIT)],
    ]);
  }

  /** Unit-length text embeddings [B, P] from the text tower's pooled output [B, Dt]. */
  textEmbeds(g: Graph, pooledText: Tensor): Tensor {
    const { textWidth: dt, projectionDim: p } = this.config;
    this.checkPooled(pooledText, dt, 'pooled text');
    return unit(ops.linear(pooledText, g.param('text_projection.weight', [p, dt])));
  }

  /** Unit-length image embeddings [B, P] from the vision tower's pooled output [B, Dv]. */
  imageEmbeds(g: Graph, pooledImage: Tensor): Tensor {
    const { visionWidth: dv, projectionDim: p } = this.config;
    this.checkPooled(pooledImage, dv, 'pooled image');
    return unit(ops.linear(pooledImage, g.param('visual_projection.weight', [p, dv])));
  }

  /** The multiplier of the cosine similarities: min(exp(logit_scale), maxLogitScale), a scalar. */
  logitScale(g: Graph): Tensor {
    return ops.minimum(
      ops.exp(g.param('logit_scale', [])),
      this.config.maxLogitScale ?? CLIP_MAX_LOGIT_SCALE,
    );
  }

  /** `logits_per_image` [B, B]: scale · image_i · text_j (rows images, columns texts). */
  logitsPerImage(g: Graph, imageEmbeds: Tensor, textEmbeds: Tensor): Tensor {
    return ops.mul(ops.linear(imageEmbeds, textEmbeds), this.logitScale(g)); // [B, P]·[B, P]ᵀ → [B, B]
  }

  /** CLIP's symmetric loss: mean of the image→text and text→image cross-entropies. */
  loss(g: Graph, imageEmbeds: Tensor, textEmbeds: Tensor): Tensor {
    return ops.infoNCE(imageEmbeds, textEmbeds, this.logitScale(g));
  }

  private checkPooled(x: Tensor, width: number, what: string): void {
    if (x.rank !== 2 || x.shape[1] !== width) {
      throw new Error(
        `ClipContrastiveHead: ${what} ${x.name} must be [B, ${width}], got [${x.shape.join(', ')}]`,
      );
    }
  }
}

/** x / ‖x‖ over the last axis (HF: `embeds / embeds.norm(p=2, dim=-1, keepdim=True)`). */
function unit(x: Tensor): Tensor {
  return ops.mul(x, ops.rsqrt(ops.sum(ops.square(x), -1, true))); // [B, P]
}
