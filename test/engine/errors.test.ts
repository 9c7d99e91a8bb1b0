/** Bad input gives errors that name the op or tensor and the shapes, never a native crash. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from '../../src/engine/graph.ts';
import * as ops from '../../src/engine/ops/index.ts';
import { compile } from '../../src/engine/session.ts';
import { f32, i64 } from './helpers.ts';

describe('errors', () => {
  it('shape mismatches are caught while tracing, naming both tensors', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', ['B', 3]);
    const w = g.param('w', [4, 5]);
    assert.throws(() => ops.matmul(a, w), /matmul a\[B, 3\] @ w\[4, 5\]: inner dims 3 and 4 differ/);
    assert.throws(() => ops.linear(a, w), /linear a\[B, 3\] with weight w\[4, 5\]: last dim of x must be 5/);
    assert.throws(
      () => ops.add(a, g.input('c', 'float32', [2, 4])),
      /Add: shapes \[B, 3\] and \[2, 4\] do not broadcast/,
    );
    assert.throws(
      () => ops.reshape(g.input('s', 'float32', [2, 3]), [5, 7]),
      /reshape s\[2, 3\] to \[5, 7\]: 6 elements cannot take shape of 35/,
    );
    assert.throws(
      () => ops.add(a, g.input('n', 'int64', [3])),
      /Add: dtype mismatch, a is float32\[B, 3\] and n is int64\[3\]/,
    );
    assert.throws(
      () => g.param('w', [5, 4]),
      /param "w": asked for shape \[5, 4\] but it was declared \[4, 5\]/,
    );
    assert.throws(() => ops.transpose(a, [0, 0]), /bad permutation/);
  });

  it('an unknown op fails at compile time naming the op', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    const [y] = g.emit('NoSuchOp', [x], [{ dtype: 'float32', shape: [2] }]);
    await assert.rejects(compile(g, { y }), /NoSuchOp/);
  });

  it('feeds are checked against the declared inputs before running', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['B', 3]);
    const ids = g.input('ids', 'int64', ['B']);
    const y = ops.add(ops.sum(x, 1), ops.cast(ids, 'float32'));
    const p = await compile(g, { y });
    await assert.rejects(
      p.run({ x: f32([2, 4], new Array(8).fill(0)), ids: i64([2], [0, 1]) }),
      /input "x" must have shape \[B, 3\], got \[2, 4\]/,
    );
    await assert.rejects(
      p.run({ x: f32([2, 3], new Array(6).fill(0)), ids: i64([3], [0, 1, 2]) }),
      /input "ids": dim 'B' is 3 here but 2 in another input/,
    );
    await assert.rejects(
      p.run({ x: f32([2, 3], new Array(6).fill(0)) }),
      /missing input "ids" \(int64\[B\]\)/,
    );
    await assert.rejects(
      p.run({ x: f32([2, 3], new Array(6).fill(0)), ids: f32([2], [0, 1]) }),
      /input "ids" must be int64\[B\], got float32\[2\]/,
    );
    await assert.rejects(
      p.run({ x: f32([1, 3], [0, 0, 0]), ids: i64([1], [0]), z: i64([1], [0]) }),
      /unknown input "z"/,
    );
  });

  it('a run-time failure inside onnxruntime is a JS error with the graph named', async () => {
    const g = new Graph();
    const table = g.input('table', 'float32', [3, 2]);
    const idx = g.input('idx', 'int64', [1]);
    const p = await compile(g, { y: ops.gather(table, idx) }, { label: 'lookup' });
    await assert.rejects(
      p.run({ table: f32([3, 2], [1, 2, 3, 4, 5, 6]), idx: i64([1], [7]) }),
      /lookup: onnxruntime failed/,
    );
  });

  it('a bad execution provider name is refused clearly', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [1]);
    process.env.MAVEN_EP = 'tpu';
    try {
      await assert.rejects(
        compile(g, { y: ops.neg(x) }),
        /MAVEN_EP=tpu is not one of cpu, cuda, webgpu, wasm/,
      );
    } finally {
      delete process.env.MAVEN_EP;
    }
  });
});

describe('parameter name scopes', () => {
  it('prefix the names of parameters declared inside, and nest', () => {
    const g = new Graph();
    const inner = g.scoped('vision_tower.', () => g.scoped('vision_model.', () => g.param('w', [2])));
    const outer = g.param('w', [2]);
    assert.equal(inner.name, 'vision_tower.vision_model.w');
    assert.equal(outer.name, 'w');
    assert.deepEqual([...g.params.keys()], ['vision_tower.vision_model.w', 'w']);
  });
});

describe('derived parameters', () => {
  it('stand in for a named parameter, with gradients reaching their parts', async () => {
    const { grad } = await import('../../src/engine/autodiff.ts');
    const g = new Graph();
    const frozenRows = g.param('table@text', [2, 2]);
    const trainRows = g.param('table@visual', [1, 2]);
    g.deriveParam('table', ops.concat([frozenRows, trainRows], 0));
    const table = g.param('table', [3, 2]); // what model code asks for
    const y = ops.sum(ops.gather(table, g.constant(i64([2], [2, 2]))));
    const [gv] = grad(y, [trainRows]);
    const p = await compile(g, { gv });
    const r = await p.run({ 'table@text': f32([2, 2], [1, 2, 3, 4]), 'table@visual': f32([1, 2], [0, 0]) });
    assert.deepEqual([...(r.gv.data as Float32Array)], [2, 2]);
    assert.throws(() => g.param('table', [2, 2]), /derived as \[3, 2\]/);
  });
});
