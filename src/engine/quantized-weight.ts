/**
 * Tracing a weight parameter stored block-quantized (block-quantize.ts) as a `QuantizedWeight`
 * (tensor.ts): the dequantizing nodes are emitted with it; when only MatMulNBits reads the
 * weight, nothing reads them and serialisation drops them, so the float weight never exists.
 */
import type { BlockQuantSpec, MatMulNBitsKernel } from './block-quantize.ts';
import { attr, type Graph } from './graph.ts';
import { HostTensor } from './host-tensor.ts';
import { QuantizedWeight, type Tensor } from './tensor.ts';

/** A QuantizedWeight over the stored pair: emits (code − 2^(bits−1)) · scale with standard ONNX ops. */
export function traceQuantizedWeight(
  g: Graph,
  shape: [number, number],
  qweight: Tensor,
  scales: Tensor,
  spec: BlockQuantSpec,
  matMulNBits: MatMulNBitsKernel | null,
): QuantizedWeight {
  const [n, k] = shape;
  const { bits, blockSize: bs } = spec;
  const blocks = k / bs;
  const u8 = (v: number) => g.constant(new HostTensor('uint8', [], Uint8Array.of(v)), 'u8');
  let codes = qweight; // [N, blocks, bytes]
  if (bits === 4) {
    const blob = bs / 2;
    const low = g.emit('BitwiseAnd', [qweight, u8(15)], [{ dtype: 'uint8', shape: [n, blocks, blob] }])[0];
    const high = g.emit('BitShift', [qweight, u8(4)], [{ dtype: 'uint8', shape: [n, blocks, blob] }], {
      direction: attr.string('RIGHT'),
    })[0];
    const pair = (t: Tensor) =>
      g.emit('Unsqueeze', [t, g.ints([3])], [{ dtype: 'uint8', shape: [n, blocks, blob, 1] }])[0];
    const both = g.emit(
      'Concat',
      [pair(low), pair(high)],
      [{ dtype: 'uint8', shape: [n, blocks, blob, 2] }],
      {
        axis: attr.int(3),
      },
    )[0];
    codes = g.emit(
      'Reshape',
      [both, g.ints([n, blocks, bs])],
      [{ dtype: 'uint8', shape: [n, blocks, bs] }],
    )[0];
  }
  const f = g.emit('Cast', [codes], [{ dtype: 'float32', shape: [n, blocks, bs] }], { to: attr.int(1) })[0];
  const centred = g.emit(
    'Sub',
    [f, g.scalar(2 ** (bits - 1), 'float32')],
    [{ dtype: 'float32', shape: [n, blocks, bs] }],
  )[0];
  const s3 = g.emit('Unsqueeze', [scales, g.ints([2])], [{ dtype: 'float32', shape: [n, blocks, 1] }])[0];
  const scaled = g.emit('Mul', [centred, s3], [{ dtype: 'float32', shape: [n, blocks, bs] }])[0];
  const w = g.emit('Reshape', [scaled, g.ints([n, k])], [{ dtype: 'float32', shape: [n, k] }])[0];
  return new QuantizedWeight(g, w.name, shape, qweight, scales, spec, matMulNBits);
}
