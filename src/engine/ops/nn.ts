/** Neural-network building blocks: softmaxes, normalisations, attention masks and attention. */
import { attr } from '../graph.ts';
import { HostTensor } from '../host-tensor.ts';
import { dimEquals, formatShape, normAxis } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { add, div, exp, logicalAnd, mul, pow, reciprocal, rsqrt, sqrt, sub, where } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { mean, sum } from './reduce.ts';
import { concat, dimOf, mT, reshape, transpose, unsqueeze } from './shape-ops.ts';
import { emit1, requireFloat, sumToShape } from './util.ts';

export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('softmax', x);
  const a = normAxis(axis, x.rank, 'softmax: axis');
  const out = emit1(x.graph, 'Softmax', [x], x.dtype, x.shape, { axis: attr.int(a) });
  x.graph.record('softmax', [x], [out], ([g]) => [mul(out, sub(g!, sum(mul(g!, out), a, true)))]);
  return out;
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  requireFloat('logSoftmax', x);
  const a = normAxis(axis, x.rank, 'logSoftmax: axis');
  const out = emit1(x.graph, 'LogSoftmax', [x], x.dtype, x.shape, { axis: attr.int(a) });
  x.graph.record('logSoftmax', [x], [out], ([g]) => [sub(g!, mul(exp(out), sum(g!, a, true)))]);
  return out;
}

/**
 * LayerNorm over the last axis (ONNX LayerNormalization, which also hands back the mean and
 * 1/σ so the backward pass does not recompute them).
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps = 1e-5): Tensor {
  requireFloat('layerNorm', x, weight);
  const d = x.shape[x.rank - 1];
  if (weight.rank !== 1 || !dimEquals(weight.shape[0], d)) {
    throw new Error(
      `layerNorm ${x.name}${formatShape(x.shape)}: weight ${weight.name}${formatShape(weight.shape)} must be [${d}]`,
    );
  }
  const g = x.graph;
  const statShape = [...x.shape.slice(0, -1), 1];
  let out: Tensor;
  let mu: Tensor;
  let invStd: Tensor;
  if (x.dtype === 'float32') {
    [out, mu, invStd] = g.emit(
      'LayerNormalization',
      bias ? [x, weight, bias] : [x, weight],
      [
        { dtype: x.dtype, shape: x.shape },
        { dtype: x.dtype, shape: statShape },
        { dtype: x.dtype, shape: statShape },
      ],
      { axis: attr.int(-1), epsilon: attr.float(eps) },
    );
  } else {
    // onnxruntime has no float64 LayerNormalization kernel: spell it out (gradient checks use this).
    [out, mu, invStd] = g.untaped(() => {
      const m = mean(x, -1, true);
      const centered = sub(x, m);
      const inv = rsqrt(add(mean(mul(centered, centered), -1, true), eps));
      const y = mul(mul(centered, inv), weight);
      return [bias ? add(y, bias) : y, m, inv];
    });
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  g.record('layerNorm', inputs, [out], ([grad]) => {
    const xhat = mul(sub(x, mu), invStd);
    const dxhat = mul(grad!, weight);
    const dx = mul(
      invStd,
      sub(sub(dxhat, mean(dxhat, -1, true)), mul(xhat, mean(mul(dxhat, xhat), -1, true))),
    );
    const dw = sumToShape(mul(grad!, xhat), weight.shape);
    return bias ? [dx, dw, sumToShape(grad!, bias.shape)] : [dx, dw];
  });
  return out;
}

/** RMSNorm (LLaMA): x / sqrt(mean(x²) + eps) * weight, with a fused gradient. */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  requireFloat('rmsNorm', x, weight);
  const g = x.graph;
  const d = x.shape[x.rank - 1];
  if (weight.rank !== 1 || !dimEquals(weight.shape[0], d)) {
    throw new Error(
      `rmsNorm ${x.name}${formatShape(x.shape)}: weight ${weight.name}${formatShape(weight.shape)} must be [${d}]`,
    );
  }
  // Pow → ReduceMean → Add → Sqrt → Div → Mul is the pattern onnxruntime's graph optimizer fuses
  // into one SimplifiedLayerNormalization where nothing else reads the intermediates (inference).
  const [normed, rms, out] = g.untaped(() => {
    const rms = sqrt(add(mean(pow(x, 2), -1, true), eps));
    const normed = div(x, rms);
    return [normed, rms, mul(normed, weight)];
  });
  g.record('rmsNorm', [x, weight], [out], ([grad]) => {
    const dn = mul(grad!, weight);
    const dx = mul(reciprocal(rms), sub(dn, mul(normed, mean(mul(dn, normed), -1, true))));
    return [dx, sumToShape(mul(grad!, normed), weight.shape)];
  });
  return out;
}

/**
 * Causal mask for `q` queries over `k` keys, true where attention is allowed: bool [Tq, Tk] with
 * query i (the last Tq of the Tk positions) seeing keys ≤ its own position. Lengths are read from
 * the run-time shapes of `queries` (axis -2) and `keys` (axis -2), so no recompile per length.
 */
export function causalMask(queries: Tensor, keys: Tensor = queries): Tensor {
  const g = queries.graph;
  const tq = dimOf(queries, -2);
  const tk = dimOf(keys, -2);
  const shape = emit1(g, 'Concat', [tq, tk], 'int64', [2], { axis: attr.int(0) });
  const ones = emit1(
    g,
    'ConstantOfShape',
    [shape],
    'bool',
    [queries.shape[queries.rank - 2], keys.shape[keys.rank - 2]],
    {
      value: attr.tensor(new HostTensor('bool', [1], Uint8Array.of(1))),
    },
  );
  // Lower-triangular with the diagonal shifted by Tk - Tq (decode steps see the whole cache).
  const offset = emit1(g, 'Squeeze', [emit1(g, 'Sub', [tk, tq], 'int64', [1]), g.ints([0])], 'int64', []);
  return emit1(g, 'Trilu', [ones, offset], 'bool', ones.shape, { upper: attr.int(0) });
}

/** From an attention mask [B, T] (1 = real token, 0 = padding) to bool [B, 1, 1, T] for [B, H, Tq, T] scores. */
export function paddingMask(attentionMask: Tensor): Tensor {
  const g = attentionMask.graph;
  const keep = emit1(g, 'Cast', [attentionMask], 'bool', attentionMask.shape, { to: attr.int(9) });
  return unsqueeze(keep, [1, 2]);
}

export function combineMasks(a: Tensor, b: Tensor): Tensor {
  return logicalAnd(a, b);
}

const maskedScore = (dtype: Tensor['dtype']) => (dtype === 'float64' ? -1e30 : -1e9);

/**
 * A bool mask (true = attend) as the additive bias `attention` also takes: 0 where attended, a
 * large negative value elsewhere, in `dtype`. Only for masks that leave every query a key (a
 * causal mask): a fully masked row would then attend uniformly in value but pass gradient.
 */
export function maskBias(mask: Tensor, dtype: Tensor['dtype'] = mask.graph.floatType): Tensor {
  const g = mask.graph;
  return where(mask, g.scalar(0, dtype), g.scalar(maskedScore(dtype), dtype));
}

/**
 * softmax(q kᵀ · scale + mask) v for q [..., Tq, hs], k/v [..., Tk, hs]. `mask` broadcasts against
 * the [..., Tq, Tk] scores and is either bool (true = attend: masked scores are replaced by a
 * large negative value, not -inf, so a fully masked row gives a uniform distribution and passes
 * no gradient) or a float bias added to the scores (`maskBias`): the same result wherever each
 * query sees at least one key, as under a causal mask, and faster, because onnxruntime adds a
 * small broadcast operand far faster than it runs Where over the scores, and an addition passes
 * its gradient through unmasked (stage-4 training step, 16 × 218 positions: Where took 23 of its
 * 288 ms).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, mask?: Tensor, scale?: number): Tensor {
  const hs = q.shape[q.rank - 1];
  const s = scale ?? 1 / Math.sqrt(typeof hs === 'number' ? hs : Number.NaN);
  if (!Number.isFinite(s))
    throw new Error(`attention: head size of ${q.name} must be static to infer the scale`);
  let scores = mul(matmul(q, mT(k)), s); // [..., Tq, Tk]
  if (mask?.dtype === 'bool') scores = where(mask, scores, maskedScore(q.dtype));
  else if (mask) scores = add(scores, mask);
  return matmul(softmax(scores, -1), v);
}

/**
 * Rotary position embedding in one node (onnxruntime's RotaryEmbedding, com.microsoft), HF's
 * rotate_half convention: each head's halves (x₁, x₂) become (x₁·cos − x₂·sin, x₂·cos + x₁·sin)
 * at its position's angles. x [B, T, heads·hd]; positions [B, T] int64, each < the tables' rows;
 * cos / sin [N, hd/2]. The kernel does not check the positions against N (it reads past the
 * tables), so callers size the tables from the positions. Inference only: it has no gradient.
 */
export function rotaryEmbedding(
  x: Tensor,
  positions: Tensor,
  table: { cos: Tensor; sin: Tensor },
  heads: number,
): Tensor {
  const g = x.graph;
  if (x.rank !== 3)
    throw new Error(`rotaryEmbedding: x ${x.name}${formatShape(x.shape)} must be [B, T, heads·hd]`);
  if (positions.dtype !== 'int64' || positions.rank !== 2)
    throw new Error(`rotaryEmbedding: positions ${positions.name} must be int64 [B, T]`);
  const [out] = g.emit(
    'RotaryEmbedding',
    [x, positions, table.cos, table.sin],
    [{ dtype: x.dtype, shape: x.shape }],
    { num_heads: attr.int(heads) },
    'com.microsoft',
  );
  g.record('rotaryEmbedding', [x], [out], () => {
    throw new Error('rotaryEmbedding has no gradient: it is for inference over a KV cache');
  });
  return out;
}

/** Where one layer's cached keys/values live, and which of them a step may read (`cachedAttention`). */
export interface AttentionCache {
  /** [B, kvHeads, 1, C, hd] keys of the earlier positions; C is the buffer's capacity. */
  key: Tensor;
  /** [B, kvHeads, 1, C, hd] values of the earlier positions. */
  value: Tensor;
  /**
   * [T, C + T] added to the scores of the step's T queries: 0 where query t may look (the filled
   * positions of the buffer, and the step's own positions up to t), -∞ elsewhere.
   */
  mask: Tensor;
}

/**
 * [C, T] int64 from a step's mask [T, C+T]: where its weights split into the buffer's positions
 * and its own. Every layer of a step shares the mask, so the few shape nodes are emitted once.
 */
const splitSizesOf = new WeakMap<Tensor, Tensor>();
function splitSizes(mask: Tensor): Tensor {
  let sizes = splitSizesOf.get(mask);
  if (!sizes) {
    const own = dimOf(mask, 0); // [T]
    sizes = concat([sub(dimOf(mask, 1), own), own], 0);
    splitSizesOf.set(mask, sizes);
  }
  return sizes;
}

/**
 * Causal attention of a step's queries over a KV cache held in fixed-size buffers, as explicit
 * ops: scores against the buffer and against the step's own keys, one softmax over both (the
 * mask hides unfilled positions and later ones), and the two weighted sums of values added. The
 * buffers are only read, never copied: onnxruntime's fused GroupQueryAttention (com.microsoft),
 * which this replaced, copies the whole past into a new present tensor on every step unless the
 * buffers are also bound as outputs, and onnxruntime-node 1.30 copies every fetched output back
 * out, whole (bench/cached-attention.ts, docs/benchmarks.md: one token over 600 positions, 30
 * layers of the ~135M shape, 3.3 ms against its 6.1; over 512, 32 layers of 7B's, 14.6 against
 * 64.3). The caller adds the step's keys and
 * values to its cache afterwards (`KVCacheDecoder` does, from the step's `added` outputs).
 * q [B, T, heads·hd], k / v [B, T, kvHeads·hd] → [B, T, heads·hd]. Query head n reads key/value
 * head ⌊n / (heads / kvHeads)⌋. Every sequence of a batch has the same length. Inference only:
 * it has no gradient.
 */
export function cachedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  cache: AttentionCache,
  heads: { heads: number; kvHeads: number },
): Tensor {
  const g = q.graph;
  const { heads: nH, kvHeads: kvH } = heads;
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3)
    throw new Error(
      `cachedAttention: q, k, v must be [B, T, width], got ${formatShape(q.shape)}, ${formatShape(k.shape)}, ${formatShape(v.shape)}`,
    );
  if (!Number.isInteger(nH / kvH) || nH <= 0 || kvH <= 0)
    throw new Error(`cachedAttention: ${nH} query heads do not group over ${kvH} key/value heads`);
  const width = q.shape[2];
  const hd = typeof width === 'number' ? width / nH : Number.NaN;
  if (!Number.isInteger(hd) || k.shape[2] !== kvH * hd || v.shape[2] !== kvH * hd)
    throw new Error(
      `cachedAttention: widths ${formatShape(q.shape)}, ${formatShape(k.shape)}, ${formatShape(v.shape)} do not split into ${nH} / ${kvH} heads`,
    );
  if (cache.key.rank !== 5 || cache.value.rank !== 5 || cache.mask.rank !== 2)
    throw new Error(
      `cachedAttention: cache key and value [B, kvHeads, 1, C, hd], mask [T, C+T], got ${formatShape(cache.key.shape)}, ${formatShape(cache.value.shape)}, ${formatShape(cache.mask.shape)}`,
    );
  const group = nH / kvH;
  const [B, T] = q.shape;
  const out = g.untaped(() => {
    const scaled = mul(q, g.scalar(1 / Math.sqrt(hd), q.dtype));
    const q5 = transpose(reshape(scaled, [B, T, kvH, group, hd]), [0, 2, 3, 1, 4]); // [B, kvH, group, T, hd]
    const kNew = transpose(reshape(k, [B, T, kvH, 1, hd]), [0, 2, 3, 1, 4]); // [B, kvH, 1, T, hd]
    const vNew = transpose(reshape(v, [B, T, kvH, 1, hd]), [0, 2, 3, 1, 4]); // [B, kvH, 1, T, hd]
    // onnxruntime fuses each Transpose into its MatMul (FusedMatMul, transB): the buffer is not copied.
    const scores = concat([matmul(q5, mT(cache.key)), matmul(q5, mT(kNew))], 4); // [B, kvH, group, T, C+T]
    const weights = softmax(add(scores, cache.mask), -1);
    const sizes = splitSizes(cache.mask); // [C, T]
    const [past, own] = g.emit(
      'Split',
      [weights, sizes],
      [
        { dtype: weights.dtype, shape: [...weights.shape.slice(0, 4), cache.key.shape[3]] },
        { dtype: weights.dtype, shape: [...weights.shape.slice(0, 4), T] },
      ],
      { axis: attr.int(4) },
    );
    const y = add(matmul(past, cache.value), matmul(own, vNew)); // [B, kvH, group, T, hd]
    return reshape(transpose(y, [0, 3, 1, 2, 4]), [B, T, nH * hd]); // [B, T, nH·hd]
  });
  g.record('cachedAttention', [q, k, v], [out], () => {
    throw new Error('cachedAttention has no gradient: it is for inference over a KV cache');
  });
  return out;
}
