/** NLVR accuracy/consistency and held-out task accuracy. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataSkipReason } from '../../src/data/data-dir.ts';
import { evaluateNlvr, nlvrPrompt, summarizeNlvr } from '../../src/eval/nlvr.ts';
import { evaluateTasks } from '../../src/eval/tasks.ts';
import { smallModel } from '../maven/small-model.ts';

describe('NLVR evaluation', () => {
  it('computes accuracy, consistency over the six orders, and the true-rate', () => {
    const p = (identifier: string, order: number, label: boolean, predicted: boolean) => ({
      identifier,
      order,
      label,
      predicted,
      margin: predicted ? 1 : -1,
    });
    const r = summarizeNlvr('test', [
      ...[0, 1, 2, 3, 4, 5].map((o) => p('a', o, true, true)), // all right
      ...[0, 1, 2, 3, 4, 5].map((o) => p('b', o, false, o !== 3)), // one wrong (order 3 said false = right; others said true = wrong)
    ]);
    assert.equal(r.examples, 2);
    assert.equal(r.accuracy, 7 / 12);
    assert.equal(r.consistency, 0.5);
    assert.equal(r.trueRate, 11 / 12);
  });

  it('uses the generated NLVR-style prompt with three <image> placeholders', () => {
    assert.equal(nlvrPrompt('x').split('<image>').length - 1, 3);
  });

  it('runs on real NLVR examples', { skip: dataSkipReason('nlvr/test/test.json') }, async () => {
    const r = await evaluateNlvr(smallModel(), 'test', { limit: 2, orders: [0, 5] });
    assert.equal(r.predictions.length, 4);
    assert.ok(r.accuracy >= 0 && r.accuracy <= 1);
  });
});

describe('generated task evaluation', () => {
  it('scores every option and reports accuracy and chance per task', async () => {
    const { accuracies, predictions } = await evaluateTasks(
      smallModel(),
      ['nlvr-statement', 'motion-direction'],
      { perTask: 3 },
    );
    assert.equal(predictions.length, 6);
    assert.deepEqual(
      accuracies.map((a) => a.category),
      ['multi-image-reasoning', 'action-recognition'],
    );
    assert.ok(Math.abs(accuracies[0].chance - 0.5) < 1e-9);
    for (const p of predictions) assert.ok(p.predicted >= 0);
  });
});
