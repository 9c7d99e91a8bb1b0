/**
 * The statistics behind intervals and verdicts: each on a case worked out by hand, and each a
 * case the old rules got wrong (six NLVR orders counted as six samples, chance fixed at 0.5, a
 * column of zeros judged, unpaired noise on paired questions).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BenchResult } from '../../src/eval/benchmarks.ts';
import { nlvrAccuracyRow } from '../../src/eval/benchmarks.ts';
import { benchTable, minutesSeconds } from '../../src/eval/report.ts';
import { columnsFor, isConstant } from '../../src/eval/results-doc.ts';
import {
  clusteredAccuracy,
  clusterMeans,
  compareUnits,
  degenerate,
  meanHalfWidth,
  nlvrSentence,
  wilsonHalfWidth,
} from '../../src/eval/statistics.ts';

/** 300 sentences × 6 orders; sentences 0..179 right in every order, the rest wrong in every order; the first 170 true. */
function nlvrPredictions() {
  return Array.from({ length: 300 * 6 }, (_, k) => {
    const s = Math.floor(k / 6);
    const label = s < 170;
    return { identifier: `test1-${s}`, order: k % 6, label, predicted: s < 180 ? label : !label };
  });
}

describe('statistics', () => {
  it('groups an NLVR id by sentence and averages per cluster', () => {
    assert.equal(nlvrSentence('test1-17-0-1/5'), 'test1-17-0-1');
    assert.equal(nlvrSentence('plain'), 'plain');
    assert.deepEqual(
      clusterMeans([
        { cluster: 'a', value: 1 },
        { cluster: 'b', value: 0 },
        { cluster: 'a', value: 0 },
      ]),
      [
        { id: 'a', value: 0.5 },
        { id: 'b', value: 0 },
      ],
    );
  });

  it('an NLVR interval counts sentences, not sentence × order', () => {
    const items = nlvrPredictions().map((p) => ({ cluster: p.identifier, correct: p.predicted === p.label }));
    const r = clusteredAccuracy(items);
    assert.equal(r.units, 300);
    assert.equal(r.value, 0.6);
    // 300 independent 0/1 units at 0.6: 1.96 · √(0.24 · 300/299) / √300 = 5.55 pt.
    const want = (1.96 * Math.sqrt((0.24 * 300) / 299)) / Math.sqrt(300);
    assert.ok(Math.abs(r.halfWidth - want) < 1e-12, `${r.halfWidth} vs ${want}`);
    // Counting the 1,800 (sentence, order) pairs as independent claims ± 2.3 pt.
    assert.ok(wilsonHalfWidth(0.6, 1800) < 0.025 && r.halfWidth > 0.055);
  });

  it("NLVR's row: chance is the subset's commonest label, and the table prints the sentence interval", () => {
    const row = nlvrAccuracyRow('test', nlvrPredictions());
    assert.equal(row.chance, 1020 / 1800); // 170 of 300 sentences true
    assert.equal(row.examples, 1800);
    assert.equal(row.interval?.units, 300);
    const table = benchTable({
      bench: 'nlvr-test',
      protocol: 'p',
      rows: [row],
      headline: { metric: 'accuracy', value: row.value },
      predictions: [],
      visualTokensPerImage: 0,
      promptTokens: 0,
      seconds: 0,
    });
    assert.match(table, /± 5\.6 %/);
    assert.match(table, /56\.7 %/);
  });

  it('a half-width is never zero for rates: an all-right column gets the Wilson interval of its units', () => {
    assert.equal(meanHalfWidth([1, 1, 1, 1]), wilsonHalfWidth(1, 4));
    assert.ok(meanHalfWidth([1, 1, 1, 1]) > 0.2);
  });

  it('compares paired when both sides scored the same units, unpaired otherwise', () => {
    const a = Array.from({ length: 100 }, (_, i) => ({ id: `q${i}`, value: i < 60 ? 1 : 0 }));
    const b = Array.from({ length: 100 }, (_, i) => ({ id: `q${i}`, value: i < 50 ? 1 : 0 }));
    const paired = compareUnits(a, b);
    assert.equal(paired.paired, true);
    assert.equal(paired.verdict, 'higher'); // 10 discordant pairs, all for a
    const unpaired = compareUnits(
      a,
      b.map((u) => ({ ...u, id: `x${u.id}` })),
    );
    assert.equal(unpaired.paired, false);
    assert.equal(unpaired.verdict, 'within noise'); // 0.6 vs 0.5 on 100 each: ± 13.7 pt
  });

  it('flags degenerate outputs whatever they are', () => {
    assert.match(degenerate([0, 0, 0])!, /every score is 0/);
    assert.match(degenerate([0.2, 0.1], ['true', 'true'])!, /100 % of the outputs are "true"/);
    assert.match(degenerate([0.2, 0.1], ['', ''])!, /empty/);
    assert.equal(degenerate([0, 0.5, 0], ['a', 'b', 'a']), null);
  });

  it('a ROUGE-L column of zeros, or of one repeated word, gets no verdict', () => {
    const [, caption] = columnsFor(['demon']);
    const run = (predicted: (i: number) => string, rouge: (i: number) => number) =>
      ({
        bench: 'demon',
        rows: [],
        predictions: Array.from({ length: 80 }, (_, i) => ({
          task: 'caption',
          id: `heldout/${i}`,
          rougeL: rouge(i),
          predicted: predicted(i),
        })),
      }) as unknown as BenchResult;
    // 73 of 80 captions the word "true", all scoring 0 (the audit's case; the old check saw no empty string).
    assert.equal(
      isConstant(
        [
          run(
            (i) => (i < 73 ? 'true' : `a box ${i}`),
            () => 0,
          ),
        ],
        caption,
      ),
      true,
    );
    assert.equal(
      isConstant(
        [
          run(
            (i) => (i < 73 ? 'true' : `a box ${i}`),
            (i) => (i % 3) / 3,
          ),
        ],
        caption,
      ),
      true,
    );
    assert.equal(
      isConstant(
        [
          run(
            (i) => `a box with ${i % 7} circles`,
            (i) => (i % 5) / 5,
          ),
        ],
        caption,
      ),
      false,
    );
  });

  it('wall times: minutes never rounded up', () => {
    assert.equal(minutesSeconds(51), '51 s');
    assert.equal(minutesSeconds(111), '1 min 51 s');
    assert.equal(minutesSeconds(2776), '46 min 16 s');
    assert.equal(minutesSeconds(89.6), '1 min 30 s');
  });
});
