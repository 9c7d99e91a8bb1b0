/** Sampling, streaming with stop strings, and candidate scoring, on a bigram "language model". */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DecoderSpec, HostTensor, KVCacheDecoder, ops } from '../../src/engine/index.ts';
import { generateTokens, sampleToken, scoreCandidates } from '../../src/maven/generation.ts';

const ALPHABET = 'abcde.';
const V = ALPHABET.length;
const EOS = V; // one extra id
// Bigram logits: after token i the next is strongly i + 1 (a→b→c→d→e→.→EOS).
const table = new Float32Array((V + 1) * (V + 1));
for (let i = 0; i <= V; i++)
  for (let j = 0; j <= V; j++)
    table[i * (V + 1) + j] = j === Math.min(i + 1, V) ? 5 : ((i * 7 + j * 3) % 5) * 0.1;

const spec: DecoderSpec = {
  layers: 0,
  kvHeads: 1,
  headDim: 1,
  build: (g, ids) => ({ hidden: ops.gather(g.param('bigram', [V + 1, V + 1]), ids), added: [] }),
  head: (_, rows) => rows, // the gathered rows are the logits
};
const weights = new Map([['bigram', new HostTensor('float32', [V + 1, V + 1], table)]]);
const decodeText = (ids: readonly number[]) => ids.map((i) => ALPHABET[i] ?? '').join('');
const prompt = (ids: number[]) => new HostTensor('int64', [1, ids.length], BigInt64Array.from(ids, BigInt));

async function collect(gen: AsyncGenerator<{ id: number; text: string }>) {
  const pieces = [];
  for await (const p of gen) pieces.push(p);
  return pieces;
}

describe('generation', () => {
  it('greedy decoding follows the argmax until EOS', async () => {
    const decoder = await KVCacheDecoder.create(spec, weights);
    const pieces = await collect(generateTokens({ decoder, prompt: prompt([0]), eosId: EOS, decodeText }));
    assert.equal(pieces.map((p) => p.text).join(''), 'bcde.');
  });

  it('honours maxNewTokens and withholds stop strings, even split across tokens', async () => {
    const decoder = await KVCacheDecoder.create(spec, weights);
    const short = await collect(
      generateTokens({ decoder, prompt: prompt([0]), eosId: EOS, decodeText }, { maxNewTokens: 2 }),
    );
    assert.equal(short.map((p) => p.text).join(''), 'bc');
    const stopped = await collect(
      generateTokens({ decoder, prompt: prompt([0]), eosId: EOS, decodeText }, { stop: ['de'] }),
    );
    assert.equal(stopped.map((p) => p.text).join(''), 'bc');
    // The 'd' was held back while it could still start "de", and never streamed.
    assert.ok(!stopped.some((p) => p.text.includes('d')));
  });

  it('samples with temperature, top-k and top-p as specified', () => {
    const logits = Float32Array.of(2, 1, 0, -1);
    let s = 0;
    const rand = () => {
      s = (s * 16807 + 1) % 2147483647;
      return s / 2147483647;
    };
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[sampleToken(logits, { temperature: 1 }, rand)]++;
    const z = [2, 1, 0, -1].reduce((a, v) => a + Math.exp(v), 0);
    counts.forEach((c, i) => {
      assert.ok(Math.abs(c / 20000 - Math.exp([2, 1, 0, -1][i]) / z) < 0.015, `token ${i}: ${c / 20000}`);
    });
    for (let i = 0; i < 200; i++) assert.ok(sampleToken(logits, { temperature: 1, topK: 2 }, rand) < 2);
    // p(0) = 0.64 < 0.7, so top-p 0.7 keeps tokens 0 and 1 only.
    for (let i = 0; i < 200; i++) assert.ok(sampleToken(logits, { temperature: 1, topP: 0.7 }, rand) < 2);
    assert.equal(sampleToken(logits, { temperature: 0 }, rand), 0);
    assert.equal(sampleToken(logits, { vocabLimit: 0 + 3, temperature: 0 }, rand), 0);
    assert.equal(sampleToken(Float32Array.of(0, 1, 9), { vocabLimit: 2 }, rand), 1);
  });

  it('scores candidate continuations by their log-likelihood', async () => {
    const decoder = await KVCacheDecoder.create(spec, weights);
    const cands = [[1, 2, 3], [2], [1, 4]];
    const scores = await scoreCandidates(decoder, prompt([5, 0]), cands);
    const logp = (prev: number, next: number) => {
      const row = Array.from({ length: V + 1 }, (_, j) => table[prev * (V + 1) + j]);
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      return row[next] - lse;
    };
    cands.forEach((c, k) => {
      let expected = 0;
      let prev = 0;
      for (const t of c) {
        expected += logp(prev, t);
        prev = t;
      }
      assert.ok(
        Math.abs(scores[k].logLikelihood - expected) < 1e-4,
        `candidate ${k}: ${scores[k].logLikelihood} vs ${expected}`,
      );
      assert.equal(scores[k].tokens, c.length);
    });
    assert.ok(scores[0].meanLogLikelihood > scores[1].meanLogLikelihood);
  });
});
