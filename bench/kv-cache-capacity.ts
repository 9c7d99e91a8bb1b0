/**
 * How a cached decode step's cost depends on the KV cache buffers' capacity (`npx tsx
 * bench/kv-cache-capacity.ts`): one GroupQueryAttention per layer (`ops.cachedAttention`'s node),
 * 30 layers of the ~135M LLaMA shape (9 / 3 heads of 64), one new token attending over the same 16
 * positions, the cache buffers fed as inputs and bound as pre-allocated outputs (as `KVCacheDecoder`
 * runs them) or not fetched at all. If a step read only what attention reads, the capacity would
 * not matter.
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
const POSITIONS = 16;
const RUNS = 40;

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
  outputs[`present.${l}.key`] = key;
  outputs[`present.${l}.value`] = value;
}
const program = await compile(g, outputs, { label: 'kv-cache-capacity' });

console.log(
  `Machine: ${os.cpus()[0]?.model.trim()}, ${os.availableParallelism()} cores; node ${process.version}.`,
);
console.log(
  `${LAYERS} GroupQueryAttention nodes (${HEADS} / ${KV_HEADS} heads of ${HEAD_DIM}), one token over ${POSITIONS} positions; median of ${RUNS} runs.\n`,
);
console.log('| cache capacity | present bound as outputs, ms | present not fetched, ms |');
console.log('|---:|---:|---:|');
for (const capacity of [32, 640, 4096]) {
  const feeds: Record<string, HostTensor> = {
    q: HostTensor.zeros('float32', [1, 1, HEADS * HEAD_DIM]),
    kv: HostTensor.zeros('float32', [1, 1, KV_HEADS * HEAD_DIM]),
    last: new HostTensor('int32', [1], Int32Array.of(POSITIONS - 1)),
    total: new HostTensor('int32', [], Int32Array.of(POSITIONS)),
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
  const bound = await median(() => program.run(feeds, { into }));
  const outsOnly = Object.keys(outputs).filter((n) => n.startsWith('out.'));
  const notFetched = await median(() => program.run(feeds, { outputs: outsOnly }));
  console.log(`| ${capacity} | ${bound.toFixed(2)} | ${notFetched.toFixed(2)} |`);
}
