/** Ops that move data without arithmetic: reshape, transpose, concat, slice, gather, expand. */
import { attr, type Graph } from '../graph.ts';
import { gatherQuantizedRows } from '../quantized-weight.ts';
import { type Dim, dimEquals, divideDims, formatShape, normAxis, normDim, productDims } from '../shape.ts';
import { QuantizedWeight, type Tensor } from '../tensor.ts';
import { zeroScalar } from './reduce.ts';
import { emit1, shapeOf, sumToShape } from './util.ts';

function reshapeTo(x: Tensor, shapeTensor: Tensor, outShape: Dim[]): Tensor {
  const out = emit1(x.graph, 'Reshape', [x, shapeTensor], x.dtype, outShape);
  if (x.graph.taping) x.graph.record('reshape', [x], [out], ([g]) => [reshapeTo(g!, shapeOf(x), x.shape)]);
  return out;
}

/**
 * Reshape to `spec`: numbers are sizes (one may be -1), strings name dynamic dims. A dynamic dim
 * is taken from `x` itself when it sits at the same position, otherwise from the shape of `x` or
 * of one of `sources` that has a dim of that name (how `[B*T, D]` is split back into `[B, T, D]`).
 */
export function reshape(x: Tensor, spec: readonly Dim[], sources: readonly Tensor[] = []): Tensor {
  const g = x.graph;
  const what = `reshape ${x.name}${formatShape(x.shape)} to ${formatShape(spec)}`;
  const out: Dim[] = spec.map((d) => (typeof d === 'string' ? normDim(d) : d));
  const inferred = spec.flatMap((d, i) => (d === -1 ? [i] : []));
  if (inferred.length > 1) throw new Error(`${what}: at most one -1`);
  for (const d of spec) {
    if (typeof d === 'number' && (d < -1 || d === 0 || !Number.isInteger(d)))
      throw new Error(`${what}: bad size ${d}`);
  }
  if (inferred.length === 1) {
    const known = productDims(out.filter((_, i) => i !== inferred[0]));
    const rest = divideDims(productDims(x.shape), known);
    if (rest === undefined)
      throw new Error(`${what}: ${productDims(x.shape)} elements do not divide by ${known}`);
    out[inferred[0]] = rest;
  } else {
    const a = productDims(x.shape);
    const b = productDims(out);
    if (!dimEquals(a, b) && typeof a === 'number' && typeof b === 'number') {
      throw new Error(`${what}: ${a} elements cannot take shape of ${b}`);
    }
  }
  // Static spec where ONNX's 0 (copy this dim) and -1 (infer) can say it.
  const staticSpec: number[] = [];
  let free = inferred.length;
  let expressible = true;
  spec.forEach((d, i) => {
    if (typeof d === 'number') staticSpec.push(d);
    else if (i < x.rank && dimEquals(d, x.shape[i])) staticSpec.push(0);
    else if (free === 0) {
      free = 1;
      staticSpec.push(-1);
    } else expressible = false;
  });
  if (expressible) {
    return reshapeTo(x, g.ints(staticSpec), out);
  }
  // Otherwise assemble the shape at run time from the shapes of x and the sources.
  const pieces = spec.map((d) => {
    if (typeof d === 'number') return g.ints([d]);
    for (const src of [x, ...sources]) {
      const j = src.shape.findIndex((s) => dimEquals(s, d));
      if (j >= 0) return shapeOf(src, j, j + 1);
    }
    throw new Error(`${what}: no tensor among the sources has a dim named '${d}'`);
  });
  const shapeTensor = emit1(g, 'Concat', pieces, 'int64', [spec.length], { axis: attr.int(0) });
  return reshapeTo(x, shapeTensor, out);
}

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) {
    throw new Error(`transpose ${x.name}${formatShape(x.shape)}: bad permutation [${perm.join(', ')}]`);
  }
  const out = emit1(
    x.graph,
    'Transpose',
    [x],
    x.dtype,
    perm.map((p) => x.shape[p]),
    { perm: attr.ints([...perm]) },
  );
  const inverse = perm.map((_, i) => perm.indexOf(i));
  if (x.graph.taping) x.graph.record('transpose', [x], [out], ([g]) => [transpose(g!, inverse)]);
  return out;
}

/** Swap the last two axes (matrix transpose of a batch of matrices). */
export function mT(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}

function sumDims(dims: Dim[]): Dim {
  if (dims.every((d) => typeof d === 'number')) return (dims as number[]).reduce((a, b) => a + b, 0);
  return dims.join('+');
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  const g = xs[0].graph;
  const a = normAxis(axis, xs[0].rank, 'concat: axis');
  for (const x of xs) {
    const ok = x.rank === xs[0].rank && x.shape.every((d, i) => i === a || dimEquals(d, xs[0].shape[i]));
    if (!ok || x.dtype !== xs[0].dtype) {
      throw new Error(
        `concat on axis ${a}: ${xs.map((t) => `${t.name}: ${t.dtype}${formatShape(t.shape)}`).join(', ')} do not match`,
      );
    }
  }
  const shape = [...xs[0].shape];
  shape[a] = sumDims(xs.map((x) => x.shape[a]));
  const out = emit1(g, 'Concat', [...xs], xs[0].dtype, shape, { axis: attr.int(a) });
  if (g.taping) {
    g.record('concat', [...xs], [out], ([grad]) => {
      const sizes = xs.every((x) => typeof x.shape[a] === 'number')
        ? g.ints(xs.map((x) => x.shape[a] as number))
        : emit1(
            g,
            'Concat',
            xs.map((x) => shapeOf(x, a, a + 1)),
            'int64',
            [xs.length],
            { axis: attr.int(0) },
          );
      return g.emit(
        'Split',
        [grad!, sizes],
        xs.map((x) => ({ dtype: x.dtype, shape: x.shape })),
        { axis: attr.int(a) },
      );
    });
  }
  return out;
}

/** x[..., start:end, ...] on one axis, step 1; `end` undefined means to the end. Negative indices count from the end. */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const g = x.graph;
  const a = normAxis(axis, x.rank, 'slice: axis');
  const dim = x.shape[a];
  const endValue = end ?? Number.MAX_SAFE_INTEGER;
  let outDim: Dim;
  if (typeof dim === 'number') {
    const s = Math.min(Math.max(start < 0 ? dim + start : start, 0), dim);
    const e = Math.min(Math.max(endValue < 0 ? dim + endValue : endValue, 0), dim);
    outDim = Math.max(0, e - s);
  } else if (start >= 0 && end !== undefined && end >= 0) outDim = Math.max(0, end - start);
  else if (start < 0 && (end === undefined || (end < 0 && end > start)))
    outDim = (end ?? 0) - start; // the last |start| (assumes the run-time dim is at least that long)
  else outDim = `${dim}[${start}:${end ?? ''}]`;
  const shape = [...x.shape];
  shape[a] = outDim;
  const out = emit1(g, 'Slice', [x, g.ints([start]), g.ints([endValue]), g.ints([a])], x.dtype, shape);
  if (g.taping) {
    g.record('slice', [x], [out], ([grad]) => {
      // The gradient is the output gradient padded with zeros back to x's extent on that axis.
      const dimT = shapeOf(x, a, a + 1);
      const clampIndex = (i: number): Tensor => {
        const raw = i < 0 ? emit1(g, 'Add', [dimT, g.ints([i])], 'int64', [1]) : g.ints([i]);
        const upper = emit1(g, 'Min', [raw, dimT], 'int64', [1]);
        return emit1(g, 'Max', [upper, g.ints([0])], 'int64', [1]);
      };
      const begin = clampIndex(start);
      const finish = end === undefined ? dimT : clampIndex(end);
      const after = emit1(g, 'Sub', [dimT, finish], 'int64', [1]);
      const zeros = (n: number) => (n > 0 ? [g.ints(new Array(n).fill(0))] : []);
      const pads = emit1(
        g,
        'Concat',
        [...zeros(a), begin, ...zeros(x.rank - 1), after, ...zeros(x.rank - a - 1)],
        'int64',
        [2 * x.rank],
        { axis: attr.int(0) },
      );
      return [emit1(g, 'Pad', [grad!, pads], x.dtype, x.shape)];
    });
  }
  return out;
}

function zerosLike(x: Tensor): Tensor {
  return emit1(x.graph, 'ConstantOfShape', [shapeOf(x)], x.dtype, x.shape, {
    value: attr.tensor(zeroScalar(x)),
  });
}

/**
 * Rows of `table` picked by integer `indices` (an embedding lookup when axis = 0). The gradient
 * is a true scatter-add into a zero table (ScatterND, reduction add), not a one-hot matmul.
 */
export function gather(table: Tensor, indices: Tensor, axis = 0): Tensor {
  const g = table.graph;
  const a = normAxis(axis, table.rank, 'gather: axis');
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') {
    throw new Error(`gather: indices ${indices.name} must be int64 or int32, got ${indices.dtype}`);
  }
  if (a !== 0) {
    const perm = table.shape.map((_, i) => i);
    perm.splice(a, 1);
    perm.unshift(a);
    const moved = gather(transpose(table, perm), indices, 0);
    // moved: [...indices, ...rest]; put the index dims back at position a.
    const k = indices.rank;
    const back: number[] = [];
    for (let i = 0; i < a; i++) back.push(k + i);
    for (let i = 0; i < k; i++) back.push(i);
    for (let i = k + a; i < moved.rank; i++) back.push(i);
    return transpose(moved, back);
  }
  if (table instanceof QuantizedWeight) {
    // Rows of a block-quantized table (an embedding): dequantize only the rows read. No gradient.
    const rows = gatherQuantizedRows(table, indices);
    g.record('gather', [table], [rows], () => {
      throw new Error(`gather: ${table.name} is block-quantized, and quantized weights are not trained`);
    });
    return rows;
  }
  const shape = [...indices.shape, ...table.shape.slice(1)];
  const out = emit1(g, 'Gather', [table, indices], table.dtype, shape, { axis: attr.int(0) });
  if (g.taping) {
    g.record('gather', [table], [out], ([grad]) => {
      const idx64 =
        indices.dtype === 'int64'
          ? indices
          : emit1(g, 'Cast', [indices], 'int64', indices.shape, { to: attr.int(7) });
      const idx = emit1(g, 'Unsqueeze', [idx64, g.ints([-1])], 'int64', [...indices.shape, 1]);
      return [
        emit1(g, 'ScatterND', [zerosLike(table), idx, grad!], table.dtype, table.shape, {
          reduction: attr.string('add'),
        }),
      ];
    });
  }
  return out;
}

/** out[i][j] = x[i][indices[i][j]] along `axis` (picking target log-probabilities, for instance). */
export function gatherElements(x: Tensor, indices: Tensor, axis: number): Tensor {
  const g = x.graph;
  const a = normAxis(axis, x.rank, 'gatherElements: axis');
  const out = emit1(g, 'GatherElements', [x, indices], x.dtype, indices.shape, { axis: attr.int(a) });
  if (g.taping) {
    g.record('gatherElements', [x], [out], ([grad]) => [
      emit1(g, 'ScatterElements', [zerosLike(x), indices, grad!], x.dtype, x.shape, {
        axis: attr.int(a),
        reduction: attr.string('add'),
      }),
    ]);
  }
  return out;
}

export function unsqueeze(x: Tensor, axes: number | readonly number[]): Tensor {
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const rank = x.rank + list.length;
  const norm = list.map((a) => normAxis(a, rank, 'unsqueeze: axis')).sort((p, q) => p - q);
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) shape.push(norm.includes(i) ? 1 : x.shape[j++]);
  const out = emit1(x.graph, 'Unsqueeze', [x, x.graph.ints(norm)], x.dtype, shape);
  if (x.graph.taping) x.graph.record('unsqueeze', [x], [out], ([g]) => [reshapeTo(g!, shapeOf(x), x.shape)]);
  return out;
}

export function squeeze(x: Tensor, axes: number | readonly number[]): Tensor {
  const list = (typeof axes === 'number' ? [axes] : [...axes]).map((a) =>
    normAxis(a, x.rank, 'squeeze: axis'),
  );
  for (const a of list) {
    if (x.shape[a] !== 1) throw new Error(`squeeze ${x.name}${formatShape(x.shape)}: axis ${a} is not 1`);
  }
  const shape = x.shape.filter((_, i) => !list.includes(i));
  const out = emit1(x.graph, 'Squeeze', [x, x.graph.ints(list)], x.dtype, shape);
  if (x.graph.taping) x.graph.record('squeeze', [x], [out], ([g]) => [reshapeTo(g!, shapeOf(x), x.shape)]);
  return out;
}

/** Broadcast x to the shape of `like` (whose values are not used). */
export function expandAs(x: Tensor, like: Tensor): Tensor {
  const shape = like.shape.map((d, i) => {
    const xd = x.shape[x.rank - like.rank + i];
    return xd === undefined || xd === 1 ? d : xd;
  });
  const out = emit1(x.graph, 'Expand', [x, shapeOf(like)], x.dtype, shape);
  if (x.graph.taping) x.graph.record('expand', [x], [out], ([g]) => [sumToShape(g!, x.shape)]);
  return out;
}

/** The size of one axis of x at run time, as an int64 tensor of shape [1]. */
export function dimOf(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.rank, 'dimOf: axis');
  return shapeOf(x, a, a + 1);
}

/** [0, 1, …, n-1] as int64, n given as an int64 [1] tensor (from `dimOf`) or a number. */
export function arange(g: Graph, n: Tensor | number, length?: Dim): Tensor {
  const limit =
    typeof n === 'number' ? g.scalar(n, 'int64') : emit1(g, 'Squeeze', [n, g.ints([0])], 'int64', []);
  const size: Dim = length ?? (typeof n === 'number' ? n : 'n');
  return emit1(g, 'Range', [g.scalar(0, 'int64'), limit, g.scalar(1, 'int64')], 'int64', [size]);
}
