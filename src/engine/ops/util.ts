/** Helpers shared by the op files: operand coercion, broadcast-gradient reduction, run-time shapes. */
import { type DType, isFloat } from '../dtype.ts';
import { attr, type Graph } from '../graph.ts';
import { type Dim, formatShape, normAxis, type Shape } from '../shape.ts';
import { Tensor, type TensorLike } from '../tensor.ts';

export function graphOf(...xs: TensorLike[]): Graph {
  for (const x of xs) if (x instanceof Tensor) return x.graph;
  throw new Error('an op needs at least one symbolic tensor operand');
}

/** Turn a number into a scalar constant of `like`'s dtype. */
export function lift(x: TensorLike, like: Tensor): Tensor {
  return x instanceof Tensor ? x : like.graph.scalar(x, like.dtype);
}

export function requireFloat(op: string, ...xs: Tensor[]): void {
  for (const x of xs) {
    if (!isFloat(x.dtype))
      throw new Error(`${op}: needs a float tensor, got ${x.dtype} ${x.name}${formatShape(x.shape)}`);
  }
}

export function requireSameDtype(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) {
    throw new Error(
      `${op}: dtype mismatch, ${a.name} is ${a.dtype}${formatShape(a.shape)} and ${b.name} is ${b.dtype}${formatShape(b.shape)}`,
    );
  }
}

export function normAxes(axes: number | readonly number[] | undefined, rank: number, op: string): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  return [...new Set(list.map((a) => normAxis(a, rank, `${op}: axis`)))].sort((x, y) => x - y);
}

/** int64 [rank] tensor holding x's run-time shape (or a slice of it). */
export function shapeOf(x: Tensor, start?: number, end?: number): Tensor {
  const attrs: Record<string, ReturnType<typeof attr.int>> = {};
  if (start !== undefined) attrs.start = attr.int(start);
  if (end !== undefined) attrs.end = attr.int(end);
  const s = start === undefined ? 0 : normAxis(start, x.rank + 1);
  const e = end === undefined ? x.rank : end < 0 ? x.rank + end : end;
  return x.graph.emit('Shape', [x], [{ dtype: 'int64', shape: [Math.max(0, e - s)] }], attrs)[0];
}

/** Reduce a broadcast gradient back to the shape of the operand it flowed from. */
export function sumToShape(g: Tensor, target: Shape): Tensor {
  const diff = g.rank - target.length;
  if (diff < 0)
    throw new Error(
      `sumToShape: gradient ${formatShape(g.shape)} has lower rank than ${formatShape(target)}`,
    );
  const axes: number[] = [];
  for (let i = 0; i < diff; i++) axes.push(i);
  for (let i = 0; i < target.length; i++) {
    if (target[i] === 1 && g.shape[i + diff] !== 1) axes.push(i + diff);
  }
  if (axes.length === 0) return g;
  const graph = g.graph;
  const kept: Dim[] = g.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  let r = graph.emit('ReduceSum', [g, graph.ints(axes)], [{ dtype: g.dtype, shape: kept }], {
    keepdims: attr.int(1),
  })[0];
  if (diff > 0) {
    const lead = Array.from({ length: diff }, (_, i) => i);
    r = graph.emit('Squeeze', [r, graph.ints(lead)], [{ dtype: g.dtype, shape: [...target] }])[0];
  }
  return r;
}

export function emit1(
  graph: Graph,
  op: string,
  inputs: (Tensor | null)[],
  dtype: DType,
  shape: Shape,
  attrs = {},
): Tensor {
  return graph.emit(op, inputs, [{ dtype, shape }], attrs)[0];
}
