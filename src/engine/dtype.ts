/**
 * Element types the engine traces and runs, and the typed arrays that hold them on the host.
 * Names follow onnxruntime's tensor type strings so host data passes to ORT unchanged.
 */
export type FloatDType = 'float32' | 'float64';
export type DType = FloatDType | 'int64' | 'int32' | 'bool' | 'uint8';

export interface TypedArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  bool: Uint8Array;
  /** Packed codes of block-quantized weights (engine/block-quantization.ts). */
  uint8: Uint8Array;
}
export type HostArray = TypedArrayOf[DType];

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4,
  float64: 8,
  int64: 8,
  int32: 4,
  bool: 1,
  uint8: 1,
};

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'float32' || dtype === 'float64';
}

export function allocate<D extends DType>(dtype: D, size: number): TypedArrayOf[D] {
  switch (dtype) {
    case 'float32':
      return new Float32Array(size) as TypedArrayOf[D];
    case 'float64':
      return new Float64Array(size) as TypedArrayOf[D];
    case 'int64':
      return new BigInt64Array(size) as TypedArrayOf[D];
    case 'int32':
      return new Int32Array(size) as TypedArrayOf[D];
    case 'bool':
    case 'uint8':
      return new Uint8Array(size) as TypedArrayOf[D];
  }
  throw new Error(`unknown dtype ${String(dtype)}`);
}
