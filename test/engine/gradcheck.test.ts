/**
 * Every differentiable op against central finite differences, in float64 (erf and GELU run
 * their erf in float32 inside onnxruntime, so those are checked in float32).
 */
import { describe, it } from 'node:test';
import { HostTensor } from '../../src/engine/host-tensor.ts';
import * as ops from '../../src/engine/ops/index.ts';
import { f64, gradCheck, i64, uniform } from './helpers.ts';

const x = (shape: number[], seed: number, lo = -1, hi = 1) => ({
  shape,
  values: uniform(shape, seed, lo, hi),
});
const positive = (shape: number[], seed: number) => x(shape, seed, 0.5, 2);
/** Values kept at least 0.1 away from 0, so relu/abs kinks are not straddled by the difference. */
const awayFromZero = (shape: number[], seed: number) => ({
  shape,
  values: uniform(shape, seed).map((v) => (v >= 0 ? v + 0.1 : v - 0.1)),
});

describe('gradients: broadcasting arithmetic', () => {
  it('add with broadcast', () => gradCheck((_, [a, b]) => ops.add(a, b), [x([2, 3], 1), x([3], 2)]));
  it('sub with broadcast of size-1 axis', () =>
    gradCheck((_, [a, b]) => ops.sub(a, b), [x([2, 3], 3), x([2, 1], 4)]));
  it('mul', () => gradCheck((_, [a, b]) => ops.mul(a, b), [x([2, 3], 5), x([1, 3], 6)]));
  it('div', () => gradCheck((_, [a, b]) => ops.div(a, b), [x([2, 3], 7), positive([2, 3], 8)]));
  it('pow (both operands)', () => gradCheck((_, [a, b]) => ops.pow(a, b), [positive([4], 9), x([4], 10)]));
  it('maximum / minimum', () =>
    gradCheck((_, [a, b]) => ops.add(ops.maximum(a, b), ops.minimum(a, b).mul(3)), [x([5], 11), x([5], 12)]));
  it('where', () =>
    gradCheck(
      (g, [a, b]) => ops.where(g.constant(new HostTensor('bool', [2, 2], Uint8Array.of(1, 0, 0, 1))), a, b),
      [x([2, 2], 13), x([2], 14)],
    ));
  it('scalar operands', () =>
    gradCheck((_, [a]) => ops.sub(ops.div(ops.add(a, 2), 3), 1).mul(-2), [x([3], 15)]));
});

describe('gradients: unary math and activations', () => {
  const cases: [string, (t: ReturnType<typeof ops.exp>) => ReturnType<typeof ops.exp>, boolean][] = [
    ['neg', ops.neg, false],
    ['exp', ops.exp, false],
    ['log', ops.log, true],
    ['sqrt', ops.sqrt, true],
    ['reciprocal', ops.reciprocal, true],
    ['rsqrt', ops.rsqrt, true],
    ['tanh', ops.tanh, false],
    ['sigmoid', ops.sigmoid, false],
    ['relu', ops.relu, false],
    ['abs', ops.abs, false],
    ['square', ops.square, false],
    ['silu', ops.silu, false],
    ['quickGelu', ops.quickGelu, false],
    ['geluTanh', ops.geluTanh, false],
  ];
  for (const [name, f, needsPositive] of cases) {
    it(name, () =>
      gradCheck((_, [a]) => f(a), [needsPositive ? positive([2, 3], 20) : awayFromZero([2, 3], 21)]),
    );
  }
  it('erf (float32)', () => gradCheck((_, [a]) => ops.erf(a), [x([6], 22)], { dtype: 'float32' }));
  it('gelu (float32)', () =>
    gradCheck((_, [a]) => ops.gelu(a), [x([2, 4], 23, -3, 3)], { dtype: 'float32' }));
  it('cast float64 → float32 → float64 passes the gradient', () =>
    gradCheck((_, [a]) => ops.cast(ops.cast(a, 'float32'), 'float64'), [x([3], 24)], {
      eps: 1e-3,
      rtol: 1e-4,
      atol: 1e-4,
    }));
});

describe('gradients: matrix products', () => {
  it('matmul 2-D', () => gradCheck((_, [a, b]) => ops.matmul(a, b), [x([2, 3], 30), x([3, 4], 31)]));
  it('matmul batched with broadcast', () =>
    gradCheck((_, [a, b]) => ops.matmul(a, b), [x([2, 1, 2, 3], 32), x([3, 3, 2], 33)]));
  it('matmul 3-D @ 2-D (weight path)', () =>
    gradCheck((_, [a, b]) => ops.matmul(a, b), [x([2, 2, 3], 34), x([3, 2], 35)]));
  it('linear 2-D with bias', () =>
    gradCheck((_, [a, w, b]) => ops.linear(a, w, b), [x([3, 4], 36), x([2, 4], 37), x([2], 38)]));
  it('linear 3-D without bias', () =>
    gradCheck((_, [a, w]) => ops.linear(a, w), [x([2, 3, 4], 39), x([5, 4], 40)]));
  it('linear 3-D with bias (bias gradient summed over both leading axes)', () =>
    gradCheck((_, [a, w, b]) => ops.linear(a, w, b), [x([2, 3, 4], 41), x([5, 4], 42), x([5], 43)]));
});

describe('gradients: reductions and softmaxes', () => {
  it('sum over axes', () => gradCheck((_, [a]) => ops.sum(a, [0, 2]), [x([2, 3, 2], 50)]));
  it('sum all, keepDims', () => gradCheck((_, [a]) => ops.sum(a, undefined, true), [x([2, 3], 51)]));
  it('mean', () => gradCheck((_, [a]) => ops.mean(a, -1, true), [x([3, 4], 52)]));
  it('sumSquares', () => gradCheck((_, [a]) => ops.sumSquares(a, 1), [x([3, 4], 53)]));
  it('max', () => gradCheck((_, [a]) => ops.max(a, -1), [x([3, 4], 54)]));
  it('min', () => gradCheck((_, [a]) => ops.min(a, 0), [x([3, 4], 55)]));
  it('max, keepDims', () => gradCheck((_, [a]) => ops.max(a, 1, true), [x([3, 4], 110)]));
  it('max over several axes', () => gradCheck((_, [a]) => ops.max(a, [0, 2]), [x([2, 3, 4], 111)]));
  it('min, keepDims', () => gradCheck((_, [a]) => ops.min(a, -1, true), [x([3, 4], 112)]));
  it('min over several axes', () => gradCheck((_, [a]) => ops.min(a, [0, 2]), [x([2, 3, 4], 113)]));
  it('max over several axes, keepDims', () =>
    gradCheck((_, [a]) => ops.max(a, [0, 2], true), [x([2, 3, 4], 117)]));
  it('softmax', () => gradCheck((_, [a]) => ops.softmax(a, -1), [x([2, 5], 56)]));
  it('softmax over axis 0', () => gradCheck((_, [a]) => ops.softmax(a, 0), [x([3, 2], 57)]));
  it('logSoftmax', () => gradCheck((_, [a]) => ops.logSoftmax(a, -1), [x([2, 5], 58)]));
  it('topk values', () => gradCheck((_, [a]) => ops.topk(a, 2, -1).values, [x([3, 5], 59)]));
  it('topk values, smallest (largest = false)', () =>
    gradCheck((_, [a]) => ops.topk(a, 2, -1, false).values, [x([3, 5], 114)]));
});

describe('gradients: data movement', () => {
  it('reshape', () => gradCheck((_, [a]) => ops.reshape(a, [3, 2, 2]), [x([2, 6], 60)]));
  it('reshape with dynamic dims: split by a source tensor, flatten, split back', () =>
    gradCheck(
      (g, [a]) => {
        const src = g.input('src', 'float64', ['B', 'T', 2]); // only its run-time shape is read
        const bt = ops.reshape(a, ['B', 'T', 2], [src]); // [6, 2] → [B, T, 2]
        const flat = ops.reshape(ops.transpose(bt, [1, 0, 2]), [-1, 2]); // [B*T, 2], one dynamic dim
        const back = ops.reshape(flat, ['T', 'B', 2], [bt]); // dims from bt's run-time shape
        return ops.reshape(back, [3, 4]);
      },
      [x([6, 2], 115)],
      { feeds: { src: f64([2, 3, 2], uniform([2, 3, 2], 116)) } },
    ));
  it('transpose', () => gradCheck((_, [a]) => ops.transpose(a, [2, 0, 1]), [x([2, 3, 4], 61)]));
  it('concat', () => gradCheck((_, [a, b]) => ops.concat([a, b, a], 1), [x([2, 2], 62), x([2, 3], 63)]));
  it('slice with negative start', () => gradCheck((_, [a]) => ops.slice(a, 1, -3, -1), [x([2, 5], 64)]));
  it('slice to the end', () => gradCheck((_, [a]) => ops.slice(a, 0, 1), [x([3, 2], 65)]));
  it('gather rows with repeats (scatter-add gradient)', () =>
    gradCheck((g, [t]) => ops.gather(t, g.constant(i64([2, 3], [0, 2, 2, 3, 0, 0]))), [x([4, 3], 66)]));
  it('gather on axis 1', () =>
    gradCheck((g, [t]) => ops.gather(t, g.constant(i64([2], [2, 0])), 1), [x([2, 3, 2], 67)]));
  it('gatherElements', () =>
    gradCheck((g, [t]) => ops.gatherElements(t, g.constant(i64([2, 2], [1, 1, 0, 2])), 1), [x([2, 3], 68)]));
  it('unsqueeze / squeeze', () =>
    gradCheck((_, [a]) => ops.squeeze(ops.unsqueeze(a, [0, 2]), 0), [x([2, 3], 69)]));
  it('expandAs', () =>
    gradCheck((_, [a, b]) => ops.mul(ops.expandAs(a, b), b), [x([3, 1], 70), x([2, 3, 4], 71)]));
});

describe('gradients: normalisation, attention and losses', () => {
  it('layerNorm with bias', () =>
    gradCheck((_, [a, w, b]) => ops.layerNorm(a, w, b), [x([2, 3, 4], 80), x([4], 81), x([4], 82)]));
  it('layerNorm, onnxruntime kernel (float32)', () =>
    gradCheck((_, [a, w, b]) => ops.layerNorm(a, w, b), [x([2, 5], 79), x([5], 78), x([5], 77)], {
      dtype: 'float32',
    }));
  it('layerNorm without bias', () =>
    gradCheck((_, [a, w]) => ops.layerNorm(a, w, null), [x([3, 5], 83), x([5], 84)]));
  it('rmsNorm', () => gradCheck((_, [a, w]) => ops.rmsNorm(a, w), [x([2, 3, 4], 85), x([4], 86)]));
  it('causal attention', () =>
    gradCheck(
      (_, [q, k, v]) => ops.attention(q, k, v, ops.causalMask(q, k)),
      [x([1, 2, 3, 4], 87), x([1, 2, 3, 4], 88), x([1, 2, 3, 4], 89)],
    ));
  it('attention with padding mask', () =>
    gradCheck(
      (g, [q, k, v]) => ops.attention(q, k, v, ops.paddingMask(g.constant(i64([2, 3], [1, 1, 0, 1, 1, 1])))),
      [x([2, 1, 3, 2], 90), x([2, 1, 3, 2], 91), x([2, 1, 3, 2], 92)],
    ));
  it('crossEntropy with an ignored target', () =>
    gradCheck(
      (g, [l]) => ops.crossEntropy(l, g.constant(i64([2, 3], [1, 4, -100, 0, 2, 2]))),
      [x([2, 3, 5], 93, -2, 2)],
    ));
  it('binaryCrossEntropyWithLogits', () =>
    gradCheck(
      (g, [l]) =>
        ops.binaryCrossEntropyWithLogits(
          l,
          g.constant(new HostTensor('float64', [2, 3], Float64Array.of(1, 0, 1, 0, 0, 1))),
        ),
      [x([2, 3], 94, -3, 3)],
    ));
  it('binaryCrossEntropyWithLogits with soft labels and weights', () =>
    gradCheck(
      (g, [l]) =>
        ops.binaryCrossEntropyWithLogits(
          l,
          g.constant(new HostTensor('float64', [4], Float64Array.of(0.2, 0.9, 0.5, 1))),
          g.constant(new HostTensor('float64', [4], Float64Array.of(1, 0, 1, 1))),
        ),
      [x([4], 95, -3, 3)],
    ));
  it('infoNCE', () => gradCheck((_, [a, b]) => ops.infoNCE(a, b, 2.5), [x([3, 4], 97), x([3, 4], 98)]));
  it('infoNCE with a learnable logit scale', () =>
    gradCheck(
      (_, [a, b, s]) => ops.infoNCE(a, b, ops.reshape(s, [])),
      [x([3, 2], 99), x([3, 2], 100), positive([1], 101)],
    ));
});
