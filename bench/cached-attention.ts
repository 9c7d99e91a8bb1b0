/**
 * One decode step's attention over a KV cache, three ways
 * (`node --expose-gc --import tsx bench/cached-attention.ts`):
 * every layer of the ~135M LLaMA shape (30 layers, 9 / 3 heads of 64) and of the 7B one (32
 * layers, 32 / 32 heads of 128), one new token, cache buffers of a given capacity filled up to a
 * given length. Only attention runs (the projections are inputs), so the rows differ only in how
 * the cache is read and written:
 * - GQA in place: onnxruntime's GroupQueryAttention (com.microsoft) with the buffers fed as inputs
 *   and bound as pre-allocated outputs, so the kernel writes the new position into them;
 *   onnxruntime-node 1.30 then copies every fetched output back out, whole (`KVCacheDecoder`
 *   until 2026-12-07);
 * - GQA read only: the buffers are inputs alone; the kernel copies the past into a new present
 *   tensor it keeps, and the host appends the step's row (one commit on 2026-12-07);
 * - `ops.cachedAttention`: explicit ops reading the buffers without copying them, and a mask; the
 *   host appends the step's row (`KVCacheDecoder` now).
 * Medians of 20 runs (7B: 8); ratio: each GQA row's time over `ops.cachedAttention`'s.
 */
import os from 'node:os';
import { attr, Graph } from '../src/engine/graph.ts';
import { HostTensor } from '../src/engine/host-tensor.ts';
import type { Tensor } from '../src/engine/index.ts';
import * as ops from '../src/engine/ops/index.ts';
import { compile, type Program } from '../src/engine/session.ts';

interface Shape {
  name: string;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  runs: number;
  cases: [capacity: number, filled: number][];
}

const SHAPES: Shape[] = [
  {
    name: '~135M',
    layers: 30,
    heads: 9,
    kvHeads: 3,
    headDim: 64,
    runs: 20,
    cases: [
      [32, 16],
      [640, 16],
      [640, 600],
      [4096, 4000],
    ],
  },
  {
    name: '7B',
    layers: 32,
    heads: 32,
    kvHeads: 32,
    headDim: 128,
    runs: 8,
    cases: [
      [80, 16],
      [576, 512],
    ],
  },
];

/** GroupQueryAttention per layer; with `inPlace`, the buffers as the kernel leaves them are outputs. */
function gqaGraph(s: Shape, inPlace: boolean): Promise<Program> {
  const g = new Graph('float32');
  const q = g.input('q', 'float32', [1, 1, s.heads * s.headDim]);
  const kv = g.input('kv', 'float32', [1, 1, s.kvHeads * s.headDim]);
  const last = g.input('last', 'int32', [1]);
  const total = g.input('total', 'int32', []);
  const outputs: Record<string, Tensor> = {};
  for (let l = 0; l < s.layers; l++) {
    const shape = [1, s.kvHeads, 'C', s.headDim];
    const [out, key, value] = g.emit(
      'GroupQueryAttention',
      [
        q,
        kv,
        kv,
        g.input(`key.${l}`, 'float32', shape),
        g.input(`value.${l}`, 'float32', shape),
        last,
        total,
      ],
      [
        { dtype: 'float32', shape: [1, 1, s.heads * s.headDim] },
        { dtype: 'float32', shape },
        { dtype: 'float32', shape },
      ],
      { num_heads: attr.int(s.heads), kv_num_heads: attr.int(s.kvHeads) },
      'com.microsoft',
    );
    outputs[`out.${l}`] = out;
    if (inPlace) {
      outputs[`present.${l}.key`] = key;
      outputs[`present.${l}.value`] = value;
    }
  }
  return compile(g, outputs, { label: inPlace ? 'GQA in place' : 'GQA read only' });
}

function cachedAttentionGraph(s: Shape): Promise<Program> {
  const g = new Graph('float32');
  const q = g.input('q', 'float32', [1, 1, s.heads * s.headDim]);
  const kv = g.input('kv', 'float32', [1, 1, s.kvHeads * s.headDim]);
  const mask = g.input('mask', 'float32', [1, 'C+1']);
  const outputs: Record<string, Tensor> = {};
  for (let l = 0; l < s.layers; l++) {
    const cache = {
      key: g.input(`key.${l}`, 'float32', [1, s.kvHeads, 1, 'C', s.headDim]),
      value: g.input(`value.${l}`, 'float32', [1, s.kvHeads, 1, 'C', s.headDim]),
      mask,
    };
    outputs[`out.${l}`] = ops.cachedAttention(q, kv, kv, cache, { heads: s.heads, kvHeads: s.kvHeads });
  }
  return compile(g, outputs, { label: 'ops.cachedAttention' });
}

/** Collected first when node runs with --expose-gc, so no row pays for an earlier row's garbage. */
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});

async function median(runs: number, run: () => Promise<unknown>): Promise<number> {
  collect();
  await run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[runs >> 1];
}

console.log(
  `Machine: ${os.cpus()[0]?.model.trim()}, ${os.availableParallelism()} cores; node ${process.version}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
);
console.log(
  'One token, attention only, every layer; ms per step (median); the host copies of the new row are timed with the read-only rows.\n',
);
console.log(
  '| shape | cache capacity | positions after the step | GQA in place, ms | GQA read only, ms | ops.cachedAttention, ms | in place / ours | read only / ours |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const s of SHAPES) {
  const [inPlace, readOnly, ours] = [
    await gqaGraph(s, true),
    await gqaGraph(s, false),
    await cachedAttentionGraph(s),
  ];
  const hd = s.headDim;
  for (const [capacity, filled] of s.cases) {
    const common = {
      q: HostTensor.zeros('float32', [1, 1, s.heads * hd]),
      kv: HostTensor.zeros('float32', [1, 1, s.kvHeads * hd]),
    };
    const gqaFeeds: Record<string, HostTensor> = {
      ...common,
      last: new HostTensor('int32', [1], Int32Array.of(filled - 1)),
      total: new HostTensor('int32', [], Int32Array.of(filled)),
    };
    const mask = new Float32Array(capacity + 1).fill(Number.NEGATIVE_INFINITY).fill(0, 0, filled - 1);
    mask[capacity] = 0;
    const ourFeeds: Record<string, HostTensor> = {
      ...common,
      mask: new HostTensor('float32', [1, capacity + 1], mask),
    };
    const into: Record<string, HostTensor> = {};
    const buffers: Float32Array[] = [];
    for (let l = 0; l < s.layers; l++)
      for (const part of ['key', 'value']) {
        const buffer = new Float32Array(s.kvHeads * capacity * hd);
        buffers.push(buffer);
        gqaFeeds[`${part}.${l}`] = into[`present.${l}.${part}`] = new HostTensor(
          'float32',
          [1, s.kvHeads, capacity, hd],
          buffer,
        );
        ourFeeds[`${part}.${l}`] = new HostTensor('float32', [1, s.kvHeads, 1, capacity, hd], buffer);
      }
    // The new row into every buffer, as DecoderCache does.
    const appendRow = () => {
      const row = common.kv.data as Float32Array;
      for (const buffer of buffers)
        for (let h = 0; h < s.kvHeads; h++)
          buffer.set(row.subarray(h * hd, (h + 1) * hd), (h * capacity + filled - 1) * hd);
    };
    // Ours first: the in-place rows leave a whole cache of garbage per step for the collector.
    const c = await median(s.runs, async () => {
      await ours.run(ourFeeds);
      appendRow();
    });
    const b = await median(s.runs, async () => {
      await readOnly.run(gqaFeeds);
      appendRow();
    });
    const a = await median(s.runs, () => inPlace.run(gqaFeeds, { into }));
    console.log(
      `| ${s.name} | ${capacity} | ${filled} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${c.toFixed(2)} | ${(a / c).toFixed(2)}× | ${(b / c).toFixed(2)}× |`,
    );
  }
}
