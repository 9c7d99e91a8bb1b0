/**
 * GGUF export: half-precision rounding, Q8_0/Q4_0 blocks against hand-computed bytes, the rotary
 * row permutation, and the exported tiny model read back by a reader written here from the format
 * description (not from the writer's code). That llama.cpp itself loads the files and agrees with
 * our model is checked outside the suite, with node-llama-cpp (docs/gguf.md).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { DEFAULT_MODEL_DIR } from '../../src/cli/default-model.ts';
import {
  dequantizeQ4_0,
  dequantizeQ8_0,
  encodeGguf,
  f16ToF32,
  f32ToF16,
  type GgufExportType,
  permuteRotaryRows,
  quantizeQ4_0,
  quantizeQ8_0,
  TokenType,
  tensorType,
  unpermuteRotaryRows,
} from '../../src/export/gguf.ts';
import { mavenLlmGguf } from '../../src/export/maven-gguf.ts';
import type { MavenModel } from '../../src/maven/model.ts';
import { loadMaven } from '../../src/node/model-directory.ts';
import { maven } from '../cli/run-maven.ts';

// ---------------------------------------------------------------------------------------------
// A minimal GGUF reader, from the spec: header, typed metadata, tensor infos, aligned data.
// ---------------------------------------------------------------------------------------------

type Meta = { type: number; value: unknown };
interface TensorInfo {
  name: string;
  dims: number[];
  type: number;
  offset: number;
}
interface Parsed {
  version: number;
  meta: Map<string, Meta>;
  tensors: TensorInfo[];
  dataStart: number;
  bytes: Uint8Array;
}

function readGguf(bytes: Uint8Array): Parsed {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const u32 = () => {
    const v = view.getUint32(at, true);
    at += 4;
    return v;
  };
  const u64 = () => {
    const v = Number(view.getBigUint64(at, true));
    at += 8;
    return v;
  };
  const str = () => {
    const n = u64();
    const s = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(at, at + n));
    at += n;
    return s;
  };
  const value = (type: number): unknown => {
    switch (type) {
      case 0:
        return view.getUint8(at++);
      case 1:
        return view.getInt8(at++);
      case 4:
        return u32();
      case 5: {
        const v = view.getInt32(at, true);
        at += 4;
        return v;
      }
      case 6: {
        const v = view.getFloat32(at, true);
        at += 4;
        return v;
      }
      case 7: {
        const b = view.getUint8(at++);
        assert.ok(b === 0 || b === 1, `bool byte ${b}`);
        return b === 1;
      }
      case 8:
        return str();
      case 9: {
        const of = u32();
        const n = u64();
        return { of, values: Array.from({ length: n }, () => value(of)) };
      }
      case 10:
        return u64();
      default:
        throw new Error(`value type ${type} not expected in our files`);
    }
  };
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), 'GGUF');
  at = 4;
  const version = u32();
  const nTensors = u64();
  const nKv = u64();
  const meta = new Map<string, Meta>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const type = u32();
    assert.ok(!meta.has(key), `key ${key} twice`);
    meta.set(key, { type, value: value(type) });
  }
  const tensors: TensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nDims = u32();
    const dims = Array.from({ length: nDims }, u64);
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const alignment = (meta.get('general.alignment')?.value as number | undefined) ?? 32;
  const dataStart = Math.ceil(at / alignment) * alignment;
  for (let i = at; i < dataStart; i++) assert.equal(bytes[i], 0, 'header padding is zeros');
  return { version, meta, tensors, dataStart, bytes };
}

const GGML_BYTES: Record<number, (n: number) => number> = {
  0: (n) => 4 * n,
  1: (n) => 2 * n,
  2: (n) => (n / 32) * 18,
  8: (n) => (n / 32) * 34,
};

function tensorValues(file: Parsed, t: TensorInfo): Float32Array {
  const count = t.dims.reduce((a, b) => a * b, 1);
  const start = file.dataStart + t.offset;
  const raw = file.bytes.subarray(start, start + GGML_BYTES[t.type](count));
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (t.type) {
    case 0:
      return Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
    case 1:
      return Float32Array.from({ length: count }, (_, i) => f16ToF32(view.getUint16(2 * i, true)));
    case 8:
      return dequantizeQ8_0(raw, count);
    case 2:
      return dequantizeQ4_0(raw, count);
    default:
      throw new Error(`type ${t.type}`);
  }
}

// ---------------------------------------------------------------------------------------------

const f32 = (x: number) => Math.fround(x);

describe('f32ToF16 (round to nearest even)', () => {
  const cases: [string, number, number][] = [
    ['one', 1, 0x3c00],
    ['minus two', -2, 0xc000],
    ['+0', 0, 0x0000],
    ['-0', -0, 0x8000],
    ['largest finite', 65504, 0x7bff],
    ['just below the overflow midpoint', 65519.99, 0x7bff],
    ['overflow midpoint 65520 ties to even: Inf', 65520, 0x7c00],
    ['Inf', Number.POSITIVE_INFINITY, 0x7c00],
    ['-Inf', Number.NEGATIVE_INFINITY, 0xfc00],
    ['smallest normal 2^-14', 2 ** -14, 0x0400],
    ['largest subnormal', 1023 * 2 ** -24, 0x03ff],
    ['subnormal tie 1023.5·2^-24 rounds up to even (the smallest normal)', 1023.5 * 2 ** -24, 0x0400],
    ['smallest subnormal 2^-24', 2 ** -24, 0x0001],
    ['2^-25 is a tie between 0 and 2^-24: even, 0', 2 ** -25, 0x0000],
    ['just above 2^-25 rounds up', f32(2 ** -25 * (1 + 2 ** -20)), 0x0001],
    ['3·2^-25 ties to even: 2·2^-24', 3 * 2 ** -25, 0x0002],
    ['below half the smallest subnormal: 0', 2 ** -26, 0x0000],
    ['-2^-24', -(2 ** -24), 0x8001],
    ['1 + 2^-11 ties to even: 1', 1 + 2 ** -11, 0x3c00],
    ['1 + 3·2^-11 ties to even: 1 + 2^-9', 1 + 3 * 2 ** -11, 0x3c02],
    ['1 + 2^-11 + 2^-20 rounds up', 1 + 2 ** -11 + 2 ** -20, 0x3c01],
    ['a mantissa carry into the exponent: 2 - 2^-12 → 2', 2 - 2 ** -12, 0x4000],
    ['0.1', 0.1, 0x2e66],
    ['pi', Math.PI, 0x4248],
  ];
  for (const [what, x, bits] of cases) {
    it(what, () => assert.equal(f32ToF16(x).toString(16), bits.toString(16)));
  }

  it('NaN stays NaN', () => {
    const h = f32ToF16(Number.NaN);
    assert.equal(h & 0x7c00, 0x7c00);
    assert.notEqual(h & 0x3ff, 0);
    assert.ok(Number.isNaN(f16ToF32(h)));
  });

  it('every finite half and infinity survives f16 → f32 → f16', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaNs
      assert.equal(f32ToF16(f16ToF32(h)), h);
    }
  });

  it('rounds to the nearest half: the error is at most half a unit in the last place', () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 20000; i++) {
      const x = f32((rand() - 0.5) * 2 ** (rand() * 40 - 24));
      const y = f16ToF32(f32ToF16(x));
      const e = Math.max(-14, Math.floor(Math.log2(Math.abs(y) || 2 ** -24)));
      assert.ok(Math.abs(x - y) <= 2 ** (e - 11), `${x} → ${y}`);
    }
  });
});

function block(values: Record<number, number>): Float32Array {
  const x = new Float32Array(32);
  for (const [i, v] of Object.entries(values)) x[Number(i)] = v;
  return x;
}

describe('Q8_0', () => {
  it('matches hand-computed bytes: d = max|x|/127 as f16, q = roundf(x/d), halves away from zero', () => {
    // max |x| = 127, so d = 1 (f16 0x3c00) and q = roundf(x).
    const x = block({ 0: 127, 1: -63.5, 2: 0.5, 3: -0.5, 4: 1.49, 5: -2.5, 6: 100.2, 31: -127 });
    const bytes = quantizeQ8_0(x);
    const expected = new Uint8Array(34);
    expected.set([0x00, 0x3c]); // d = 1.0
    const q = [127, -64, 1, -1, 1, -3, 100];
    q.forEach((v, i) => {
      expected[2 + i] = v & 0xff;
    });
    expected[2 + 31] = -127 & 0xff;
    assert.deepEqual([...bytes], [...expected]);
  });

  it('an all-zero block is d = 0 and zeros', () => {
    assert.deepEqual([...quantizeQ8_0(new Float32Array(32))], new Array(34).fill(0));
  });

  it('dequantizes within 0.5·d (+ the rounding of d to f16) of the input', () => {
    let seed = 3;
    const rand = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const x = Float32Array.from({ length: 32 * 64 }, (_, i) => (rand() - 0.5) * (1 + (i % 7)) * 0.1);
    const back = dequantizeQ8_0(quantizeQ8_0(x), x.length);
    for (let b = 0; b < x.length; b += 32) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
      const d = amax / 127;
      for (let j = 0; j < 32; j++)
        assert.ok(Math.abs(x[b + j] - back[b + j]) <= d * (0.5 + 127 * 2 ** -11), `block ${b / 32}`);
    }
  });

  it('needs a multiple of 32 values', () => {
    assert.throws(() => quantizeQ8_0(new Float32Array(48)), /multiple of 32/);
  });
});

describe('Q4_0', () => {
  it('matches hand-computed bytes: d = m/−8 with m the signed extreme, q = min(15, trunc(x/d + 8.5))', () => {
    // m = −8 (the element of largest magnitude), so d = 1 and q = min(15, trunc(x + 8.5)).
    const x = block({
      0: -8,
      1: 7,
      2: 0,
      3: -0.5,
      4: 0.49,
      5: 0.5,
      6: -0.51,
      7: 3.2,
      16: 6.6,
      17: -7.9,
      31: -8,
    });
    const q = new Array(32).fill(8); // x = 0 → 8
    Object.assign(q, { 0: 0, 1: 15, 3: 8, 4: 8, 5: 9, 6: 7, 7: 11, 16: 15, 17: 0, 31: 0 });
    const expected = new Uint8Array(18);
    expected.set([0x00, 0x3c]); // d = 1.0
    for (let j = 0; j < 16; j++) expected[2 + j] = q[j] | (q[j + 16] << 4);
    assert.deepEqual([...quantizeQ4_0(x)], [...expected]);
  });

  it('a positive extreme makes d negative, and the opposite extreme clamps at 15', () => {
    // m = 8: d = −1, id = −1; x = 8 → trunc(0.5) = 0 → (0 − 8)·(−1) = 8; x = −8 → 16 → 15 → −7.
    const x = block({ 0: 8, 1: -8, 2: 1 });
    const bytes = quantizeQ4_0(x);
    assert.deepEqual([bytes[0], bytes[1]], [0x00, 0xbc]); // f16 −1.0
    const back = dequantizeQ4_0(bytes, 32);
    assert.deepEqual([back[0], back[1], back[2], back[3] + 0], [8, -7, 1, 0]); // + 0: (8 − 8)·(−1) is −0
  });

  it('the first element of largest magnitude sets the sign of d', () => {
    const bytes = quantizeQ4_0(block({ 0: 3, 1: -3 }));
    assert.equal(f16ToF32(bytes[0] | (bytes[1] << 8)), -0.375);
  });

  it('dequantizes within |d| (one step where the far extreme clamps; half a step elsewhere)', () => {
    let seed = 11;
    const rand = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const x = Float32Array.from({ length: 32 * 64 }, () => (rand() - 0.5) * 0.2);
    const back = dequantizeQ4_0(quantizeQ4_0(x), x.length);
    for (let b = 0; b < x.length; b += 32) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
      const d = amax / 8;
      for (let j = 0; j < 32; j++) {
        const e = Math.abs(x[b + j] - back[b + j]);
        assert.ok(e <= d * (1 + 8 * 2 ** -11), `block ${b / 32}: ${e} > ${d}`);
        // Only values near the far extreme can be a full step off.
        if (e > d * (0.5 + 8 * 2 ** -11)) assert.ok(Math.abs(x[b + j]) > 6.5 * d);
      }
    }
  });
});

describe('rotary permutation', () => {
  it('interleaves the two halves of each head, and its inverse restores the HF rows', () => {
    // 2 heads of width 4, one column: [a0 a1 a2 a3 | b0 b1 b2 b3] → [a0 a2 a1 a3 | b0 b2 b1 b3].
    const w = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
    assert.deepEqual([...permuteRotaryRows(w, 2, 1)], [0, 2, 1, 3, 10, 12, 11, 13]);
    const big = Float32Array.from({ length: 8 * 16 * 5 }, (_, i) => Math.sin(i));
    const p = permuteRotaryRows(big, 8, 5);
    assert.notDeepEqual([...p], [...big]);
    assert.deepEqual([...unpermuteRotaryRows(p, 8, 5)], [...big]);
  });

  it("turns HF's rotate_half rotary into llama.cpp's adjacent-pair rotary", () => {
    const heads = 3;
    const hd = 8;
    const cols = 5;
    const W = Float32Array.from({ length: heads * hd * cols }, (_, i) => Math.cos(i * 0.37));
    const x = Float32Array.from({ length: cols }, (_, i) => i - 2);
    const matvec = (m: Float32Array) =>
      Array.from({ length: heads * hd }, (_, r) => x.reduce((s, v, c) => s + m[r * cols + c] * v, 0));
    const pos = 7;
    const freq = (i: number) => pos * 10000 ** ((-2 * i) / hd);
    const hf = matvec(W); // rotate_half: pairs (i, i + hd/2)
    const cpp = matvec(permuteRotaryRows(W, heads, cols)); // NORM rope: pairs (2i, 2i + 1)
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < hd / 2; i++) {
        const [a, b] = [hf[h * hd + i], hf[h * hd + i + hd / 2]];
        const [c, d] = [cpp[h * hd + 2 * i], cpp[h * hd + 2 * i + 1]];
        const [cos, sin] = [Math.cos(freq(i)), Math.sin(freq(i))];
        // HF output dims i and i + hd/2 equal llama.cpp's dims 2i and 2i + 1.
        assert.ok(Math.abs(a * cos - b * sin - (c * cos - d * sin)) < 1e-12);
        assert.ok(Math.abs(b * cos + a * sin - (d * cos + c * sin)) < 1e-12);
      }
    }
  });
});

describe('the tiny model as GGUF', () => {
  let model: MavenModel;
  const files = new Map<GgufExportType, Parsed>();
  before(async () => {
    model = await loadMaven(DEFAULT_MODEL_DIR);
    for (const type of ['f32', 'q8_0', 'q4_0'] as const)
      files.set(type, readGguf(encodeGguf(mavenLlmGguf(model, type))));
  });

  it('has the llama metadata of the config', () => {
    const c = model.config.llm;
    const f = files.get('f32')!;
    assert.equal(f.version, 3);
    const v = (k: string) => f.meta.get(k)?.value;
    assert.equal(v('general.architecture'), 'llama');
    assert.equal(v('general.name'), 'maven-tiny');
    assert.equal(v('general.alignment'), 32);
    assert.equal(v('general.file_type'), 0);
    assert.equal(v('llama.context_length'), c.maxPositionEmbeddings);
    assert.equal(v('llama.embedding_length'), 128);
    assert.equal(v('llama.block_count'), 4);
    assert.equal(v('llama.feed_forward_length'), c.intermediateSize);
    assert.equal(v('llama.attention.head_count'), 4);
    assert.equal(v('llama.attention.head_count_kv'), 2);
    assert.equal(v('llama.rope.dimension_count'), 32);
    assert.equal(v('llama.rope.freq_base'), c.ropeTheta);
    assert.equal(v('llama.attention.layer_norm_rms_epsilon'), Math.fround(c.rmsNormEps));
    assert.equal(v('llama.vocab_size'), c.vocabSize);
    assert.equal(f.meta.get('llama.rope.freq_base')?.type, 6); // FLOAT32
    assert.equal(f.meta.get('llama.block_count')?.type, 4); // UINT32
    assert.equal(files.get('q8_0')!.meta.get('general.file_type')?.value, 7);
    assert.equal(files.get('q4_0')!.meta.get('general.file_type')?.value, 2);
  });

  it('writes every id of the unified vocabulary, visual codes included', () => {
    const f = files.get('f32')!;
    const v = (k: string) => f.meta.get(k)?.value;
    const tokens = v('tokenizer.ggml.tokens') as { of: number; values: string[] };
    const types = v('tokenizer.ggml.token_type') as { of: number; values: number[] };
    const scores = v('tokenizer.ggml.scores') as { of: number; values: number[] };
    const V = model.config.llm.vocabSize;
    const T = model.config.textVocabSize;
    assert.equal(v('tokenizer.ggml.model'), 'bert');
    assert.deepEqual([tokens.of, types.of, scores.of], [8, 5, 6]);
    assert.deepEqual([tokens.values.length, types.values.length, scores.values.length], [V, V, V]);
    assert.equal(new Set(tokens.values).size, V);
    const tok = model.tokenizer;
    assert.deepEqual(tokens.values.slice(0, 4), ['<unk>', '<s>', '</s>', '<pad>']);
    assert.deepEqual(types.values.slice(0, 4), [
      TokenType.UNKNOWN,
      TokenType.CONTROL,
      TokenType.CONTROL,
      TokenType.CONTROL,
    ]);
    const blue = tok.tokenToId('blue')!;
    assert.equal(tokens.values[blue], '\u2581blue');
    assert.equal(types.values[blue], TokenType.NORMAL);
    for (const special of ['<img>', '</img>']) {
      const id = tok.tokenToId(special)!;
      assert.equal(tokens.values[id], special);
      assert.equal(types.values[id], TokenType.USER_DEFINED);
    }
    assert.equal(tokens.values[T], '<visual_00000>');
    assert.equal(tokens.values[T + 42], '<visual_00042>');
    assert.equal(tokens.values[V - 1], '<visual_00255>');
    assert.ok(types.values.slice(T).every((t) => t === TokenType.USER_DEFINED));
    assert.equal(v('tokenizer.ggml.bos_token_id'), tok.bosId);
    assert.equal(v('tokenizer.ggml.eos_token_id'), tok.eosId);
    assert.equal(v('tokenizer.ggml.unknown_token_id'), 0);
    assert.equal(v('tokenizer.ggml.padding_token_id'), tok.padId);
    assert.equal(v('tokenizer.ggml.add_bos_token'), false);
  });

  it('names, shapes, types and aligned, packed offsets of every tensor', () => {
    for (const [type, f] of files) {
      const names = f.tensors.map((t) => t.name);
      const expected = ['token_embd.weight'];
      for (let i = 0; i < 4; i++) {
        for (const p of [
          'attn_norm',
          'attn_q',
          'attn_k',
          'attn_v',
          'attn_output',
          'ffn_norm',
          'ffn_gate',
          'ffn_up',
          'ffn_down',
        ])
          expected.push(`blk.${i}.${p}.weight`);
      }
      expected.push('output_norm.weight'); // tied embeddings: no output.weight
      assert.deepEqual(names, expected);
      const byName = new Map(f.tensors.map((t) => [t.name, t]));
      assert.deepEqual(byName.get('token_embd.weight')!.dims, [128, 483]);
      assert.deepEqual(byName.get('blk.0.attn_q.weight')!.dims, [128, 128]);
      assert.deepEqual(byName.get('blk.0.attn_k.weight')!.dims, [128, 64]);
      assert.deepEqual(byName.get('blk.3.ffn_down.weight')!.dims, [384, 128]);
      assert.deepEqual(byName.get('blk.3.ffn_up.weight')!.dims, [128, 384]);
      assert.deepEqual(byName.get('output_norm.weight')!.dims, [128]);
      const matrixType = { f32: 0, q8_0: 8, q4_0: 2 }[type as 'f32' | 'q8_0' | 'q4_0'];
      for (const t of f.tensors) assert.equal(t.type, t.dims.length === 1 ? 0 : matrixType, t.name);
      let next = 0;
      for (const t of f.tensors) {
        assert.equal(t.offset, next, t.name);
        assert.equal(t.offset % 32, 0);
        const size = GGML_BYTES[t.type](t.dims.reduce((a, b) => a * b, 1));
        next = Math.ceil((t.offset + size) / 32) * 32;
      }
      assert.equal(f.dataStart % 32, 0);
      assert.equal(f.bytes.length, f.dataStart + next);
    }
  });

  it('f32 holds the weights exactly; q_proj/k_proj rows permuted, the inverse giving HF back', () => {
    const f = files.get('f32')!;
    const get = (n: string) => tensorValues(f, f.tensors.find((t) => t.name === n)!);
    const w = (n: string) => model.hostWeights().get(n)!.data as Float32Array;
    assert.deepEqual(get('token_embd.weight'), w('model.embed_tokens.weight'));
    assert.deepEqual(get('blk.2.ffn_down.weight'), w('model.layers.2.mlp.down_proj.weight'));
    assert.deepEqual(get('blk.1.attn_norm.weight'), w('model.layers.1.input_layernorm.weight'));
    assert.deepEqual(get('blk.1.attn_v.weight'), w('model.layers.1.self_attn.v_proj.weight'));
    const q = w('model.layers.1.self_attn.q_proj.weight');
    const k = w('model.layers.1.self_attn.k_proj.weight');
    assert.deepEqual(get('blk.1.attn_q.weight'), permuteRotaryRows(q, 4, 128));
    assert.deepEqual(unpermuteRotaryRows(get('blk.1.attn_q.weight'), 4, 128), q);
    assert.deepEqual(unpermuteRotaryRows(get('blk.1.attn_k.weight'), 2, 128), k);
    assert.notDeepEqual(get('blk.1.attn_k.weight'), k);
  });

  it('q8_0 and q4_0 hold every weight within their block bounds; norms stay exact', () => {
    for (const [type, step, slack] of [
      ['q8_0', 127, 0.5 + 127 * 2 ** -11],
      ['q4_0', 8, 1 + 8 * 2 ** -11],
    ] as const) {
      const f = files.get(type)!;
      for (const t of f.tensors) {
        const got = tensorValues(f, t);
        const ref = refValues(model, t.name);
        if (t.dims.length === 1) {
          assert.deepEqual(got, ref, t.name);
          continue;
        }
        for (let b = 0; b < ref.length; b += 32) {
          let amax = 0;
          for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(ref[b + j]));
          for (let j = 0; j < 32; j++)
            assert.ok(
              Math.abs(got[b + j] - ref[b + j]) <= (amax / step) * slack + 1e-12,
              `${type} ${t.name}`,
            );
        }
      }
    }
  });

  it('a matrix whose rows are not a multiple of 32 falls back to F16; 1-D tensors stay F32', () => {
    assert.equal(tensorType([483, 128], 'q4_0'), 'Q4_0');
    assert.equal(tensorType([128, 100], 'q8_0'), 'F16');
    assert.equal(tensorType([128], 'q8_0'), 'F32');
    assert.equal(tensorType([128, 100], 'f32'), 'F32');
    assert.equal(tensorType([128, 128], 'f16'), 'F16');
  });
});

/** The HF weight behind a GGUF tensor name, permuted as the file stores it. */
function refValues(model: MavenModel, gguf: string): Float32Array {
  const w = (n: string) => model.hostWeights().get(n)!.data as Float32Array;
  if (gguf === 'token_embd.weight') return w('model.embed_tokens.weight');
  if (gguf === 'output_norm.weight') return w('model.norm.weight');
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(gguf)!;
  const p = `model.layers.${m[1]}.`;
  const hf: Record<string, string> = {
    attn_norm: 'input_layernorm',
    attn_q: 'self_attn.q_proj',
    attn_k: 'self_attn.k_proj',
    attn_v: 'self_attn.v_proj',
    attn_output: 'self_attn.o_proj',
    ffn_norm: 'post_attention_layernorm',
    ffn_gate: 'mlp.gate_proj',
    ffn_up: 'mlp.up_proj',
    ffn_down: 'mlp.down_proj',
  };
  const x = w(`${p}${hf[m[2]]}.weight`);
  if (m[2] === 'attn_q') return permuteRotaryRows(x, 4, 128);
  if (m[2] === 'attn_k') return permuteRotaryRows(x, 2, 128);
  return x;
}

describe('maven export', () => {
  it('writes the same bytes as the writer, atomically, leaving no temporary file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maven-export-'));
    const out = join(dir, 'tiny.gguf');
    const r = await maven(['export', '--format', 'gguf', '--out', out, '--type', 'q8_0']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /38 tensors \(29 Q8_0, 9 F32\), 483 tokens/);
    const model = await loadMaven(DEFAULT_MODEL_DIR);
    assert.deepEqual(new Uint8Array(readFileSync(out)), encodeGguf(mavenLlmGguf(model, 'q8_0')));
    assert.deepEqual(readdirSync(dir), ['tiny.gguf']);
  });

  it('explains bad arguments and refuses to overwrite the model', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maven-export-'));
    const cases: [string[], number, RegExp][] = [
      [
        ['--out', join(dir, 'a.gguf'), '--type', 'q5_k'],
        2,
        /--type: unknown type 'q5_k' \(one of f32, f16, q8_0, q4_0\)/,
      ],
      [['--out', join(dir, 'a.gguf'), '--format', 'onnx'], 2, /--format: unknown format 'onnx'/],
      [['--type', 'f32'], 2, /--out is required/],
      [
        ['--model', join(dir, 'nowhere'), '--out', join(dir, 'a.gguf')],
        2,
        /nowhere is not a model directory/,
      ],
      [['--out', join(DEFAULT_MODEL_DIR, 'model.safetensors')], 2, /one of the model directory's own files/],
      [['--out', dir], 2, /is a directory/],
    ];
    for (const [args, code, message] of cases) {
      const r = await maven(['export', ...args]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.ok(!existsSync(join(dir, 'a.gguf')));
  });

  it('refuses a model without a language model', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maven-export-'));
    const config = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'config.json'), 'utf8'));
    delete config.llm;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    copyFileSync(join(DEFAULT_MODEL_DIR, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    const r = await maven(['export', '--model', dir, '--out', join(dir, 'x.gguf')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /has no language model/);
  });
});
