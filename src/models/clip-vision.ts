/**
 * CLIP vision transformer (Hugging Face `CLIPVisionModel`), the continuous-patch encoder of
 * LLaVA-style models. Parameter names are HF's under `vision_model.` so a real checkpoint
 * (e.g. openai/clip-vit-large-patch14-336) loads by name; the patch convolution is computed as
 * patchify + one Gemm over the same [D, 3, P, P] weight, which is what a stride-P conv is.
 */
import { type Graph, type HostTensor, ops, type Tensor } from '../engine/index.ts';
import { clipEncoderLayer, clipLayerShapes } from './clip-encoder-layer.ts';
import { ParamInit } from './init.ts';

export interface ClipVisionConfig {
  /** Side of the (square) input image in pixels; the position table is sized for exactly this. */
  imageSize: number;
  /** Side of a patch; imageSize must be a multiple of it. */
  patchSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  layerNormEps: number;
  /** OpenAI's CLIP checkpoints use quick_gelu (x·σ(1.702x)); some retrained ones use exact gelu. */
  hiddenAct: 'quick_gelu' | 'gelu';
  /** Image channels; 3 (RGB) unless told otherwise. */
  numChannels?: number;
}

/** openai/clip-vit-large-patch14-336, LLaVA-1.5's vision tower: 24×24 = 576 patches + CLS. */
export const CLIP_VIT_L_14_336: ClipVisionConfig = {
  imageSize: 336,
  patchSize: 14,
  hiddenSize: 1024,
  intermediateSize: 4096,
  numHiddenLayers: 24,
  numAttentionHeads: 16,
  layerNormEps: 1e-5,
  hiddenAct: 'quick_gelu',
  numChannels: 3,
};

/** The defaults of HF's `CLIPVisionConfig`, for fields a config.json leaves out. */
const HF_DEFAULTS = {
  image_size: 224,
  patch_size: 32,
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  layer_norm_eps: 1e-5,
  hidden_act: 'quick_gelu',
  num_channels: 3,
} as const;

/**
 * A `ClipVisionConfig` from a Hugging Face config.json: either a full `CLIPConfig` (its
 * `vision_config` is used) or a `CLIPVisionConfig` itself. Missing fields take HF's defaults.
 */
export function clipVisionConfigFromHF(json: unknown): ClipVisionConfig {
  if (typeof json !== 'object' || json === null)
    throw new Error('clipVisionConfigFromHF: expected an object');
  const outer = json as Record<string, unknown>;
  const vc = (
    typeof outer.vision_config === 'object' && outer.vision_config !== null ? outer.vision_config : outer
  ) as Record<string, unknown>;
  const num = (key: keyof typeof HF_DEFAULTS): number => {
    const v = vc[key] ?? HF_DEFAULTS[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`clipVisionConfigFromHF: ${key} must be a number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const act = vc.hidden_act ?? HF_DEFAULTS.hidden_act;
  if (act !== 'quick_gelu' && act !== 'gelu') {
    throw new Error(
      `clipVisionConfigFromHF: hidden_act ${JSON.stringify(act)} is not supported (quick_gelu or gelu)`,
    );
  }
  const config: ClipVisionConfig = {
    imageSize: num('image_size'),
    patchSize: num('patch_size'),
    hiddenSize: num('hidden_size'),
    intermediateSize: num('intermediate_size'),
    numHiddenLayers: num('num_hidden_layers'),
    numAttentionHeads: num('num_attention_heads'),
    layerNormEps: num('layer_norm_eps'),
    hiddenAct: act,
    numChannels: num('num_channels'),
  };
  validate(config);
  return config;
}

function validate(c: ClipVisionConfig): void {
  const bad = (msg: string) => {
    throw new Error(`ClipVisionConfig: ${msg}`);
  };
  for (const k of [
    'imageSize',
    'patchSize',
    'hiddenSize',
    'intermediateSize',
    'numHiddenLayers',
    'numAttentionHeads',
  ] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.imageSize % c.patchSize !== 0)
    bad(`imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
  if (c.hiddenSize % c.numAttentionHeads !== 0) {
    bad(`hiddenSize ${c.hiddenSize} is not divisible by numAttentionHeads ${c.numAttentionHeads}`);
  }
  if (c.hiddenAct !== 'quick_gelu' && c.hiddenAct !== 'gelu') bad(`unknown hiddenAct ${String(c.hiddenAct)}`);
}

export class ClipVisionModel {
  constructor(
    readonly config: ClipVisionConfig,
    readonly prefix = 'vision_model',
  ) {
    validate(config);
  }

  get gridSize(): number {
    return this.config.imageSize / this.config.patchSize;
  }

  get numPatches(): number {
    return this.gridSize ** 2;
  }

  private get channels(): number {
    return this.config.numChannels ?? 3;
  }

  paramShapes(): Map<string, number[]> {
    const { hiddenSize: d, patchSize: p, numHiddenLayers } = this.config;
    const e = `${this.prefix}.embeddings`;
    const shapes = new Map<string, number[]>([
      [`${e}.patch_embedding.weight`, [d, this.channels, p, p]],
      [`${e}.class_embedding`, [d]],
      [`${e}.position_embedding.weight`, [this.numPatches + 1, d]],
      [`${this.prefix}.pre_layrnorm.weight`, [d]],
      [`${this.prefix}.pre_layrnorm.bias`, [d]],
    ]);
    for (let i = 0; i < numHiddenLayers; i++) {
      for (const [name, shape] of clipLayerShapes(`${this.prefix}.encoder.layers.${i}`, this.config))
        shapes.set(name, shape);
    }
    shapes.set(`${this.prefix}.post_layernorm.weight`, [d]);
    shapes.set(`${this.prefix}.post_layernorm.bias`, [d]);
    return shapes;
  }

  /**
   * Fresh weights, following HF's `CLIPPreTrainedModel._init_weights` (factor 1): attention
   * input projections shrink with depth so the residual stream does not grow layer by layer.
   * A number seeds a new `ParamInit`; passing one adds these weights to it.
   */
  init(source: number | ParamInit): Map<string, HostTensor> {
    const init = typeof source === 'number' ? new ParamInit(source) : source;
    const { hiddenSize: d, numHiddenLayers: layers } = this.config;
    const inProjStd = d ** -0.5 * (2 * layers) ** -0.5;
    const out = new Map<string, HostTensor>();
    for (const [name, shape] of this.paramShapes()) {
      let t: HostTensor;
      if (name.endsWith('class_embedding')) t = init.normal(name, shape, d ** -0.5);
      else if (name.endsWith('patch_embedding.weight') || name.endsWith('position_embedding.weight'))
        t = init.normal(name, shape, 0.02);
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
   * HF `hidden_states[layer]` [B, N+1, D] (CLS first): index 0 is the embeddings after
   * `pre_layrnorm`, index i the output of encoder layer i−1; negative indices count from the
   * end (−1 = last layer, −2 = its input, LLaVA's choice). Only the layers needed are traced;
   * each call traces its own copy, so take several outputs from one `hiddenState` when you can.
   */
  hiddenState(g: Graph, pixelValues: Tensor, layer = -2): Tensor {
    return this.hiddenStates(g, pixelValues, layer).at(-1) as Tensor;
  }

  /** HF `hidden_states[0..layer]` from one trace (each [B, N+1, D]), for several outputs of one pass. */
  hiddenStates(g: Graph, pixelValues: Tensor, layer = -1): Tensor[] {
    const { numHiddenLayers: layers } = this.config;
    const index = layer < 0 ? layers + 1 + layer : layer;
    if (!Number.isInteger(layer) || index < 0 || index > layers) {
      throw new Error(
        `ClipVisionModel: layer ${layer} is outside HF's hidden_states (${layers + 1} entries: -${layers + 1}..${layers})`,
      );
    }
    let x = this.embeddings(g, pixelValues); // [B, N+1, D]
    const { hiddenSize: d, layerNormEps: eps } = this.config;
    x = ops.layerNorm(
      x,
      g.param(`${this.prefix}.pre_layrnorm.weight`, [d]),
      g.param(`${this.prefix}.pre_layrnorm.bias`, [d]),
      eps,
    );
    const states = [x];
    for (let i = 0; i < index; i++) {
      x = this.encoderLayer(g, x, i);
      states.push(x);
    }
    return states;
  }

  /** Patch features [B, N, D] of HF `hidden_states[layer]` (default −2) with the CLS token dropped, as LLaVA's `select_feature='patch'`. */
  patchFeatures(g: Graph, pixelValues: Tensor, options: { layer?: number } = {}): Tensor {
    return ops.slice(this.hiddenState(g, pixelValues, options.layer ?? -2), 1, 1); // [B, N, D]
  }

  /** [B, D]: `post_layernorm` of the last layer's CLS token, as `CLIPVisionModel`'s `pooler_output`. */
  pooled(g: Graph, pixelValues: Tensor): Tensor {
    return this.poolLast(g, this.hiddenState(g, pixelValues, -1));
  }

  /** `pooled` from an already traced last hidden state [B, N+1, D]. */
  poolLast(g: Graph, last: Tensor): Tensor {
    const { hiddenSize: d, layerNormEps: eps } = this.config;
    const cls = ops.squeeze(ops.slice(last, 1, 0, 1), 1); // [B, D]
    return ops.layerNorm(
      cls,
      g.param(`${this.prefix}.post_layernorm.weight`, [d]),
      g.param(`${this.prefix}.post_layernorm.bias`, [d]),
      eps,
    );
  }

  /** Patch embedding (stride-P conv as patchify + Gemm), CLS token, learned positions: [B, N+1, D]. */
  private embeddings(g: Graph, pixelValues: Tensor): Tensor {
    const { imageSize: s, patchSize: p, hiddenSize: d } = this.config;
    const c = this.channels;
    const n = this.gridSize;
    const [, ch, h, w] = pixelValues.shape;
    if (pixelValues.rank !== 4 || ch !== c || h !== s || w !== s || pixelValues.dtype !== g.floatType) {
      throw new Error(
        `ClipVisionModel: pixelValues ${pixelValues.name} must be ${g.floatType}[B, ${c}, ${s}, ${s}], got ${pixelValues.dtype}[${pixelValues.shape.join(', ')}]`,
      );
    }
    const e = `${this.prefix}.embeddings`;
    const batch = pixelValues.shape[0];
    const grid = ops.reshape(pixelValues, [batch, c, n, p, n, p]); // [B, C, gh, P, gw, P]
    const patches = ops.reshape(ops.transpose(grid, [0, 2, 4, 1, 3, 5]), [batch, n * n, c * p * p]); // [B, gh, gw, C, P, P] → [B, N, C·P·P]
    // The conv kernel [D, C, P, P] flattens in the same (c, kh, kw) order as a patch above.
    const kernel = ops.reshape(g.param(`${e}.patch_embedding.weight`, [d, c, p, p]), [d, c * p * p]); // [D, C·P·P]
    const patchEmbeds = ops.linear(patches, kernel); // [B, N, D]
    // ONNX Expand broadcasts both ways, so expanding [1, 1, D] against a [B, 1, 1] slice gives [B, 1, D].
    const batchLike = ops.slice(ops.slice(patchEmbeds, 1, 0, 1), 2, 0, 1); // [B, 1, 1]
    const cls = ops.expandAs(ops.reshape(g.param(`${e}.class_embedding`, [d]), [1, 1, d]), batchLike); // [B, 1, D]
    const tokens = ops.concat([cls, patchEmbeds], 1); // [B, N+1, D]
    return ops.add(tokens, g.param(`${e}.position_embedding.weight`, [n * n + 1, d]));
  }

  /** Pre-LN block: x + attn(ln1(x)), then + mlp(ln2(x)). */
  private encoderLayer(g: Graph, x: Tensor, i: number): Tensor {
    return clipEncoderLayer(g, this.config, `${this.prefix}.encoder.layers.${i}`, x);
  }
}
