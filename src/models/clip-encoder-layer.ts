/**
 * One pre-norm transformer layer of CLIP (HF `CLIPEncoderLayer`), shared by the vision and text
 * towers: LayerNorm → multi-head self-attention → residual, LayerNorm → MLP (QuickGELU or GELU)
 * → residual. Parameter names are those under `...encoder.layers.{i}`.
 */
import { type Graph, ops, type Tensor } from '../engine/index.ts';

export interface ClipLayerConfig {
  hiddenSize: number;
  intermediateSize: number;
  numAttentionHeads: number;
  layerNormEps: number;
  hiddenAct: 'quick_gelu' | 'gelu';
}

/** Names and shapes of the layer at `prefix` (e.g. `vision_model.encoder.layers.3`). */
export function clipLayerShapes(prefix: string, c: ClipLayerConfig): [string, number[]][] {
  const { hiddenSize: d, intermediateSize: f } = c;
  const out: [string, number[]][] = [];
  for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
    out.push([`${prefix}.self_attn.${proj}.weight`, [d, d]], [`${prefix}.self_attn.${proj}.bias`, [d]]);
  }
  for (const norm of ['layer_norm1', 'layer_norm2'])
    out.push([`${prefix}.${norm}.weight`, [d]], [`${prefix}.${norm}.bias`, [d]]);
  out.push([`${prefix}.mlp.fc1.weight`, [f, d]], [`${prefix}.mlp.fc1.bias`, [f]]);
  out.push([`${prefix}.mlp.fc2.weight`, [d, f]], [`${prefix}.mlp.fc2.bias`, [d]]);
  return out;
}

/** x [B, T, D] → [B, T, D]; `maskFor` (text tower: causal and padding) gets q and k [B, nH, T, hd]. */
export function clipEncoderLayer(
  g: Graph,
  c: ClipLayerConfig,
  prefix: string,
  x: Tensor,
  maskFor?: (q: Tensor, k: Tensor) => Tensor,
): Tensor {
  const { hiddenSize: d, intermediateSize: f, numAttentionHeads: nH, layerNormEps: eps } = c;
  const hd = d / nH;
  const p = (name: string, shape: number[]) => g.param(`${prefix}.${name}`, shape);
  const [batch, tokens] = x.shape;

  const h = ops.layerNorm(x, p('layer_norm1.weight', [d]), p('layer_norm1.bias', [d]), eps);
  const heads = (proj: string) => {
    const y = ops.linear(h, p(`self_attn.${proj}.weight`, [d, d]), p(`self_attn.${proj}.bias`, [d])); // [B, T, D]
    return ops.transpose(ops.reshape(y, [batch, tokens, nH, hd]), [0, 2, 1, 3]); // [B, T, nH, hd] → [B, nH, T, hd]
  };
  const q = heads('q_proj');
  const k = heads('k_proj');
  const attended = ops.attention(q, k, heads('v_proj'), maskFor?.(q, k)); // [B, nH, T, hd]
  const merged = ops.reshape(ops.transpose(attended, [0, 2, 1, 3]), [batch, tokens, d]); // [B, T, nH, hd] → [B, T, D]
  x = ops.add(
    x,
    ops.linear(merged, p('self_attn.out_proj.weight', [d, d]), p('self_attn.out_proj.bias', [d])),
  );

  const m = ops.layerNorm(x, p('layer_norm2.weight', [d]), p('layer_norm2.bias', [d]), eps);
  const up = ops.linear(m, p('mlp.fc1.weight', [f, d]), p('mlp.fc1.bias', [f])); // [B, T, F]
  const act = c.hiddenAct === 'quick_gelu' ? ops.quickGelu(up) : ops.gelu(up);
  return ops.add(x, ops.linear(act, p('mlp.fc2.weight', [d, f]), p('mlp.fc2.bias', [d])));
}
