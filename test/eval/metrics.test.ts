/**
 * The scoring rules on hand-made cases whose answers are worked out by hand (or published): ROUGE-L,
 * matching free text to options, option choice by (normalised) likelihood — including through a
 * real KV-cache decoder whose log-probabilities are set — and consistency.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DecoderSpec, HostTensor, KVCacheDecoder, ops } from '../../src/engine/index.ts';
import {
  bestOption,
  closestOption,
  consistency,
  lcsLength,
  rougeL,
  rougeTokens,
} from '../../src/eval/metrics.ts';
import { wilsonHalfWidth } from '../../src/eval/statistics.ts';
import { scoreCandidates } from '../../src/maven/generation.ts';

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);

describe('ROUGE-L', () => {
  it('tokenises to lower-case words, dropping punctuation', () => {
    assert.deepEqual(rougeTokens('The small-yellow Circle, 3 times.'), [
      'the',
      'small',
      'yellow',
      'circle',
      '3',
      'times',
    ]);
  });

  it('finds the longest common subsequence', () => {
    assert.equal(lcsLength('a b c d e'.split(' '), 'a x c y e'.split(' ')), 3); // a c e
    assert.equal(lcsLength('a b c'.split(' '), 'c b a'.split(' ')), 1);
    assert.equal(lcsLength([], ['a']), 0);
    assert.equal(lcsLength('x a y b'.split(' '), 'a b x'.split(' ')), 2); // a b
  });

  it("reproduces Lin (2004)'s example: S2 scores 3/4 and S3 2/4 against S1", () => {
    // S1 = reference; equal lengths, so P = R = F.
    close(rougeL('police kill the gunman', 'police killed the gunman').f, 0.75, 'S2');
    close(rougeL('the gunman kill police', 'police killed the gunman').f, 0.5, 'S3');
  });

  it('computes precision, recall and F from the LCS for unequal lengths', () => {
    // LCS("the cat sat on the mat", "the cat on the mat") = 5 ("the cat on the mat").
    const r = rougeL('the cat sat on the mat', 'the cat on the mat');
    close(r.precision, 5 / 6, 'P');
    close(r.recall, 5 / 5, 'R');
    close(r.f, (2 * (5 / 6) * 1) / (5 / 6 + 1), 'F1');
    // β weights recall: F_β = (1 + β²)PR / (R + β²P).
    close(
      rougeL('the cat sat on the mat', 'the cat on the mat', 2).f,
      (5 * (5 / 6)) / (1 + 4 * (5 / 6)),
      'F2',
    );
  });

  it('scores identical texts 1, disjoint texts 0, and empty texts by convention', () => {
    assert.equal(rougeL('There is a large yellow circle.', 'there is a large YELLOW circle').f, 1);
    assert.equal(rougeL('blue square', 'black triangle').f, 0);
    assert.equal(rougeL('', '').f, 1);
    assert.equal(rougeL('', 'a').f, 0);
    assert.throws(() => rougeL('a', 'a', 0), /beta must be > 0/);
  });
});

describe('matching an answer to the closest option', () => {
  const options = [
    ['A', 'a small yellow square was added'],
    ['B', 'the blue circle moved down'],
    ['C', 'the black triangle was removed'],
  ];

  it('takes an exact match (case and punctuation ignored), of the letter or the text', () => {
    assert.deepEqual(closestOption('B', options), { index: 1, score: 1, tie: false });
    assert.deepEqual(closestOption('b.', options), { index: 1, score: 1, tie: false });
    assert.deepEqual(closestOption('The black triangle was removed.', options), {
      index: 2,
      score: 1,
      tie: false,
    });
  });

  it('otherwise takes the highest ROUGE-L, and reports ties and no match', () => {
    // "the blue circle moved up" shares 4 of 5 words in order with option B, at most 1–2 with the others.
    const m = closestOption('the blue circle moved up', options);
    assert.equal(m.index, 1);
    close(m.score, 0.8, 'score');
    assert.equal(m.tie, false);
    // "the" is one word of B and of C, both five words long: equal scores, the lower index wins.
    const tie = closestOption('the', options);
    assert.equal(tie.index, 1);
    assert.equal(tie.tie, true);
    assert.deepEqual(closestOption('purple', options), { index: -1, score: 0, tie: false });
    assert.throws(() => closestOption('x', []), /no options/);
  });
});

describe('option choice by likelihood', () => {
  it('sum and mean normalisation pick differently when lengths differ', () => {
    // A: one token at log p = −1; B: three tokens at −0.5 each (sum −1.5, mean −0.5).
    const scores = [
      { logLikelihood: -1, tokens: 1 },
      { logLikelihood: -1.5, tokens: 3 },
    ];
    assert.equal(bestOption(scores, 'sum'), 0);
    assert.equal(bestOption(scores, 'mean'), 1);
    assert.equal(
      bestOption([
        { logLikelihood: -2, tokens: 1 },
        { logLikelihood: -2, tokens: 1 },
      ]),
      0,
    ); // tie → first
    assert.throws(() => bestOption([]), /no scores/);
    assert.throws(() => bestOption(scores, 'max' as 'sum'), /normalization must be/);
  });

  it('picks the known best option through a real decoder whose log-probabilities are set', async () => {
    // A bigram model over 5 tokens: row i of the table is log p(next | i), chosen exactly.
    const V = 5;
    const probs = [
      [0.1, 0.5, 0.2, 0.1, 0.1], // after token 0 (the prompt's last token)
      [0.1, 0.1, 0.6, 0.1, 0.1], // after 1
      [0.05, 0.05, 0.05, 0.8, 0.05], // after 2
      [0.2, 0.2, 0.2, 0.2, 0.2],
      [0.2, 0.2, 0.2, 0.2, 0.2],
    ];
    const table = Float32Array.from(probs.flat(), Math.log);
    const spec: DecoderSpec = {
      layers: 0,
      kvHeads: 1,
      headDim: 1,
      build: (g, ids) => ({ hidden: ops.gather(g.param('bigram', [V, V]), ids), added: [] }),
      head: (_, rows) => rows, // the gathered rows are the logits
    };
    const decoder = await KVCacheDecoder.create(
      spec,
      new Map([['bigram', new HostTensor('float32', [V, V], table)]]),
    );
    const prompt = new HostTensor('int64', [1, 2], BigInt64Array.of(4n, 0n));
    // By hand: [1] → log 0.5 = −0.693; [2, 3] → log 0.2 + log 0.8 = −1.833 (mean −0.916);
    // [1, 2, 3] → log 0.5 + log 0.6 + log 0.8 = −1.427 (mean −0.476); [3] → log 0.1 = −2.303.
    const candidates = [[1], [2, 3], [1, 2, 3], [3]];
    const scores = await scoreCandidates(decoder, prompt, candidates);
    const expected = [
      Math.log(0.5),
      Math.log(0.2) + Math.log(0.8),
      Math.log(0.5) + Math.log(0.6) + Math.log(0.8),
      Math.log(0.1),
    ];
    scores.forEach((s, i) => {
      assert.ok(Math.abs(s.logLikelihood - expected[i]) < 1e-5, `candidate ${i}`);
    });
    assert.equal(bestOption(scores, 'sum'), 0);
    assert.equal(bestOption(scores, 'mean'), 2);
  });
});

describe('consistency', () => {
  it('is the share of groups with every item right, whatever the order of items', () => {
    const items = [
      { group: 's1', correct: true },
      { group: 's2', correct: true },
      { group: 's1', correct: true },
      { group: 's3', correct: false },
      { group: 's2', correct: false },
      { group: 's3', correct: false },
      { group: 's4', correct: true },
    ];
    assert.equal(consistency(items), 2 / 4); // s1 and s4
    assert.equal(consistency([]), 0);
  });

  it('gives a 95 % Wilson half-width that shrinks with n', () => {
    // p = 0.5, n = 100: z·√(p(1−p)/n + z²/4n²) / (1 + z²/n) = 1.96·√(0.0025 + 0.00009604) / 1.038416
    close(wilsonHalfWidth(0.5, 100), (1.96 * Math.sqrt(0.0025 + 0.00009604)) / 1.038416, 'n=100');
    assert.ok(wilsonHalfWidth(0.5, 1000) < wilsonHalfWidth(0.5, 100));
    assert.equal(wilsonHalfWidth(0.5, 0), 1);
  });
});
