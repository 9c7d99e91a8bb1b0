/**
 * Matrix products. `linear` is the workhorse of every model: it runs as one 2-D Gemm over all
 * tokens (MLAS handles the transposed weight natively), and its weight gradient is another single
 * Gemm with transA, so no transposed copies of activations or weights are ever materialised.
 */
import type { MatMulNBitsKernel } from '../block-quantize.ts';
import { attr } from '../graph.ts';
import { broadcastShapes, type Dim, dimEquals, formatShape } from '../shape.ts';
import { QuantizedWeight, type Tensor } from '../tensor.ts';
import { mT, reshape } from './shape-ops.ts';
import { emit1, requireFloat, requireSameDtype, shapeOf, sumToShape } from './util.ts';

function gemm(a: Tensor, b: Tensor, c: Tensor | null, transA: boolean, transB: boolean): Tensor {
  const m = transA ? a.shape[1] : a.shape[0];
  const n = transB ? b.shape[0] : b.shape[1];
  return emit1(a.graph, 'Gemm', c ? [a, b, c] : [a, b], a.dtype, [m, n], {
    transA: attr.int(transA ? 1 : 0),
    transB: attr.int(transB ? 1 : 0),
  });
}

/** Batched matmul with broadcasting over leading axes: [..., m, k] @ [..., k, n] → [..., m, n]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  requireFloat('matmul', a, b);
  requireSameDtype('matmul', a, b);
  const what = `matmul ${a.name}${formatShape(a.shape)} @ ${b.name}${formatShape(b.shape)}`;
  if (a.rank < 2 || b.rank < 2) throw new Error(`${what}: both operands need rank >= 2`);
  const k1 = a.shape[a.rank - 1];
  const k2 = b.shape[b.rank - 2];
  if (!dimEquals(k1, k2) && typeof k1 === 'number' && typeof k2 === 'number') {
    throw new Error(`${what}: inner dims ${k1} and ${k2} differ`);
  }
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), what);
  const shape: Dim[] = [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]];
  const out = emit1(a.graph, 'MatMul', [a, b], a.dtype, shape);
  a.graph.record('matmul', [a, b], [out], ([g]) => {
    const ga = sumToShape(matmul(g!, mT(b)), a.shape);
    let gb: Tensor;
    if (b.rank === 2 && a.rank > 2) {
      // Weight-style operand: one Gemm over all rows instead of a batched product then a sum.
      const a2 = reshape(a, [-1, a.shape[a.rank - 1]]);
      const g2 = reshape(g!, [-1, g!.shape[g!.rank - 1]]);
      gb = gemm(a2, g2, null, true, false);
    } else {
      gb = sumToShape(matmul(mT(a), g!), b.shape);
    }
    return [ga, gb];
  });
  return out;
}

/**
 * y = x @ Wᵀ + b with W in PyTorch/Hugging Face layout [out, in], x [..., in] → [..., out].
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  requireFloat('linear', x, weight);
  requireSameDtype('linear', x, weight);
  const g = x.graph;
  const [outF, inF] = weight.shape;
  const what = `linear ${x.name}${formatShape(x.shape)} with weight ${weight.name}${formatShape(weight.shape)}`;
  if (weight.rank !== 2) throw new Error(`${what}: weight must be [out, in]`);
  if (!dimEquals(x.shape[x.rank - 1], inF)) throw new Error(`${what}: last dim of x must be ${inF}`);
  if (bias && (bias.rank !== 1 || !dimEquals(bias.shape[0], outF))) {
    throw new Error(`${what}: bias ${bias.name}${formatShape(bias.shape)} must be [${outF}]`);
  }
  if (weight instanceof QuantizedWeight && weight.matMulNBits)
    return quantizedLinear(x, weight, weight.matMulNBits, bias);
  const flat = x.rank !== 2;
  const out = g.untaped(() => {
    if (!flat) return gemm(x, weight, bias ?? null, false, true);
    // [..., in] @ Wᵀ: onnxruntime fuses the Transpose into its MatMul (FusedMatMul, transB), and
    // runs a rank-3 activation against a 2-D weight as one GEMM; two nodes instead of the five a
    // reshape-to-2-D Gemm needs, which matters when decoding one token at a time.
    const wT = emit1(g, 'Transpose', [weight], weight.dtype, [inF, outF], { perm: attr.ints([1, 0]) });
    const y = emit1(g, 'MatMul', [x, wT], x.dtype, [...x.shape.slice(0, -1), outF]);
    return bias ? emit1(g, 'Add', [y, bias], x.dtype, y.shape) : y;
  });
  const inputs = bias ? [x, weight, bias] : [x, weight];
  g.record('linear', inputs, [out], ([grad]) => {
    const g2 = flat ? reshape(grad!, [-1, outF]) : grad!;
    const x2 = flat ? reshape(x, [-1, inF]) : x;
    const gx2 = gemm(g2, weight, null, false, false);
    const gx = flat ? emit1(g, 'Reshape', [gx2, shapeOf(x)], x.dtype, x.shape) : gx2;
    const gw = gemm(g2, x2, null, true, false);
    const gb = bias
      ? emit1(g, 'ReduceSum', [g2, g.ints([0])], x.dtype, [outF], { keepdims: attr.int(0) })
      : null;
    return bias ? [gx, gw, gb] : [gx, gw];
  });
  return out;
}

/**
 * linear with a block-quantized weight: one MatMulNBits (com.microsoft), which reads the packed
 * codes and scales as stored and takes x [..., K] of any rank, at the kernel's accuracy level
 * (MATMULNBITS_ACCURACY_LEVEL says which and why). The weight has no gradient; x's gradient goes
 * through the dequantized weight.
 */
function quantizedLinear(
  x: Tensor,
  weight: QuantizedWeight,
  kernel: MatMulNBitsKernel,
  bias?: Tensor,
): Tensor {
  const g = x.graph;
  const [outF, inF] = weight.shape as [number, number];
  const out = g.untaped(() => {
    const [y] = g.emit(
      'MatMulNBits',
      [x, weight.qweight, weight.scales],
      [{ dtype: 'float32', shape: [...x.shape.slice(0, -1), outF] }],
      {
        K: attr.int(inF),
        N: attr.int(outF),
        bits: attr.int(weight.spec.bits),
        block_size: attr.int(weight.spec.blockSize),
        accuracy_level: attr.int(kernel.accuracyLevel),
      },
      'com.microsoft',
    );
    return bias ? emit1(g, 'Add', [y, bias], x.dtype, y.shape) : y;
  });
  const inputs = bias ? [x, weight, bias] : [x, weight];
  g.record('linear', inputs, [out], ([grad]) => {
    const gx = matmul(grad!, weight);
    const gb = bias ? sumToShape(grad!, bias.shape) : null;
    return bias ? [gx, null, gb] : [gx, null];
  });
  return out;
}
