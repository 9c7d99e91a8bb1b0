/**
 * GGUF export of MaVEn's language model, so llama.cpp and the tools built on it load the same
 * LLaMA weights (checked with node-llama-cpp; figures in docs/gguf.md).
 *
 * Hand-written because no maintained npm package writes GGUF: @huggingface/gguf and hyllama only
 * read it, and the reference writer (gguf-py, with convert_hf_to_gguf.py) is Python. The format
 * is small: a header, typed key/value metadata, one info record per tensor, then the tensor data,
 * each piece aligned. Everything here is pure (bytes out); `maven export` does the file I/O.
 *
 * Layout (GGUF v3, little-endian), as ggml/docs/gguf.md and gguf-py describe it:
 *   "GGUF" · u32 version 3 · u64 tensor count · u64 key/value count
 *   key/values: string key (u64 length + UTF-8) · u32 value type · value
 *               (arrays: u32 element type · u64 count · elements)
 *   tensor infos: string name · u32 n_dims · u64 ne[n_dims] (ne0 first: the fastest-varying axis,
 *               so a row-major [rows, cols] matrix has ne = [cols, rows]) · u32 ggml type ·
 *               u64 offset from the start of the data section (a multiple of the alignment)
 *   padding to `general.alignment` (32), then the data, each tensor padded to the alignment.
 *
 * Numeric formats follow ggml's reference code (ggml-quants.c), float32 arithmetic included:
 *   F16   IEEE half, round to nearest even (ggml's FP32_TO_FP16).
 *   Q8_0  blocks of 32 along ne0: f16 d = max|x| / 127, then int8 q = roundf(x · (1/d)) (half away
 *         from zero); 34 bytes a block. quantize_row_q8_0_ref.
 *   Q4_0  blocks of 32: m = the element of largest magnitude (signed; the first on ties),
 *         d = m / −8, q = min(15, trunc(x · (1/d) + 8.5)); f16 d then 16 bytes, byte j holding
 *         q[j] in its low nibble and q[j + 16] in its high one; 18 bytes a block.
 *         quantize_row_q4_0_ref. Dequantized: (q − 8) · d.
 *
 * Rotary layout: our LLaMA follows Hugging Face (rotate_half pairs dimension i with i + hd/2);
 * llama.cpp's `llama` architecture rotates adjacent pairs (2i, 2i + 1), the original Meta layout.
 * The rows of q_proj and k_proj are therefore permuted within each head exactly as
 * convert_hf_to_gguf.py's LlamaModel.permute does (reshape(n_head, 2, hd/2, in).swapaxes(1, 2);
 * k_proj with the key/value head count), which turns one into the other.
 */
import { floatBitsToHalf, type HostTensor, halfToFloat } from '../engine/index.ts';
import type { LlamaConfig } from '../models/llama.ts';

// ---------------------------------------------------------------------------------------------
// Half precision and the block quantizations
// ---------------------------------------------------------------------------------------------

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * The IEEE binary16 bits of `x` (first rounded to float32, as it is stored), rounding to nearest
 * even (the engine's safetensors half encoder): overflow gives ±Inf, values below half the
 * smallest subnormal give ±0, NaN stays NaN.
 */
export function f32ToF16(x: number): number {
  f32Scratch[0] = x;
  return floatBitsToHalf(u32Scratch[0]);
}

/** The value of IEEE binary16 bits `h`. */
export const f16ToF32 = halfToFloat;

export const QK = 32;
const Q8_0_BLOCK_BYTES = 2 + QK;
const Q4_0_BLOCK_BYTES = 2 + QK / 2;
const fr = Math.fround;

function checkBlocks(x: Float32Array, what: string): void {
  if (x.length % QK !== 0) throw new Error(`${what}: ${x.length} values are not a multiple of ${QK}`);
}

/** F16 bytes (little-endian) of `x`. */
export function toF16Bytes(x: Float32Array): Uint8Array {
  const out = new Uint8Array(2 * x.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < x.length; i++) view.setUint16(2 * i, f32ToF16(x[i]), true);
  return out;
}

/** Q8_0 blocks of `x` (length a multiple of 32), as ggml's quantize_row_q8_0_ref writes them. */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  checkBlocks(x, 'quantizeQ8_0');
  const out = new Uint8Array((x.length / QK) * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0, o = 0; b < x.length; b += QK, o += Q8_0_BLOCK_BYTES) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    for (let j = 0; j < QK; j++) {
      const v = fr(x[b + j] * id);
      view.setInt8(o + 2 + j, v < 0 ? -Math.round(-v) : Math.round(v)); // roundf: half away from 0
    }
  }
  return out;
}

export function dequantizeQ8_0(bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0, o = 0; b < count; b += QK, o += Q8_0_BLOCK_BYTES) {
    const d = f16ToF32(view.getUint16(o, true));
    for (let j = 0; j < QK; j++) out[b + j] = view.getInt8(o + 2 + j) * d;
  }
  return out;
}

/** Q4_0 blocks of `x` (length a multiple of 32), as ggml's quantize_row_q4_0_ref writes them. */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  checkBlocks(x, 'quantizeQ4_0');
  const out = new Uint8Array((x.length / QK) * Q4_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  const q = new Uint8Array(QK);
  for (let b = 0, o = 0; b < x.length; b += QK, o += Q4_0_BLOCK_BYTES) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      if (amax < Math.abs(x[b + j])) {
        amax = Math.abs(x[b + j]);
        max = x[b + j];
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    for (let j = 0; j < QK; j++) q[j] = Math.min(15, Math.trunc(fr(fr(x[b + j] * id) + 8.5)));
    for (let j = 0; j < QK / 2; j++) out[o + 2 + j] = q[j] | (q[j + QK / 2] << 4);
  }
  return out;
}

export function dequantizeQ4_0(bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0, o = 0; b < count; b += QK, o += Q4_0_BLOCK_BYTES) {
    const d = f16ToF32(view.getUint16(o, true));
    for (let j = 0; j < QK / 2; j++) {
      const byte = bytes[o + 2 + j];
      out[b + j] = ((byte & 0x0f) - 8) * d;
      out[b + j + QK / 2] = ((byte >> 4) - 8) * d;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rotary row permutation
// ---------------------------------------------------------------------------------------------

/**
 * Rows of a q_proj/k_proj matrix [heads · hd, cols] (row-major) from HF's rotate_half layout to
 * llama.cpp's interleaved one: within each head, row 2i + j of the result is row j · hd/2 + i of
 * the input (convert_hf_to_gguf.py's LlamaModel.permute).
 */
export function permuteRotaryRows(w: Float32Array, heads: number, cols: number): Float32Array {
  return moveRows(w, heads, cols, false);
}

/** The inverse of `permuteRotaryRows`: llama.cpp's layout back to Hugging Face's. */
export function unpermuteRotaryRows(w: Float32Array, heads: number, cols: number): Float32Array {
  return moveRows(w, heads, cols, true);
}

function moveRows(w: Float32Array, heads: number, cols: number, inverse: boolean): Float32Array {
  const rows = w.length / cols;
  if (!Number.isInteger(rows) || rows % heads !== 0 || (rows / heads) % 2 !== 0) {
    throw new Error(
      `permuteRotaryRows: ${w.length} values do not make ${heads} heads of even width × ${cols}`,
    );
  }
  const hd = rows / heads;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const interleaved = h * hd + 2 * i + j;
        const halves = h * hd + j * (hd / 2) + i;
        const [to, from] = inverse ? [halves, interleaved] : [interleaved, halves];
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The GGUF container
// ---------------------------------------------------------------------------------------------

export const GGUF_MAGIC = 'GGUF';
export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

/** gguf_type: how a metadata value is stored. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** The ggml tensor types this writer produces. */
export const GgmlType = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
export type GgmlTypeName = keyof typeof GgmlType;

/** llama_ftype ("general.file_type"): what most tensors are. */
export const GgufFileType = { ALL_F32: 0, MOSTLY_F16: 1, MOSTLY_Q4_0: 2, MOSTLY_Q8_0: 7 } as const;

/** GGML_QUANT_VERSION, which gguf-py writes as general.quantization_version. */
export const GGML_QUANT_VERSION = 2;

/** llama_token_type / gguf-py TokenType. */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

type ScalarKind = 'uint32' | 'int32' | 'uint64' | 'float32' | 'bool' | 'string';

export type GgufValue =
  | { type: ScalarKind; value: number | bigint | boolean | string }
  | { type: 'array'; of: ScalarKind; values: readonly (number | bigint | boolean | string)[] };

export interface GgufTensor {
  name: string;
  /** ggml dims, ne0 first (the reverse of a row-major shape). */
  dims: number[];
  type: GgmlTypeName;
  /** Bytes of data (computed without encoding it). */
  byteLength: number;
  /** The encoded data; called once, when its turn to be written comes. */
  encode(): Uint8Array;
}

export interface GgufFile {
  metadata: [string, GgufValue][];
  tensors: GgufTensor[];
}

const SCALAR_TYPE: Record<ScalarKind, number> = {
  uint32: GgufValueType.UINT32,
  int32: GgufValueType.INT32,
  uint64: GgufValueType.UINT64,
  float32: GgufValueType.FLOAT32,
  bool: GgufValueType.BOOL,
  string: GgufValueType.STRING,
};

/** A little-endian byte buffer that grows as it is written. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly encoder = new TextEncoder();

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }

  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }

  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }

  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }

  u64(v: number | bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  string(s: string): void {
    const b = this.encoder.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }

  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    this.reserve(pad);
    this.length += pad; // the buffer is zero-filled
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeScalar(
  w: ByteWriter,
  kind: ScalarKind,
  v: number | bigint | boolean | string,
  key: string,
): void {
  const bad = () => new Error(`GGUF metadata ${key}: ${JSON.stringify(String(v))} is not a valid ${kind}`);
  const integer = (lo: number, hi: number) =>
    typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
  if (kind === 'string') {
    if (typeof v !== 'string') throw bad();
    w.string(v);
  } else if (kind === 'bool') {
    if (typeof v !== 'boolean') throw bad();
    w.u8(v ? 1 : 0);
  } else if (kind === 'float32') {
    if (typeof v !== 'number') throw bad();
    w.f32(v);
  } else if (kind === 'uint32') {
    if (!integer(0, 0xffffffff)) throw bad();
    w.u32(v as number);
  } else if (kind === 'int32') {
    if (!integer(-(2 ** 31), 2 ** 31 - 1)) throw bad();
    w.i32(v as number);
  } else {
    const ok = typeof v === 'bigint' ? v >= 0n : integer(0, Number.MAX_SAFE_INTEGER);
    if (!ok) throw bad();
    w.u64(v as number | bigint);
  }
}

/** Bytes a tensor of `type` with `count` values takes. */
export function ggmlByteLength(type: GgmlTypeName, count: number): number {
  switch (type) {
    case 'F32':
      return 4 * count;
    case 'F16':
      return 2 * count;
    case 'Q8_0':
      return (count / QK) * Q8_0_BLOCK_BYTES;
    case 'Q4_0':
      return (count / QK) * Q4_0_BLOCK_BYTES;
  }
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/**
 * The file as a sequence of byte chunks: the header (metadata, tensor infos, padding), then each
 * tensor's data with its padding. Tensors are encoded one at a time as the chunks are taken, so
 * a large model never sits in memory twice over.
 */
export function* ggufChunks(file: GgufFile): Generator<Uint8Array> {
  const seen = new Set<string>();
  for (const [key] of file.metadata) {
    if (seen.has(key)) throw new Error(`GGUF metadata: key ${key} appears twice`);
    seen.add(key);
  }
  const w = new ByteWriter();
  for (const c of GGUF_MAGIC) w.u8(c.charCodeAt(0));
  w.u32(GGUF_VERSION);
  w.u64(file.tensors.length);
  w.u64(file.metadata.length);
  for (const [key, value] of file.metadata) {
    w.string(key);
    if (value.type === 'array') {
      w.u32(GgufValueType.ARRAY);
      w.u32(SCALAR_TYPE[value.of]);
      w.u64(value.values.length);
      for (const v of value.values) writeScalar(w, value.of, v, key);
    } else {
      w.u32(SCALAR_TYPE[value.type]);
      writeScalar(w, value.type, value.value, key);
    }
  }
  let offset = 0;
  const names = new Set<string>();
  for (const t of file.tensors) {
    if (names.has(t.name)) throw new Error(`GGUF: tensor ${t.name} appears twice`);
    names.add(t.name);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GgmlType[t.type]);
    w.u64(offset);
    offset = alignUp(offset + t.byteLength, GGUF_ALIGNMENT);
  }
  w.padTo(GGUF_ALIGNMENT);
  yield w.result();
  for (const t of file.tensors) {
    const data = t.encode();
    if (data.byteLength !== t.byteLength)
      throw new Error(`GGUF: tensor ${t.name} encoded to ${data.byteLength} bytes, expected ${t.byteLength}`);
    yield data;
    const pad = alignUp(t.byteLength, GGUF_ALIGNMENT) - t.byteLength;
    if (pad) yield new Uint8Array(pad);
  }
}

/** The whole file in one buffer (tests, small models). */
export function encodeGguf(file: GgufFile): Uint8Array {
  const chunks = [...ggufChunks(file)];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// MaVEn's LLaMA as a llama.cpp `llama` model
// ---------------------------------------------------------------------------------------------

export const GGUF_EXPORT_TYPES = ['f32', 'f16', 'q8_0', 'q4_0'] as const;
export type GgufExportType = (typeof GGUF_EXPORT_TYPES)[number];

/** The vocabulary as written under tokenizer.ggml.*. */
export interface GgufVocabulary {
  /** tokenizer.ggml.model: which llama.cpp tokenizer reads `tokens`. */
  model: string;
  tokens: string[];
  scores: number[];
  types: number[];
  bosId: number;
  eosId: number;
  unknownId: number;
  paddingId: number;
}

export interface LlamaGgufSource {
  name: string;
  llm: LlamaConfig;
  /** Hugging Face names (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, …). */
  weights: ReadonlyMap<string, HostTensor>;
  vocabulary: GgufVocabulary;
}

/** SentencePiece's space, which llama.cpp's WordPiece tokenizer puts before a word's first piece. */
export const WORD_START = '\u2581';

/** What the word-level tokenizer (src/models/tokenizers/word.ts) must offer to be exported. */
export interface WordVocabularySource {
  vocabSize: number;
  bosId: number;
  eosId: number;
  padId: number;
  idToToken(id: number): string | undefined;
}

/**
 * The unified vocabulary of a model with a word-level text tokenizer, for llama.cpp's WordPiece
 * ("bert") tokenizer, the nearest it has: it lower-cases, splits text at spaces and punctuation,
 * and looks each word up whole, with ▁ before it, falling back to the unknown token — which is
 * what our tokenizer does. So each word and mark is written with a leading ▁ ("▁circle", "▁,").
 * <unk> is UNKNOWN; <s>, </s>, <pad> are CONTROL; the added special tokens (<img>, </img>) and
 * the visual codes ("<visual_00042>") are USER_DEFINED, which llama.cpp matches whole in text.
 */
export function wordVocabulary(
  tokenizer: WordVocabularySource,
  options: { unknownId: number; specialTokens: readonly string[]; visualCodes: number },
): GgufVocabulary {
  const control = new Set([tokenizer.bosId, tokenizer.eosId, tokenizer.padId]);
  const special = new Set(options.specialTokens);
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const token = tokenizer.idToToken(id);
    if (token === undefined) throw new Error(`wordVocabulary: the tokenizer has no token for id ${id}`);
    if (id === options.unknownId) {
      tokens.push(token);
      types.push(TokenType.UNKNOWN);
    } else if (control.has(id)) {
      tokens.push(token);
      types.push(TokenType.CONTROL);
    } else if (special.has(token)) {
      tokens.push(token);
      types.push(TokenType.USER_DEFINED);
    } else {
      tokens.push(WORD_START + token);
      types.push(TokenType.NORMAL);
    }
  }
  const digits = Math.max(5, String(options.visualCodes - 1).length);
  for (let c = 0; c < options.visualCodes; c++) {
    tokens.push(visualTokenName(c, digits));
    types.push(TokenType.USER_DEFINED);
  }
  const seen = new Map<string, number>();
  tokens.forEach((t, id) => {
    const before = seen.get(t);
    if (before !== undefined) throw new Error(`wordVocabulary: ids ${before} and ${id} are both ${t}`);
    seen.set(t, id);
  });
  return {
    model: 'bert',
    tokens,
    scores: tokens.map(() => 0),
    types,
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosId,
    unknownId: options.unknownId,
    paddingId: tokenizer.padId,
  };
}

/** "<visual_00042>": the token string of visual code 42. */
export function visualTokenName(code: number, digits = 5): string {
  return `<visual_${String(code).padStart(digits, '0')}>`;
}

/** HF name → GGUF name for a LLaMA parameter, or undefined for names that are not LLaMA's. */
export function ggufTensorName(hfName: string): string | undefined {
  const top: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight',
    'model.norm.weight': 'output_norm.weight',
    'lm_head.weight': 'output.weight',
  };
  if (top[hfName]) return top[hfName];
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hfName);
  if (!m) return undefined;
  const perLayer: Record<string, string> = {
    input_layernorm: 'attn_norm',
    'self_attn.q_proj': 'attn_q',
    'self_attn.k_proj': 'attn_k',
    'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output',
    post_attention_layernorm: 'ffn_norm',
    'mlp.gate_proj': 'ffn_gate',
    'mlp.up_proj': 'ffn_up',
    'mlp.down_proj': 'ffn_down',
  };
  const part = perLayer[m[2]];
  return part ? `blk.${m[1]}.${part}.weight` : undefined;
}

/**
 * The ggml type a tensor gets: 1-D tensors (the RMSNorm weights) stay F32; 2-D ones take the
 * requested type, except that a quantized type needs ne0 (the row length) to be a multiple of 32,
 * and a matrix whose rows are not falls back to F16, as convert_hf_to_gguf.py does.
 */
export function tensorType(shape: readonly number[], requested: GgufExportType): GgmlTypeName {
  if (shape.length < 2 || requested === 'f32') return 'F32';
  if (requested === 'f16') return 'F16';
  if (shape[shape.length - 1] % QK !== 0) return 'F16';
  return requested === 'q8_0' ? 'Q8_0' : 'Q4_0';
}

/** GGUF is little-endian; a Float32Array's bytes are the host's order. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function encodeAs(type: GgmlTypeName, x: Float32Array): Uint8Array {
  switch (type) {
    case 'F32': {
      if (LITTLE_ENDIAN) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
      const out = new Uint8Array(x.byteLength);
      const view = new DataView(out.buffer);
      for (let i = 0; i < x.length; i++) view.setFloat32(4 * i, x[i], true);
      return out;
    }
    case 'F16':
      return toF16Bytes(x);
    case 'Q8_0':
      return quantizeQ8_0(x);
    case 'Q4_0':
      return quantizeQ4_0(x);
  }
}

const FILE_TYPE: Record<GgufExportType, number> = {
  f32: GgufFileType.ALL_F32,
  f16: GgufFileType.MOSTLY_F16,
  q8_0: GgufFileType.MOSTLY_Q8_0,
  q4_0: GgufFileType.MOSTLY_Q4_0,
};

/** The HF parameter names of a LLaMA config, in the order they are written. */
function llamaParamNames(c: LlamaConfig): string[] {
  const names = ['model.embed_tokens.weight'];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.layers.${i}.`;
    names.push(
      `${p}input_layernorm.weight`,
      `${p}self_attn.q_proj.weight`,
      `${p}self_attn.k_proj.weight`,
      `${p}self_attn.v_proj.weight`,
      `${p}self_attn.o_proj.weight`,
      `${p}post_attention_layernorm.weight`,
      `${p}mlp.gate_proj.weight`,
      `${p}mlp.up_proj.weight`,
      `${p}mlp.down_proj.weight`,
    );
  }
  names.push('model.norm.weight');
  if (!c.tieWordEmbeddings) names.push('lm_head.weight');
  return names;
}

/**
 * The GGUF file (architecture "llama") of a LLaMA: its hyperparameters, vocabulary and weights,
 * 2-D weights as `type` (see `tensorType`), q_proj/k_proj rows permuted for llama.cpp's rotary
 * layout. A tied LM head writes no output.weight: llama.cpp then uses token_embd.weight.
 */
export function llamaGguf(source: LlamaGgufSource, type: GgufExportType): GgufFile {
  const c = source.llm;
  const v = source.vocabulary;
  if (!GGUF_EXPORT_TYPES.includes(type))
    throw new Error(`llamaGguf: type ${type} is not one of ${GGUF_EXPORT_TYPES.join(', ')}`);
  if (v.tokens.length !== c.vocabSize) {
    throw new Error(`llamaGguf: the vocabulary has ${v.tokens.length} tokens, the LLM ${c.vocabSize} rows`);
  }
  if (v.scores.length !== v.tokens.length || v.types.length !== v.tokens.length)
    throw new Error('llamaGguf: tokens, scores and types differ in length');
  const headDim = c.headDim ?? c.hiddenSize / c.numAttentionHeads;
  const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
  const metadata: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: source.name }],
    ['general.file_type', u32(FILE_TYPE[type])],
    ['general.quantization_version', u32(GGML_QUANT_VERSION)],
    ['general.alignment', u32(GGUF_ALIGNMENT)],
    ['llama.context_length', u32(c.maxPositionEmbeddings)],
    ['llama.embedding_length', u32(c.hiddenSize)],
    ['llama.block_count', u32(c.numHiddenLayers)],
    ['llama.feed_forward_length', u32(c.intermediateSize)],
    ['llama.attention.head_count', u32(c.numAttentionHeads)],
    ['llama.attention.head_count_kv', u32(c.numKeyValueHeads)],
    ['llama.rope.dimension_count', u32(headDim)],
    ['llama.rope.freq_base', { type: 'float32', value: c.ropeTheta }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'float32', value: c.rmsNormEps }],
    ['llama.vocab_size', u32(c.vocabSize)],
  ];
  if (c.headDim !== undefined) {
    metadata.push(
      ['llama.attention.key_length', u32(headDim)],
      ['llama.attention.value_length', u32(headDim)],
    );
  }
  metadata.push(
    ['tokenizer.ggml.model', { type: 'string', value: v.model }],
    ['tokenizer.ggml.tokens', { type: 'array', of: 'string', values: v.tokens }],
    ['tokenizer.ggml.scores', { type: 'array', of: 'float32', values: v.scores }],
    ['tokenizer.ggml.token_type', { type: 'array', of: 'int32', values: v.types }],
    ['tokenizer.ggml.bos_token_id', u32(v.bosId)],
    ['tokenizer.ggml.eos_token_id', u32(v.eosId)],
    ['tokenizer.ggml.unknown_token_id', u32(v.unknownId)],
    ['tokenizer.ggml.padding_token_id', u32(v.paddingId)],
    // Our prompts put <s> first themselves; nothing is added behind the caller's back.
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  );
  if (v.model === 'bert') {
    // WordPiece would otherwise append a [SEP] (default id 102) to tokenized text.
    metadata.push(
      ['tokenizer.ggml.seperator_token_id', u32(v.eosId)],
      ['tokenizer.ggml.add_sep_token', { type: 'bool', value: false }],
    );
  }

  const tensors: GgufTensor[] = llamaParamNames(c).map((hfName) => {
    const w = source.weights.get(hfName);
    if (!w) throw new Error(`llamaGguf: no weight ${hfName}`);
    if (w.dtype !== 'float32' && w.dtype !== 'float64')
      throw new Error(`llamaGguf: ${hfName} is ${w.dtype}, not a float tensor`);
    const name = ggufTensorName(hfName)!;
    const ttype = tensorType(w.shape, type);
    // From the shape: a tensor's data is read only when its turn to be written comes.
    const count = w.shape.reduce((a, b) => a * b, 1);
    const rotary = hfName.endsWith('q_proj.weight')
      ? c.numAttentionHeads
      : hfName.endsWith('k_proj.weight')
        ? c.numKeyValueHeads
        : 0;
    return {
      name,
      dims: [...w.shape].reverse(),
      type: ttype,
      byteLength: ggmlByteLength(ttype, count),
      encode: () => {
        const data = w.data;
        let x = data instanceof Float32Array ? data : Float32Array.from(data as Float64Array);
        if (rotary) x = permuteRotaryRows(x, rotary, w.shape[1]);
        return encodeAs(ttype, x);
      },
    };
  });
  return { metadata, tensors };
}
