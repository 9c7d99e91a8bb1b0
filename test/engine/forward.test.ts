/** Forward results of the engine's ops against the loop implementations in reference.ts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/engine/autodiff.ts';
import * as ops from '../../src/engine/ops/index.ts';
import { assertClose, evaluate, f32, i64, uniform } from './helpers.ts';
import * as ref from './reference.ts';

describe('forward against reference loops', () => {
  it('matmul, linear (3-D input) and broadcasting add', async () => {
    const a = uniform([3, 4], 1);
    const b = uniform([4, 5], 2);
    const x = uniform([2, 3, 4], 3);
    const w = uniform([5, 4], 4);
    const bias = uniform([5], 5);
    const r = await evaluate(
      (g) => ({
        mm: ops.matmul(g.constant(f32([3, 4], a)), g.constant(f32([4, 5], b))),
        lin: ops.linear(
          g.input('x', 'float32', ['B', 3, 4]),
          g.constant(f32([5, 4], w)),
          g.constant(f32([5], bias)),
        ),
      }),
      { x: f32([2, 3, 4], x) },
    );
    assertClose(r.mm.data as Float32Array, ref.matmul(a, b, 3, 4, 5), 1e-5, 'matmul');
    assert.deepEqual(r.lin.shape, [2, 3, 5]);
    assertClose(r.lin.data as Float32Array, ref.linear(x, w, bias, 6, 4, 5), 1e-5, 'linear');
  });

  it('softmax, logSoftmax, layerNorm, rmsNorm, gelu', async () => {
    const x = uniform([3, 6], 6, -3, 3);
    const w = uniform([6], 7);
    const b = uniform([6], 8);
    const r = await evaluate((g) => {
      const t = g.constant(f32([3, 6], x));
      const tw = g.constant(f32([6], w));
      return {
        sm: ops.softmax(t),
        lsm: ops.logSoftmax(t),
        ln: ops.layerNorm(t, tw, g.constant(f32([6], b)), 1e-5),
        rms: ops.rmsNorm(t, tw, 1e-6),
        gelu: ops.gelu(t),
      };
    });
    const sm = ref.softmaxRows(x, 3, 6);
    assertClose(r.sm.data as Float32Array, sm, 1e-5, 'softmax');
    assertClose(r.lsm.data as Float32Array, sm.map(Math.log), 1e-5, 'logSoftmax');
    assertClose(r.ln.data as Float32Array, ref.layerNormRows(x, w, b, 3, 6, 1e-5), 1e-4, 'layerNorm');
    assertClose(r.rms.data as Float32Array, ref.rmsNormRows(x, w, 3, 6, 1e-6), 1e-5, 'rmsNorm');
    assertClose(r.gelu.data as Float32Array, x.map(ref.gelu), 1e-5, 'gelu');
  });

  it('causal attention matches the loop version, and decode-style masks see the whole cache', async () => {
    const T = 5;
    const d = 4;
    const q = uniform([T, d], 9);
    const k = uniform([T, d], 10);
    const v = uniform([T, d], 11);
    const r = await evaluate((g) => {
      const tq = g.constant(f32([1, T, d], q));
      const tk = g.constant(f32([1, T, d], k));
      const tv = g.constant(f32([1, T, d], v));
      const lastQ = ops.slice(tq, 1, T - 1);
      return {
        full: ops.attention(tq, tk, tv, ops.causalMask(tq)),
        last: ops.attention(lastQ, tk, tv, ops.causalMask(lastQ, tk)),
        mask: ops.cast(ops.causalMask(ops.slice(tq, 1, 3), tk), 'float32'),
      };
    });
    const expected = ref.causalAttention(q, k, v, T, d);
    assertClose(r.full.data as Float32Array, expected, 1e-5, 'attention');
    assertClose(r.last.data as Float32Array, expected.slice((T - 1) * d), 1e-5, 'last-row attention');
    // Queries 3 and 4 of 5 keys: row i sees keys 0..(i+3).
    assert.deepEqual([...(r.mask.data as Float32Array)], [1, 1, 1, 1, 0, 1, 1, 1, 1, 1]);
  });

  it('crossEntropy (with ignore), BCE, InfoNCE', async () => {
    const logits = uniform([4, 3], 12, -2, 2);
    const targets = [2, -100, 0, 1];
    const bx = uniform([5], 13, -3, 3);
    const by = [1, 0, 0, 1, 1];
    const a = uniform([3, 2], 14);
    const b = uniform([3, 2], 15);
    const r = await evaluate((g) => ({
      ce: ops.crossEntropy(g.constant(f32([4, 3], logits)), g.constant(i64([4], targets))),
      bce: ops.binaryCrossEntropyWithLogits(g.constant(f32([5], bx)), g.constant(f32([5], by))),
      nce: ops.infoNCE(g.constant(f32([3, 2], a)), g.constant(f32([3, 2], b)), 2),
    }));
    assertClose(r.ce.data as Float32Array, [ref.crossEntropy(logits, targets, 3)], 1e-5, 'crossEntropy');
    assertClose(r.bce.data as Float32Array, [ref.bceWithLogits(bx, by)], 1e-5, 'bce');
    const sims = ref.matmul(a, [b[0], b[2], b[4], b[1], b[3], b[5]], 3, 2, 3).map((s) => 2 * s);
    const simsT = [0, 3, 6, 1, 4, 7, 2, 5, 8].map((i) => sims[i]);
    const nce = (ref.crossEntropy(sims, [0, 1, 2], 3) + ref.crossEntropy(simsT, [0, 1, 2], 3)) / 2;
    assertClose(r.nce.data as Float32Array, [nce], 1e-5, 'infoNCE');
  });

  it('gather, concat, slice, transpose, topk, argmin', async () => {
    const table = uniform([4, 2], 16).map(Math.fround);
    const r = await evaluate((g) => {
      const t = g.constant(f32([4, 2], table));
      const picked = ops.gather(t, g.constant(i64([3], [3, 0, 3])));
      const five = g.constant(f32([5], [0.5, -1, 3, 2, 0]));
      const tk = ops.topk(five, 2);
      const bk = ops.topk(five, 2, -1, false);
      return {
        botv: bk.values,
        boti: bk.indices,
        picked,
        cat: ops.concat([picked, ops.slice(t, 0, 1, 3)], 0),
        tr: ops.transpose(t, [1, 0]),
        topv: tk.values,
        topi: tk.indices,
        amin: ops.argmin(t, 0),
      };
    });
    const row = (i: number) => [table[2 * i], table[2 * i + 1]];
    assertClose(r.picked.data as Float32Array, [...row(3), ...row(0), ...row(3)], 0, 'gather');
    assertClose(
      r.cat.data as Float32Array,
      [...row(3), ...row(0), ...row(3), ...row(1), ...row(2)],
      0,
      'concat/slice',
    );
    assertClose(
      r.tr.data as Float32Array,
      [0, 1, 2, 3, 4, 5, 6, 7].map((i) => table[(i % 4) * 2 + Math.floor(i / 4)]),
      0,
      'transpose',
    );
    assert.deepEqual([...(r.topv.data as Float32Array)], [3, 2]);
    assert.deepEqual([...(r.topi.data as BigInt64Array)], [2n, 3n]);
    assert.deepEqual([...(r.botv.data as Float32Array)], [-1, 0]);
    assert.deepEqual([...(r.boti.data as BigInt64Array)], [1n, 4n]);
    const argminCol = (c: number) =>
      [0, 1, 2, 3].reduce((best, i) => (table[i * 2 + c] < table[best * 2 + c] ? i : best), 0);
    assert.deepEqual([...(r.amin.data as BigInt64Array)], [BigInt(argminCol(0)), BigInt(argminCol(1))]);
  });

  it('nearestCode picks the closest codebook row by squared L2', async () => {
    const codebook = uniform([6, 3], 17);
    const z = uniform([4, 3], 18);
    const r = await evaluate((g) => ({
      ids: ops.nearestCode(g.constant(f32([4, 3], z)), g.constant(f32([6, 3], codebook))),
    }));
    const expected = [0, 1, 2, 3].map((i) => {
      let best = 0;
      let bestD = Infinity;
      for (let c = 0; c < 6; c++) {
        let d = 0;
        for (let j = 0; j < 3; j++) d += (z[i * 3 + j] - codebook[c * 3 + j]) ** 2;
        if (d < bestD) [best, bestD] = [c, d];
      }
      return BigInt(best);
    });
    assert.deepEqual([...(r.ids.data as BigInt64Array)], expected);
  });

  it('straight-through: forward is the quantized value, gradient is the identity', async () => {
    const r = await evaluate(
      (g) => {
        const z = g.param('z', [3]);
        const q = g.constant(f32([3], [5, 6, 7]));
        const y = ops.straightThrough(z, q);
        const [dz] = grad(ops.sum(ops.mul(y, g.constant(f32([3], [1, 2, 3])))), [z]);
        return { y, dz };
      },
      { z: f32([3], [0.1, 0.2, 0.3]) },
    );
    assert.deepEqual([...(r.y.data as Float32Array)], [5, 6, 7]);
    assert.deepEqual([...(r.dz.data as Float32Array)], [1, 2, 3]);
  });

  it('reshape splits a flattened dynamic axis back using a source tensor', async () => {
    const xs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const r = await evaluate(
      (g) => {
        const x = g.input('x', 'float32', ['B', 'T', 2]);
        const flat = ops.reshape(x, [-1, 2]);
        assert.deepEqual(flat.shape, ['B*T', 2]);
        // Per row of the flattened [B*T, 2]: swap the pair and scale it, [x0, x1] → [10·x1, 100·x0].
        const mixed = ops.matmul(flat, g.constant(f32([2, 2], [0, 100, 10, 0])));
        const back = ops.reshape(mixed, ['B', 'T', 2], [x]);
        assert.deepEqual(back.shape, ['B', 'T', 2]);
        return { flat, back, perB: ops.sum(back, 1) };
      },
      { x: f32([2, 3, 2], xs) },
    );
    assert.deepEqual(r.flat.shape, [6, 2]);
    assert.deepEqual([...(r.flat.data as Float32Array)], xs);
    assert.deepEqual(r.back.shape, [2, 3, 2]);
    const back = [0, 1, 2, 3, 4, 5].flatMap((row) => [10 * xs[2 * row + 1], 100 * xs[2 * row]]);
    assert.deepEqual([...(r.back.data as Float32Array)], back);
    // Summed over T: which rows make up each b depends on the split being [B, T], not [T, B].
    assert.deepEqual(r.perB.shape, [2, 2]);
    assert.deepEqual(
      [...(r.perB.data as Float32Array)],
      [10 * (1 + 3 + 5), 100 * (0 + 2 + 4), 10 * (7 + 9 + 11), 100 * (6 + 8 + 10)],
    );
  });
});
