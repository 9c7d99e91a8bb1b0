/**
 * The engine's public API: what the model layers import. Portable (no `node:` import, so it runs
 * in a browser); reading and writing checkpoint files lives in the Node adapter,
 * src/node/safetensors-file.ts.
 */
export { grad } from './autodiff.ts';
export {
  type BlockQuantized,
  type BlockQuantSpec,
  blockDequantize,
  blockQuantize,
  blockQuantSpec,
  isBlockQuantized,
  MATMULNBITS_ACCURACY_LEVEL,
  MATMULNBITS_BITS,
  type MatMulNBitsAccuracyLevel,
  type MatMulNBitsKernel,
  QWEIGHT_SUFFIX,
  SCALES_SUFFIX,
  type StoredRows,
  SUPPORTED_BITS,
  storedRows,
  storedWeightBytes,
  storedWeightNames,
  storedWeightProblem,
} from './block-quantize.ts';
export {
  DecoderCache,
  type DecoderOptions,
  type DecoderOutput,
  type DecoderSpec,
  DecoderStream,
  KVCacheDecoder,
  type KVCacheInputs,
  type LayerCache,
  type PrefillOptions,
} from './decoder.ts';
export { allocate, type DType, type FloatDType, type HostArray, isFloat } from './dtype.ts';
export { FileTensor, type StoredTensor, storedByteLength } from './file-tensor.ts';
export { attr, Graph, type GraphOptions } from './graph.ts';
export { HostTensor, sizeOf } from './host-tensor.ts';
export { type SerializedModel, serialize } from './onnx.ts';
export * as ops from './ops/index.ts';
export { type AdamWConfig, type Schedule, warmupCosine } from './optim.ts';
export {
  checkShapes,
  decodeTensor,
  deserializeSafetensors,
  floatBitsToHalf,
  halfToFloat,
  parseSafetensorsHeader,
  serializeSafetensors,
} from './safetensors.ts';
export {
  compile,
  defaultProvider,
  type ExecutionProvider,
  type OnnxRuntimeModule,
  Program,
  provideOnnxRuntime,
  type RuntimeOptions,
} from './session.ts';
export { type Dim, formatShape, type Shape } from './shape.ts';
export { QuantizedWeight, Tensor, type TensorLike } from './tensor.ts';
export {
  NonFiniteLossError,
  type StepResult,
  Trainer,
  type TrainerOptions,
  type TrainGraph,
} from './trainer.ts';
