/**
 * The perception benchmark: the ridge probe against a reference solution and on data whose answer
 * is known (separable → every test point right; random labels → chance), the helpers that score
 * captions and route questions, and the whole bench on a small random model (every row there,
 * counts, expected answers from the generators, bookkeeping consistent with the predictions).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataSkipReason } from '../../src/data/data-dir.ts';
import { COLOR_WORD } from '../../src/data/scene/words.ts';
import { FASHION_NOUNS } from '../../src/data/tasks/fashion.ts';
import { generateExample } from '../../src/data/tasks/registry.ts';
import { captionPair } from '../../src/data/tasks/stage-datasets.ts';
import type { ImageSource } from '../../src/data/tasks/task.ts';
import { type BenchResult, loadFashionTest, runBenchmark } from '../../src/eval/benchmarks.ts';
import { rougeL } from '../../src/eval/metrics.ts';
import {
  askedValue,
  attributeRecall,
  colourShapePairs,
  comparedImages,
  loadFashionTrain,
  majorityShare,
  namedFashionClasses,
  PERCEPTION_BOX_TASKS,
  pairPrecision,
  perceptionComparison,
  probeFeatures,
} from '../../src/eval/perception.ts';
import {
  accuracyOf,
  fitRidgeClassifier,
  fitStandardizer,
  idsFromOneHot,
  LAMBDA_FACTORS,
  type Matrix,
  matrix,
  meanPool,
  oneHotIds,
  predictRidge,
  trainRidgeProbe,
} from '../../src/eval/ridge-probe.ts';
import { mostCommon } from '../../src/eval/statistics.ts';
import { ENCODING_MODES } from '../../src/maven/sequence.ts';
import { uniformSource } from '../../src/models/init.ts';
import { smallModel } from '../maven/small-model.ts';

/**
 * n rows of d features, class i mod classes: feature j is 4 when j mod classes is the class, else
 * 0, plus uniform noise in [−0.5, 0.5] (every feature carries signal, so standardising the
 * features does not blow noise up).
 */
function separable(n: number, d: number, classes: number, seed: number): { x: Matrix; labels: number[] } {
  const rand = uniformSource(seed);
  const labels = Array.from({ length: n }, (_, i) => i % classes);
  const x = matrix(n, d);
  labels.forEach((c, i) => {
    for (let j = 0; j < d; j++) x.data[i * d + j] = (j % classes === c ? 4 : 0) + rand() - 0.5;
  });
  return { x, labels };
}

/** Reference ridge weights by plain Gaussian elimination on (ZᵀZ + λI)W = ZᵀY, written from the formula. */
function referenceWeights(x: Matrix, labels: number[], classes: number, lambdaFactor: number): number[][] {
  const n = x.rows;
  const d = x.cols;
  const at = (i: number, j: number) => x.data[i * d + j];
  const mu = Array.from({ length: d }, (_, j) => labels.reduce((s, _l, i) => s + at(i, j), 0) / n);
  const sd = Array.from({ length: d }, (_, j) =>
    Math.sqrt(labels.reduce((s, _l, i) => s + (at(i, j) - mu[j]) ** 2, 0) / n),
  );
  const z = labels.map((_, i) => mu.map((m, j) => (at(i, j) - m) / sd[j]));
  const share = Array.from({ length: classes }, (_, c) => labels.filter((l) => l === c).length / n);
  const y = labels.map((l) => share.map((s, c) => (l === c ? 1 : 0) - s));
  const a = mu.map((_, i) =>
    mu.map((_, j) => z.reduce((s, r) => s + r[i] * r[j], 0) + (i === j ? lambdaFactor * n : 0)),
  );
  const b = mu.map((_, i) => share.map((_, c) => z.reduce((s, r, k) => s + r[i] * y[k][c], 0)));
  for (let i = 0; i < d; i++)
    for (let k = i + 1; k < d; k++) {
      const f = a[k][i] / a[i][i];
      for (let j = 0; j < d; j++) a[k][j] -= f * a[i][j];
      for (let c = 0; c < classes; c++) b[k][c] -= f * b[i][c];
    }
  const w = mu.map(() => new Array<number>(classes).fill(0));
  for (let i = d - 1; i >= 0; i--)
    for (let c = 0; c < classes; c++) {
      let s = b[i][c];
      for (let j = i + 1; j < d; j++) s -= a[i][j] * w[j][c];
      w[i][c] = s / a[i][i];
    }
  return w;
}

describe('ridge probe', () => {
  it('matches the normal equations, in both the primal (rows ≥ columns) and dual (columns > rows) form', () => {
    for (const [n, d] of [
      [30, 5],
      [6, 11],
    ]) {
      const rand = uniformSource(n);
      const x = matrix(
        n,
        d,
        Float64Array.from({ length: n * d }, () => 3 * rand() + 1),
      );
      const labels = Array.from({ length: n }, (_, i) => i % 3);
      const fitted = fitRidgeClassifier(x, labels, 3, 0.05);
      const reference = referenceWeights(x, labels, 3, 0.05);
      let worst = 0;
      for (let i = 0; i < d; i++)
        for (let c = 0; c < 3; c++)
          worst = Math.max(worst, Math.abs(reference[i][c] - fitted.weights[i * 3 + c]));
      assert.ok(worst < 1e-9, `${n}×${d}: largest weight difference ${worst}`);
      // Intercept: each class's share of the rows (the targets are centred, the features too).
      for (const c of [0, 1, 2])
        assert.ok(Math.abs(fitted.intercept[c] - labels.filter((l) => l === c).length / n) < 1e-12);
    }
  });

  it('gets every test point of separable classes right, with λ picked on the training tail', () => {
    for (const d of [6, 40]) {
      const train = separable(30, d, 3, 1);
      const test = separable(60, d, 3, 2);
      const probe = trainRidgeProbe(train.x, train.labels, 3);
      assert.equal(accuracyOf(predictRidge(probe.classifier, test.x), test.labels), 1, `d = ${d}`);
      // Every candidate separates the validation rows, and ties go to the strongest penalty.
      assert.deepEqual(
        probe.validation.map((v) => v.accuracy),
        LAMBDA_FACTORS.map(() => 1),
      );
      assert.equal(probe.lambdaFactor, Math.max(...LAMBDA_FACTORS));
      assert.equal(probe.classifier.lambda, Math.max(...LAMBDA_FACTORS) * 30);
    }
  });

  it('scores chance on random labels (nothing leaks from the test labels)', () => {
    const rand = uniformSource(7);
    const features = (n: number) =>
      matrix(
        n,
        20,
        Float64Array.from({ length: n * 20 }, () => rand()),
      );
    const label = () => Math.floor(rand() * 4);
    const trainX = features(600);
    const trainLabels = Array.from({ length: 600 }, label);
    const testX = features(2000);
    const testLabels = Array.from({ length: 2000 }, label);
    const probe = trainRidgeProbe(trainX, trainLabels, 4);
    const accuracy = accuracyOf(predictRidge(probe.classifier, testX), testLabels);
    // 2000 test points: one standard error is 1 point; 4 are allowed.
    assert.ok(Math.abs(accuracy - 0.25) < 0.04, `accuracy ${accuracy}`);
    // On its own training rows it does better than chance (it fits noise, a little).
    assert.ok(accuracyOf(predictRidge(probe.classifier, trainX), trainLabels) > 0.25);
  });

  it('drops constant columns and standardises the others', () => {
    const x = matrix(4, 3, Float64Array.from([1, 5, 0, 2, 5, 0, 3, 5, 1, 4, 5, 1]));
    const s = fitStandardizer(x);
    assert.deepEqual([...s.columns], [0, 2]);
    assert.deepEqual([...s.mean], [2.5, 0.5]);
    assert.deepEqual([...s.inverseStd], [1 / Math.sqrt(1.25), 2]);
  });

  it('one-hot ids round-trip, one column per (position, code)', () => {
    const ids = [
      [3, 0, 7],
      [1, 1, 1],
      [7, 6, 0],
    ];
    const x = oneHotIds(ids, 8);
    assert.equal(x.cols, 24);
    assert.deepEqual(idsFromOneHot(x, 8), ids);
    // Row 0: position 0 code 3 → column 3; position 1 code 0 → 8; position 2 code 7 → 23.
    const hot = [...x.data.subarray(0, 24)].flatMap((v, c) => (v === 1 ? [c] : []));
    assert.deepEqual(hot, [3, 8, 23]);
    assert.throws(() => oneHotIds([[8]], 8), /outside 0..7/);
  });

  it('mean-pools tokens per item', () => {
    // 2 items × 3 tokens × 2 dims.
    const pooled = meanPool([1, 2, 3, 4, 5, 6, 0, 0, 0, 3, 9, 0], 2, 3, 2);
    assert.deepEqual([...pooled.data], [3, 4, 3, 1]);
  });
});

describe('perception scoring helpers', () => {
  it('finds fashion class names as whole words, the longest first', () => {
    assert.deepEqual(namedFashionClasses('A photo of a T-shirt or top.'), [0]);
    assert.deepEqual(namedFashionClasses('a grayscale product photo of a shirt'), [6]);
    assert.deepEqual(namedFashionClasses('A PAIR OF TROUSERS and an ankle boot'), [1, 9]);
    assert.deepEqual(namedFashionClasses('sneakers, a bag'), [8]);
    assert.deepEqual(namedFashionClasses('true'), []);
    assert.equal(FASHION_NOUNS.length, 10);
  });

  it('attribute recall: the reference colour and shape words, plural or not, found in the caption', () => {
    const reference = 'There are two yellow circles and a black block.';
    assert.equal(attributeRecall('a yellow circle', reference), 2 / 4);
    assert.equal(attributeRecall('There are yellow circles and black blocks.', reference), 1);
    assert.equal(attributeRecall('a black square', reference), 1 / 4);
    assert.equal(attributeRecall('anything', 'An empty box.'), null);
  });

  it('pair precision: the colour–shape pairs a caption names that the box has (binding, not words)', () => {
    const box = [
      { x_loc: 0, y_loc: 0, size: 10, color: 'Black', type: 'circle' },
      { x_loc: 40, y_loc: 40, size: 20, color: '#0099ff', type: 'square' },
    ] as const;
    assert.deepEqual(colourShapePairs('There is a small black circle and two large blue squares.'), [
      'black circle',
      'blue square',
    ]);
    assert.deepEqual(colourShapePairs('a single yellow block; blocks: blue at the bottom'), [
      'yellow square',
    ]);
    assert.equal(pairPrecision('a black circle and a blue square', box), 1);
    // Every attribute word right, both pairs swapped: recall 1, precision 0.
    assert.equal(attributeRecall('a blue circle and a black square', 'a black circle and a blue square'), 1);
    assert.equal(pairPrecision('a blue circle and a black square', box), 0);
    assert.equal(pairPrecision('a black circle and a yellow triangle', box), 1 / 2);
    assert.equal(pairPrecision('there is something', box), null);
  });

  it('routes box questions by the shape or colour they ask about, as the generator meant', () => {
    for (let i = 0; i < 20; i++) {
      const colorQuestion = generateExample('box-color', 'train', i);
      assert.equal(
        askedValue(colorQuestion),
        String(colorQuestion.meta.rule).replace('color of the only ', ''),
      );
      const shape = generateExample('box-shape', 'train', i);
      const color = String(shape.meta.rule).match(/only (\S+) object/)![1] as keyof typeof COLOR_WORD;
      assert.equal(askedValue(shape), COLOR_WORD[color]);
      assert.equal(askedValue(generateExample('box-count', 'train', i)), 'all');
    }
  });

  it('reads which photos a fashion-same question compares (its answer follows from their labels)', () => {
    const fake: ImageSource = { count: 40, image: (i) => new Uint8Array(784).fill(i), label: (i) => i % 4 };
    for (let i = 0; i < 10; i++) {
      const ex = generateExample('fashion-same', 'heldout', i, { fashion: fake });
      const [a, b] = comparedImages(ex.prompt);
      const labels = ex.meta.sourceLabels!;
      assert.equal(ex.answer, labels[a] === labels[b] ? 'yes' : 'no');
    }
  });

  it('chance is the majority share of the expected answers', () => {
    assert.equal(majorityShare(['a', 'b', 'a', 'c']), 0.5);
    assert.equal(majorityShare([]), 0);
  });
});

/** Checks that hold for any perception result: bookkeeping follows from the predictions. */
function checkBookkeeping(r: BenchResult): void {
  for (const row of r.rows.filter((x) => x.metric === 'accuracy')) {
    const ps = r.predictions.filter((p) => p.task === row.task);
    assert.equal(ps.length, row.examples, row.task);
    assert.equal(row.value, ps.filter((p) => p.correct).length / ps.length, row.task);
    assert.deepEqual(row.commonAnswer, mostCommon(ps.map((p) => p.predicted)), row.task);
    assert.equal(row.chance, majorityShare(ps.map((p) => p.expected)), row.task);
    if (!row.task.startsWith('fashion-caption'))
      for (const p of ps) assert.equal(p.correct, p.predicted === p.expected, `${row.task} ${p.id}`);
  }
  const hybrid = r.rows.filter((x) => x.metric === 'accuracy' && x.task.endsWith('(hybrid)'));
  assert.ok(Math.abs(r.headline.value - hybrid.reduce((s, x) => s + x.value, 0) / hybrid.length) < 1e-12);
}

describe('perception bench on a small random model', () => {
  const model = smallModel();
  const sizes = { limit: 2, probeBoxExamples: 8 };
  const modes = ENCODING_MODES;

  it('without Fashion-MNIST: every box row in every mode, the probes and codebook usage; says why photos are missing', async () => {
    const r = await runBenchmark(model, 'perception', { ...sizes, dataDir: '/nonexistent/maven-data' });
    const expectedRows = [
      ...PERCEPTION_BOX_TASKS.flatMap((task) =>
        [...modes, 'probe:vit', 'probe:ids'].map((v) => `accuracy ${task} (${v})`),
      ),
      ...modes.map((m) => `rouge-l box-caption (${m})`),
      ...modes.map((m) => `attribute-recall box-caption (${m})`),
      'codebook-usage codebook-usage (boxes)',
    ];
    // Pair precision is over the captions that name a colour–shape pair, which a random model may not.
    const pairRows = r.rows.filter((row) => row.metric === 'pair-precision');
    for (const row of pairRows) assert.ok(row.examples >= 1 && row.examples <= 2, row.task);
    assert.deepEqual(
      r.rows.filter((row) => row.metric !== 'pair-precision').map((row) => `${row.metric} ${row.task}`),
      expectedRows,
    );
    assert.match(
      r.protocol,
      /Fashion-MNIST rows skipped: data folder \/nonexistent\/maven-data .*does not exist/,
    );
    for (const row of r.rows.filter((x) => x.metric !== 'pair-precision'))
      assert.equal(row.examples, row.metric === 'codebook-usage' ? 4 * 2 : 2, row.task);
    // Expected answers are the generators'.
    for (const task of PERCEPTION_BOX_TASKS)
      for (const v of [...modes, 'probe:vit', 'probe:ids']) {
        const ps = r.predictions.filter((p) => p.task === `${task} (${v})`);
        assert.deepEqual(
          ps.map((p) => p.expected),
          [0, 1].map((i) => generateExample(task, 'heldout', i).answer),
          `${task} ${v}`,
        );
      }
    for (const m of modes) {
      const ps = r.predictions.filter((p) => p.task === `box-caption (${m})`);
      ps.forEach((p, i) => {
        const reference = captionPair(i, { split: 'heldout' }).caption;
        assert.equal(p.expected, reference);
        assert.equal(p.rougeL, rougeL(p.predicted, reference).f);
        assert.equal(p.attributeRecall, attributeRecall(p.predicted, reference) ?? undefined);
      });
      // Each mode shows the LLM its own visual tokens: small model, 4 ids, 4 of 16 patches kept.
      const visual = r.predictions.filter((p) => p.task === `box-color (${m})`).map((p) => p.visualTokens);
      assert.deepEqual(visual, { hybrid: [8, 8], 'discrete-only': [4, 4], 'continuous-only': [16, 16] }[m]);
    }
    checkBookkeeping(r);
    // Codebook usage: distinct codes of the held-out box images, as encodeImages gives them.
    const images = PERCEPTION_BOX_TASKS.flatMap((task) =>
      [0, 1].map((i) => generateExample(task, 'heldout', i).images[0]),
    );
    const encoded = await model.encodeImages(model.preprocessRgb(images), { mode: 'discrete-only' });
    const distinct = new Set(encoded.flatMap((e) => e.discreteIds)).size;
    assert.equal(r.rows.at(-1)!.value, distinct / model.config.seed.codebookSize);
  });

  it('probe features are the mean over all patches of the features MaVEn reads, and its ids', async () => {
    const images = [0, 1, 2].map((i) => generateExample('box-count', 'heldout', i).images[0]);
    const f = await probeFeatures(model, images);
    const batch = model.preprocessRgb(images);
    const continuous = await model.encodeImages(batch, { mode: 'continuous-only' });
    const discrete = await model.encodeImages(batch, { mode: 'discrete-only' });
    const dim = model.config.vision.hiddenSize;
    continuous.forEach((e, i) => {
      const [n] = e.features!.shape;
      assert.equal(n, 16);
      const pooled = meanPool(e.features!.data as Float32Array, 1, n, dim).data;
      for (let c = 0; c < dim; c++) assert.ok(Math.abs(pooled[c] - f.vit.data[i * dim + c]) < 1e-5);
      assert.deepEqual(f.ids[i], discrete[i].discreteIds);
    });
  });

  const fashionFiles = [
    'fashion-mnist/t10k-images-idx3-ubyte.gz',
    'fashion-mnist/t10k-labels-idx1-ubyte.gz',
    'fashion-mnist/train-images-idx3-ubyte.gz',
    'fashion-mnist/train-labels-idx1-ubyte.gz',
  ];
  it('with Fashion-MNIST: the photo rows in every mode beside their probes', {
    skip: dataSkipReason(fashionFiles),
  }, async () => {
    const fashion = await loadFashionTest();
    const fashionTrain = await loadFashionTrain();
    const r = await runBenchmark(model, 'perception', {
      ...sizes,
      photos: 3,
      probePhotos: 12,
      fashion,
      fashionTrain,
    });
    const tasks = r.rows.map((row) => row.task);
    const variants = [...modes, 'probe:vit', 'probe:ids'];
    assert.deepEqual(tasks.slice(0, 11), [
      ...modes.map((m) => `fashion-class/caption (${m})`),
      ...modes.map((m) => `fashion-class/question (${m})`),
      'fashion-class (probe:vit)',
      'fashion-class (probe:ids)',
      ...modes.map((m) => `fashion-caption (${m})`),
    ]);
    assert.deepEqual(
      tasks.filter((t) => t.startsWith('fashion-same')),
      variants.map((v) => `fashion-same (${v})`),
    );
    assert.deepEqual(tasks.slice(-2), ['codebook-usage (boxes)', 'codebook-usage (photos)']);
    const photos = [0, 1, 2].map((i) => generateExample('fashion-class', 'heldout', i, { fashion }));
    for (const task of tasks.slice(0, 11)) {
      const ps = r.predictions.filter((p) => p.task === task);
      assert.deepEqual(
        ps.map((p) => p.expected),
        photos.map((ex) => ex.answer),
        task,
      );
    }
    for (const m of modes) {
      r.predictions
        .filter((x) => x.task === `fashion-caption (${m})`)
        .forEach((p, i) => {
          const named = namedFashionClasses(p.generated!);
          assert.equal(p.correct, named.length === 1 && named[0] === photos[i].answerIndex);
        });
    }
    const same = [0, 1].map((i) => generateExample('fashion-same', 'heldout', i, { fashion }).answer);
    for (const v of variants)
      assert.deepEqual(
        r.predictions.filter((p) => p.task === `fashion-same (${v})`).map((p) => p.expected),
        same,
      );
    checkBookkeeping(r);
    assert.doesNotMatch(r.protocol, /skipped/);
  });

  it('sets results side by side by row', () => {
    const rows = [
      {
        category: 'c',
        task: 'box-color (hybrid)',
        metric: 'accuracy' as const,
        examples: 10,
        value: 0.5,
        chance: 0.4,
      },
      { category: 'c', task: 'box-caption (hybrid)', metric: 'rouge-l' as const, examples: 10, value: 0.25 },
    ];
    const table = perceptionComparison([
      { label: 'after stage 3', rows },
      { label: 'after stage 4', rows: [{ ...rows[0], value: 0.2 }] },
    ]);
    assert.deepEqual(table.split('\n').slice(2), [
      '| box-color (hybrid)   | accuracy |  10 |        50.0 % |        20.0 % | 40.0 % |',
      '| box-caption (hybrid) | rouge-l  |  10 |         0.250 |             – |        |',
    ]);
  });
});
