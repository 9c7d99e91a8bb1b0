/** Vector-quantisation primitives: nearest codebook entry and the straight-through estimator. */
import type { Tensor } from '../tensor.ts';
import { add, mul, stopGradient, sub } from './elementwise.ts';
import { linear } from './matmul.ts';
import { argmin, sumSquares } from './reduce.ts';

/** Index of the nearest row of `codebook` [K, d] (squared L2) for each vector of z [..., d]. No gradient. */
export function nearestCode(z: Tensor, codebook: Tensor): Tensor {
  return z.graph.untaped(() => {
    // ‖z − c‖² = ‖z‖² − 2 z·c + ‖c‖², without materialising [..., K, d] differences.
    const dist = add(sub(sumSquares(z, -1, true), mul(linear(z, codebook), 2)), sumSquares(codebook, -1));
    return argmin(dist, -1);
  });
}

/** Forward value of `quantized`, gradient of `x`: x + stopGradient(quantized − x). */
export function straightThrough(x: Tensor, quantized: Tensor): Tensor {
  return add(x, stopGradient(sub(quantized, x)));
}
