/**
 * safetensors reading/writing. Expected numbers come from hand-built byte buffers and known bit
 * patterns, never from the code under test.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HostTensor } from '../../src/engine/host-tensor.ts';
import {
  checkShapes,
  decodeTensor,
  deserializeSafetensors,
  parseSafetensorsHeader,
  type SafetensorsEntry,
  serializeSafetensors,
} from '../../src/engine/safetensors.ts';
import {
  loadSafetensors,
  loadShardedSafetensors,
  SafetensorsFile,
  saveSafetensors,
} from '../../src/node/safetensors-file.ts';

/** A safetensors file from a header (object or raw JSON text) and the data section, built by hand. */
function buildFile(header: object | string, data: Uint8Array, padTo = 1): Uint8Array {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  while (json.length % padTo !== 0) json += ' ';
  const jsonBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + jsonBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  out.set(data, 8 + jsonBytes.length);
  return out;
}

function u16le(values: number[]): Uint8Array {
  const out = new Uint8Array(2 * values.length);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setUint16(2 * i, values[i], true);
  return out;
}

function f32le(values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setFloat32(4 * i, values[i], true);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function decodeAll(file: Uint8Array, label = 'mem.safetensors'): Map<string, HostTensor> {
  const { entries } = parseSafetensorsHeader(file, label);
  const out = new Map<string, HostTensor>();
  for (const [name, e] of entries)
    out.set(name, decodeTensor(e, file.subarray(e.byteOffset, e.byteOffset + e.byteLength)));
  return out;
}

/** The JSON header of a file, read by hand. */
function headerOf(file: Uint8Array): { n: number; text: string } {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return { n, text: new TextDecoder().decode(file.subarray(8, 8 + n)) };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'safetensors-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseSafetensorsHeader + decodeTensor on hand-built bytes', () => {
  const f16Bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x8000, 0x0400, 0x03ff, 0x7e00];
  const f16Expected = [
    1,
    -2,
    65504,
    2 ** -24,
    Infinity,
    -Infinity,
    -0,
    2 ** -14,
    1023 * 2 ** -24,
    Number.NaN,
  ];
  const bf16Bits = [0x3f80, 0x4049, 0xc000, 0x7f80, 0x0001];
  const bf16Expected = [1, 3.140625, -2, Infinity, 2 ** -133];

  // F32 [2,3] at 0..24, F16 [10] at 24..44, BF16 [5] at 44..54, then a BOOL and an unaligned F32.
  const data = concat(
    f32le([1, 2, 3, 4, 5, 6]),
    u16le(f16Bits),
    u16le(bf16Bits),
    new Uint8Array([1]),
    f32le([7.5]),
  );
  const header = {
    __metadata__: { format: 'pt', note: 'hi' },
    'model.layers.0.self_attn.q_proj.weight': { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
    half: { dtype: 'F16', shape: [10], data_offsets: [24, 44] },
    bhalf: { dtype: 'BF16', shape: [5], data_offsets: [44, 54] },
    flag: { dtype: 'BOOL', shape: [], data_offsets: [54, 55] },
    odd: { dtype: 'F32', shape: [1], data_offsets: [55, 59] },
  };
  const file = buildFile(header, data, 8);

  it('reads entries, absolute offsets and metadata (header padded with spaces)', () => {
    const { entries, metadata, dataStart } = parseSafetensorsHeader(file, 'model.safetensors');
    const n = headerOf(file).n;
    assert.equal(n % 8, 0);
    assert.equal(dataStart, 8 + n);
    assert.deepEqual(metadata, { format: 'pt', note: 'hi' });
    assert.deepEqual(entries.get('model.layers.0.self_attn.q_proj.weight'), {
      name: 'model.layers.0.self_attn.q_proj.weight',
      dtype: 'F32',
      shape: [2, 3],
      byteOffset: 8 + n,
      byteLength: 24,
    });
    assert.deepEqual(entries.get('bhalf'), {
      name: 'bhalf',
      dtype: 'BF16',
      shape: [5],
      byteOffset: 8 + n + 44,
      byteLength: 10,
    });
    assert.equal(entries.size, 5);
  });

  it('decodes F32, F16 (incl. subnormal/inf/nan), BF16, BOOL and unaligned F32', () => {
    const t = decodeAll(file);
    const w = t.get('model.layers.0.self_attn.q_proj.weight')!;
    assert.equal(w.dtype, 'float32');
    assert.deepEqual(w.shape, [2, 3]);
    assert.deepEqual([...w.data], [1, 2, 3, 4, 5, 6]);
    const half = t.get('half')!;
    assert.equal(half.dtype, 'float32');
    assert.deepEqual([...half.data], f16Expected); // deepEqual uses Object.is: -0 and NaN are checked exactly
    assert.deepEqual([...t.get('bhalf')!.data], bf16Expected);
    const flag = t.get('flag')!;
    assert.equal(flag.dtype, 'bool');
    assert.deepEqual(flag.shape, []);
    assert.deepEqual([...flag.data], [1]);
    const odd = t.get('odd')!;
    assert.deepEqual([...odd.data], [7.5]);
    assert.equal(odd.data.byteOffset % 4, 0);
  });

  it('returns fresh arrays that do not alias the input bytes', () => {
    const copy = file.slice();
    const { entries } = parseSafetensorsHeader(copy);
    const e = entries.get('model.layers.0.self_attn.q_proj.weight')!;
    const t = decodeTensor(e, copy.subarray(e.byteOffset, e.byteOffset + e.byteLength));
    copy.fill(0);
    assert.deepEqual([...t.data], [1, 2, 3, 4, 5, 6]);
  });

  it('decodes F64, I64, I32 and U8', () => {
    const d = new Uint8Array(8 * 2 + 8 * 3 + 4 * 2 + 3);
    const dv = new DataView(d.buffer);
    dv.setFloat64(0, Math.PI, true);
    dv.setFloat64(8, -1e300, true);
    dv.setBigInt64(16, -5n, true);
    dv.setBigInt64(24, 2n ** 62n + 1n, true);
    dv.setBigInt64(32, 0n, true);
    dv.setInt32(40, -2147483648, true);
    dv.setInt32(44, 123456, true);
    d.set([0, 1, 255], 48);
    const f = buildFile(
      {
        a: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
        b: { dtype: 'I64', shape: [3, 1], data_offsets: [16, 40] },
        c: { dtype: 'I32', shape: [2], data_offsets: [40, 48] },
        u: { dtype: 'U8', shape: [3], data_offsets: [48, 51] },
      },
      d,
    );
    const t = decodeAll(f);
    assert.equal(t.get('a')!.dtype, 'float64');
    assert.deepEqual([...t.get('a')!.data], [Math.PI, -1e300]);
    assert.equal(t.get('b')!.dtype, 'int64');
    assert.deepEqual([...t.get('b')!.data], [-5n, 2n ** 62n + 1n, 0n]);
    assert.equal(t.get('c')!.dtype, 'int32');
    assert.deepEqual([...t.get('c')!.data], [-2147483648, 123456]);
    assert.equal(t.get('u')!.dtype, 'uint8');
    assert.deepEqual([...t.get('u')!.data], [0, 1, 255]);
  });

  it('accepts empty tensors and an empty header', () => {
    const f = buildFile({ e: { dtype: 'F32', shape: [0, 4], data_offsets: [0, 0] } }, new Uint8Array(0));
    const t = decodeAll(f);
    assert.deepEqual(t.get('e')!.shape, [0, 4]);
    assert.equal(t.get('e')!.size, 0);
    assert.equal(parseSafetensorsHeader(buildFile('{}', new Uint8Array(0))).entries.size, 0);
  });

  it('refuses to decode dtypes it has no host type for, naming tensor and dtype', () => {
    const f = buildFile({ q: { dtype: 'I16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4));
    const { entries } = parseSafetensorsHeader(f);
    assert.throws(() => decodeTensor(entries.get('q')!, new Uint8Array(4)), /tensor "q" has dtype I16/);
    assert.throws(
      () => deserializeSafetensors(f, 'q.safetensors'),
      /q\.safetensors: tensor "q" has dtype I16/,
    );
  });

  it('deserializeSafetensors decodes a whole in-memory file, tensor for tensor', () => {
    const all = deserializeSafetensors(file);
    assert.deepEqual([...all.keys()].sort(), [...decodeAll(file).keys()].sort());
    for (const [name, t] of decodeAll(file)) {
      const got = all.get(name)!;
      assert.equal(got.dtype, t.dtype, name);
      assert.deepEqual(got.shape, t.shape, name);
      assert.deepEqual([...got.data], [...t.data], name);
    }
  });
});

describe('header validation errors name the file, tensor and numbers', () => {
  const L = 'model.safetensors';
  const bad = (header: object | string, data: Uint8Array, re: RegExp) =>
    assert.throws(() => parseSafetensorsHeader(buildFile(header, data), L), re);

  it('file shorter than 8 bytes', () => {
    assert.throws(
      () => parseSafetensorsHeader(new Uint8Array(5), L),
      /model\.safetensors: file is 5 bytes, shorter than/,
    );
  });
  it('header length beyond file size', () => {
    const f = new Uint8Array(20);
    new DataView(f.buffer).setBigUint64(0, 1000n, true);
    assert.throws(
      () => parseSafetensorsHeader(f, L),
      /model\.safetensors: header length 1000 goes beyond the file \(20 bytes/,
    );
    new DataView(f.buffer).setBigUint64(0, 2n ** 63n, true);
    assert.throws(() => parseSafetensorsHeader(f, L), /header length 9223372036854775808 goes beyond/);
  });
  it('invalid JSON', () =>
    bad('{"w": {', new Uint8Array(0), /model\.safetensors: header \(7 bytes\) is not valid JSON/));
  it('non-object header', () => bad('[1]', new Uint8Array(0), /header must be a JSON object/));
  it('missing fields', () => {
    bad(
      { w: { shape: [1], data_offsets: [0, 4] } },
      new Uint8Array(4),
      /tensor "w" is missing a string "dtype"/,
    );
    bad({ w: { dtype: 'F32', data_offsets: [0, 4] } }, new Uint8Array(4), /tensor "w" needs "shape"/);
    bad({ w: { dtype: 'F32', shape: [-1] } }, new Uint8Array(4), /tensor "w" needs "shape".*\[-1\]/);
    bad({ w: { dtype: 'F32', shape: [1] } }, new Uint8Array(4), /tensor "w" needs "data_offsets"/);
    bad({ w: 3 }, new Uint8Array(4), /tensor "w" must be an object/);
  });
  it('bad metadata', () => {
    bad({ __metadata__: { a: 1 } }, new Uint8Array(0), /__metadata__ value for "a" is not a string/);
  });
  it('unknown dtype', () => {
    bad(
      { w: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } },
      new Uint8Array(4),
      /tensor "w" has unknown dtype "F33"/,
    );
  });
  it('byte length does not match shape', () => {
    bad(
      { w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } },
      new Uint8Array(24),
      /^Error: model\.safetensors: tensor "w" needs 24 bytes for F32 \[2, 3\] but data_offsets give 20$/,
    );
  });
  it('end before begin', () => {
    bad(
      { w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } },
      new Uint8Array(8),
      /tensor "w" has data_offsets \[8, 4\] with end before begin/,
    );
  });
  it('offsets out of range', () => {
    bad(
      { w: { dtype: 'F32', shape: [2], data_offsets: [16, 24] } },
      new Uint8Array(20),
      /model\.safetensors: tensor "w" has data_offsets \[16, 24\] but the data section is only 20 bytes/,
    );
  });
  it('overlapping offsets', () => {
    bad(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      },
      new Uint8Array(12),
      /tensor "b" data_offsets \[4, 12\] overlap tensor "a" \[0, 8\]/,
    );
  });
});

describe('serializeSafetensors', () => {
  it('writes the exact reference layout for a small file', () => {
    const out = serializeSafetensors({ w: HostTensor.from([2], [1, 2]) });
    const json = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const expected = buildFile(json, f32le([1, 2]), 8);
    assert.deepEqual(out, expected);
  });

  it('pads the header to a multiple of 8, sorts keys, keeps data aligned and gap-free', () => {
    const tensors = new Map<string, HostTensor>([
      ['z.bool', new HostTensor('bool', [3], new Uint8Array([1, 0, 1]))],
      ['b.f32', HostTensor.from([3], [1, 2, 3])],
      ['a.i64', new HostTensor('int64', [1], new BigInt64Array([7n]))],
      ['10', new HostTensor('int32', [1], new Int32Array([9]))],
    ]);
    const out = serializeSafetensors(tensors, { format: 'pt' });
    const { n, text } = headerOf(out);
    assert.equal(n % 8, 0);
    assert.match(text, / *$/);
    const keysInOrder = [...text.matchAll(/"([^"]+)":\{/g)].map((m) => m[1]);
    assert.deepEqual(keysInOrder, ['__metadata__', '10', 'a.i64', 'b.f32', 'z.bool']);
    const header = JSON.parse(text) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    const itemsize: Record<string, number> = { I64: 8, F32: 4, I32: 4, BOOL: 1 };
    const spans = Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .map(([, v]) => ({ size: itemsize[v.dtype], off: v.data_offsets }))
      .sort((a, b) => a.off[0] - b.off[0]);
    let pos = 0;
    for (const s of spans) {
      assert.equal(s.off[0], pos);
      assert.equal((8 + n + s.off[0]) % s.size, 0);
      pos = s.off[1];
    }
    assert.equal(8 + n + pos, out.length);
  });

  it('round-trips every dtype in memory', () => {
    const tensors = {
      f32: HostTensor.from([2, 3], [1.5, -2, 3e-30, 4e30, 0, -0]),
      f64: new HostTensor('float64', [2], new Float64Array([Math.E, -1e-300])),
      i64: new HostTensor('int64', [2], new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n])),
      i32: new HostTensor('int32', [3], new Int32Array([-1, 0, 2147483647])),
      bool: new HostTensor('bool', [2, 2], new Uint8Array([1, 0, 0, 1])),
      scalar: HostTensor.from([], [42]),
    };
    const back = decodeAll(serializeSafetensors(tensors));
    for (const [name, t] of Object.entries(tensors)) {
      const b = back.get(name)!;
      assert.equal(b.dtype, t.dtype, name);
      assert.deepEqual(b.shape, t.shape, name);
      assert.deepEqual([...b.data], [...t.data], name);
    }
    const { entries } = parseSafetensorsHeader(serializeSafetensors(tensors));
    assert.deepEqual(Object.fromEntries([...entries].map(([k, e]) => [k, e.dtype])), {
      bool: 'BOOL',
      f32: 'F32',
      f64: 'F64',
      i32: 'I32',
      i64: 'I64',
      scalar: 'F32',
    });
  });

  /** Raw 16-bit patterns the serializer wrote for a float32 tensor `x`. */
  function stored16(values: number[], dtype: 'F16' | 'BF16'): number[] {
    const out = serializeSafetensors({ x: HostTensor.from([values.length], values) }, undefined, { dtype });
    const { n, text } = headerOf(out);
    assert.equal(JSON.parse(text).x.dtype, dtype);
    const dv = new DataView(out.buffer, out.byteOffset + 8 + n);
    return values.map((_, i) => dv.getUint16(2 * i, true));
  }

  it('stores F16 with round-to-nearest-even', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65519, 0x7bff], // just below the halfway point to 65536
      [65520, 0x7c00], // halfway: ties to even (inf)
      [1e10, 0x7c00],
      [-Infinity, 0xfc00],
      [0, 0x0000],
      [-0, 0x8000],
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even mantissa 0
      [1 + 3 * 2 ** -11, 0x3c02], // tie between mantissa 1 and 2: even is 2
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is 0
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units: even is 2
      [2 ** -25 * 1.0001, 0x0001],
      [2 ** -26, 0x0000],
      [1023.5 * 2 ** -24, 0x0400], // rounds up out of the subnormals (tie, 1023 is odd)
      [1e-40, 0x0000], // float32 subnormal
    ];
    assert.deepEqual(
      stored16(
        cases.map((c) => c[0]),
        'F16',
      ).map((b) => b.toString(16)),
      cases.map((c) => c[1].toString(16)),
    );
    const nan = stored16([Number.NaN], 'F16')[0];
    assert.equal(nan & 0x7c00, 0x7c00);
    assert.notEqual(nan & 0x3ff, 0);
  });

  it('stores BF16 with round-to-nearest-even', () => {
    const maxF32 = new Float32Array(new Uint32Array([0x7f7fffff]).buffer)[0];
    const cases: [number, number][] = [
      [1, 0x3f80],
      [3.140625, 0x4049],
      [Math.PI, 0x4049],
      [-2, 0xc000],
      [1 + 2 ** -8, 0x3f80], // tie: even mantissa
      [1 + 3 * 2 ** -8, 0x3f82], // tie between odd 0x3f81 and even 0x3f82
      [1 + 2 ** -8 + 2 ** -20, 0x3f81],
      [maxF32, 0x7f80], // rounds up to inf
      [-0, 0x8000],
      [Infinity, 0x7f80],
    ];
    assert.deepEqual(
      stored16(
        cases.map((c) => c[0]),
        'BF16',
      ).map((b) => b.toString(16)),
      cases.map((c) => c[1].toString(16)),
    );
    const nan = stored16([Number.NaN], 'BF16')[0];
    assert.equal(nan & 0x7f80, 0x7f80);
    assert.notEqual(nan & 0x7f, 0);
  });

  it('F16/BF16 storage reads back within half an ulp; other dtypes are untouched', () => {
    let seed = 12345;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const values = Array.from({ length: 2000 }, () => (rand() - 0.5) * 2 ** Math.floor(rand() * 28 - 12));
    const x = Float32Array.from(values);
    for (const [dtype, mantBits] of [
      ['F16', 10],
      ['BF16', 7],
    ] as const) {
      const file = serializeSafetensors(
        { x: new HostTensor('float32', [x.length], x), k: new HostTensor('int32', [1], new Int32Array([5])) },
        undefined,
        { dtype },
      );
      const back = decodeAll(file);
      assert.deepEqual([...back.get('k')!.data], [5]);
      const y = back.get('x')!.data as Float32Array;
      for (let i = 0; i < x.length; i++) {
        const a = Math.abs(x[i]);
        if (a < 2 ** -14) continue; // subnormal range has absolute, not relative, precision
        const ulp = 2 ** (Math.floor(Math.log2(a)) - mantBits);
        assert.ok(Math.abs(y[i] - x[i]) <= ulp / 2, `${dtype} ${x[i]} -> ${y[i]}`);
      }
    }
  });
});

describe('SafetensorsFile and file helpers', () => {
  it('opens a hand-built file, reads single tensors by range, and closes', async () => {
    const path = join(dir, 'hand.safetensors');
    const data = concat(f32le([1, 2, 3, 4, 5, 6]), u16le([0x3c00, 0xc000]), u16le([0x4049]));
    await writeFile(
      path,
      buildFile(
        {
          __metadata__: { format: 'pt' },
          w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
          h: { dtype: 'F16', shape: [2], data_offsets: [24, 28] },
          b: { dtype: 'BF16', shape: [1], data_offsets: [28, 30] },
        },
        data,
        8,
      ),
    );
    const f = await SafetensorsFile.open(path);
    try {
      assert.deepEqual(f.metadata, { format: 'pt' });
      assert.ok(f.has('w'));
      assert.ok(!f.has('nope'));
      assert.deepEqual([...f.entries.keys()].sort(), ['b', 'h', 'w']);
      const w = await f.get('w');
      assert.deepEqual(w.shape, [2, 3]);
      assert.deepEqual([...w.data], [1, 2, 3, 4, 5, 6]);
      assert.deepEqual([...(await f.get('h')).data], [1, -2]);
      assert.deepEqual([...(await f.get('b')).data], [3.140625]);
      await assert.rejects(f.get('nope'), /hand\.safetensors: no tensor "nope"/);
    } finally {
      await f.close();
    }
    await assert.rejects(f.get('w'), /after close/);
  });

  it('save/load round-trips every dtype and leaves no temp file', async () => {
    const path = join(dir, 'rt.safetensors');
    const tensors = new Map<string, HostTensor>([
      ['model.embed_tokens.weight', HostTensor.from([2, 2], [0.1, 0.2, 0.3, 0.4])],
      ['f64', new HostTensor('float64', [1], new Float64Array([1 / 3]))],
      ['i64', new HostTensor('int64', [2], new BigInt64Array([-1n, 2n ** 40n]))],
      ['i32', new HostTensor('int32', [1], new Int32Array([-7]))],
      ['mask', new HostTensor('bool', [3], new Uint8Array([0, 1, 1]))],
    ]);
    await writeFile(path, 'old contents');
    await saveSafetensors(path, tensors, { step: '10' });
    assert.deepEqual(await readdir(dir).then((f) => f.filter((n) => n.endsWith('.tmp'))), []);
    const back = await loadSafetensors(path);
    assert.deepEqual([...back.keys()].sort(), [...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const b = back.get(name)!;
      assert.equal(b.dtype, t.dtype);
      assert.deepEqual(b.shape, t.shape);
      assert.deepEqual([...b.data], [...t.data]);
    }
    const f = await SafetensorsFile.open(path);
    assert.deepEqual(f.metadata, { step: '10' });
    await f.close();
  });

  it('saves float32 as BF16 when asked', async () => {
    const path = join(dir, 'small.safetensors');
    await saveSafetensors(path, { w: HostTensor.from([2], [1, Math.PI]) }, undefined, { dtype: 'BF16' });
    const f = await SafetensorsFile.open(path);
    assert.equal(f.entries.get('w')!.dtype, 'BF16');
    assert.deepEqual([...(await f.get('w')).data], [1, 3.140625]);
    await f.close();
  });

  it('reports a truncated file at open time, naming file and tensor', async () => {
    const path = join(dir, 'trunc.safetensors');
    const full = buildFile(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
      },
      new Uint8Array(24),
    );
    await writeFile(path, full);
    await truncate(path, full.length - 4);
    await assert.rejects(
      SafetensorsFile.open(path),
      /trunc\.safetensors: tensor "b" has data_offsets \[8, 24\] but the data section is only 20 bytes \(file truncated\?\)/,
    );
  });

  it('reports too-short files and header lengths past the end at open time', async () => {
    const short = join(dir, 'short.safetensors');
    await writeFile(short, new Uint8Array(3));
    await assert.rejects(SafetensorsFile.open(short), /short\.safetensors: file is 3 bytes/);
    const long = join(dir, 'long.safetensors');
    const f = new Uint8Array(16);
    new DataView(f.buffer).setBigUint64(0, 64n, true);
    await writeFile(long, f);
    await assert.rejects(
      SafetensorsFile.open(long),
      /long\.safetensors: header length 64 goes beyond the file \(16 bytes/,
    );
  });
});

describe('loadShardedSafetensors', () => {
  it('loads tensors across shards through the index', async () => {
    const sdir = await mkdtemp(join(dir, 'sharded-'));
    await saveSafetensors(join(sdir, 'model-00001-of-00002.safetensors'), {
      'model.embed_tokens.weight': HostTensor.from([2, 2], [1, 2, 3, 4]),
      'model.layers.0.mlp.up_proj.weight': HostTensor.from([1, 2], [5, 6]),
    });
    await writeFile(
      join(sdir, 'model-00002-of-00002.safetensors'),
      buildFile(
        { 'lm_head.weight': { dtype: 'BF16', shape: [2], data_offsets: [0, 4] } },
        u16le([0x3f80, 0xc000]),
      ),
    );
    const indexPath = join(sdir, 'model.safetensors.index.json');
    await writeFile(
      indexPath,
      JSON.stringify({
        metadata: { total_size: 28 },
        weight_map: {
          'model.embed_tokens.weight': 'model-00001-of-00002.safetensors',
          'model.layers.0.mlp.up_proj.weight': 'model-00001-of-00002.safetensors',
          'lm_head.weight': 'model-00002-of-00002.safetensors',
        },
      }),
    );
    const s = await loadShardedSafetensors(indexPath);
    try {
      assert.equal(s.entries.size, 3);
      assert.deepEqual(s.entries.get('lm_head.weight')!.shape, [2]);
      assert.ok(s.has('model.layers.0.mlp.up_proj.weight'));
      assert.deepEqual(s.metadata, { total_size: 28 });
      assert.deepEqual([...(await s.get('model.embed_tokens.weight')).data], [1, 2, 3, 4]);
      assert.deepEqual([...(await s.get('model.layers.0.mlp.up_proj.weight')).data], [5, 6]);
      assert.deepEqual([...(await s.get('lm_head.weight')).data], [1, -2]);
      assert.match(s.fileOf('lm_head.weight')!, /model-00002-of-00002\.safetensors$/);
      await assert.rejects(s.get('missing'), /no tensor "missing"/);
      assert.deepEqual(checkShapes({ 'lm_head.weight': [2] }, s, 'sharded'), [
        'model.embed_tokens.weight',
        'model.layers.0.mlp.up_proj.weight',
      ]);
    } finally {
      await s.close();
    }
  });

  it('names a missing shard file', async () => {
    const sdir = await mkdtemp(join(dir, 'missing-'));
    const indexPath = join(sdir, 'model.safetensors.index.json');
    await writeFile(
      indexPath,
      JSON.stringify({ weight_map: { 'lm_head.weight': 'model-00002-of-00002.safetensors' } }),
    );
    await assert.rejects(
      loadShardedSafetensors(indexPath),
      /model\.safetensors\.index\.json: missing shard file\(s\).*model-00002-of-00002\.safetensors.*"lm_head\.weight"/,
    );
  });

  it('names a tensor the index places in a shard that lacks it', async () => {
    const sdir = await mkdtemp(join(dir, 'wrong-'));
    await saveSafetensors(join(sdir, 'a.safetensors'), { x: HostTensor.from([1], [1]) });
    const indexPath = join(sdir, 'model.safetensors.index.json');
    await writeFile(indexPath, JSON.stringify({ weight_map: { x: 'a.safetensors', y: 'a.safetensors' } }));
    await assert.rejects(
      loadShardedSafetensors(indexPath),
      /weight_map puts tensor "y" in a\.safetensors, which has no such tensor/,
    );
  });

  it('rejects an index without weight_map', async () => {
    const indexPath = join(dir, 'bad.index.json');
    await writeFile(indexPath, '{"metadata": {}}');
    await assert.rejects(
      loadShardedSafetensors(indexPath),
      /bad\.index\.json: sharded index has no "weight_map"/,
    );
  });
});

describe('checkShapes', () => {
  const entry = (name: string, shape: number[]): [string, SafetensorsEntry] => [
    name,
    { name, dtype: 'F32', shape, byteOffset: 0, byteLength: 0 },
  ];
  const file = {
    entries: new Map([entry('model.norm.weight', [32]), entry('w', [2, 3]), entry('extra.bias', [4])]),
  };

  it('returns the extra tensors when everything expected matches', () => {
    assert.deepEqual(checkShapes({ w: [2, 3], 'model.norm.weight': [32] }, file, 'ckpt'), ['extra.bias']);
    assert.deepEqual(checkShapes(new Map([['w', [2, 3]]]), file, 'ckpt'), [
      'model.norm.weight',
      'extra.bias',
    ]);
  });

  it('lists every missing tensor and mismatch in one error', () => {
    assert.throws(
      () =>
        checkShapes(
          { w: [3, 2], 'model.norm.weight': [64], 'lm_head.weight': [10, 64] },
          file,
          'ckpt.safetensors',
        ),
      (e: Error) => {
        assert.match(e.message, /^ckpt\.safetensors: 3 tensor\(s\) do not match/);
        assert.match(e.message, /"w": expected \[3, 2\], file has \[2, 3\]/);
        assert.match(e.message, /"model\.norm\.weight": expected \[64\], file has \[32\]/);
        assert.match(e.message, /missing "lm_head\.weight" \[10, 64\]/);
        assert.match(e.message, /unexpected \(ignored\) "extra\.bias" \[4\]/);
        return true;
      },
    );
  });
});
