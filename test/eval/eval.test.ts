/** NLVR accuracy/consistency and held-out task accuracy. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { dataSkipReason } from '../../src/data/data-dir.ts';
import { loadNlvr, loadNlvrImages } from '../../src/data/nlvr.ts';
import type { RgbImage } from '../../src/data/scene/render.ts';
import { generateExample } from '../../src/data/tasks/registry.ts';
import { evaluateNlvr, nlvrPrompt, summarizeNlvr } from '../../src/eval/nlvr.ts';
import { evaluateTasks } from '../../src/eval/tasks.ts';
import type { CandidateScore } from '../../src/maven/generation.ts';
import type { MavenModel } from '../../src/maven/model.ts';
import { smallModel } from '../maven/small-model.ts';

/**
 * The small random model with the answer words in its vocabulary: without them every option is
 * the unknown token, all scores tie, and the tests below could not tell one option from another.
 */
const answerWordsModel = () => smallModel(['true false', 'left right up down']);

/** Identifies an example by what the model is shown: its prompt and its images' pixels. */
const exampleKey = (prompt: string, images: readonly RgbImage[]) => {
  const h = createHash('sha256').update(prompt);
  for (const im of images) h.update(`${im.width}x${im.height}`).update(im.rgb);
  return h.digest('hex');
};

/**
 * A stand-in model whose option scores the test dictates: for the example with key k it favours
 * option favoured.get(k), with the best mean log-likelihood (−1 over 3 tokens) but the worst sum
 * (−3); every other option gets −2 over 1 token. So 'mean' picks the favoured option and 'sum'
 * the first other one. It records the candidates it was asked to score.
 */
function scriptedModel(favoured: ReadonlyMap<string, number>) {
  const asked: string[][] = [];
  const model = {
    preprocessRgb: (images: RgbImage[]) => images,
    prepare: async (prompt: string, images: RgbImage[]) => ({
      key: exampleKey(prompt, images),
      sequence: { slots: new Array(17) },
      images: images.map(() => ({ discreteIds: [0, 0], keptPatches: [0] })),
    }),
    scorePrepared: async (prepared: { key: string }, candidates: string[]): Promise<CandidateScore[]> => {
      const f = favoured.get(prepared.key);
      if (f === undefined)
        throw new Error('scriptedModel: asked to score an example the test did not script');
      asked.push([...candidates]);
      return candidates.map((_, i) =>
        i === f
          ? { logLikelihood: -3, tokens: 3, meanLogLikelihood: -1 }
          : { logLikelihood: -2, tokens: 1, meanLogLikelihood: -2 },
      );
    },
  };
  return { model: model as unknown as MavenModel, asked };
}

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
    const model = answerWordsModel();
    const r = await evaluateNlvr(model, 'test', { limit: 2, orders: [0, 5] });
    assert.equal(r.predictions.length, 4);
    // Each margin again, without the evaluation's encode-once cache: the model scores the
    // prompt and the three boxes of that very order, as a user's request would.
    const { examples } = await loadNlvr('test');
    const expected: {
      identifier: string;
      order: number;
      label: boolean;
      margin: number;
      predicted: boolean;
    }[] = [];
    for (const ex of examples.slice(0, 2)) {
      for (const order of [0, 5]) {
        const boxes = await loadNlvrImages(ex, order);
        const images = model.preprocessRgb(
          boxes.map((b) => ({ width: b.width, height: b.height, rgb: b.data })),
        );
        const [t, f] = await model.score(nlvrPrompt(ex.sentence), images, ['true', 'false']);
        const margin = t.logLikelihood - f.logLikelihood;
        expected.push({ identifier: ex.identifier, order, label: ex.label, margin, predicted: margin > 0 });
      }
    }
    assert.deepEqual(
      r.predictions.map((p) => [p.identifier, p.order, p.label, p.predicted]),
      expected.map((e) => [e.identifier, e.order, e.label, e.predicted]),
    );
    for (const [i, p] of r.predictions.entries()) {
      const want = expected[i].margin;
      assert.ok(Math.abs(p.margin - want) < 1e-5, `margin ${i}: ${p.margin} vs ${want}`);
    }
    assert.equal(r.accuracy, expected.filter((e) => e.predicted === e.label).length / 4);
    assert.equal(r.trueRate, expected.filter((e) => e.predicted).length / 4);
  });
});

describe('generated task evaluation', () => {
  it('scores every option and reports accuracy and chance per task', async () => {
    const model = answerWordsModel();
    const tasks = ['nlvr-statement', 'motion-direction'] as const;
    const { accuracies, predictions } = await evaluateTasks(model, tasks, { perTask: 3 });
    assert.equal(predictions.length, 6);
    assert.deepEqual(
      accuracies.map((a) => a.category),
      ['multi-image-reasoning', 'action-recognition'],
    );
    assert.ok(Math.abs(accuracies[0].chance - 0.5) < 1e-9);
    assert.ok(Math.abs(accuracies[1].chance - 0.25) < 1e-9);
    // Each example's option scores again, straight from the model, and the prediction and
    // accuracy that follow from them.
    let k = 0;
    for (const [t, task] of tasks.entries()) {
      let correct = 0;
      for (let i = 0; i < 3; i++, k++) {
        const ex = generateExample(task, 'heldout', i);
        const scores = (
          await model.score(
            ex.prompt,
            model.preprocessRgb(ex.images),
            ex.options!.map((o) => ` ${o}`),
          )
        ).map((s) => s.meanLogLikelihood);
        const best = scores.indexOf(Math.max(...scores));
        const p = predictions[k];
        assert.deepEqual([p.task, p.index, p.answerIndex], [task, i, ex.answerIndex]);
        assert.equal(p.scores!.length, scores.length);
        for (const [j, s] of p.scores!.entries()) {
          assert.ok(Math.abs(s - scores[j]) < 1e-5, `${task} ${i} option ${j}: ${s} vs ${scores[j]}`);
        }
        assert.equal(p.predicted, best, `${task} ${i}: scores ${scores.join(', ')}`);
        if (best === ex.answerIndex) correct++;
      }
      assert.equal(accuracies[t].accuracy, correct / 3, task);
    }
  });

  it('predicts the best-scoring option and counts exact accuracy, per normalisation (scripted model)', async () => {
    const perTask = 4;
    // Which example gets its right answer favoured: nlvr-statement 0, 1, 2 (3 of 4); motion-direction 1 (1 of 4).
    const rightOn = { 'nlvr-statement': [0, 1, 2], 'motion-direction': [1] } as const;
    const tasks = Object.keys(rightOn) as (keyof typeof rightOn)[];
    const favoured = new Map<string, number>();
    const expected = tasks.flatMap((task) =>
      Array.from({ length: perTask }, (_, i) => {
        const ex = generateExample(task, 'heldout', i);
        const n = ex.options!.length;
        const answer = ex.answerIndex!;
        const fav = (rightOn[task] as readonly number[]).includes(i) ? answer : (answer + 1) % n;
        favoured.set(exampleKey(ex.prompt, ex.images), fav);
        return { task, i, n, answer, fav, bySum: fav === 0 ? 1 : 0, options: ex.options! };
      }),
    );
    assert.equal(favoured.size, tasks.length * perTask, 'every example is told apart by its key');

    const { model, asked } = scriptedModel(favoured);
    const mean = await evaluateTasks(model, tasks, { perTask });
    assert.deepEqual(
      asked,
      expected.map((e) => e.options.map((o) => ` ${o}`)),
    );
    assert.deepEqual(
      mean.predictions.map((p) => [p.task, p.index, p.answerIndex, p.predicted]),
      expected.map((e) => [e.task, e.i, e.answer, e.fav]),
    );
    assert.deepEqual(
      mean.predictions.map((p) => p.scores),
      expected.map((e) => Array.from({ length: e.n }, (_, k) => (k === e.fav ? -1 : -2))),
    );
    assert.ok(mean.predictions.every((p) => p.promptTokens === 17 && p.visualTokens === 3));
    assert.deepEqual(
      mean.accuracies.map((a) => [a.task, a.category, a.examples, a.accuracy, a.chance]),
      [
        ['nlvr-statement', 'multi-image-reasoning', 4, 3 / 4, 1 / 2],
        ['motion-direction', 'action-recognition', 4, 1 / 4, 1 / 4],
      ],
    );

    // Summed log-likelihood: the favoured option (−3) loses to the first other one (−2).
    const sum = await evaluateTasks(scriptedModel(favoured).model, tasks, { perTask, normalization: 'sum' });
    assert.deepEqual(
      sum.predictions.map((p) => p.predicted),
      expected.map((e) => e.bySum),
    );
    assert.deepEqual(
      sum.predictions.map((p) => p.scores),
      expected.map((e) => Array.from({ length: e.n }, (_, k) => (k === e.fav ? -3 : -2))),
    );
    const sumAccuracy = (task: string) =>
      expected.filter((e) => e.task === task && e.bySum === e.answer).length / perTask;
    assert.deepEqual(
      sum.accuracies.map((a) => a.accuracy),
      tasks.map(sumAccuracy),
    );
  });
});
