/**
 * Block quantization (src/engine/block-quantize.ts) and linear layers over quantized weights
 * (QuantizedWeight → MatMulNBits): error bounds of the round trip, the kernel against the same
 * dequantized weight in float, the dequantizing graph, and errors that name the tensor.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/engine/autodiff.ts';
import {
  type BlockQuantSpec,
  blockDequantize,
  blockQuantize,
  blockQuantSpec,
  storedRows,
  storedWeightProblem,
} from '../../src/engine/block-quantize.ts';
import { Graph, type GraphOptions } from '../../src/engine/graph.ts';
import { HostTensor } from '../../src/engine/host-tensor.ts';
import { serialize } from '../../src/engine/onnx.ts';
import * as ops from '../../src/engine/ops/index.ts';
import { compile } from '../../src/engine/session.ts';

function randomWeight(n: number, k: number, seed: number, scale = 0.05): HostTensor<'float32'> {
  let s = seed >>> 0;
  const data = Float32Array.from({ length: n * k }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    // Heavy-ish tails, as trained weights have: a few entries per block set its scale.
    return (u - 0.5) * scale * (u > 0.98 || u < 0.02 ? 6 : 1);
  });
  return new HostTensor('float32', [n, k], data);
}

const SPECS: BlockQuantSpec[] = [
  { bits: 8, blockSize: 32 },
  { bits: 8, blockSize: 128 },
  { bits: 4, blockSize: 32 },
  { bits: 4, blockSize: 64 },
  { bits: 4, blockSize: 128 },
];

describe('blockQuantize', () => {
  for (const spec of SPECS) {
    it(`round trip at ${spec.bits} bits, blocks of ${spec.blockSize}: no block worse than symmetric rounding`, () => {
      const w = randomWeight(24, 256, 7 + spec.blockSize + spec.bits);
      const q = blockQuantize(w, spec);
      const blocks = 256 / spec.blockSize;
      assert.deepEqual(q.qweight.shape, [24, blocks, (spec.blockSize * spec.bits) / 8]);
      assert.deepEqual(q.scales.shape, [24, blocks]);
      const back = blockDequantize(q, spec);
      const x = w.data as Float32Array;
      const zero = 2 ** (spec.bits - 1);
      let err2 = 0;
      let norm2 = 0;
      let better = 0;
      for (let b = 0; b < 24 * blocks; b++) {
        const from = b * spec.blockSize;
        // Plain symmetric rounding: the largest magnitude at ±(zero − 1) steps, nearest code.
        let amax = 0;
        for (let j = 0; j < spec.blockSize; j++) amax = Math.max(amax, Math.abs(x[from + j]));
        const step = amax / (zero - 1);
        let plain = 0;
        let ours = 0;
        for (let j = 0; j < spec.blockSize; j++) {
          const v = x[from + j];
          plain += (v - Math.round(v / step) * step) ** 2;
          ours += (v - back.data[from + j]) ** 2;
          norm2 += v * v;
        }
        err2 += ours;
        assert.ok(ours <= plain * (1 + 1e-5) + 1e-12, `block ${b}: squared error ${ours} against ${plain}`);
        if (ours < plain * 0.99) better++;
      }
      // The search pays on most blocks (the idle code, the refitted scale).
      assert.ok(
        better > (24 * blocks) / 2,
        `${better} of ${24 * blocks} blocks better than symmetric rounding`,
      );
      const rel = Math.sqrt(err2 / norm2);
      assert.ok(rel < (spec.bits === 8 ? 0.02 : 0.3), `relative error ${rel}`);
    });
  }

  it('an all-zero block gets scale 0 and reads back as zeros', () => {
    const w = new HostTensor('float32', [2, 32], new Float32Array(64));
    const q = blockQuantize(w, { bits: 4, blockSize: 32 });
    assert.deepEqual([...q.scales.data], [0, 0]);
    assert.ok(blockDequantize(q, { bits: 4, blockSize: 32 }).data.every((v) => v === 0));
  });

  it('refuses widths, bits and block sizes MatMulNBits cannot run', () => {
    const w = randomWeight(2, 48, 1);
    assert.throws(
      () => blockQuantize(w, { bits: 4, blockSize: 32 }, 'fc'),
      /fc: block size 32 does not divide the input width 48/,
    );
    assert.throws(
      () => blockQuantize(w, { bits: 3 as 4, blockSize: 16 }, 'fc'),
      /fc: 3-bit codes are not supported/,
    );
    assert.throws(
      () => blockQuantize(w, { bits: 4, blockSize: 24 }, 'fc'),
      /block size 24 must be a power of two/,
    );
  });
});

describe('blockQuantSpec', () => {
  it('reads bits and block size from the shapes', () => {
    assert.deepEqual(blockQuantSpec('w', [8, 128], { shape: [8, 4, 16] }, { shape: [8, 4] }), {
      bits: 4,
      blockSize: 32,
    });
    assert.deepEqual(blockQuantSpec('w', [8, 128], { shape: [8, 2, 64] }, { shape: [8, 2] }), {
      bits: 8,
      blockSize: 64,
    });
  });

  it('names the tensor: missing scales, mismatched blocks, bits the runtime cannot run', () => {
    assert.throws(
      () => blockQuantSpec('l.w', [8, 128], { shape: [8, 4, 16] }, undefined),
      /"l\.w\.scales" is missing/,
    );
    assert.throws(
      () => blockQuantSpec('l.w', [8, 128], { shape: [8, 4, 16] }, { shape: [8, 2] }),
      /"l\.w\.scales" is \[8, 2\] but "l\.w\.qweight" \[8, 4, 16\] has 4 block\(s\) per row: block sizes mismatch/,
    );
    assert.throws(
      () => blockQuantSpec('l.w', [8, 128], { shape: [8, 4, 8] }, { shape: [8, 4] }),
      /"l\.w\.qweight": 8 bytes per block of 32 weights is 2-bit, which this runtime cannot run/,
    );
    assert.throws(
      () => blockQuantSpec('l.w', [8, 128], { shape: [8, 3, 16] }, { shape: [8, 3] }),
      /"l\.w\.qweight": 3 blocks do not divide the input width 128/,
    );
    assert.equal(
      storedWeightProblem(new Map([['l.w.scales', { shape: [8, 4] }]]), 'l.w', [8, 128]),
      '"l.w.qweight" is missing ("l.w.scales" is there)',
    );
  });
});

/**
 * y = linear(x, W, b) traced over a graph that stores W quantized, and over the float dequantized
 * W; with the largest difference, a bound on what rounding the activations to int8 per block (the
 * kernel's accuracy level 4) may add: Σ_k |W[n, k]| · max|x in k's block| / 254 (half a step of
 * the symmetric int8 scale max|x| / 127), over outputs n.
 */
async function quantizedAgainstFloat(
  spec: BlockQuantSpec,
  resident: boolean,
  options: Pick<GraphOptions, 'matMulNBitsBits' | 'matMulNBitsAccuracyLevel'> = {},
) {
  const [n, k] = [48, 128];
  const w = randomWeight(n, k, 3);
  const bias = HostTensor.from(
    [n],
    Array.from({ length: n }, (_, i) => i / 100),
  );
  const q = blockQuantize(w, spec);
  const stored = new Map<string, HostTensor>([
    ['fc.weight.qweight', q.qweight],
    ['fc.weight.scales', q.scales],
    ['fc.bias', bias],
  ]);
  const rows = 6;
  const x = HostTensor.from(
    [2, 3, k],
    Array.from({ length: rows * k }, (_, i) => Math.sin(i) * (1 + (i % 7))),
  );

  const gq = new Graph('float32', { weights: stored, ...options });
  const wq = gq.param('fc.weight', [n, k]);
  const yq = ops.linear(gq.input('x', 'float32', [2, 3, k]), wq, gq.param('fc.bias', [n]));
  const names = [...gq.params.keys()];
  const model = serialize(
    gq,
    { y: yq },
    resident ? {} : { embed: new Map(names.map((nm) => [nm, stored.get(nm)!])) },
  );
  const pq = await compile(
    gq,
    { y: yq },
    resident ? {} : { embed: new Map(names.map((nm) => [nm, stored.get(nm)!])) },
  );
  if (resident) for (const nm of names) pq.bind(nm, stored.get(nm)!);

  const gf = new Graph();
  const yf = ops.linear(gf.input('x', 'float32', [2, 3, k]), gf.param('w', [n, k]), gf.param('b', [n]));
  const pf = await compile(gf, { y: yf });
  const wf = blockDequantize(q, spec);
  pf.bind('w', wf);
  pf.bind('b', bias);
  const a = (await pq.run({ x })).y.data as Float32Array;
  const b = (await pf.run({ x })).y.data as Float32Array;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  let int8Bound = 0;
  const xs = x.data as Float32Array;
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < n; o++) {
      let bound = 0;
      for (let k0 = 0; k0 < k; k0 += spec.blockSize) {
        let amax = 0;
        for (let c = k0; c < k0 + spec.blockSize; c++) amax = Math.max(amax, Math.abs(xs[r * k + c]));
        for (let c = k0; c < k0 + spec.blockSize; c++) bound += (Math.abs(wf.data[o * k + c]) * amax) / 254;
      }
      int8Bound = Math.max(int8Bound, bound);
    }
  }
  return { diff, int8Bound, model: new TextDecoder('latin1').decode(model.bytes) };
}

describe('linear over a block-quantized weight', () => {
  for (const spec of SPECS) {
    it(`runs MatMulNBits at ${spec.bits} bits, blocks of ${spec.blockSize}: at accuracy level 0 as the float product of the dequantized weight, at 4 within int8 rounding of x`, async () => {
      const exact = await quantizedAgainstFloat(spec, false, {
        matMulNBitsBits: [4, 8],
        matMulNBitsAccuracyLevel: 0,
      });
      // Only summation order differs (measured ≤ 4e-6 here; outputs are of order 1).
      assert.ok(exact.diff < 1e-4, `max difference ${exact.diff}`);
      assert.ok(exact.model.includes('MatMulNBits') && exact.model.includes('com.microsoft'));
      // The dequantizing nodes are pruned: linear alone reads the weight.
      assert.ok(
        !exact.model.includes('BitShift') && !exact.model.includes('Cast'),
        'the float weight is not rebuilt',
      );
      const int8 = await quantizedAgainstFloat(spec, false, {
        matMulNBitsBits: [4, 8],
        matMulNBitsAccuracyLevel: 4,
      });
      assert.ok(int8.diff <= int8.int8Bound + 1e-4, `max difference ${int8.diff}, bound ${int8.int8Bound}`);
    });
  }

  it('by default runs 4- and 8-bit weights with MatMulNBits at accuracy level 4; other widths as a float MatMul over the dequantized codes', async () => {
    for (const bits of [4, 8] as const) {
      const r = await quantizedAgainstFloat({ bits, blockSize: 32 }, false);
      assert.ok(r.model.includes('MatMulNBits'), `${bits} bits`);
      assert.ok(r.diff <= r.int8Bound + 1e-4, `${bits} bits: max difference ${r.diff}, bound ${r.int8Bound}`);
    }
    const dequantized = await quantizedAgainstFloat({ bits: 8, blockSize: 32 }, false, {
      matMulNBitsBits: [4],
    });
    assert.ok(dequantized.diff < 1e-4, `max difference ${dequantized.diff}`);
    assert.ok(!dequantized.model.includes('MatMulNBits'));
  });

  it('also runs with the codes fed as inputs (resident weights)', async () => {
    const { diff } = await quantizedAgainstFloat({ bits: 4, blockSize: 32 }, true, {
      matMulNBitsAccuracyLevel: 0,
    });
    assert.ok(diff < 1e-4, `max difference ${diff}`);
  });

  it('other ops read the dequantized value', async () => {
    for (const spec of [
      { bits: 4, blockSize: 32 },
      { bits: 8, blockSize: 64 },
    ] as BlockQuantSpec[]) {
      const w = randomWeight(8, 128, 5);
      const q = blockQuantize(w, spec);
      const g = new Graph('float32', {
        weights: new Map<string, HostTensor>([
          ['w.qweight', q.qweight],
          ['w.scales', q.scales],
        ]),
      });
      const value = ops.add(g.param('w', [8, 128]), 0);
      const p = await compile(g, { value });
      p.bind('w.qweight', q.qweight);
      p.bind('w.scales', q.scales);
      const got = (await p.run({})).value.data as Float32Array;
      const expected = blockDequantize(q, spec).data;
      // Equal values (a negative scale times code 0 may be −0 on one side and 0 on the other).
      for (let i = 0; i < got.length; i++) {
        assert.ok(got[i] === expected[i], `value ${i}: ${got[i]} against ${expected[i]}`);
      }
    }
  });

  it('an embedding lookup dequantizes only the rows it reads, exactly as the whole table would (graph and host)', async () => {
    for (const spec of [
      { bits: 4, blockSize: 32 },
      { bits: 8, blockSize: 16 },
    ] as BlockQuantSpec[]) {
      const q = blockQuantize(randomWeight(50, 64, 9), spec);
      const weights = new Map<string, HostTensor>([
        ['w.qweight', q.qweight],
        ['w.scales', q.scales],
      ]);
      const g = new Graph('float32', { weights });
      const ids = g.input('ids', 'int64', [2, 'T']);
      const rows = ops.gather(g.param('w', [50, 64]), ids);
      assert.deepEqual(rows.shape, [2, 'T', 64]);
      const p = await compile(g, { rows });
      p.bind('w.qweight', q.qweight);
      p.bind('w.scales', q.scales);
      const picked = [49, 0, 7, 7, 13, 2];
      const got = (await p.run({ ids: new HostTensor('int64', [2, 3], BigInt64Array.from(picked, BigInt)) }))
        .rows.data as Float32Array;
      const table = blockDequantize(q, spec).data;
      const host = storedRows(weights, 'w', [50, 64]);
      const hostRow = new Float32Array(64);
      picked.forEach((id, i) => {
        assert.deepEqual(
          [...got.subarray(i * 64, (i + 1) * 64)],
          [...table.subarray(id * 64, (id + 1) * 64)],
          `row ${id}`,
        );
        host.read(id, hostRow, 0);
        assert.deepEqual([...hostRow], [...table.subarray(id * 64, (id + 1) * 64)], `host row ${id}`);
      });
      // The rows are gathered from the codes and scales, not from a dequantized table.
      const gathered = (g as unknown as { nodes: { opType: string; inputs: string[] }[] }).nodes
        .filter((n) => n.opType === 'Gather')
        .map((n) => n.inputs[0]);
      assert.deepEqual(gathered, ['w.qweight', 'w.scales']);
    }
  });

  for (const spec of [
    { bits: 4, blockSize: 32 },
    { bits: 8, blockSize: 32 },
  ] as BlockQuantSpec[]) {
    it(`gives x a gradient through the dequantized weight, and the codes none (${spec.bits} bits)`, async () => {
      const q = blockQuantize(randomWeight(8, 32, 2), spec);
      const g = new Graph('float32', {
        weights: new Map<string, HostTensor>([
          ['w.qweight', q.qweight],
          ['w.scales', q.scales],
        ]),
      });
      const x = g.input('x', 'float32', [4, 32]);
      const loss = ops.sum(ops.linear(x, g.param('w', [8, 32])));
      assert.equal(g.params.get('w.qweight')?.trainable, false);
      const [gx] = grad(loss, [x]);
      const p = await compile(g, { gx });
      p.bind('w.qweight', q.qweight);
      p.bind('w.scales', q.scales);
      const got = (await p.run({ x: HostTensor.zeros('float32', [4, 32]) })).gx.data as Float32Array;
      const w = blockDequantize(q, spec).data;
      // d/dx Σ x Wᵀ = column sums of W, for every row of x.
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 32; c++) {
          let col = 0;
          for (let o = 0; o < 8; o++) col += w[o * 32 + c];
          assert.ok(Math.abs(got[r * 32 + c] - col) < 1e-5);
        }
      }
    });
  }
});
