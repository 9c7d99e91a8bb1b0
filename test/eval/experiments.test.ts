/**
 * The experiment machinery: variants, charts, tables, the codebook and coverage studies on
 * hand-made inputs, the verdict rules, and one end-to-end run at toy sizes on a small random model.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BenchResult } from '../../src/eval/benchmarks.ts';
import { experimentVariants, runExperiments, variantKey } from '../../src/eval/experiments.ts';
import { boxAttributes, codeMeanings, heldoutBoxes, objectPatches } from '../../src/eval/figures.ts';
import { barChartSvg, linePlotSvg, svgToPng } from '../../src/eval/plots.ts';
import { EvalProgress } from '../../src/eval/progress.ts';
import { markdownTable, pct } from '../../src/eval/report.ts';
import {
  columnsFor,
  compare,
  costSentence,
  differenceNoise,
  emptyCaptionNote,
  isConstant,
  resultsDoc,
} from '../../src/eval/results-doc.ts';
import { mostCommon } from '../../src/eval/statistics.ts';
import type { EncodingMode } from '../../src/maven/sequence.ts';
import { smallModel } from '../maven/small-model.ts';

describe('experiment variants', () => {
  it('runs each distinct setting once: 5 ratios + 3 other selections + 2 other modes', () => {
    const v = experimentVariants(0.25);
    assert.equal(v.length, 10);
    assert.equal(new Set(v.map((x) => x.key)).size, 10);
    assert.deepEqual(
      v.filter((x) => x.mode === 'hybrid' && x.selection === 'selector').map((x) => x.keepRatio),
      [0.1, 0.25, 0.5, 0.75, 1],
    );
    assert.ok(v.some((x) => x.key === 'continuous-only'));
  });
});

describe('charts and tables', () => {
  it('draws a marker per finite point and a legend entry per series', () => {
    const svg = linePlotSvg(
      [
        {
          name: 'NLVR',
          points: [
            [10, 0.5],
            [20, 0.6],
            [30, Number.NaN],
          ],
          labels: ['a', 'b', 'c'],
        },
        {
          name: 'chance',
          points: [
            [10, 0.5],
            [30, 0.5],
          ],
          reference: true,
        },
      ],
      { title: 'T', xLabel: 'x', yLabel: 'y', yRange: [0, 1] },
    );
    assert.equal((svg.match(/<circle /g) ?? []).length, 2);
    assert.match(svg, />NLVR</);
    assert.match(svg, /chance \(dashed\)/);
    assert.match(svg, /stroke-dasharray/);
  });

  it('draws one bar per finite value and checks group sizes', async () => {
    const svg = barChartSvg(
      ['a', 'b'],
      [
        { label: 'g1', values: [0.2, 0.4] },
        { label: 'g2', values: [Number.NaN, 0.9] },
      ],
      { title: 'T', yLabel: 'y', yRange: [0, 1] },
    );
    assert.equal((svg.match(/<rect class="bar"/g) ?? []).length, 3);
    assert.throws(
      () => barChartSvg(['a'], [{ label: 'g', values: [1, 2] }], { title: 'T', yLabel: 'y' }),
      /group "g" has 2 values for 1 series/,
    );
    const png = await svgToPng(svg);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  });

  it('formats Markdown tables with numeric columns right-aligned', () => {
    const t = markdownTable(
      ['name', 'acc'],
      [
        ['x', pct(0.5)],
        ['longer', pct(0.125)],
      ],
    );
    assert.equal(
      t,
      ['| name   |    acc |', '|--------|-------:|', '| x      | 50.0 % |', '| longer | 12.5 % |'].join('\n'),
    );
    assert.throws(() => markdownTable(['a'], [['1', '2']]), /row 0 has 2 cells, the header 1/);
  });

  it('prints progress as lines (the first question, then every tenth) when not on a terminal', () => {
    const out: string[] = [];
    const p = new EvalProgress('bench', { stream: { write: (t: string) => out.push(t), isTTY: false } });
    for (let i = 1; i <= 20; i++) p.update(i, 20);
    p.finish();
    assert.equal(out.length, 11);
    assert.match(out[0], /^bench 1\/20 /);
    assert.match(out[10], /^bench 20\/20 · [\d.]+\/s · ETA 0s\n$/);
  });
});

describe('codebook and coverage studies', () => {
  it('finds the attribute an id stands for by its excess over the base rate', () => {
    // Id 7 appears exactly in the images with a yellow object; id 1 is everywhere (ignored);
    // id 3 appears in two images only (below the support threshold).
    const attributes = [
      ['yellow', 'circle'],
      ['yellow', 'square'],
      ['black', 'square'],
      ['blue', 'circle'],
      ['yellow', 'triangle'],
      ['black', 'circle'],
    ];
    const codes = [[1, 7], [1, 7, 3], [1], [1, 3], [1, 7], [1]];
    const m = codeMeanings(codes, attributes, { minSupport: 3, maxShare: 0.8 });
    assert.equal(m.length, 1);
    assert.deepEqual(
      { code: m[0].code, support: m[0].support, attribute: m[0].attribute, images: m[0].images },
      { code: 7, support: 3, attribute: 'yellow', images: [0, 1, 4] },
    );
    assert.equal(m[0].shareWithCode, 1);
    assert.equal(m[0].shareOverall, 0.5);
    assert.throws(() => codeMeanings([[1]], []), /1 code lists but 0 attribute lists/);
  });

  it('describes a box by colours, shapes, their pairs and its object count', () => {
    const attrs = boxAttributes([
      { x_loc: 0, y_loc: 0, size: 10, type: 'circle', color: 'Yellow' },
      { x_loc: 50, y_loc: 50, size: 20, type: 'square', color: '#0099ff' },
    ]);
    assert.deepEqual(
      attrs.sort(),
      ['#0099ff', '#0099ff square', '2 objects', 'Yellow', 'Yellow circle', 'circle', 'square'].sort(),
    );
  });

  it('marks exactly the patches an object covers', () => {
    // One 20×20 square at (0, 0) of a 100×100 box; at 96 px with 8 px patches (12×12 grid) it
    // covers pixels 0..19.2 → patch rows/cols 0..2 (the third only partly).
    const [box] = heldoutBoxes(1);
    const single = {
      image: box.image,
      objects: [{ x_loc: 0, y_loc: 0, size: 20 as const, type: 'square' as const, color: 'Black' as const }],
    };
    const labels = objectPatches(single, 96, 8);
    const on = [...labels.keys()].filter((p) => labels[p]);
    assert.deepEqual(on, [0, 1, 2, 12, 13, 14, 24, 25, 26]);
  });
});

describe('verdicts', () => {
  /** A measurement of `ones` right answers among n questions `q0`…: each its own unit. */
  const of = (ones: number, n: number, right = (i: number) => i < ones) => {
    const units = Array.from({ length: n }, (_, i) => ({ id: `q${i}`, value: right(i) ? 1 : 0 }));
    const samples = units.map((u) => ({ unit: u.id, value: u.value, predicted: '' }));
    return { value: ones / n, units, samples };
  };

  it('calls a difference only beyond the paired interval of the per-question differences', () => {
    // 0.7 vs 0.5 on the same 400 questions, the better one right on a superset: 80 discordant pairs.
    assert.equal(compare(of(280, 400), of(200, 400)), 'higher');
    assert.equal(compare(of(200, 400), of(280, 400)), 'lower');
    // 0.6 vs 0.5 on 20 questions: 2 discordant pairs of 20 are within noise.
    assert.equal(compare(of(12, 20), of(10, 20)), 'within noise');
    // The paired half-width: 1.96 · sd(d) / √n over d_i ∈ {0, 1}, 80 ones among 400.
    const p = 80 / 400;
    const sd = Math.sqrt((400 * p * (1 - p)) / 399);
    assert.ok(Math.abs(differenceNoise(of(280, 400), of(200, 400)) - (1.96 * sd) / 20) < 1e-12);
  });

  it('pairs: the same 5-point gain on the same questions is real; on disjoint halves it is noise', () => {
    // b right on questions 0..199; a right on those and 20 more: 20 discordant pairs, all one way.
    const a = of(220, 400);
    const b = of(200, 400);
    assert.equal(compare(a, b), 'higher');
    // The unpaired rule on the same two means (0.55 vs 0.50, n 400 each) calls it noise (± 6.9 pt).
    assert.ok(
      differenceNoise(a, { ...b, units: b.units.map((u) => ({ ...u, id: `other-${u.id}` })) }) > 0.06,
    );
    // Equal accuracy, answers swapped on 40 questions each way: no difference, and not "higher".
    const c = of(200, 400, (i) => (i < 160 ? true : i >= 200 && i < 240));
    assert.equal(compare(c, b), 'within noise');
  });
});

describe('constant answers', () => {
  const result = (rows: BenchResult['rows'], predictions: Partial<BenchResult['predictions'][number]>[]) =>
    ({ bench: 'demon', rows, predictions }) as unknown as BenchResult;

  it('finds the most common answer and its share', () => {
    assert.deepEqual(mostCommon(['D', 'A', 'D', 'D']), { answer: 'D', share: 0.75 });
    assert.deepEqual(mostCommon([]), { answer: '', share: 0 });
  });

  it('flags a column whose every task gets one answer, and empty captions', () => {
    const [choice, caption] = columnsFor(['demon']);
    const row = (share: number) => ({
      category: 'c',
      task: 't',
      metric: 'accuracy' as const,
      examples: 10,
      value: 0.3,
      commonAnswer: { answer: 'D', share },
    });
    const captions = (empty: number, of: number) =>
      Array.from({ length: of }, (_, i) => ({
        task: 'caption',
        id: `heldout/${i}`,
        rougeL: i < empty ? 0 : 0.1 * i,
        predicted: i < empty ? '' : `there is ${i}`,
      }));
    assert.equal(isConstant([result([row(1), row(0.9)], captions(1, 10))], choice), true);
    assert.equal(isConstant([result([row(1), row(0.6)], captions(1, 10))], choice), false);
    assert.equal(isConstant([result([row(1)], captions(9, 10))], caption), true);
    assert.equal(isConstant([result([row(1)], captions(8, 10))], caption), false);
    assert.equal(isConstant([], choice), false);
    assert.match(
      emptyCaptionNote([result([], captions(9, 10))])!,
      /empty caption .* for 9 of 10 held-out boxes/,
    );
    assert.equal(emptyCaptionNote([result([], captions(4, 10))]), null);
  });
});

describe('cost in words', () => {
  it('says faster or slower by the direction of each ratio', () => {
    const hybrid = { promptTokens: 200, medianPrefillMs: 10, medianTotalMs: 50, encodeMs: 40 };
    const continuous = { promptTokens: 600, medianPrefillMs: 30, medianTotalMs: 40, encodeMs: 10 };
    const text = costSentence(hybrid, continuous);
    assert.match(
      text,
      /3\.00× shorter than continuous-only ones; prefill is 3\.00× faster and a whole answer 1\.25× slower/,
    );
    assert.match(text, /encode 40\.0 vs 10\.0 ms/);
    assert.doesNotMatch(costSentence({ ...hybrid, medianTotalMs: 20 }, continuous), /extra work/);
  });
});

describe('the experiments end to end (toy sizes, random model)', () => {
  it('run every study and write a results page with its charts', async () => {
    const phases: string[] = [];
    const results = await runExperiments(smallModel(), {
      benches: ['seed-mc'],
      sizes: { nlvrSentences: 1, perTask: 1, coverageImages: 4, codebookImages: 8, costQuestions: 2 },
      onPhase: (p) => phases.push(p),
    });
    assert.equal(Object.keys(results.runs).length, 10);
    assert.ok(phases.includes('hybrid/selector/0.1 seed-mc') && phases.includes('cost'));
    assert.deepEqual(
      results.coverage.coverage.map((c) => c.selection),
      ['selector', 'random', 'grid', 'norm'],
    );
    for (const c of results.coverage.coverage) assert.equal(c.keptPerImage, 4);
    assert.deepEqual(
      results.cost.map((c) => c.label),
      ['hybrid', 'discrete-only', 'continuous-only'],
    );
    const [hybrid, discrete, continuous] = results.cost;
    assert.ok(discrete.promptTokens < hybrid.promptTokens && hybrid.promptTokens < continuous.promptTokens);
    const doc = await resultsDoc(
      results,
      {
        command: 'npm run experiments -- --quick',
        machine: 'test',
        date: '2000-01-01',
        modelDir: 'small',
        modelName: 'small',
        skipped: [{ bench: 'fashion', reason: 'no data' }],
        seconds: 1,
        retrainCommand: 'npm run experiments -- --retrain --run RUN',
      },
      svgToPng,
    );
    for (const heading of [
      "## The paper's claims, checked",
      '## Keep ratio',
      '## Selector vs simple baselines',
      '## Cost per question',
      '## What a codebook id means',
    ])
      assert.ok(doc.markdown.includes(heading), heading);
    assert.match(doc.markdown, /Skipped here: fashion \(no data\)/);
    for (const f of ['keep-ratio.png', 'keep-ratio.svg', 'selection.png', 'encoding.png', 'overlays.png'])
      assert.ok(doc.files[f], f);
    assert.match(doc.markdown, /## Encoding ablation, retrained\n\nNot run here/);

    // With the retrained rows (here the same-weights runs stand in for them): one row per mode,
    // the stages each ran, and the paper's verdict on them.
    const run = (mode: EncodingMode) => results.runs[variantKey(mode, 'selector', results.baseRatio)];
    const later = { 'stage4a-find-image': 600, 'stage4b-compare-images': 900, 'stage4-instruction': 1800 };
    const withRetrained = await resultsDoc(
      results,
      {
        command: 'npm run experiments -- --quick --retrain --run r',
        machine: 'test',
        date: '2000-01-01',
        modelDir: 'small',
        modelName: 'small',
        skipped: [],
        seconds: 1,
        retrainCommand: 'npm run experiments -- --retrain --run RUN',
        retrained: {
          runs: {
            hybrid: run('hybrid'),
            'discrete-only': run('discrete-only'),
            'continuous-only': run('continuous-only'),
          },
          steps: {
            hybrid: { stages: { 'stage3-projector': 1000, ...later }, seconds: 1500 },
            'discrete-only': { stages: later, seconds: 900 },
            'continuous-only': { stages: { 'stage3-projector': 1000, ...later }, seconds: 4000 },
          },
          from: 'r/stage2-visual-embeddings/final.safetensors',
          scale: 1,
        },
      },
      svgToPng,
    );
    const md = withRetrained.markdown;
    assert.match(md, /## Encoding ablation, retrained \(Table 4 analogue\)/);
    assert.match(md, /\| hybrid +\| 3: 1,000 · 4a: 600 · 4b: 900 · 4: 1,800 +\| 25 min +\|/);
    assert.match(md, /\| discrete-only +\| 4a: 600 · 4b: 900 · 4: 1,800 +\| 15 min +\|/);
    assert.match(md, /\*\*Hybrid beats both single encodings \(retrained, as in the paper\)\.\*\*/);
  });
});
