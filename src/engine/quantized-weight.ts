/**
 * Tracing a weight parameter stored block-quantized (block-quantize.ts) as a `QuantizedWeight`
 * (tensor.ts): the dequantizing nodes are emitted with it; when only MatMulNBits reads the
 * weight, nothing reads them and serialisation drops them, so the float weight never exists.
 * A table read by rows (an embedding) gathers the rows' codes and scales first and dequantizes
 * only those (`gatherQuantizedRows`).
 */
import type { BlockQuantSpec, MatMulNBitsKernel } from './block-quantize.ts';
import { attr, type Graph } from './graph.ts';
import { HostTensor } from './host-tensor.ts';
import type { Dim } from './shape.ts';
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
  const w = dequantizeBlocks(g, qweight, scales, spec, [shape[0]], shape[1]);
  return new QuantizedWeight(g, w.name, shape, qweight, scales, spec, matMulNBits);
}

/**
 * Rows `indices` of a block-quantized table [N, K] as float32 [...indices, K]: a Gather of their
 * codes and scales, then the dequantizing nodes over those rows only (an embedding lookup reads
 * a few rows of a table that would be N·K floats dequantized whole).
 */
export function gatherQuantizedRows(table: QuantizedWeight, indices: Tensor): Tensor {
  const g = table.graph;
  const [, k] = table.shape as [number, number];
  const [, blocks, blob] = table.qweight.shape;
  const codes = g.emit(
    'Gather',
    [table.qweight, indices],
    [{ dtype: 'uint8', shape: [...indices.shape, blocks, blob] }],
  )[0];
  const scales = g.emit(
    'Gather',
    [table.scales, indices],
    [{ dtype: 'float32', shape: [...indices.shape, blocks] }],
  )[0];
  return dequantizeBlocks(g, codes, scales, table.spec, indices.shape, k);
}

/** codes [...lead, blocks, blob] and scales [...lead, blocks] → float32 [...lead, k]. */
function dequantizeBlocks(
  g: Graph,
  codes: Tensor,
  scales: Tensor,
  spec: BlockQuantSpec,
  lead: readonly Dim[],
  k: number,
): Tensor {
  const { bits, blockSize: bs } = spec;
  const blocks = k / bs;
  const r = lead.length;
  const u8 = (v: number) => g.constant(new HostTensor('uint8', [], Uint8Array.of(v)), 'u8');
  let unpacked = codes; // [...lead, blocks, bs]
  if (bits === 4) {
    const blob = bs / 2;
    const packed = [...lead, blocks, blob];
    const low = g.emit('BitwiseAnd', [codes, u8(15)], [{ dtype: 'uint8', shape: packed }])[0];
    const high = g.emit('BitShift', [codes, u8(4)], [{ dtype: 'uint8', shape: packed }], {
      direction: attr.string('RIGHT'),
    })[0];
    const pair = (t: Tensor) =>
      g.emit('Unsqueeze', [t, g.ints([r + 2])], [{ dtype: 'uint8', shape: [...packed, 1] }])[0];
    const both = g.emit('Concat', [pair(low), pair(high)], [{ dtype: 'uint8', shape: [...packed, 2] }], {
      axis: attr.int(r + 2),
    })[0]; // [...lead, blocks, blob, 2]: low nibble first, as stored
    unpacked = g.emit(
      'Reshape',
      [both, g.ints([...lead.map(() => 0), blocks, bs])],
      [{ dtype: 'uint8', shape: [...lead, blocks, bs] }],
    )[0];
  }
  const full = [...lead, blocks, bs];
  const f = g.emit('Cast', [unpacked], [{ dtype: 'float32', shape: full }], { to: attr.int(1) })[0];
  const centred = g.emit(
    'Sub',
    [f, g.scalar(2 ** (bits - 1), 'float32')],
    [{ dtype: 'float32', shape: full }],
  )[0];
  const s = g.emit(
    'Unsqueeze',
    [scales, g.ints([r + 1])],
    [{ dtype: 'float32', shape: [...lead, blocks, 1] }],
  )[0];
  const scaled = g.emit('Mul', [centred, s], [{ dtype: 'float32', shape: full }])[0];
  return g.emit(
    'Reshape',
    [scaled, g.ints([...lead.map(() => 0), k])],
    [{ dtype: 'float32', shape: [...lead, k] }],
  )[0];
}
