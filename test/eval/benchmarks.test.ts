/**
 * The benchmark harness: its bookkeeping against a stand-in model whose answers follow a known
 * rule (so the expected scores follow from the examples alone), then on a real small random model
 * (every bench runs, results are deterministic, bad input fails clearly).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataSkipReason } from '../../src/data/data-dir.ts';
import { generateExample } from '../../src/data/tasks/registry.ts';
import { captionPair } from '../../src/data/tasks/stage-datasets.ts';
import type { ImageSource } from '../../src/data/tasks/task.ts';
import { HostTensor } from '../../src/engine/index.ts';
import {
  type BenchName,
  CAPTION_TASK,
  DEMON_CHOICE_TASKS,
  FASHION_TASKS,
  optionForms,
  runBenchmark,
  SEED_TASKS,
} from '../../src/eval/benchmarks.ts';
import { rougeL } from '../../src/eval/metrics.ts';
import type { MavenModel } from '../../src/maven/model.ts';
import { smallModel } from '../maven/small-model.ts';

/**
 * A stand-in with the methods the harness calls. Likelihood: option i scores −(i + 1) over
 * (i + 1)² tokens, so the summed score prefers the first option and the mean the last.
 * Generation: the first lettered option (its text, or "A" for an image option) if the prompt
 * lists options, else "true".
 * Every image "has" 3 discrete ids and 2 kept patches.
 */
function standIn(): MavenModel {
  const prepared = (prompt: string, count: number) => ({
    sequence: { slots: Array.from({ length: prompt.length }, () => ({ kind: 'token', id: 0 })) },
    images: Array.from({ length: count }, () => ({
      discreteIds: [1, 2, 3],
      keptPatches: [0, 5],
      totalPatches: 16,
    })),
    embeds: HostTensor.zeros('float32', [1, 1, 1]),
  });
  const fake = {
    preprocessRgb: (images: unknown[]) => ({ pixels: { shape: [images.length] } }),
    prepare: async (prompt: string, images: { pixels: { shape: number[] } }) =>
      prepared(prompt, images.pixels.shape[0]),
    scorePrepared: async (_p: unknown, candidates: string[]) =>
      candidates.map((_, i) => ({
        logLikelihood: -(i + 1),
        tokens: (i + 1) ** 2,
        meanLogLikelihood: -(i + 1) / (i + 1) ** 2,
      })),
    generate: async (prompt: string, images: { pixels: { shape: number[] } }) => {
      const listed = prompt.match(/^A\. (.*)$/m);
      // Image options ("A. <image>") are named by their letter.
      const text = listed ? (listed[1] === '<image>' ? 'A' : listed[1]) : 'true';
      return { text, prepared: prepared(prompt, images.pixels.shape[0]) };
    },
  };
  return fake as unknown as MavenModel;
}

/** A fake Fashion-MNIST: 50 blank-ish 28×28 images, 5 per class. */
const fashion: ImageSource = {
  count: 50,
  image: (i) => new Uint8Array(28 * 28).fill(i),
  label: (i) => i % 10,
  name: 'fake-fashion',
};

describe('benchmark harness bookkeeping', () => {
  it('seed-mc: picks by summed or mean log-likelihood as asked, accuracy per task', async () => {
    const limit = 6;
    for (const normalization of ['sum', 'mean'] as const) {
      const r = await runBenchmark(standIn(), 'seed-mc', { limit, normalization });
      assert.deepEqual(
        r.rows.map((row) => row.task),
        [...SEED_TASKS],
      );
      SEED_TASKS.forEach((task, t) => {
        const examples = Array.from({ length: limit }, (_, i) => generateExample(task, 'heldout', i));
        const chosen = (n: number) => (normalization === 'sum' ? 0 : n - 1);
        const expected =
          examples.filter((ex) => ex.answerIndex === chosen(ex.options!.length)).length / limit;
        assert.equal(r.rows[t].value, expected, `${task} ${normalization}`);
        assert.equal(r.rows[t].examples, limit);
        assert.ok(Math.abs(r.rows[t].chance! - 1 / examples[0].options!.length) < 1e-9);
      });
      assert.equal(r.predictions.length, SEED_TASKS.length * limit);
      assert.equal(r.visualTokensPerImage, 5);
      assert.ok(Math.abs(r.headline.value - (r.rows[0].value + r.rows[1].value) / 2) < 1e-12);
      for (const p of r.predictions) assert.equal(p.scores?.length, 4);
    }
  });

  it('demon: matches generated text to the closest option, and scores captions by ROUGE-L', async () => {
    const limit = 5;
    const r = await runBenchmark(standIn(), 'demon', { limit });
    assert.deepEqual(
      r.rows.map((row) => row.task),
      [...DEMON_CHOICE_TASKS, CAPTION_TASK],
    );
    DEMON_CHOICE_TASKS.forEach((task, t) => {
      const examples = Array.from({ length: limit }, (_, i) => generateExample(task, 'heldout', i));
      // The stand-in means option A whenever options are listed, else says "true".
      const expected =
        examples.filter((ex) => (/^A\. /m.test(ex.prompt) ? ex.answerIndex === 0 : ex.answer === 'true'))
          .length / limit;
      assert.equal(r.rows[t].value, expected, task);
    });
    const captions = r.predictions.filter((p) => p.task === CAPTION_TASK);
    assert.equal(captions.length, limit);
    captions.forEach((p, i) => {
      const reference = captionPair(i, { split: 'heldout' }).caption;
      assert.equal(p.expected, reference);
      assert.equal(p.rougeL, rougeL('true', reference).f);
    });
    assert.equal(r.headline.metric, 'accuracy');
  });

  it('fashion: runs the three photo tasks on the given source', async () => {
    const r = await runBenchmark(standIn(), 'fashion', { limit: 3, fashion, normalization: 'sum' });
    assert.deepEqual(
      r.rows.map((row) => row.task),
      [...FASHION_TASKS],
    );
    FASHION_TASKS.forEach((task, t) => {
      const examples = Array.from({ length: 3 }, (_, i) => generateExample(task, 'heldout', i, { fashion }));
      assert.equal(r.rows[t].value, examples.filter((ex) => ex.answerIndex === 0).length / 3, task);
    });
  });

  it('names both forms of a lettered option', () => {
    const ex = generateExample('what-changed', 'heldout', 0);
    const forms = optionForms(ex);
    assert.deepEqual(forms[0], ['A', ex.options![0]]);
    assert.deepEqual(optionForms(generateExample('motion-direction', 'heldout', 0))[1], ['right']);
  });

  it('rejects unknown benchmarks and bad limits', async () => {
    await assert.rejects(
      runBenchmark(standIn(), 'mmlu' as BenchName),
      /unknown benchmark "mmlu" \(known: nlvr-test/,
    );
    await assert.rejects(
      runBenchmark(standIn(), 'seed-mc', { limit: 0 }),
      /limit must be a positive integer, got 0/,
    );
  });
});

describe('benchmarks on a small random model', () => {
  const model = smallModel();

  it('are deterministic: a rerun gives the same predictions', async () => {
    for (const bench of ['seed-mc', 'demon'] as const) {
      const a = await runBenchmark(model, bench, { limit: 2 });
      const b = await runBenchmark(model, bench, { limit: 2 });
      assert.deepEqual(a.predictions, b.predictions, bench);
      assert.deepEqual(a.rows, b.rows, bench);
    }
  });

  it('report the visual tokens the encoding actually used', async () => {
    const hybrid = await runBenchmark(model, 'seed-mc', { limit: 1 });
    const discrete = await runBenchmark(model, 'seed-mc', { limit: 1, mode: 'discrete-only' });
    const all = await runBenchmark(model, 'seed-mc', { limit: 1, keepRatio: 1 });
    // Small model: 4 discrete ids, a 4×4 grid; ρ = 0.25 keeps 4 patches, ρ = 1 all 16.
    assert.equal(hybrid.visualTokensPerImage, 8);
    assert.equal(discrete.visualTokensPerImage, 4);
    assert.equal(all.visualTokensPerImage, 20);
    assert.ok(all.promptTokens > hybrid.promptTokens);
  });

  it('runs NLVR with accuracy and consistency rows', {
    skip: dataSkipReason('nlvr/test/test.json'),
  }, async () => {
    const r = await runBenchmark(model, 'nlvr-test', { limit: 1 });
    assert.equal(r.predictions.length, 6);
    assert.deepEqual(
      r.rows.map((row) => row.metric),
      ['accuracy', 'consistency'],
    );
    assert.deepEqual(
      r.predictions.map((p) => p.id.split('/')[1]),
      ['0', '1', '2', '3', '4', '5'],
    );
  });
});
