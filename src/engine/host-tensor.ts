/**
 * A concrete tensor in host memory: the unit that goes into and comes out of sessions,
 * checkpoints and data loaders. Row-major, shape fully known.
 */
import { allocate, type DType, type TypedArrayOf } from './dtype.ts';

export class HostTensor<D extends DType = DType> {
  constructor(
    readonly dtype: D,
    readonly shape: readonly number[],
    readonly data: TypedArrayOf[D],
  ) {
    const expected = sizeOf(shape);
    if (data.length !== expected) {
      throw new Error(
        `HostTensor: shape [${shape.join(', ')}] needs ${expected} elements, got ${data.length}`,
      );
    }
  }

  static zeros<D extends DType>(dtype: D, shape: readonly number[]): HostTensor<D> {
    return new HostTensor(dtype, shape, allocate(dtype, sizeOf(shape)));
  }

  static from(shape: readonly number[], values: ArrayLike<number>): HostTensor<'float32'> {
    return new HostTensor('float32', shape, Float32Array.from(values));
  }

  get size(): number {
    return this.data.length;
  }
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
