/**
 * Embedded weights from EXTERNAL_DATA_FROM_BYTES on travel as ONNX external data: views of the
 * caller's arrays beside a small protobuf. The results must equal inline initializers', the
 * session cache must tell two weight values apart, and a weight in the middle of a larger
 * buffer (a view with an offset) must be read from its own bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from '../../src/engine/graph.ts';
import { HostTensor } from '../../src/engine/host-tensor.ts';
import { EXTERNAL_DATA_FROM_BYTES, serialize } from '../../src/engine/onnx.ts';
import * as ops from '../../src/engine/ops/index.ts';
import { compile } from '../../src/engine/session.ts';
import { f32, uniform } from './helpers.ts';

const K = 128;
const N = 256; // 128 KiB of float32: external by default

function build(): { g: Graph; y: ReturnType<typeof ops.linear> } {
  const g = new Graph();
  const x = g.input('x', 'float32', ['M', K]);
  return { g, y: ops.linear(x, g.param('w', [N, K])) };
}

async function run(weight: HostTensor, externalFromBytes?: number): Promise<Float32Array> {
  const { g, y } = build();
  const program = await compile(g, { y }, { embed: new Map([['w', weight]]), externalFromBytes });
  const x = f32([2, K], uniform([2, K], 7));
  return (await program.run({ x })).y.data as Float32Array;
}

describe('external data', () => {
  it('puts large embedded values outside the protobuf, small ones inline', () => {
    const { g, y } = build();
    const w = f32([N, K], uniform([N, K], 1));
    assert.ok(w.data.byteLength >= EXTERNAL_DATA_FROM_BYTES);
    const external = serialize(g, { y }, { embed: new Map([['w', w]]) });
    assert.equal(external.externalData.length, 1);
    assert.equal(external.externalData[0].data.byteLength, w.data.byteLength);
    assert.ok(external.bytes.byteLength < 4096, `protobuf is ${external.bytes.byteLength} bytes`);
    const inline = serialize(g, { y }, { embed: new Map([['w', w]]), externalFromBytes: Infinity });
    assert.equal(inline.externalData.length, 0);
    assert.ok(inline.bytes.byteLength > w.data.byteLength);
  });

  it('computes what inline initializers compute, and keys sessions by the weight values', async () => {
    const w = f32([N, K], uniform([N, K], 1));
    const inline = await run(w, Infinity);
    const external = await run(w);
    assert.deepEqual(external, inline);
    const other = f32([N, K], uniform([N, K], 2));
    const fromOther = await run(other);
    assert.notDeepEqual(fromOther, external);
    assert.deepEqual(fromOther, await run(other, Infinity));
  });

  it('reads a weight that is a view into a larger buffer', async () => {
    const w = f32([N, K], uniform([N, K], 3));
    const padded = new Float32Array(w.data.length + 1000).fill(99);
    padded.set(w.data, 500);
    const view = new HostTensor('float32', [N, K], padded.subarray(500, 500 + w.data.length));
    assert.deepEqual(await run(view), await run(w, Infinity));
  });
});
