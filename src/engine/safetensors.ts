/**
 * The safetensors checkpoint format (Hugging Face): header parsing and validation, tensor decoding
 * and serialization. Pure functions over bytes, no `node:` imports; file I/O is in
 * src/node/safetensors-file.ts.
 */
import { allocate, BYTES_PER_ELEMENT, type DType, type HostArray } from './dtype.ts';
import { HostTensor, sizeOf } from './host-tensor.ts';

export interface SafetensorsEntry {
  name: string;
  /** dtype as written in the file, e.g. 'BF16'. */
  dtype: string;
  shape: number[];
  /** Absolute position of the tensor's first byte in the file. */
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Absolute file position of the data section (8 + header length). */
  dataStart: number;
}

export interface SerializeOptions {
  /** Store float32 tensors as half or bfloat16 (round to nearest even). Other dtypes are unaffected. */
  dtype?: 'F16' | 'BF16';
}

/** Bytes per element of every dtype the format defines with a whole-byte size. */
export const SAFETENSORS_ITEMSIZE: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

const DECODED_DTYPE: Readonly<Record<string, DType>> = {
  F32: 'float32',
  F16: 'float32',
  BF16: 'float32',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  U8: 'uint8',
  BOOL: 'bool',
};

const FILE_DTYPE: Readonly<Record<DType, string>> = {
  float32: 'F32',
  float64: 'F64',
  int64: 'I64',
  int32: 'I32',
  bool: 'BOOL',
  uint8: 'U8',
};

/** Same limit as the Rust reference: a larger header is treated as a corrupt file. */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const fmtShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** The host dtype a file dtype decodes to, or undefined when decodeTensor cannot decode it. */
export function decodedDType(fileDtype: string): DType | undefined {
  return DECODED_DTYPE[fileDtype];
}

/**
 * True when the file bytes of `fileDtype` are exactly the host typed array's bytes, so a reader may
 * read them straight into the result's buffer.
 */
export function isNativeLayout(fileDtype: string): boolean {
  return LITTLE_ENDIAN && fileDtype !== 'F16' && fileDtype !== 'BF16' && fileDtype in DECODED_DTYPE;
}

/**
 * Reads and checks the 8-byte header length prefix. `fileSize` is the whole file's size when
 * `prefix` holds only the start of the file.
 */
export function readHeaderLength(
  prefix: Uint8Array,
  fileLabel = 'safetensors',
  fileSize = prefix.length,
): number {
  if (fileSize < 8 || prefix.length < 8) {
    throw new Error(`${fileLabel}: file is ${fileSize} bytes, shorter than the 8-byte header length prefix`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw new Error(
      `${fileLabel}: header length ${n} goes beyond the file (${fileSize} bytes, ${fileSize - 8} after the prefix)`,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new Error(`${fileLabel}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  return Number(n);
}

/**
 * Parses and validates a safetensors header. `buf` is the whole file or at least its first
 * 8 + header-length bytes; `fileSize` (default buf.length) bounds the data section, so a header-only
 * buffer plus the real file size also detects truncated files.
 */
export function parseSafetensorsHeader(
  buf: Uint8Array,
  fileLabel = 'safetensors',
  fileSize = buf.length,
): SafetensorsHeader {
  const n = readHeaderLength(buf, fileLabel, fileSize);
  if (buf.length < 8 + n) {
    throw new Error(`${fileLabel}: header is ${n} bytes but only ${buf.length - 8} were given`);
  }
  const dataStart = 8 + n;
  const dataSize = fileSize - dataStart;

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, dataStart));
  } catch {
    throw new Error(`${fileLabel}: header (${n} bytes) is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${fileLabel}: header (${n} bytes) is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${fileLabel}: header must be a JSON object`);
  }

  const metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    const where = `${fileLabel}: tensor ${JSON.stringify(name)}`;
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) {
        throw new Error(`${fileLabel}: __metadata__ must be an object of strings`);
      }
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') {
          throw new Error(`${fileLabel}: __metadata__ value for ${JSON.stringify(k)} is not a string`);
        }
        metadata[k] = v;
      }
      continue;
    }
    if (typeof info !== 'object' || info === null || Array.isArray(info)) {
      throw new Error(`${where} must be an object with dtype, shape and data_offsets`);
    }
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== 'string') throw new Error(`${where} is missing a string "dtype"`);
    const itemsize = SAFETENSORS_ITEMSIZE[dtype];
    if (itemsize === undefined) throw new Error(`${where} has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(
        `${where} needs "shape" as an array of non-negative integers, got ${JSON.stringify(shape)}`,
      );
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw new Error(
        `${where} needs "data_offsets" as [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new Error(`${where} has data_offsets [${begin}, ${end}] with end before begin`);
    const needed = sizeOf(shape) * itemsize;
    if (end - begin !== needed) {
      throw new Error(
        `${where} needs ${needed} bytes for ${dtype} ${fmtShape(shape)} but data_offsets give ${end - begin}`,
      );
    }
    entries.set(name, {
      name,
      dtype,
      shape: shape as number[],
      byteOffset: dataStart + begin,
      byteLength: end - begin,
    });
  }

  const sorted = [...entries.values()].sort(
    (a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength,
  );
  const beyond = sorted.filter((e) => e.byteOffset + e.byteLength - dataStart > dataSize);
  if (beyond.length > 0) {
    const e = beyond[0];
    const begin = e.byteOffset - dataStart;
    const others = beyond.slice(1).map((o) => JSON.stringify(o.name));
    const more =
      others.length === 0
        ? ''
        : `; also past the end: ${others.slice(0, 5).join(', ')}${others.length > 5 ? ` and ${others.length - 5} more` : ''}`;
    throw new Error(
      `${fileLabel}: tensor ${JSON.stringify(e.name)} has data_offsets [${begin}, ${begin + e.byteLength}] ` +
        `but the data section is only ${dataSize} bytes (file truncated?)${more}`,
    );
  }
  let prev: SafetensorsEntry | undefined;
  for (const e of sorted) {
    if (e.byteLength === 0) continue;
    if (prev && e.byteOffset < prev.byteOffset + prev.byteLength) {
      const pb = prev.byteOffset - dataStart;
      const eb = e.byteOffset - dataStart;
      throw new Error(
        `${fileLabel}: tensor ${JSON.stringify(e.name)} data_offsets [${eb}, ${eb + e.byteLength}] overlap ` +
          `tensor ${JSON.stringify(prev.name)} [${pb}, ${pb + prev.byteLength}]`,
      );
    }
    prev = e;
  }
  return { entries, metadata, dataStart };
}

let halfTable: Float32Array | undefined;

/** Exact value of an IEEE 754 binary16 bit pattern. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function getHalfTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/** binary16 bits of a float32 bit pattern, rounding to nearest even; NaN stays NaN. */
export function floatBitsToHalf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e > 0) {
    let h = sign | (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is correct, up to inf
    return h;
  }
  // Subnormal half: value = m * 2^-24 with m = full * 2^(exp - 126).
  const shift = 126 - exp;
  if (shift > 24) return sign; // below half the smallest subnormal
  const full = mant | 0x800000;
  const m = full >>> shift;
  const rem = full & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  return sign | (rem > halfway || (rem === halfway && m & 1) ? m + 1 : m);
}

/** bfloat16 bits of a float32 bit pattern, rounding to nearest even; NaN stays NaN. */
export function floatBitsToBf16(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

function byteView(a: HostArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Copies little-endian bytes into a fresh typed array of `dtype`. */
function copyLittleEndian(dtype: DType, bytes: Uint8Array, n: number): HostArray {
  const out = allocate(dtype, n);
  if (LITTLE_ENDIAN || dtype === 'bool' || dtype === 'uint8') {
    byteView(out).set(bytes);
    return out;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) {
    if (out instanceof Float32Array) out[i] = dv.getFloat32(4 * i, true);
    else if (out instanceof Float64Array) out[i] = dv.getFloat64(8 * i, true);
    else if (out instanceof BigInt64Array) out[i] = dv.getBigInt64(8 * i, true);
    else if (out instanceof Int32Array) out[i] = dv.getInt32(4 * i, true);
  }
  return out;
}

/** Decodes one tensor's bytes (exactly entry.byteLength of them) into a fresh HostTensor. */
export function decodeTensor(entry: SafetensorsEntry, bytes: Uint8Array): HostTensor {
  const dtype = DECODED_DTYPE[entry.dtype];
  if (dtype === undefined) {
    throw new Error(
      `tensor ${JSON.stringify(entry.name)} has dtype ${entry.dtype}, which cannot be decoded ` +
        `(supported: ${Object.keys(DECODED_DTYPE).join(', ')})`,
    );
  }
  if (bytes.length !== entry.byteLength) {
    throw new Error(
      `tensor ${JSON.stringify(entry.name)}: expected ${entry.byteLength} bytes, got ${bytes.length}`,
    );
  }
  const n = sizeOf(entry.shape);
  const shape = [...entry.shape];
  if (entry.dtype === 'F16') {
    const table = getHalfTable();
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
    return new HostTensor('float32', shape, out);
  }
  if (entry.dtype === 'BF16') {
    const out = new Float32Array(n);
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = (bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16;
    return new HostTensor('float32', shape, out);
  }
  return new HostTensor(dtype, shape, copyLittleEndian(dtype, bytes, n));
}

/** One tensor's place in a file being written. */
export interface PlannedTensor {
  name: string;
  tensor: HostTensor;
  dtype: string;
  /** Offsets relative to the data section, as in the header. */
  begin: number;
  end: number;
}

export interface SafetensorsPlan {
  /** The 8-byte length prefix followed by the space-padded JSON header. */
  header: Uint8Array;
  /** In data order. */
  tensors: PlannedTensor[];
  totalBytes: number;
}

function fileDtypeFor(t: HostTensor, options: SerializeOptions): string {
  const d = FILE_DTYPE[t.dtype];
  if (d === undefined) throw new Error(`cannot store dtype ${String(t.dtype)} in safetensors`);
  return t.dtype === 'float32' && options.dtype ? options.dtype : d;
}

/**
 * Lays out a file without copying tensor data. Header keys are in sorted order; data is ordered by
 * item size (largest first), then name, like the Rust reference, so every tensor stays aligned and
 * the tensors tile the data section with no gaps. The header is space-padded to a multiple of 8.
 */
export function planSafetensors(
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata?: Record<string, string>,
  options: SerializeOptions = {},
): SafetensorsPlan {
  const all = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const items = all.map(([name, tensor]) => {
    if (name === '__metadata__') throw new Error('a tensor cannot be named "__metadata__"');
    if (!(tensor instanceof HostTensor))
      throw new Error(`tensor ${JSON.stringify(name)} is not a HostTensor`);
    return { name, tensor, dtype: fileDtypeFor(tensor, options) };
  });
  items.sort(
    (a, b) => SAFETENSORS_ITEMSIZE[b.dtype] - SAFETENSORS_ITEMSIZE[a.dtype] || byName(a.name, b.name),
  );
  let offset = 0;
  const planned: PlannedTensor[] = items.map((it) => {
    const begin = offset;
    offset += it.tensor.size * SAFETENSORS_ITEMSIZE[it.dtype];
    return { ...it, begin, end: offset };
  });

  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`metadata value for ${JSON.stringify(k)} is not a string`);
    }
    const keys = Object.keys(metadata).sort(byName);
    const body = keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',');
    parts.push(`"__metadata__":{${body}}`);
  }
  for (const p of [...planned].sort((a, b) => byName(a.name, b.name))) {
    const info = `{"dtype":"${p.dtype}","shape":${JSON.stringify(p.tensor.shape)},"data_offsets":[${p.begin},${p.end}]}`;
    parts.push(`${JSON.stringify(p.name)}:${info}`);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + n).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(n), true);
  header.set(json, 8);
  return { header, tensors: planned, totalBytes: 8 + n + offset };
}

/**
 * The bytes of one planned tensor as stored in the file. For native layouts this is a view of the
 * tensor's own memory (no copy); half/bfloat16 and bool are encoded into a fresh buffer.
 */
export function encodeTensorData(p: PlannedTensor): Uint8Array {
  const data = p.tensor.data;
  if (p.dtype === 'F16' || p.dtype === 'BF16') {
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    const out = new Uint8Array(2 * data.length);
    const conv = p.dtype === 'F16' ? floatBitsToHalf : floatBitsToBf16;
    for (let i = 0; i < bits.length; i++) {
      const h = conv(bits[i]);
      out[2 * i] = h & 0xff;
      out[2 * i + 1] = h >>> 8;
    }
    return out;
  }
  if (p.dtype === 'BOOL') return Uint8Array.from(data as Uint8Array, (v) => (v ? 1 : 0));
  if (LITTLE_ENDIAN) return byteView(data);
  const size = BYTES_PER_ELEMENT[p.tensor.dtype];
  const out = new Uint8Array(data.length * size);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) {
    if (data instanceof Float32Array) dv.setFloat32(4 * i, data[i], true);
    else if (data instanceof Float64Array) dv.setFloat64(8 * i, data[i], true);
    else if (data instanceof BigInt64Array) dv.setBigInt64(8 * i, data[i], true);
    else if (data instanceof Int32Array) dv.setInt32(4 * i, data[i], true);
  }
  return out;
}

/** A complete safetensors file in memory. */
export function serializeSafetensors(
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata?: Record<string, string>,
  options: SerializeOptions = {},
): Uint8Array {
  const plan = planSafetensors(tensors, metadata, options);
  const out = new Uint8Array(plan.totalBytes);
  out.set(plan.header, 0);
  const dataStart = plan.header.length;
  for (const p of plan.tensors) out.set(encodeTensorData(p), dataStart + p.begin);
  return out;
}

/**
 * Every tensor of a safetensors file held whole in memory (fetched in a browser, say): the inverse
 * of serializeSafetensors. Files too large for one buffer go through src/node/safetensors-file.ts,
 * which reads tensor by tensor.
 */
export function deserializeSafetensors(
  bytes: Uint8Array,
  fileLabel = 'safetensors',
): Map<string, HostTensor> {
  const { entries } = parseSafetensorsHeader(bytes, fileLabel);
  const out = new Map<string, HostTensor>();
  for (const [name, entry] of entries) {
    try {
      out.set(
        name,
        decodeTensor(entry, bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength)),
      );
    } catch (e) {
      throw new Error(`${fileLabel}: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Compares tensor shapes with what a model expects. Throws one Error listing every missing tensor
 * and every shape mismatch (plus the extras, for context); otherwise returns the names of tensors
 * the model does not expect.
 */
export function checkShapes(
  expected: Map<string, number[]> | Record<string, number[]>,
  actual: { entries: Map<string, SafetensorsEntry> },
  label: string,
): string[] {
  const exp = expected instanceof Map ? expected : new Map(Object.entries(expected));
  const problems: string[] = [];
  for (const [name, shape] of exp) {
    const e = actual.entries.get(name);
    if (!e) problems.push(`missing ${JSON.stringify(name)} ${fmtShape(shape)}`);
    else if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      problems.push(`${JSON.stringify(name)}: expected ${fmtShape(shape)}, file has ${fmtShape(e.shape)}`);
    }
  }
  const extra = [...actual.entries.keys()].filter((n) => !exp.has(n));
  if (problems.length > 0) {
    const extras = extra.map(
      (n) => `unexpected (ignored) ${JSON.stringify(n)} ${fmtShape(actual.entries.get(n)!.shape)}`,
    );
    throw new Error(
      `${label}: ${problems.length} tensor(s) do not match the model:\n  ${[...problems, ...extras].join('\n  ')}`,
    );
  }
  return extra;
}
