/**
 * A symbolic tensor: a named value in a `Graph` with a dtype and a (possibly symbolic) shape.
 * The methods are sugar over the functions in `ops/`, so model code reads like PyTorch:
 * `x.matmul(w).add(b).gelu()`.
 */
import type { BlockQuantSpec, MatMulNBitsKernel } from './block-quantize.ts';
import type { DType } from './dtype.ts';
import type { Graph } from './graph.ts';
import * as ops from './ops/index.ts';
import { type Dim, formatShape } from './shape.ts';

export type TensorLike = Tensor | number;

export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Dim[],
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `Tensor(${this.name}: ${this.dtype}${formatShape(this.shape)})`;
  }

  add(b: TensorLike): Tensor {
    return ops.add(this, b);
  }
  sub(b: TensorLike): Tensor {
    return ops.sub(this, b);
  }
  mul(b: TensorLike): Tensor {
    return ops.mul(this, b);
  }
  div(b: TensorLike): Tensor {
    return ops.div(this, b);
  }
  pow(b: TensorLike): Tensor {
    return ops.pow(this, b);
  }
  neg(): Tensor {
    return ops.neg(this);
  }
  exp(): Tensor {
    return ops.exp(this);
  }
  log(): Tensor {
    return ops.log(this);
  }
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  square(): Tensor {
    return ops.square(this);
  }
  tanh(): Tensor {
    return ops.tanh(this);
  }
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  relu(): Tensor {
    return ops.relu(this);
  }
  gelu(): Tensor {
    return ops.gelu(this);
  }
  silu(): Tensor {
    return ops.silu(this);
  }
  matmul(b: Tensor): Tensor {
    return ops.matmul(this, b);
  }
  reshape(shape: readonly Dim[]): Tensor {
    return ops.reshape(this, shape);
  }
  transpose(perm: readonly number[]): Tensor {
    return ops.transpose(this, perm);
  }
  sum(axes?: number | readonly number[], keepDims = false): Tensor {
    return ops.sum(this, axes, keepDims);
  }
  mean(axes?: number | readonly number[], keepDims = false): Tensor {
    return ops.mean(this, axes, keepDims);
  }
  max(axes?: number | readonly number[], keepDims = false): Tensor {
    return ops.max(this, axes, keepDims);
  }
  softmax(axis = -1): Tensor {
    return ops.softmax(this, axis);
  }
  logSoftmax(axis = -1): Tensor {
    return ops.logSoftmax(this, axis);
  }
  cast(dtype: DType): Tensor {
    return ops.cast(this, dtype);
  }
}

/**
 * A weight parameter stored block-quantized (block-quantize.ts), as the tracer sees it. It is an
 * ordinary float [N, K] tensor — its value is the dequantized weight, so any op can use it — and
 * it also carries the stored `qweight` and `scales` inputs, so that `linear` can hand them to
 * `MatMulNBits` instead when `matMulNBits` says how (the graph decides, by bits: MATMULNBITS_BITS,
 * and the kernel's accuracy level: MATMULNBITS_ACCURACY_LEVEL). Made by `traceQuantizedWeight`.
 *
 * It is declared here, beside its base class, because tensor.ts, ops/ and graph.ts import one
 * another: in a module of its own the subclass could be evaluated before Tensor exists (any
 * program whose first engine import reached tensor.ts before ops/ failed so, bench/train.ts
 * among them).
 */
export class QuantizedWeight extends Tensor {
  constructor(
    graph: Graph,
    name: string,
    shape: [number, number],
    readonly qweight: Tensor,
    readonly scales: Tensor,
    readonly spec: BlockQuantSpec,
    /** How `linear` runs it with MatMulNBits; null: as a float MatMul over the dequantized weight. */
    readonly matMulNBits: MatMulNBitsKernel | null,
  ) {
    super(graph, name, 'float32', shape);
  }
}
