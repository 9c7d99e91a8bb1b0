/**
 * LLaMA decoder (Hugging Face `LlamaForCausalLM`), the language model of MaVEn. Parameter names
 * are HF's (`model.layers.{i}.self_attn.q_proj.weight`, …) so a real checkpoint loads by name.
 *
 * Per layer: x += o(attn(rope(q(rms(x))), rope(k(rms(x))), v(rms(x)))); x += down(silu(gate(rms(x))) · up(rms(x))).
 * Rotary embeddings follow HF exactly (rotate_half convention, inv_freq = θ^(-2i/hd), cos/sin of
 * [θ-angle · position] computed in the graph from int64 positions, so any position works).
 * Grouped-query attention does not copy keys/values per head as HF's `repeat_kv` does: queries
 * are grouped as [B, kvHeads, groupSize, T, hd] and matmul broadcasts each KV head over its group,
 * which is the same arithmetic without the copy.
 */
import {
  type DecoderSpec,
  type Dim,
  formatShape,
  type Graph,
  HostTensor,
  type KVCacheInputs,
  type LayerCache,
  ops,
  type Tensor,
} from '../engine/index.ts';
import { ParamInit } from './init.ts';

export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** < numAttentionHeads for grouped-query attention (LLaMA-2-70B, LLaMA-3); = it for multi-head. */
  numKeyValueHeads: number;
  /** Width of one head; default hiddenSize / numAttentionHeads, as in HF. */
  headDim?: number;
  /** 1e-6 for LLaMA-1, 1e-5 for LLaMA-2 / Vicuna. */
  rmsNormEps: number;
  /** 10000 for LLaMA-1/2; 500000 for LLaMA-3. */
  ropeTheta: number;
  /** Trained context length; informative only (rotary embeddings are computed for any position). */
  maxPositionEmbeddings: number;
  /** LM head shares embed_tokens (small models); LLaMA-7B has its own lm_head. */
  tieWordEmbeddings: boolean;
}

export interface LlamaForwardOptions {
  /** [B, T_total] int64 over past + current tokens, 1 = real token, 0 = padding. */
  attentionMask?: Tensor;
  /**
   * A KV cache to attend over (keys post-rotary, as HF caches them); attention then runs as
   * `ops.cachedAttention` (inference only), and the step's keys/values come back as `added` for the
   * caller to append. Without it, causal attention over the input alone, differentiable.
   */
  cache?: KVCacheInputs;
}

export interface LlamaOutput {
  /** [B, T, D] after the final `model.norm`. */
  hidden: Tensor;
  /** Per layer, this step's keys (rotated) and values [B, T, kvHeads·hd]; empty without a cache. */
  added: LayerCache<Tensor>[];
}

/** HF's LlamaConfig defaults for fields a config.json may leave out. */
const HF_DEFAULTS = {
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 2048,
  tie_word_embeddings: false,
};

/** A `LlamaConfig` from a Hugging Face config.json (a `LlamaConfig`, or a LLaVA-style one with `text_config`). */
export function llamaConfigFromHF(json: Record<string, unknown>): LlamaConfig {
  const c = (
    typeof json.text_config === 'object' && json.text_config !== null ? json.text_config : json
  ) as Record<string, unknown>;
  const what = 'llamaConfigFromHF';
  if (c.model_type !== undefined && c.model_type !== 'llama') {
    throw new Error(`${what}: model_type ${JSON.stringify(c.model_type)} is not 'llama'`);
  }
  const num = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`${what}: ${key} must be a number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') throw new Error(`${what}: hidden_act ${JSON.stringify(act)} is not supported (silu)`);
  for (const key of ['attention_bias', 'mlp_bias']) {
    if (c[key] === true) throw new Error(`${what}: ${key} = true is not supported (LLaMA has no biases)`);
  }
  // transformers ≥ 5 moves rope_theta into rope_parameters; scaled variants change the frequencies.
  const rope = (c.rope_parameters ?? c.rope_scaling ?? null) as Record<string, unknown> | null;
  const ropeType = rope?.rope_type ?? rope?.type ?? 'default';
  if (ropeType !== 'default') {
    throw new Error(`${what}: rope type ${JSON.stringify(ropeType)} is not supported (only unscaled rotary)`);
  }
  const heads = num('num_attention_heads');
  const config: LlamaConfig = {
    vocabSize: num('vocab_size'),
    hiddenSize: num('hidden_size'),
    intermediateSize: num('intermediate_size'),
    numHiddenLayers: num('num_hidden_layers'),
    numAttentionHeads: heads,
    numKeyValueHeads: num('num_key_value_heads', heads),
    rmsNormEps: num('rms_norm_eps', HF_DEFAULTS.rms_norm_eps),
    ropeTheta: num('rope_theta', (rope?.rope_theta as number | undefined) ?? HF_DEFAULTS.rope_theta),
    maxPositionEmbeddings: num('max_position_embeddings', HF_DEFAULTS.max_position_embeddings),
    tieWordEmbeddings:
      (c.tie_word_embeddings ?? json.tie_word_embeddings ?? HF_DEFAULTS.tie_word_embeddings) === true,
  };
  if (c.head_dim !== undefined && c.head_dim !== null) config.headDim = num('head_dim');
  validate(config);
  return config;
}

function validate(c: LlamaConfig): void {
  const ints: (keyof LlamaConfig)[] = [
    'vocabSize',
    'hiddenSize',
    'intermediateSize',
    'numHiddenLayers',
    'numAttentionHeads',
    'numKeyValueHeads',
  ];
  for (const key of ints) {
    const v = c[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new Error(`LlamaConfig: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
    }
  }
  if (c.numAttentionHeads % c.numKeyValueHeads !== 0) {
    throw new Error(
      `LlamaConfig: numAttentionHeads ${c.numAttentionHeads} must be a multiple of numKeyValueHeads ${c.numKeyValueHeads}`,
    );
  }
  if (c.headDim === undefined && c.hiddenSize % c.numAttentionHeads !== 0) {
    throw new Error(
      `LlamaConfig: hiddenSize ${c.hiddenSize} does not divide into ${c.numAttentionHeads} heads (set headDim)`,
    );
  }
  const hd = c.headDim ?? c.hiddenSize / c.numAttentionHeads;
  if (!Number.isInteger(hd) || hd <= 0 || hd % 2 !== 0) {
    throw new Error(`LlamaConfig: head dim ${hd} must be a positive even integer (rotary pairs halves)`);
  }
  if (!(c.rmsNormEps > 0)) throw new Error(`LlamaConfig: rmsNormEps must be > 0, got ${c.rmsNormEps}`);
  if (!(c.ropeTheta > 0)) throw new Error(`LlamaConfig: ropeTheta must be > 0, got ${c.ropeTheta}`);
}

export class Llama {
  readonly headDim: number;
  /** Query heads that share one key/value head. */
  readonly groupSize: number;
  private readonly shapes: Map<string, number[]>;

  constructor(readonly config: LlamaConfig) {
    validate(config);
    this.headDim = config.headDim ?? config.hiddenSize / config.numAttentionHeads;
    this.groupSize = config.numAttentionHeads / config.numKeyValueHeads;
    this.shapes = this.computeShapes();
  }

  /** Every parameter name → shape, in HF's order. */
  paramShapes(): Map<string, number[]> {
    return new Map([...this.shapes].map(([name, shape]) => [name, [...shape]]));
  }

  private computeShapes(): Map<string, number[]> {
    const { vocabSize: V, hiddenSize: D, intermediateSize: F, numKeyValueHeads: kvH } = this.config;
    const qWidth = this.config.numAttentionHeads * this.headDim;
    const kvWidth = kvH * this.headDim;
    const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [V, D]]]);
    for (let i = 0; i < this.config.numHiddenLayers; i++) {
      const p = `model.layers.${i}.`;
      shapes.set(`${p}self_attn.q_proj.weight`, [qWidth, D]);
      shapes.set(`${p}self_attn.k_proj.weight`, [kvWidth, D]);
      shapes.set(`${p}self_attn.v_proj.weight`, [kvWidth, D]);
      shapes.set(`${p}self_attn.o_proj.weight`, [D, qWidth]);
      shapes.set(`${p}mlp.gate_proj.weight`, [F, D]);
      shapes.set(`${p}mlp.up_proj.weight`, [F, D]);
      shapes.set(`${p}mlp.down_proj.weight`, [D, F]);
      shapes.set(`${p}input_layernorm.weight`, [D]);
      shapes.set(`${p}post_attention_layernorm.weight`, [D]);
    }
    shapes.set('model.norm.weight', [D]);
    if (!this.config.tieWordEmbeddings) shapes.set('lm_head.weight', [V, D]);
    return shapes;
  }

  /** HF's `_init_weights`: every matrix normal(0, 0.02) (initializer_range), every norm weight 1. */
  init(seed: number): Map<string, HostTensor> {
    const init = new ParamInit(seed);
    for (const [name, shape] of this.paramShapes()) {
      if (name.endsWith('norm.weight')) init.ones(name, shape);
      else init.normal(name, shape, 0.02);
    }
    return init.params;
  }

  /** Token embeddings: ids [B, T] int64 → [B, T, D]. */
  embedTokens(g: Graph, ids: Tensor): Tensor {
    if (ids.dtype !== 'int64' && ids.dtype !== 'int32') {
      throw new Error(`Llama.embedTokens: ids ${ids.name} must be int64 or int32, got ${ids.dtype}`);
    }
    return ops.gather(this.param(g, 'model.embed_tokens.weight'), ids);
  }

  /** The decoder stack over input embeddings [B, T, D] at absolute `positions` [B, T] int64. */
  forward(g: Graph, inputsEmbeds: Tensor, positions: Tensor, options: LlamaForwardOptions = {}): LlamaOutput {
    const { hiddenSize: D, numHiddenLayers: L } = this.config;
    if (inputsEmbeds.rank !== 3 || inputsEmbeds.shape[2] !== D) {
      throw new Error(
        `Llama.forward: inputsEmbeds ${inputsEmbeds.name}${formatShape(inputsEmbeds.shape)} must be [B, T, ${D}]`,
      );
    }
    if (positions.dtype !== 'int64' || positions.rank !== 2) {
      throw new Error(
        `Llama.forward: positions ${positions.name}: ${positions.dtype}${formatShape(positions.shape)} must be int64 [B, T]`,
      );
    }
    const { attentionMask, cache } = options;
    if (attentionMask && (attentionMask.dtype !== 'int64' || attentionMask.rank !== 2)) {
      throw new Error(
        `Llama.forward: attentionMask ${attentionMask.name}: ${attentionMask.dtype}${formatShape(attentionMask.shape)} must be int64 [B, T_total]`,
      );
    }
    if (cache && cache.layers.length !== L) {
      throw new Error(`Llama.forward: the cache has ${cache.layers.length} layers, the model has ${L}`);
    }
    if (cache && attentionMask) throw new Error('Llama.forward: a cached step takes no attention mask');
    // The cached step rotates in one node per projection from a table; the training path explicitly.
    const rotary = cache ? null : this.rotary(g, positions);
    const table = cache ? this.rotaryTable(g, positions) : null;
    let x = inputsEmbeds;
    const added: LayerCache<Tensor>[] = [];
    let mask: Tensor | null = null; // built once, on the first layer's q and k; every layer has the same lengths
    for (let i = 0; i < L; i++) {
      const p = `model.layers.${i}.`;
      const h = ops.rmsNorm(x, this.param(g, `${p}input_layernorm.weight`), this.config.rmsNormEps);
      const attn = cache
        ? this.cachedAttention(g, p, h, positions, table!, {
            ...cache.layers[i],
            mask: cache.mask,
          })
        : this.attention(g, p, h, rotary!, (q, k) => {
            mask ??= this.mask(q, k, attentionMask);
            return mask;
          });
      x = ops.add(x, attn.out);
      if (attn.added) added.push(attn.added);
      const m = ops.rmsNorm(x, this.param(g, `${p}post_attention_layernorm.weight`), this.config.rmsNormEps);
      x = ops.add(x, this.mlp(g, p, m));
    }
    return { hidden: ops.rmsNorm(x, this.param(g, 'model.norm.weight'), this.config.rmsNormEps), added };
  }

  /** [B, T, V] logits from final hidden states, through lm_head or the tied embedding table. */
  logits(g: Graph, hidden: Tensor): Tensor {
    const head = this.config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
    return ops.linear(hidden, this.param(g, head));
  }

  /** For `KVCacheDecoder`: the step takes token ids, or (prefill) input embeddings [B, T, D]. */
  decoderSpec(): DecoderSpec {
    return {
      layers: this.config.numHiddenLayers,
      kvHeads: this.config.numKeyValueHeads,
      headDim: this.headDim,
      hiddenSize: this.config.hiddenSize,
      build: (g, input, positions, cache) => {
        const embeds = input.dtype === 'int64' ? this.embedTokens(g, input) : input;
        return this.forward(g, embeds, positions, { cache });
      },
      head: (g, hidden) => this.logits(g, hidden),
      embedIds: (g, ids) => this.embedTokens(g, ids),
    };
  }

  private param(g: Graph, name: string): Tensor {
    const shape = this.shapes.get(name);
    if (!shape) throw new Error(`Llama: no parameter ${name}`);
    return g.param(name, shape);
  }

  /**
   * cos and sin of the rotary angles, each [B, T, hd]: angle[b, t, j] = position[b, t] · inv_freq[j mod hd/2],
   * the two halves repeated as HF's `torch.cat((freqs, freqs), -1)`. Computed in float32 as HF does.
   */
  private rotary(g: Graph, positions: Tensor): { cos: Tensor; sin: Tensor } {
    const halfAngles = this.angles(g, positions); // [B, T, hd/2]
    return this.cosSin(g, ops.concat([halfAngles, halfAngles], -1)); // [B, T, hd]
  }

  /** position · inv_freq[j] in float32, as HF computes it: int64 positions [...] → [..., hd/2]. */
  private angles(g: Graph, positions: Tensor): Tensor {
    return ops.mul(
      ops.unsqueeze(ops.cast(positions, 'float32'), -1), // [..., 1]
      g.constant(new HostTensor('float32', [this.headDim / 2], this.invFreq()), 'inv_freq'),
    );
  }

  /** cos and sin of `angles`, in the graph's float type. */
  private cosSin(g: Graph, angles: Tensor): { cos: Tensor; sin: Tensor } {
    // Positions carry no gradient, so Cos/Sin are emitted as plain ONNX nodes (the engine has no taped op for them).
    const trig = (op: 'Cos' | 'Sin') =>
      ops.cast(g.emit(op, [angles], [{ dtype: 'float32', shape: angles.shape }])[0], g.floatType);
    return { cos: trig('Cos'), sin: trig('Sin') };
  }

  /** inv_freq[j] = θ^(-2j/hd), j < hd/2, as HF computes it. */
  private invFreq(): Float32Array {
    const hd = this.headDim;
    return Float32Array.from({ length: hd / 2 }, (_, j) => 1 / this.config.ropeTheta ** ((2 * j) / hd));
  }

  /** x·cos + rotate_half(x)·sin, with rotate_half(x) = [-x₂, x₁] over the two halves of the last axis. */
  private applyRotary(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
    const half = this.headDim / 2;
    const rotated = ops.concat([ops.neg(ops.slice(x, -1, half)), ops.slice(x, -1, 0, half)], -1);
    return ops.add(ops.mul(x, cos), ops.mul(rotated, sin));
  }

  /**
   * Causal mask [Tq, Tk] as an additive bias, or as bool and'ed with the padding mask
   * [B, 1, 1, 1, Tk] when there is one (which can leave a padding query no key: `ops.attention`).
   */
  private mask(q: Tensor, k: Tensor, attentionMask: Tensor | undefined): Tensor {
    const causal = ops.causalMask(q, k); // [T, P + T]
    if (!attentionMask) return ops.maskBias(causal);
    const padding = ops.unsqueeze(ops.paddingMask(attentionMask), 1); // [B, 1, 1, 1, P + T]
    return ops.combineMasks(causal, padding); // [B, 1, 1, T, P + T]
  }

  private attention(
    g: Graph,
    p: string,
    h: Tensor,
    rotary: { cos: Tensor; sin: Tensor },
    mask: (q: Tensor, k: Tensor) => Tensor,
  ): { out: Tensor; added?: undefined } {
    const { numKeyValueHeads: kvH } = this.config;
    const hd = this.headDim;
    const group = this.groupSize;
    const [B, T] = h.shape as [Dim, Dim];
    const project = (name: string) => ops.linear(h, this.param(g, `${p}self_attn.${name}.weight`));
    // Query head n = kv·group + r uses key/value head kv, exactly HF's repeat_kv order.
    const q = ops.transpose(ops.reshape(project('q_proj'), [B, T, kvH, group, hd]), [0, 2, 3, 1, 4]); // [B, kvH, group, T, hd]
    const k = ops.transpose(ops.reshape(project('k_proj'), [B, T, kvH, hd]), [0, 2, 1, 3]); // [B, kvH, T, hd]
    const v = ops.transpose(ops.reshape(project('v_proj'), [B, T, kvH, hd]), [0, 2, 1, 3]); // [B, kvH, T, hd]
    const qRot = this.applyRotary(q, ops.unsqueeze(rotary.cos, [1, 2]), ops.unsqueeze(rotary.sin, [1, 2])); // cos [B, 1, 1, T, hd]
    const kRot = this.applyRotary(k, ops.unsqueeze(rotary.cos, 1), ops.unsqueeze(rotary.sin, 1)); // [B, kvH, T, hd]
    const k5 = ops.unsqueeze(kRot, 2); // [B, kvH, 1, T, hd], broadcast over the group
    const v5 = ops.unsqueeze(v, 2);
    const y = ops.attention(qRot, k5, v5, mask(qRot, k5), 1 / Math.sqrt(hd)); // [B, kvH, group, T, hd]
    const merged = ops.reshape(ops.transpose(y, [0, 3, 1, 2, 4]), [B, T, kvH * group * hd]); // [B, T, nH·hd]
    return { out: ops.linear(merged, this.param(g, `${p}self_attn.o_proj.weight`)) };
  }

  /**
   * The same attention over a KV cache (`ops.cachedAttention`), for generation; rotary in one
   * node per projection (`ops.rotaryEmbedding`), which spares the ~18 small nodes per layer the
   * explicit form costs a one-token step.
   */
  private cachedAttention(
    g: Graph,
    p: string,
    h: Tensor,
    positions: Tensor,
    table: { cos: Tensor; sin: Tensor },
    cache: ops.AttentionCache,
  ): { out: Tensor; added: LayerCache<Tensor> } {
    const { numAttentionHeads: nH, numKeyValueHeads: kvH } = this.config;
    const project = (name: string) => ops.linear(h, this.param(g, `${p}self_attn.${name}.weight`)); // [B, T, heads·hd]
    const q = ops.rotaryEmbedding(project('q_proj'), positions, table, nH);
    const k = ops.rotaryEmbedding(project('k_proj'), positions, table, kvH);
    const v = project('v_proj');
    const attn = ops.cachedAttention(q, k, v, cache, { heads: nH, kvHeads: kvH }); // [B, T, nH·hd]
    return {
      out: ops.linear(attn, this.param(g, `${p}self_attn.o_proj.weight`)),
      added: { key: k, value: v },
    };
  }

  /**
   * cos and sin of the rotary angles for positions 0 … max(positions), each [N, hd/2] (the first
   * half of `rotary`'s rows, which repeat their halves), for `ops.rotaryEmbedding`.
   */
  private rotaryTable(g: Graph, positions: Tensor): { cos: Tensor; sin: Tensor } {
    const n = ops.add(ops.max(positions, [0, 1], false), g.scalar(1, 'int64')); // [] int64
    const rows = ops.arange(g, ops.unsqueeze(n, 0), 'N'); // [N]
    return this.cosSin(g, this.angles(g, rows)); // [N, hd/2]
  }

  /** SwiGLU: down(silu(gate(x)) · up(x)). */
  private mlp(g: Graph, p: string, x: Tensor): Tensor {
    const gate = ops.silu(ops.linear(x, this.param(g, `${p}mlp.gate_proj.weight`)));
    const up = ops.linear(x, this.param(g, `${p}mlp.up_proj.weight`));
    return ops.linear(ops.mul(gate, up), this.param(g, `${p}mlp.down_proj.weight`));
  }
}
