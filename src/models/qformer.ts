/**
 * The BLIP-2 Q-Former as SEED uses it: learned query tokens read frozen image features through
 * a BERT encoder with cross-attention in every `crossAttentionFrequency`-th layer. SEED's change
 * is a causal mask on the queries' self-attention, so query i sees only queries ≤ i and the
 * resulting visual tokens have the left-to-right dependency an LLM expects.
 *
 * Only the query path exists (SEED drops the text embeddings and the text FFN); names are
 * LAVIS's (`Qformer.bert.encoder.layer.{i}.…`, `query_tokens`) so SEED checkpoints load by name.
 * Blocks are post-LN as in BERT: LayerNorm(x + sublayer(x)).
 */
import { type Graph, type HostTensor, ops, type Tensor } from '../engine/index.ts';
import { ParamInit } from './init.ts';

export interface QFormerConfig {
  /** Query width (BERT-base: 768). */
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** FFN width (BERT-base: 3072). */
  intermediateSize: number;
  /** Layers i with i % freq == 0 cross-attend to the image (BLIP-2/SEED: 2, i.e. layers 0, 2, 4, …). */
  crossAttentionFrequency: number;
  /** Width of the image features the cross-attention keys/values read (EVA-ViT-g: 1408). */
  encoderHiddenSize: number;
  numQueryTokens: number;
  /** BERT's 1e-12. */
  layerNormEps: number;
  /** SEED: true (causal query self-attention); BLIP-2: false. */
  causal: boolean;
}

function validate(c: QFormerConfig): void {
  for (const k of [
    'hiddenSize',
    'numHiddenLayers',
    'numAttentionHeads',
    'intermediateSize',
    'crossAttentionFrequency',
    'encoderHiddenSize',
    'numQueryTokens',
  ] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) {
      throw new Error(`QFormerConfig: ${k} must be a positive integer, got ${c[k]}`);
    }
  }
  if (c.hiddenSize % c.numAttentionHeads !== 0) {
    throw new Error(
      `QFormerConfig: hiddenSize ${c.hiddenSize} is not divisible by numAttentionHeads ${c.numAttentionHeads}`,
    );
  }
}

export class QFormer {
  constructor(
    readonly config: QFormerConfig,
    readonly prefix = 'Qformer.bert',
    readonly queryTokensName = 'query_tokens',
  ) {
    validate(config);
  }

  hasCrossAttention(layer: number): boolean {
    return layer % this.config.crossAttentionFrequency === 0;
  }

  paramShapes(): Map<string, number[]> {
    const { hiddenSize: d, intermediateSize: f, encoderHiddenSize: dv, numQueryTokens: q } = this.config;
    const shapes = new Map<string, number[]>([
      [this.queryTokensName, [1, q, d]],
      [`${this.prefix}.embeddings.LayerNorm.weight`, [d]],
      [`${this.prefix}.embeddings.LayerNorm.bias`, [d]],
    ]);
    const attention = (base: string, kvWidth: number) => {
      shapes.set(`${base}.self.query.weight`, [d, d]);
      shapes.set(`${base}.self.query.bias`, [d]);
      shapes.set(`${base}.self.key.weight`, [d, kvWidth]);
      shapes.set(`${base}.self.key.bias`, [d]);
      shapes.set(`${base}.self.value.weight`, [d, kvWidth]);
      shapes.set(`${base}.self.value.bias`, [d]);
      shapes.set(`${base}.output.dense.weight`, [d, d]);
      shapes.set(`${base}.output.dense.bias`, [d]);
      shapes.set(`${base}.output.LayerNorm.weight`, [d]);
      shapes.set(`${base}.output.LayerNorm.bias`, [d]);
    };
    for (let i = 0; i < this.config.numHiddenLayers; i++) {
      const l = `${this.prefix}.encoder.layer.${i}`;
      attention(`${l}.attention`, d);
      if (this.hasCrossAttention(i)) attention(`${l}.crossattention`, dv);
      shapes.set(`${l}.intermediate_query.dense.weight`, [f, d]);
      shapes.set(`${l}.intermediate_query.dense.bias`, [f]);
      shapes.set(`${l}.output_query.dense.weight`, [d, f]);
      shapes.set(`${l}.output_query.dense.bias`, [d]);
      shapes.set(`${l}.output_query.LayerNorm.weight`, [d]);
      shapes.set(`${l}.output_query.LayerNorm.bias`, [d]);
    }
    return shapes;
  }

  /** BERT's init (normal 0.02, zero biases, unit LayerNorms); query tokens normal 0.02 as LAVIS. */
  init(source: number | ParamInit): Map<string, HostTensor> {
    const init = typeof source === 'number' ? new ParamInit(source) : source;
    const out = new Map<string, HostTensor>();
    for (const [name, shape] of this.paramShapes()) {
      let t: HostTensor;
      if (name.endsWith('LayerNorm.weight')) t = init.ones(name, shape);
      else if (name.endsWith('.bias')) t = init.zeros(name, shape);
      else t = init.normal(name, shape, 0.02);
      out.set(name, t);
    }
    return out;
  }

  /** Query outputs [B, Q, Dq] (`last_hidden_state`) for image features [B, N, Dv] (already `ln_vision`-normed). */
  forward(g: Graph, imageEmbeds: Tensor): Tensor {
    const { hiddenSize: d, encoderHiddenSize: dv, numQueryTokens: q, layerNormEps: eps } = this.config;
    if (imageEmbeds.rank !== 3 || imageEmbeds.shape[2] !== dv) {
      throw new Error(
        `QFormer: image features ${imageEmbeds.name} must be [B, N, ${dv}], got [${imageEmbeds.shape.join(', ')}]`,
      );
    }
    // ONNX Expand broadcasts both ways, so [1, Q, D] expanded against a [B, 1, 1] slice is [B, Q, D].
    const batchLike = ops.slice(ops.slice(imageEmbeds, 1, 0, 1), 2, 0, 1); // [B, 1, 1]
    const queries = ops.expandAs(g.param(this.queryTokensName, [1, q, d]), batchLike); // [B, Q, D]
    const e = `${this.prefix}.embeddings.LayerNorm`;
    let x = ops.layerNorm(queries, g.param(`${e}.weight`, [d]), g.param(`${e}.bias`, [d]), eps);
    for (let i = 0; i < this.config.numHiddenLayers; i++) x = this.layer(g, x, imageEmbeds, i);
    return x;
  }

  private layer(g: Graph, x: Tensor, imageEmbeds: Tensor, i: number): Tensor {
    const { hiddenSize: d, intermediateSize: f, layerNormEps: eps } = this.config;
    const l = `${this.prefix}.encoder.layer.${i}`;
    x = this.attentionBlock(g, `${l}.attention`, x, x, this.config.causal);
    if (this.hasCrossAttention(i)) x = this.attentionBlock(g, `${l}.crossattention`, x, imageEmbeds, false);
    const p = (name: string, shape: number[]) => g.param(`${l}.${name}`, shape);
    const h = ops.gelu(
      ops.linear(x, p('intermediate_query.dense.weight', [f, d]), p('intermediate_query.dense.bias', [f])),
    ); // [B, Q, F]
    const y = ops.linear(h, p('output_query.dense.weight', [d, f]), p('output_query.dense.bias', [d]));
    return ops.layerNorm(
      ops.add(y, x),
      p('output_query.LayerNorm.weight', [d]),
      p('output_query.LayerNorm.bias', [d]),
      eps,
    );
  }

  /** BertAttention: LayerNorm(x + dense(attention(query(x), key(kv), value(kv)))). */
  private attentionBlock(g: Graph, base: string, x: Tensor, kv: Tensor, causal: boolean): Tensor {
    const { hiddenSize: d, numAttentionHeads: nH, layerNormEps: eps } = this.config;
    const hd = d / nH;
    const width = kv.shape[2] as number;
    const p = (name: string, shape: number[]) => g.param(`${base}.${name}`, shape);
    const heads = (t: Tensor, proj: string, inWidth: number) => {
      const y = ops.linear(t, p(`self.${proj}.weight`, [d, inWidth]), p(`self.${proj}.bias`, [d]));
      return ops.transpose(ops.reshape(y, [t.shape[0], t.shape[1], nH, hd]), [0, 2, 1, 3]); // [B, T, nH, hd] → [B, nH, T, hd]
    };
    const qh = heads(x, 'query', d); // [B, nH, Q, hd]
    const kh = heads(kv, 'key', width); // [B, nH, Tk, hd]
    const vh = heads(kv, 'value', width);
    const ctx = ops.attention(qh, kh, vh, causal ? ops.maskBias(ops.causalMask(qh, kh)) : undefined); // [B, nH, Q, hd]
    const merged = ops.reshape(ops.transpose(ctx, [0, 2, 1, 3]), [x.shape[0], x.shape[1], d]); // [B, Q, nH, hd] → [B, Q, D]
    const y = ops.linear(merged, p('output.dense.weight', [d, d]), p('output.dense.bias', [d]));
    return ops.layerNorm(
      ops.add(y, x),
      p('output.LayerNorm.weight', [d]),
      p('output.LayerNorm.bias', [d]),
      eps,
    );
  }
}
