/**
 * How a cached decode step's cost depends on the KV cache buffers' capacity (`npx tsx
 * bench/kv-cache-capacity.ts`): one GroupQueryAttention per layer (`ops.cachedAttention`'s node),
 * 30 layers of the ~135M LLaMA shape (9 / 3 heads of 64), one new token, two ways:
 * - in place: the buffers fed as inputs and bound as pre-allocated outputs, so the kernel writes
 *   the new position into them (how `KVCacheDecoder` ran until December 7);
 * - read only: the buffers are inputs alone and the step returns its new key/value rows, which the
 *   host copies in (`KVCacheDecoder` now; the copy of 60 rows of 64 floats is timed too).
 * If a step cost only what attention reads, the capacity would not matter at equal length.
 */
import os from 'node:os';
import { attr, Graph } from '../src/engine/graph.ts';
import { HostTensor } from '../src/engine/host-tensor.ts';
import type { Tensor } from '../src/engine/index.ts';
import { compile } from '../src/engine/session.ts';

const HEADS = 9;
const KV_HEADS = 3;
const HEAD_DIM = 64;
const LAYERS = 30;
const RUNS = 40;
const CASES: [capacity: number, filled: number][] = [
  [32, 16],
  [640, 16],
  [640, 600],
  [4096, 16],
  [4096, 4000],
];

/** The step graph; with `inPlace`, the buffers as the kernel leaves them are outputs too. */
function stepGraph(inPlace: boolean) {
  const g = new Graph('float32');
  const q = g.input('q', 'float32', [1, 1, HEADS * HEAD_DIM]);
  const kv = g.input('kv', 'float32', [1, 1, KV_HEADS * HEAD_DIM]);
  const last = g.input('last', 'int32', [1]);
  const total = g.input('total', 'int32', []);
  const outputs: Record<string, Tensor> = {};
  for (let l = 0; l < LAYERS; l++) {
    const shape = [1, KV_HEADS, 'C', HEAD_DIM];
    const pastKey = g.input(`past.${l}.key`, 'float32', shape);
    const pastValue = g.input(`past.${l}.value`, 'float32', shape);
    const [out, key, value] = g.emit(
      'GroupQueryAttention',
      [q, kv, kv, pastKey, pastValue, last, total],
      [
        { dtype: 'float32', shape: [1, 1, HEADS * HEAD_DIM] },
        { dtype: 'float32', shape },
        { dtype: 'float32', shape },
      ],
      { num_heads: attr.int(HEADS), kv_num_heads: attr.int(KV_HEADS) },
      'com.microsoft',
    );
    outputs[`out.${l}`] = out;
    if (inPlace) {
      outputs[`present.${l}.key`] = key;
      outputs[`present.${l}.value`] = value;
    } else {
      // The step's rows, as a decoder step returns them (here the input itself, through one node).
      outputs[`added.${l}.key`] = g.emit(
        'Identity',
        [kv],
        [{ dtype: 'float32', shape: [1, 1, KV_HEADS * HEAD_DIM] }],
      )[0];
      outputs[`added.${l}.value`] = g.emit(
        'Identity',
        [kv],
        [{ dtype: 'float32', shape: [1, 1, KV_HEADS * HEAD_DIM] }],
      )[0];
    }
  }
  return compile(g, outputs, { label: inPlace ? 'kv-cache in place' : 'kv-cache read only' });
}

const inPlace = await stepGraph(true);
const readOnly = await stepGraph(false);

console.log(
  `Machine: ${os.cpus()[0]?.model.trim()}, ${os.availableParallelism()} cores; node ${process.version}.`,
);
console.log(
  `${LAYERS} GroupQueryAttention nodes (${HEADS} / ${KV_HEADS} heads of ${HEAD_DIM}), one new token; median of ${RUNS} runs.\n`,
);
console.log(
  '| cache capacity | positions after the step | in place, buffers fetched back, ms | read only, rows copied in, ms | ratio |',
);
console.log('|---:|---:|---:|---:|---:|');
for (const [capacity, filled] of CASES) {
  const feeds: Record<string, HostTensor> = {
    q: HostTensor.zeros('float32', [1, 1, HEADS * HEAD_DIM]),
    kv: HostTensor.zeros('float32', [1, 1, KV_HEADS * HEAD_DIM]),
    last: new HostTensor('int32', [1], Int32Array.of(filled - 1)),
    total: new HostTensor('int32', [], Int32Array.of(filled)),
  };
  const into: Record<string, HostTensor> = {};
  for (let l = 0; l < LAYERS; l++)
    for (const part of ['key', 'value']) {
      const buffer = HostTensor.zeros('float32', [1, KV_HEADS, capacity, HEAD_DIM]);
      feeds[`past.${l}.${part}`] = buffer;
      into[`present.${l}.${part}`] = buffer;
    }
  const median = async (run: () => Promise<unknown>) => {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await run();
      times.push(performance.now() - t0);
    }
    return times.sort((a, b) => a - b)[RUNS >> 1];
  };
  const a = await median(() => inPlace.run(feeds, { into }));
  const b = await median(async () => {
    const r = await readOnly.run(feeds);
    for (let l = 0; l < LAYERS; l++)
      for (const part of ['key', 'value']) {
        const rows = r[`added.${l}.${part}`].data as Float32Array;
        const buffer = feeds[`past.${l}.${part}`].data as Float32Array;
        for (let h = 0; h < KV_HEADS; h++)
          buffer.set(rows.subarray(h * HEAD_DIM, (h + 1) * HEAD_DIM), (h * capacity + filled - 1) * HEAD_DIM);
      }
  });
  console.log(`| ${capacity} | ${filled} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(a / b).toFixed(2)}× |`);
}
