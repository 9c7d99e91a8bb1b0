/** The compiled training step: AdamW numerics, overfitting, freezing, NaN handling, resume, dynamic axes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockParams, buildBlockLoss, randomTokens } from '../../bench/transformer-block.ts';
import type { Graph } from '../../src/engine/graph.ts';
import { HostTensor } from '../../src/engine/host-tensor.ts';
import * as ops from '../../src/engine/ops/index.ts';
import { warmupCosine } from '../../src/engine/optim.ts';
import { cachedSessionCount } from '../../src/engine/session.ts';
import { NonFiniteLossError, Trainer } from '../../src/engine/trainer.ts';
import { f32, i64, uniform } from './helpers.ts';

function mlpParams(seed: number): Map<string, HostTensor> {
  return new Map([
    ['fc1.weight', f32([16, 4], uniform([16, 4], seed, -0.5, 0.5))],
    ['fc1.bias', f32([16], new Array(16).fill(0))],
    ['fc2.weight', f32([3, 16], uniform([3, 16], seed + 1, -0.5, 0.5))],
    ['fc2.bias', f32([3], [0, 0, 0])],
  ]);
}

function mlpLoss(g: Graph) {
  const x = g.input('x', 'float32', ['N', 4]);
  const y = g.input('y', 'int64', ['N']);
  const h = ops.relu(ops.linear(x, g.param('fc1.weight', [16, 4]), g.param('fc1.bias', [16])));
  const logits = ops.linear(h, g.param('fc2.weight', [3, 16]), g.param('fc2.bias', [3]));
  return { loss: ops.crossEntropy(logits, y), metrics: { logits } };
}

const batch = { x: f32([6, 4], uniform([6, 4], 42)), y: i64([6], [0, 1, 2, 2, 1, 0]) };

describe('Trainer', () => {
  it('one AdamW step matches a hand computation (clipping, bias correction, decoupled decay)', async () => {
    // loss = sum(w * c): gradient is c exactly, so the update can be computed by hand.
    const c = [3, -4, 0.5];
    const w0 = [0.1, -0.2, 0.3];
    const trainer = await Trainer.create({
      params: new Map([['w', f32([1, 3], w0)]]),
      build: (g) => ({ loss: ops.sum(ops.mul(g.param('w', [1, 3]), g.constant(f32([1, 3], c)))) }),
      optimizer: { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5, clipNorm: 1 },
    });
    const r = await trainer.trainStep({});
    const norm = Math.hypot(...c);
    assert.ok(Math.abs(r.gradNorm - norm) < 1e-5);
    const scale = Math.min(1, 1 / (norm + 1e-6));
    const expected = w0.map((w, i) => {
      const gr = c[i] * scale;
      const m = 0.1 * gr;
      const v = 0.01 * gr * gr;
      const mhat = m / (1 - 0.9);
      const vhat = v / (1 - 0.99);
      return w - 0.1 * (mhat / (Math.sqrt(vhat) + 1e-8) + 0.5 * w);
    });
    const got = [...(trainer.parameters().get('w')!.data as Float32Array)];
    got.forEach((v, i) => {
      assert.ok(Math.abs(v - expected[i]) < 1e-6, `w[${i}] = ${v}, expected ${expected[i]}`);
    });
  });

  it('five AdamW steps match a hand computation where clipping and bias correction both matter', async () => {
    // loss = ½·Σ c·w²: the gradient c·w changes every step, so the clipped gradients of different
    // steps differ in scale (clipping does not cancel in m/√v) and, with β1² ≠ 1 − β2, bias
    // correction changes every step's size.
    const c = [3, 4, 5];
    const w0 = [1, -2, 3];
    const cfg = { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, clipNorm: 1 };
    const trainer = await Trainer.create({
      params: new Map([['w', f32([1, 3], w0)]]),
      build: (g) => {
        const w = g.param('w', [1, 3]);
        return { loss: ops.mul(ops.sum(ops.mul(ops.mul(w, w), g.constant(f32([1, 3], c)))), 0.5) };
      },
      optimizer: cfg,
    });
    const w = [...w0];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    for (let t = 1; t <= 5; t++) {
      const grad = w.map((x, i) => c[i] * x);
      const norm = Math.hypot(...grad);
      const scale = Math.min(1, cfg.clipNorm / (norm + 1e-6));
      assert.ok(scale < 0.2, `clipping is active at step ${t} (scale ${scale})`);
      for (let i = 0; i < 3; i++) {
        const gi = grad[i] * scale;
        m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * gi;
        v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * gi * gi;
        const mhat = m[i] / (1 - cfg.beta1 ** t);
        const vhat = v[i] / (1 - cfg.beta2 ** t);
        w[i] = w[i] * (1 - cfg.lr * cfg.weightDecay) - (cfg.lr * mhat) / (Math.sqrt(vhat) + cfg.eps);
      }
      const r = await trainer.trainStep({});
      assert.ok(Math.abs(r.gradNorm - norm) < 1e-4 * norm, `step ${t}: grad norm ${r.gradNorm} vs ${norm}`);
      const got = [...(trainer.parameters().get('w')!.data as Float32Array)];
      got.forEach((x, i) => {
        assert.ok(Math.abs(x - w[i]) < 1e-5, `step ${t}: w[${i}] = ${x}, expected ${w[i]}`);
      });
    }
  });

  it('warm-up + cosine schedule', () => {
    const s = warmupCosine({ peak: 1, warmupSteps: 10, totalSteps: 110, min: 0.1 });
    assert.equal(s(5), 0.5);
    assert.equal(s(10), 1);
    assert.ok(Math.abs(s(60) - 0.55) < 1e-12);
    assert.ok(Math.abs(s(110) - 0.1) < 1e-12);
  });

  it('a small MLP overfits a fixed batch', async () => {
    const trainer = await Trainer.create({
      params: mlpParams(1),
      build: mlpLoss,
      optimizer: { lr: 0.05, weightDecay: 0 },
    });
    const first = (await trainer.trainStep(batch)).loss;
    let last = first;
    for (let i = 0; i < 150; i++) last = (await trainer.trainStep(batch)).loss;
    assert.ok(last < 0.02 && last < first / 40, `loss ${first} → ${last}`);
    const ev = await trainer.evaluate(batch);
    assert.ok(Math.abs(ev.loss - last) < 0.01);
  });

  it('a tiny transformer block overfits a fixed batch of tokens', async () => {
    const cfg = { batch: 2, seq: 16, dModel: 32, heads: 4, mlp: 64, vocab: 50 };
    const trainer = await Trainer.create({
      params: blockParams(cfg, 3),
      build: (g) => buildBlockLoss(g, cfg),
      optimizer: { lr: 1e-2, weightDecay: 0 },
    });
    const data = randomTokens(cfg, 5);
    const first = (await trainer.trainStep(data)).loss;
    let last = first;
    for (let i = 0; i < 120; i++) last = (await trainer.trainStep(data)).loss;
    assert.ok(first > 3.5, `initial loss ${first} should be near ln(50) = 3.9`);
    assert.ok(last < 0.1, `loss ${first} → ${last}`);
  });

  it('frozen parameters stay bit-identical and get no optimizer state', async () => {
    const params = mlpParams(2);
    const before = new Map([...params].map(([k, v]) => [k, Float32Array.from(v.data as Float32Array)]));
    const trainer = await Trainer.create({
      params,
      build: mlpLoss,
      optimizer: { lr: 0.05 },
      trainable: (name) => name.startsWith('fc2.'),
    });
    for (let i = 0; i < 5; i++) await trainer.trainStep(batch);
    const now = trainer.parameters();
    assert.deepEqual(now.get('fc1.weight')!.data, before.get('fc1.weight'));
    assert.deepEqual(now.get('fc1.bias')!.data, before.get('fc1.bias'));
    assert.notDeepEqual(now.get('fc2.weight')!.data, before.get('fc2.weight'));
    assert.deepEqual([...trainer.optimizerState().keys()].sort(), [
      'fc2.bias@adam_m',
      'fc2.bias@adam_v',
      'fc2.weight@adam_m',
      'fc2.weight@adam_v',
    ]);
    assert.deepEqual(
      trainer
        .summary()
        .frozen.map(([n]) => n)
        .sort(),
      ['fc1.bias', 'fc1.weight'],
    );
  });

  it('a non-finite loss throws and leaves parameters at the last good step', async () => {
    const trainer = await Trainer.create({ params: mlpParams(3), build: mlpLoss, optimizer: { lr: 0.05 } });
    await trainer.trainStep(batch);
    const good = Float32Array.from(trainer.parameters().get('fc1.weight')!.data as Float32Array);
    const poisoned = { x: f32([6, 4], [Number.NaN, ...uniform([23], 1)]), y: batch.y };
    await assert.rejects(trainer.trainStep(poisoned), (e: unknown) => {
      assert.ok(e instanceof NonFiniteLossError);
      assert.match(e.message, /step 2: loss is NaN/);
      return true;
    });
    assert.equal(trainer.step, 1);
    assert.deepEqual(trainer.parameters().get('fc1.weight')!.data, good);
    const next = await trainer.trainStep(batch);
    assert.equal(next.step, 2);
    assert.ok(Number.isFinite(next.loss));
  });

  it('resuming from parameters + optimizer state continues the same loss trajectory', async () => {
    const optimizer = { lr: warmupCosine({ peak: 0.05, warmupSteps: 2, totalSteps: 8 }) };
    const straight = await Trainer.create({ params: mlpParams(4), build: mlpLoss, optimizer });
    const losses: number[] = [];
    for (let i = 0; i < 8; i++) losses.push((await straight.trainStep(batch)).loss);

    const first = await Trainer.create({ params: mlpParams(4), build: mlpLoss, optimizer });
    for (let i = 0; i < 4; i++) await first.trainStep(batch);
    const copyMap = (m: Map<string, HostTensor>) =>
      new Map(
        [...m].map(([k, v]) => [k, new HostTensor(v.dtype, v.shape, v.data.slice() as HostTensor['data'])]),
      );
    const resumed = await Trainer.create({
      params: copyMap(first.parameters()),
      build: mlpLoss,
      optimizer,
      resume: { state: copyMap(first.optimizerState()), step: first.step },
    });
    const after: number[] = [];
    for (let i = 0; i < 4; i++) after.push((await resumed.trainStep(batch)).loss);
    after.forEach((l, i) => {
      assert.ok(Math.abs(l - losses[4 + i]) < 1e-6, `step ${5 + i}: ${l} vs ${losses[4 + i]}`);
    });
  });

  it('dynamic batch size and sequence length reuse one compiled session', async () => {
    const cfg = { batch: 2, seq: 12, dModel: 16, heads: 2, mlp: 32, vocab: 20 };
    const trainer = await Trainer.create({
      params: blockParams(cfg, 7),
      build: (g) => buildBlockLoss(g, cfg),
      optimizer: { lr: 1e-3 },
    });
    await trainer.trainStep(randomTokens(cfg, 1));
    const sessions = cachedSessionCount();
    for (const [b, t] of [
      [1, 5],
      [3, 12],
      [2, 7],
    ]) {
      const r = await trainer.trainStep(randomTokens({ ...cfg, batch: b, seq: t }, b * 100 + t));
      assert.ok(Number.isFinite(r.loss));
    }
    assert.equal(cachedSessionCount(), sessions);
  });

  it('reports every mismatched or missing parameter at once', async () => {
    const params = mlpParams(5);
    params.delete('fc1.bias');
    params.set('fc2.weight', f32([16, 3], new Array(48).fill(0)));
    await assert.rejects(
      Trainer.create({ params, build: mlpLoss, optimizer: { lr: 0.1 } }),
      /missing "fc1\.bias" \[16\][\s\S]*"fc2\.weight": graph wants float32\[3, 16\], got float32\[16, 3\]/,
    );
  });
});
