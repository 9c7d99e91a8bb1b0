import { Trainer } from './src/engine/trainer.ts';
import { BENCH_BLOCK, blockParams, buildBlockLoss, randomTokens } from './bench/transformer-block.ts';
const cfg = BENCH_BLOCK;
let t0 = performance.now();
const tr = await Trainer.create({ params: blockParams(cfg), build: (g) => buildBlockLoss(g, cfg), optimizer: { lr: 3e-4, weightDecay: 0.01, clipNorm: 1 } });
console.log('compile ms', performance.now() - t0);
const b = randomTokens(cfg, 7);
for (let i = 0; i < 8; i++) { t0 = performance.now(); const r = await tr.trainStep({ ids: b.ids, targets: b.targets }); console.log(i, r.loss.toFixed(4), r.gradNorm.toFixed(3), (performance.now() - t0).toFixed(1), 'ms'); }
