/** Reductions (sum, mean, max, sum of squares) with gradients, and arg/top-k selections without. */
import { attr } from '../graph.ts';
import { HostTensor } from '../host-tensor.ts';
import type { Dim } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { cast, div, equal, mul, where } from './elementwise.ts';
import { emit1, normAxes, requireFloat, shapeOf } from './util.ts';

function reducedShape(x: Tensor, axes: number[], keepDims: boolean): Dim[] {
  const out: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

function reduce(op: string, x: Tensor, axes: number[], keepDims: boolean): Tensor {
  return emit1(x.graph, op, [x, x.graph.ints(axes)], x.dtype, reducedShape(x, axes, keepDims), {
    keepdims: attr.int(keepDims ? 1 : 0),
  });
}

/** Broadcast a reduced gradient back over x's shape. */
function expandBack(g: Tensor, x: Tensor, axes: number[], keepDims: boolean): Tensor {
  let gk = g;
  if (!keepDims && axes.length > 0) {
    gk = emit1(g.graph, 'Unsqueeze', [g, g.graph.ints(axes)], g.dtype, reducedShape(x, axes, true));
  }
  return emit1(g.graph, 'Expand', [gk, shapeOf(x)], g.dtype, x.shape);
}

/** Number of elements reduced into each output element, as a float scalar computed at run time. */
function reducedCount(x: Tensor, out: Tensor): Tensor {
  const g = x.graph;
  const sizeX = emit1(g, 'Size', [x], 'int64', []);
  const sizeOut = emit1(g, 'Size', [out], 'int64', []);
  return cast(emit1(g, 'Div', [sizeX, sizeOut], 'int64', []), x.dtype);
}

export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  requireFloat('sum', x);
  const ax = normAxes(axes, x.rank, 'sum');
  const out = reduce('ReduceSum', x, ax, keepDims);
  x.graph.record('sum', [x], [out], ([g]) => [expandBack(g!, x, ax, keepDims)]);
  return out;
}

export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  requireFloat('mean', x);
  const ax = normAxes(axes, x.rank, 'mean');
  const out = reduce('ReduceMean', x, ax, keepDims);
  x.graph.record('mean', [x], [out], ([g]) => [div(expandBack(g!, x, ax, keepDims), reducedCount(x, out))]);
  return out;
}

/** Σx² over axes (one fused kernel; used by RMS norms and gradient-norm clipping). */
export function sumSquares(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  requireFloat('sumSquares', x);
  const ax = normAxes(axes, x.rank, 'sumSquares');
  const out = reduce('ReduceSumSquare', x, ax, keepDims);
  x.graph.record('sumSquares', [x], [out], ([g]) => [mul(expandBack(g!, x, ax, keepDims), mul(x, 2))]);
  return out;
}

/** Max over axes; the gradient goes to every element equal to the max. */
export function max(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normAxes(axes, x.rank, 'max');
  const out = reduce('ReduceMax', x, ax, keepDims);
  x.graph.record('max', [x], [out], ([g]) => {
    const outFull = expandBack(out, x, ax, keepDims);
    return [where(equal(x, outFull), expandBack(g!, x, ax, keepDims), 0)];
  });
  return out;
}

export function min(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normAxes(axes, x.rank, 'min');
  const out = reduce('ReduceMin', x, ax, keepDims);
  x.graph.record('min', [x], [out], ([g]) => {
    const outFull = expandBack(out, x, ax, keepDims);
    return [where(equal(x, outFull), expandBack(g!, x, ax, keepDims), 0)];
  });
  return out;
}

function argReduce(op: 'ArgMax' | 'ArgMin', x: Tensor, axis: number, keepDims: boolean): Tensor {
  const [a] = normAxes(axis, x.rank, op);
  return emit1(x.graph, op, [x], 'int64', reducedShape(x, [a], keepDims), {
    axis: attr.int(a),
    keepdims: attr.int(keepDims ? 1 : 0),
    select_last_index: attr.int(0),
  });
}

/** Index of the largest value along `axis` (first one on ties). No gradient. */
export const argmax = (x: Tensor, axis = -1, keepDims = false): Tensor =>
  argReduce('ArgMax', x, axis, keepDims);
/** Index of the smallest value along `axis` (first one on ties). No gradient. */
export const argmin = (x: Tensor, axis = -1, keepDims = false): Tensor =>
  argReduce('ArgMin', x, axis, keepDims);

/**
 * The k largest (or smallest) values along `axis`, sorted, and their indices. The values carry
 * a gradient (scattered back to where they came from); the indices do not.
 */
export function topk(x: Tensor, k: number, axis = -1, largest = true): { values: Tensor; indices: Tensor } {
  const [a] = normAxes(axis, x.rank, 'topk');
  const shape = x.shape.map((d, i) => (i === a ? k : d));
  const [values, indices] = x.graph.emit(
    'TopK',
    [x, x.graph.ints([k])],
    [
      { dtype: x.dtype, shape },
      { dtype: 'int64', shape },
    ],
    { axis: attr.int(a), largest: attr.int(largest ? 1 : 0), sorted: attr.int(1) },
  );
  x.graph.record('topk', [x], [values], ([g]) => {
    const zeros = emit1(x.graph, 'ConstantOfShape', [shapeOf(x)], x.dtype, x.shape, {
      value: attr.tensor(zeroScalar(x)),
    });
    return [
      emit1(x.graph, 'ScatterElements', [zeros, indices, g!], x.dtype, x.shape, {
        axis: attr.int(a),
        reduction: attr.string('add'),
      }),
    ];
  });
  return { values, indices };
}

export function zeroScalar(x: Tensor): HostTensor {
  return x.dtype === 'float64'
    ? new HostTensor('float64', [1], new Float64Array(1))
    : new HostTensor('float32', [1], new Float32Array(1));
}
