/**
 * Block quantization of linear-layer weights, in the layout onnxruntime's `MatMulNBits`
 * (com.microsoft) reads, so that a stored weight goes to the kernel without repacking.
 *
 * A float weight `W` [N, K] (PyTorch layout [out, in]) is stored as two tensors:
 *
 *   `<name>.qweight`  uint8   [N, K / blockSize, blockSize · bits / 8]  codes, packed low nibble first
 *   `<name>.scales`   float32 [N, K / blockSize]                         one scale per block
 *
 * and reads back as W[n, k] = (code − 2^(bits−1)) · scale[n, k / blockSize] (symmetric: no zero
 * points, the kernel's default zero point is 2^(bits−1)). The two shapes and the logical [N, K]
 * determine bits and blockSize, so a checkpoint needs no side table to be run; files still say
 * what they hold in their metadata, and a reader compares the two.
 */
import { FileTensor, type StoredTensor, storedByteLength } from './file-tensor.ts';
import { HostTensor } from './host-tensor.ts';

export const QWEIGHT_SUFFIX = '.qweight';
export const SCALES_SUFFIX = '.scales';

/** The code widths onnxruntime-node's CPU MatMulNBits runs (checked on 1.30). */
export const SUPPORTED_BITS: readonly number[] = [4, 8];

/**
 * Code widths that `linear` runs with MatMulNBits by default; other widths go through the
 * dequantizing nodes into a float MatMul (with the codes as initializers onnxruntime folds those
 * into a float weight once, when the session is created, so memory is float-sized). Against float32
 * MatMul on the same layer (bench/quantize.ts, 2 cores, layers 576 × 1536 to 4096 × 11008, with
 * MATMULNBITS_ACCURACY_LEVEL 4): 8-bit codes ran 2.8–7.9× faster for one row (decoding a token) and
 * 0.93–1.37× for 64 (a prefill), 4-bit codes 2.3–5.6× and 0.60–1.02×; 8-bit codes dequantized into
 * a float MatMul 0.84–1.10×.
 */
export const MATMULNBITS_BITS: readonly number[] = [4, 8];

/**
 * MatMulNBits' `accuracy_level`: 0 multiplies in float32; 4 rounds each block of activations to
 * int8 (one scale per block, as llama.cpp rounds them to q8_0 for its q4_0 / q8_0 dot products) and
 * runs MLAS's integer kernels (AVX-512 VNNI here). With float activations 8-bit codes ran at
 * 0.03–0.30× float32 MatMul's speed, and 4-bit ones 1.3–3.0× for one row (bench/quantize.ts, the
 * same layers); the rounding moved a layer's relative RMS error against the float weight from
 * 3.8e-3 to 5.0e-3 at 8 bits and left 4 bits' 7.1e-2 (the codes' own) unchanged. onnxruntime treats
 * the level as the least precision it may use; whether onnxruntime-web's wasm build has the integer
 * kernels was not checked.
 */
export type MatMulNBitsAccuracyLevel = 0 | 4;
export const MATMULNBITS_ACCURACY_LEVEL: MatMulNBitsAccuracyLevel = 4;

/** How `linear` runs a block-quantized weight with MatMulNBits. */
export interface MatMulNBitsKernel {
  accuracyLevel: MatMulNBitsAccuracyLevel;
}

export interface BlockQuantSpec {
  bits: 4 | 8;
  /** Weights per block along K; a power of two ≥ 16 that divides K. */
  blockSize: number;
}

export interface BlockQuantized {
  qweight: HostTensor<'uint8'>;
  scales: HostTensor<'float32'>;
}

function checkSpec(what: string, spec: BlockQuantSpec, k: number): void {
  if (!SUPPORTED_BITS.includes(spec.bits)) {
    throw new Error(`${what}: ${spec.bits}-bit codes are not supported (${SUPPORTED_BITS.join(' or ')})`);
  }
  const b = spec.blockSize;
  if (!Number.isInteger(b) || b < 16 || (b & (b - 1)) !== 0) {
    throw new Error(`${what}: block size ${b} must be a power of two ≥ 16 (MatMulNBits)`);
  }
  if (k % b !== 0) throw new Error(`${what}: block size ${b} does not divide the input width ${k}`);
}

/** Quantize a float weight [N, K]; each block's scale maps its largest |w| to the largest code. */
export function blockQuantize(weight: HostTensor, spec: BlockQuantSpec, name = 'weight'): BlockQuantized {
  if (weight.dtype !== 'float32' || weight.shape.length !== 2) {
    throw new Error(
      `${name}: only float32 [out, in] weights can be block-quantized, got ${weight.dtype}[${weight.shape.join(', ')}]`,
    );
  }
  const [n, k] = weight.shape;
  checkSpec(name, spec, k);
  const { bits, blockSize: bs } = spec;
  const blocks = k / bs;
  const blob = (bs * bits) / 8;
  const zero = 2 ** (bits - 1);
  const w = weight.data as Float32Array;
  const q = new Uint8Array(n * blocks * blob);
  const scales = new Float32Array(n * blocks);
  const codes = new Int32Array(bs);
  const best = new Int32Array(bs);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const start = row * k + b * bs;
      const scale = quantizeBlock(w, start, bs, zero, codes, best);
      scales[row * blocks + b] = scale;
      const out = (row * blocks + b) * blob;
      for (let j = 0; j < bs; j++) {
        const code = best[j] + zero;
        if (bits === 8) q[out + j] = code;
        else q[out + (j >> 1)] |= j & 1 ? code << 4 : code;
      }
    }
  }
  return {
    qweight: new HostTensor('uint8', [n, blocks, blob], q),
    scales: new HostTensor('float32', [n, blocks], scales),
  };
}

/**
 * Codes (centred, −zero … zero − 1, into `best`) and the scale (returned) for one block: the
 * pair with the least squared error among a few: the block's largest-magnitude value mapped to −(zero − 1), −(zero − ½), −zero or
 * −(zero + ½) code steps (llama.cpp's q4_0 maps it to −8, using the code a symmetric range leaves
 * idle), each scale then refitted to its codes by least squares (Σ x·c / Σ c²), as llama.cpp's
 * k-quants do. The first candidate is plain symmetric rounding refitted, so no block comes out
 * worse than plain rounding. On the embedded model (run r22) at 4 bits in blocks of 32 the
 * perception headline moved 0.3 points from float32 instead of 2.6 with plain rounding, and NLVR
 * test (200 sentences × 6 orders) 0.1 instead of 1.4 (docs/quantization.md). A scale comes out
 * negative when the block's largest-magnitude weight is positive; MatMulNBits takes it as it is.
 */
function quantizeBlock(
  w: Float32Array,
  start: number,
  bs: number,
  zero: number,
  codes: Int32Array,
  best: Int32Array,
): number {
  let m = 0;
  for (let j = 0; j < bs; j++) if (Math.abs(w[start + j]) > Math.abs(m)) m = w[start + j];
  if (m === 0) {
    best.fill(0);
    return 0;
  }
  let bestErr = Number.POSITIVE_INFINITY;
  let bestScale = 0;
  for (const steps of [zero - 1, zero - 0.5, zero, zero + 0.5]) {
    const d = -m / steps;
    let xc = 0;
    let cc = 0;
    for (let j = 0; j < bs; j++) {
      const c = Math.min(zero - 1, Math.max(-zero, Math.round(w[start + j] / d)));
      codes[j] = c;
      xc += w[start + j] * c;
      cc += c * c;
    }
    if (cc === 0) continue;
    const scale = Math.fround(xc / cc);
    let err = 0;
    for (let j = 0; j < bs; j++) err += (w[start + j] - scale * codes[j]) ** 2;
    if (err < bestErr) {
      bestErr = err;
      bestScale = scale;
      best.set(codes);
    }
  }
  return bestScale;
}

/** The float weight [N, K] a block-quantized pair stands for, as MatMulNBits computes it. */
export function blockDequantize(q: BlockQuantized, spec: BlockQuantSpec): HostTensor<'float32'> {
  const [n, blocks] = q.qweight.shape;
  const k = blocks * spec.blockSize;
  const out = new Float32Array(n * k);
  for (let row = 0; row < n; row++) dequantizeRow(q.qweight.data, q.scales.data, spec, k, row, out, row * k);
  return new HostTensor('float32', [n, k], out);
}

/** Row `row` of a block-quantized [N, k] pair, (code − 2^(bits−1)) · scale, into `into` at `at`. */
function dequantizeRow(
  codes: Uint8Array,
  scales: Float32Array,
  spec: BlockQuantSpec,
  k: number,
  row: number,
  into: Float32Array,
  at: number,
): void {
  const { bits, blockSize: bs } = spec;
  const blocks = k / bs;
  const blob = (bs * bits) / 8;
  const zero = 2 ** (bits - 1);
  for (let b = 0; b < blocks; b++) {
    const scale = scales[row * blocks + b];
    const base = (row * blocks + b) * blob;
    for (let j = 0; j < bs; j++) {
      const code = bits === 8 ? codes[base + j] : (codes[base + (j >> 1)] >> ((j & 1) * 4)) & 15;
      into[at + b * bs + j] = (code - zero) * scale;
    }
  }
}

type Shaped = { readonly shape: readonly number[]; readonly dtype?: string };

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * Bits and block size of the pair stored for weight `name` of logical shape [N, K], from the
 * tensors' shapes. Throws naming the tensor when the pair cannot be a MatMulNBits weight.
 */
export function blockQuantSpec(
  name: string,
  logical: readonly number[],
  qweight: Shaped,
  scales: Shaped | undefined,
): BlockQuantSpec {
  const qName = name + QWEIGHT_SUFFIX;
  const sName = name + SCALES_SUFFIX;
  if (!scales)
    throw new Error(`"${sName}" is missing: "${qName}" has no scales, so it cannot be dequantized`);
  if (logical.length !== 2)
    throw new Error(`"${qName}": only a 2-D weight can be block-quantized, "${name}" is ${fmt(logical)}`);
  const [n, k] = logical;
  if (qweight.dtype !== undefined && qweight.dtype !== 'uint8' && qweight.dtype !== 'U8') {
    throw new Error(`"${qName}" must hold uint8 codes, found ${qweight.dtype}`);
  }
  if (scales.dtype !== undefined && scales.dtype !== 'float32' && scales.dtype !== 'F32') {
    throw new Error(`"${sName}" must hold float32 scales, found ${scales.dtype}`);
  }
  const [qn, blocks, blob] = qweight.shape;
  if (qweight.shape.length !== 3 || qn !== n || !(blocks > 0) || !(blob > 0)) {
    throw new Error(
      `"${qName}" is ${fmt(qweight.shape)}; "${name}" ${fmt(logical)} needs [${n}, blocks, bytes per block]`,
    );
  }
  if (scales.shape.length !== 2 || scales.shape[0] !== n || scales.shape[1] !== blocks) {
    throw new Error(
      `"${sName}" is ${fmt(scales.shape)} but "${qName}" ${fmt(qweight.shape)} has ${blocks} block(s) per row: block sizes mismatch (scales must be [${n}, ${blocks}])`,
    );
  }
  if (k % blocks !== 0) {
    throw new Error(
      `"${qName}": ${blocks} blocks do not divide the input width ${k} of "${name}" (block size mismatch)`,
    );
  }
  const blockSize = k / blocks;
  const bits = (blob * 8) / blockSize;
  if (!SUPPORTED_BITS.includes(bits)) {
    throw new Error(
      `"${qName}": ${blob} bytes per block of ${blockSize} weights is ${bits}-bit, which this runtime cannot run (MatMulNBits here: ${SUPPORTED_BITS.join(' or ')} bits)`,
    );
  }
  const spec: BlockQuantSpec = { bits: bits as 4 | 8, blockSize };
  checkSpec(`"${qName}"`, spec, k);
  return spec;
}

/** Whether `found` stores weight `name` block-quantized. */
export function isBlockQuantized(found: ReadonlyMap<string, unknown>, name: string): boolean {
  return !found.has(name) && (found.has(name + QWEIGHT_SUFFIX) || found.has(name + SCALES_SUFFIX));
}

/** The stored tensors behind weight `name`: itself, or its `.qweight` and `.scales`. */
export function storedWeightNames(found: ReadonlyMap<string, unknown>, name: string): string[] {
  return isBlockQuantized(found, name) ? [name + QWEIGHT_SUFFIX, name + SCALES_SUFFIX] : [name];
}

/**
 * What is wrong with how `found` stores weight `name` of logical shape `shape`, or null: missing,
 * misshapen (`has` words the found shape in the message), or a quantized pair that MatMulNBits
 * cannot run.
 */
export function storedWeightProblem(
  found: ReadonlyMap<string, Shaped>,
  name: string,
  shape: readonly number[],
  has = 'found',
): string | null {
  const plain = found.get(name);
  if (plain) {
    if (plain.shape.length !== shape.length || plain.shape.some((d, i) => d !== shape[i])) {
      return `"${name}": expected ${fmt(shape)}, ${has} ${fmt(plain.shape)}`;
    }
    return null;
  }
  const q = found.get(name + QWEIGHT_SUFFIX);
  if (!q) {
    if (found.has(name + SCALES_SUFFIX))
      return `"${name}${QWEIGHT_SUFFIX}" is missing ("${name}${SCALES_SUFFIX}" is there)`;
    return `missing "${name}" ${fmt(shape)}`;
  }
  try {
    blockQuantSpec(name, shape, q, found.get(name + SCALES_SUFFIX));
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Bytes the stored tensors of weight `name` take. */
export function storedWeightBytes(weights: ReadonlyMap<string, StoredTensor>, name: string): number {
  return storedWeightNames(weights, name).reduce((n, s) => n + storedByteLength(weights.get(s)!), 0);
}

/** Host-side reads of a stored table's rows (an embedding), float32 or block-quantized. */
export interface StoredRows {
  /** [rows, width] */
  readonly shape: readonly [number, number];
  /** Write row `row` (dequantized when stored so) into `into` at `at`. */
  read(row: number, into: Float32Array, at: number): void;
}

/**
 * The rows of weight `name` [N, K] as `weights` store it (itself, or `.qweight` + `.scales`), in
 * host memory or read a row at a time from its file (a FileTensor with `read`).
 */
export function storedRows(
  weights: ReadonlyMap<string, StoredTensor>,
  name: string,
  shape: readonly number[],
): StoredRows {
  const [n, k] = shape as [number, number];
  const plain = weights.get(name);
  if (plain) {
    if (plain.dtype !== 'float32')
      throw new Error(`"${name}" is ${plain.dtype}; token rows are read as float32`);
    const data = hostOrRows(name, plain, k * 4);
    return {
      shape: [n, k],
      read: (row, into, at) => data(row, new Uint8Array(into.buffer, into.byteOffset + at * 4, k * 4)),
    };
  }
  const qweight = weights.get(name + QWEIGHT_SUFFIX);
  if (!qweight) throw new Error(`missing "${name}" ${fmt(shape)}`);
  const scalesTensor = weights.get(name + SCALES_SUFFIX);
  const spec = blockQuantSpec(name, shape, qweight, scalesTensor);
  const blocks = k / spec.blockSize;
  const blob = (spec.blockSize * spec.bits) / 8;
  const codeRow = hostOrRows(name + QWEIGHT_SUFFIX, qweight, blocks * blob);
  const scaleRow = hostOrRows(name + SCALES_SUFFIX, scalesTensor!, blocks * 4);
  const codes = new Uint8Array(blocks * blob);
  const scales = new Float32Array(blocks);
  return {
    shape: [n, k],
    read: (row, into, at) => {
      codeRow(row, codes);
      scaleRow(row, new Uint8Array(scales.buffer));
      dequantizeRow(codes, scales, spec, k, 0, into, at);
    },
  };
}

/** Copies row `row` of a table ([rows, rowBytes] as stored) into `into`, from memory or its file. */
function hostOrRows(
  name: string,
  t: StoredTensor,
  rowBytes: number,
): (row: number, into: Uint8Array) => void {
  if (t instanceof FileTensor) {
    const read = t.read;
    if (!read) throw new Error(`"${name}" was left in ${t.file} and cannot be read from here`);
    return (row, into) => read(t.offset + row * rowBytes, into.subarray(0, rowBytes));
  }
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return (row, into) => into.set(bytes.subarray(row * rowBytes, (row + 1) * rowBytes));
}
