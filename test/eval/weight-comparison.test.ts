import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostTensor } from '../../src/engine/index.ts';
import { compareWeights } from '../../src/eval/weight-comparison.ts';

const f32 = (...v: number[]) => new HostTensor('float32', [v.length], Float32Array.from(v));

describe('compareWeights', () => {
  it('identical sets, copies included', () => {
    const a = new Map<string, HostTensor>([
      ['w', f32(1, 2, 3)],
      ['ids', new HostTensor('int64', [2], BigInt64Array.from([1n, 2n]))],
    ]);
    const b = new Map([...a].map(([k, t]) => [k, new HostTensor(t.dtype, t.shape, t.data.slice())] as const));
    assert.deepEqual(compareWeights(a, b), {
      shared: 2,
      unmatched: [],
      differing: [],
      maxAbsDifference: 0,
      identical: true,
    });
  });

  it('one element off: named, with the largest difference', () => {
    const r = compareWeights(
      new Map([
        ['w', f32(1, 2, 3)],
        ['v', f32(0)],
      ]),
      new Map([
        ['w', f32(1, 2.5, 3)],
        ['v', f32(0)],
      ]),
    );
    assert.deepEqual(r.differing, ['w']);
    assert.equal(r.maxAbsDifference, 0.5);
    assert.equal(r.identical, false);
  });

  it('−0 and +0 differ in bits; names in one set only are listed; shapes that differ are infinitely apart', () => {
    assert.equal(compareWeights(new Map([['z', f32(0)]]), new Map([['z', f32(-0)]])).identical, false);
    const r = compareWeights(
      new Map([
        ['a', f32(1)],
        ['s', f32(1, 2)],
      ]),
      new Map([
        ['b', f32(1)],
        ['s', f32(1)],
      ]),
    );
    assert.deepEqual(r.unmatched, ['a', 'b']);
    assert.deepEqual(r.differing, ['s']);
    assert.equal(r.maxAbsDifference, Number.POSITIVE_INFINITY);
    assert.equal(r.shared, 1);
  });
});
