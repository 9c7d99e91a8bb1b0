/** The same traced graphs run on every execution provider available here (CPU and wasm). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockParams, buildBlockLoss, randomTokens } from '../../bench/transformer-block.ts';
import { Trainer } from '../../src/engine/trainer.ts';

describe('execution providers', () => {
  it('a training step (forward, backward, AdamW) gives the same numbers on onnxruntime-node CPU and onnxruntime-web wasm', async () => {
    const cfg = { batch: 2, seq: 8, dModel: 16, heads: 2, mlp: 32, vocab: 30 };
    const data = randomTokens(cfg, 3);
    const run = async (ep: 'cpu' | 'wasm') => {
      const trainer = await Trainer.create({
        params: blockParams(cfg, 11),
        build: (g) => buildBlockLoss(g, cfg),
        optimizer: { lr: 1e-2 },
        runtime: { ep, threads: 1 },
      });
      const losses = [];
      for (let i = 0; i < 3; i++) losses.push((await trainer.trainStep(data)).loss);
      return { losses, wte: trainer.parameters().get('wte.weight')!.data as Float32Array };
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    cpu.losses.forEach((l, i) => {
      assert.ok(Math.abs(l - wasm.losses[i]) < 1e-4, `step ${i + 1}: cpu ${l}, wasm ${wasm.losses[i]}`);
    });
    let maxDiff = 0;
    for (let i = 0; i < cpu.wte.length; i++) maxDiff = Math.max(maxDiff, Math.abs(cpu.wte[i] - wasm.wte[i]));
    assert.ok(maxDiff < 1e-4, `embedding differs by up to ${maxDiff}`);
  });
});
