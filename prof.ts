import * as ort from 'onnxruntime-node';
import { Graph } from './src/engine/graph.ts';
import { grad } from './src/engine/autodiff.ts';
import { serialize } from './src/engine/onnx.ts';
import { emitAdamW, resolveAdamW } from './src/engine/optim.ts';
import { BENCH_BLOCK, blockParams, buildBlockLoss, randomTokens } from './bench/transformer-block.ts';
import { HostTensor } from './src/engine/host-tensor.ts';
const cfg = BENCH_BLOCK;
const g = new Graph();
const { loss } = buildBlockLoss(g, cfg);
const ps = [...g.params.values()].map(p => p.tensor);
const grads = grad(loss, ps);
const lr = g.input('@lr', 'float32', []), b1c = g.input('@b1c', 'float32', []), b2c = g.input('@b2c', 'float32', []);
const slots = ps.map((p, i) => ({ param: p, grad: grads[i], m: g.input(p.name + '@m', 'float32', p.shape), v: g.input(p.name + '@v', 'float32', p.shape), decay: true }));
const up = emitAdamW(g, slots, { lr, b1c, b2c }, resolveAdamW({ lr: 1e-3 }));
const outs: any = { loss, gn: up.gradNorm };
ps.forEach((p, i) => { outs[p.name + '@n'] = up.params[i]; outs[p.name + '@mn'] = up.m[i]; outs[p.name + '@vn'] = up.v[i]; });
const onlyFwd = process.argv[2] === 'fwd';
const model = serialize(g, onlyFwd ? { loss } : outs);
console.log('nodes', model.nodeCount);
const s = await ort.InferenceSession.create(model.bytes, { graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: '/tmp/ortprof', optimizedModelFilePath: '/tmp/opt.onnx' } as any);
const params = blockParams(cfg);
const b = randomTokens(cfg, 1);
const feeds: any = {};
for (const inp of model.inputs) {
  const n = inp.name;
  let t: HostTensor;
  if (n === 'ids') t = b.ids; else if (n === 'targets') t = b.targets;
  else if (n.startsWith('@')) t = new HostTensor('float32', [], Float32Array.of(1e-3));
  else if (n.endsWith('@m') || n.endsWith('@v')) t = HostTensor.zeros('float32', params.get(n.slice(0, -2))!.shape);
  else t = params.get(n)!;
  feeds[n] = new ort.Tensor(t.dtype as any, t.data as any, t.shape as number[]);
}
for (let i = 0; i < 6; i++) { const t0 = performance.now(); await s.run(feeds); console.log((performance.now() - t0).toFixed(1)); }
const f = (s as any).endProfiling?.();
console.log('profile', f);
