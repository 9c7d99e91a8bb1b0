/** KV-cache prefill/decode against full recomputation on a tiny random decoder. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DecoderSpec, KVCacheDecoder, SHARED_PROGRAM_FROM_BYTES } from '../../src/engine/decoder.ts';
import { HostTensor } from '../../src/engine/host-tensor.ts';
import * as ops from '../../src/engine/ops/index.ts';
import { f32, uniform } from './helpers.ts';

const V = 23;
const D = 16;
const H = 2;
const hs = D / H;
const L = 2;

function weights(): Map<string, HostTensor> {
  const w = new Map<string, HostTensor>();
  let seed = 1;
  const rand = (shape: number[], scale = 0.3) => f32(shape, uniform(shape, seed++, -scale, scale));
  w.set('wte', rand([V, D], 1));
  w.set('wpe', rand([64, D], 0.5));
  for (let l = 0; l < L; l++) {
    for (const n of ['q', 'k', 'v', 'o']) w.set(`h.${l}.${n}`, rand([D, D]));
    w.set(`h.${l}.ln`, f32([D], new Array(D).fill(1)));
    w.set(`h.${l}.up`, rand([2 * D, D]));
    w.set(`h.${l}.down`, rand([D, 2 * D]));
  }
  return w;
}

const spec: DecoderSpec = {
  layers: L,
  kvHeads: H,
  headDim: hs,
  build(g, input, positions, cache) {
    const tokens = input.dtype === 'int64' ? ops.gather(g.param('wte', [V, D]), input) : input; // [B, T, D]
    let x = ops.add(tokens, ops.gather(g.param('wpe', [64, D]), positions));
    const added = [];
    for (let l = 0; l < L; l++) {
      const h = ops.rmsNorm(x, g.param(`h.${l}.ln`, [D]));
      const project = (n: string) => ops.linear(h, g.param(`h.${l}.${n}`, [D, D])); // [B, T, H·hs]
      const [key, value] = [project('k'), project('v')];
      const att = ops.cachedAttention(
        project('q'),
        key,
        value,
        { ...cache.layers[l], mask: cache.mask },
        { heads: H, kvHeads: H },
      ); // [B, T, D]
      added.push({ key, value });
      x = ops.add(x, ops.linear(att, g.param(`h.${l}.o`, [D, D])));
      x = ops.add(
        x,
        ops.linear(
          ops.silu(ops.linear(x, g.param(`h.${l}.up`, [2 * D, D]))),
          g.param(`h.${l}.down`, [D, 2 * D]),
        ),
      );
    }
    return { hidden: x, added };
  },
  head: (g, hidden) => ops.linear(hidden, g.param('wte', [V, D])),
  embedIds: (g, input) => ops.gather(g.param('wte', [V, D]), input),
};

const ids = (xs: number[]) => new HostTensor('int64', [1, xs.length], BigInt64Array.from(xs, BigInt));
const range = (from: number, n: number) => ids(Array.from({ length: n }, (_, i) => from + i));

function argmaxLast(logits: HostTensor): number {
  const T = logits.shape[1];
  const row = (logits.data as Float32Array).subarray((T - 1) * V, T * V);
  return row.indexOf(Math.max(...row));
}

describe('KVCacheDecoder', () => {
  for (const [embedWeights, sharedProgram] of [
    [true, false],
    [false, false],
    [true, true],
    [false, true],
  ]) {
    it(`greedy decoding with the cache equals full recomputation (weights ${embedWeights ? 'embedded' : 'bound'}, ${sharedProgram ? 'one program' : 'two programs'})`, async () => {
      const dec = await KVCacheDecoder.create(spec, weights(), { embedWeights, sharedProgram });
      assert.equal(dec.sharesProgram, sharedProgram);
      const prompt = [3, 14, 15, 9, 2];

      const full = [...prompt];
      const fullLogits: Float32Array[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await dec.prefill(ids(full), range(0, full.length));
        assert.deepEqual(r.logits.shape, [1, 1, V]); // a prompt's logits: its last position's
        fullLogits.push((r.logits.data as Float32Array).slice());
        full.push(argmaxLast(r.logits));
      }

      const cached = [...prompt];
      let out = await dec.prefill(ids(prompt), range(0, prompt.length));
      for (let i = 0; i < 8; i++) {
        const last = (out.logits.data as Float32Array).slice((out.logits.shape[1] - 1) * V);
        last.forEach((v, j) => {
          assert.ok(
            Math.abs(v - fullLogits[i][j]) < 1e-4,
            `step ${i} logit ${j}: ${v} vs ${fullLogits[i][j]}`,
          );
        });
        const next = argmaxLast(out.logits);
        cached.push(next);
        out = await dec.decode(ids([next]), range(cached.length - 1, 1), out.cache);
        assert.equal(out.cache.length, cached.length);
        assert.deepEqual(out.cache.read()[0].key.shape, [1, H, cached.length, hs]);
      }
      assert.deepEqual(cached, full);
    });
  }

  for (const sharedProgram of [false, true]) {
    it(`prefill from input embeddings equals prefill from the ids they embed (${sharedProgram ? 'one program' : 'two programs'})`, async () => {
      const w = weights();
      const embedSpec: DecoderSpec = { ...spec, hiddenSize: D };
      const byIds = await KVCacheDecoder.create(spec, w, { sharedProgram: false });
      const byEmbeds = await KVCacheDecoder.create(embedSpec, w, { prefillInput: 'embeds', sharedProgram });
      assert.equal(byEmbeds.sharesProgram, sharedProgram);
      const prompt = [4, 8, 15, 16];
      const table = w.get('wte')!.data as Float32Array;
      const embeds = new HostTensor(
        'float32',
        [1, prompt.length, D],
        new Float32Array(prompt.flatMap((t) => [...table.subarray(t * D, (t + 1) * D)])),
      );
      const a = await byIds.prefill(ids(prompt), range(0, prompt.length), { logits: 'all' });
      const b = await byEmbeds.prefill(embeds, range(0, prompt.length), { logits: 'all' });
      assert.deepEqual(b.logits.shape, [1, prompt.length, V]);
      const la = a.logits.data as Float32Array;
      const lb = b.logits.data as Float32Array;
      for (let i = 0; i < la.length; i++) assert.ok(Math.abs(la[i] - lb[i]) < 1e-5);
      const next = await byEmbeds.decode(ids([argmaxLast(b.logits)]), range(prompt.length, 1), b.cache);
      const reference = await byIds.decode(ids([argmaxLast(a.logits)]), range(prompt.length, 1), a.cache);
      assert.deepEqual(next.logits.shape, [1, 1, V]);
      const ln = next.logits.data as Float32Array;
      const lr = reference.logits.data as Float32Array;
      for (let i = 0; i < ln.length; i++) assert.ok(Math.abs(ln[i] - lr[i]) < 1e-5, `decode logit ${i}`);
    });
  }

  for (const sharedProgram of [false, true]) {
    it(`a stream's logits equal decode()'s, through cache growth (${sharedProgram ? 'one program' : 'two programs'})`, async () => {
      const dec = await KVCacheDecoder.create(spec, weights(), { sharedProgram });
      const prompt = [3, 14, 15, 9, 2];
      const stream = dec.stream(2); // smaller than the prompt: grows at once, then again
      let streamed = await stream.prefill(ids(prompt), range(0, prompt.length));
      let out = await dec.prefill(ids(prompt), range(0, prompt.length));
      const seq = [...prompt];
      for (let i = 0; i < 12; i++) {
        assert.deepEqual(streamed.shape, out.logits.shape);
        const a = streamed.data as Float32Array;
        const b = out.logits.data as Float32Array;
        for (let j = 0; j < b.length; j++) assert.ok(Math.abs(a[j] - b[j]) < 1e-5, `step ${i} logit ${j}`);
        const next = argmaxLast(out.logits);
        seq.push(next);
        streamed = await stream.decode(ids([next]), range(seq.length - 1, 1));
        out = await dec.decode(ids([next]), range(seq.length - 1, 1), out.cache);
      }
      assert.equal(stream.positions, seq.length);
      await assert.rejects(dec.stream().decode(ids([1]), range(0, 1)), /decode before prefill/);
    });
  }

  for (const sharedProgram of [false, true]) {
    it(`a prompt run in pieces equals it run whole: logits, hidden states, the cache, the next step (${sharedProgram ? 'one program' : 'two programs'})`, async () => {
      const w = weights();
      const whole = await KVCacheDecoder.create(spec, w, { sharedProgram });
      const pieces = await KVCacheDecoder.create(spec, w, { sharedProgram, prefillChunk: 3 });
      const prompt = [3, 14, 15, 9, 2, 6, 5, 3];
      for (const logits of ['all', 'last'] as const) {
        const a = await whole.prefill(ids(prompt), range(0, prompt.length), { logits });
        const b = await pieces.prefill(ids(prompt), range(0, prompt.length), { logits });
        assert.deepEqual(b.logits.shape, a.logits.shape);
        assert.deepEqual(b.hidden.shape, [1, logits === 'all' ? prompt.length : 1, D]);
        const close = (x: HostTensor, y: HostTensor, what: string) =>
          (x.data as Float32Array).forEach((v, i) => {
            assert.ok(Math.abs(v - (y.data as Float32Array)[i]) < 1e-5, `${logits}: ${what} ${i}`);
          });
        close(b.logits, a.logits, 'logit');
        close(b.hidden, a.hidden, 'hidden');
        assert.equal(b.cache.length, prompt.length);
        b.cache.read().forEach((layer, l) => {
          close(layer.key, a.cache.read()[l].key, `layer ${l} key`);
        });
        const next = argmaxLast(a.logits);
        close(
          (await pieces.decode(ids([next]), range(prompt.length, 1), b.cache)).logits,
          (await whole.decode(ids([next]), range(prompt.length, 1), a.cache)).logits,
          'next step logit',
        );
      }
    });
  }

  it('embeds ids on the host from the token rows it is given, with no table in its program', async () => {
    const w = weights();
    const table = w.get('wte')!.data as Float32Array;
    const rows = {
      shape: [V, D] as [number, number],
      read: (row: number, into: Float32Array, at: number) =>
        into.set(table.subarray(row * D, (row + 1) * D), at),
    };
    // The head still reads wte (tied), so drop the table from the spec's embedding only.
    const onHost = await KVCacheDecoder.create({ ...spec, hiddenSize: D }, w, { embedOnHost: rows });
    const byIds = await KVCacheDecoder.create(spec, w);
    assert.equal(onHost.sharesProgram, false); // tiny weights: two programs, both from embeddings
    const prompt = [4, 8, 15, 16];
    const a = await byIds.prefill(ids(prompt), range(0, prompt.length));
    const b = await onHost.prefill(ids(prompt), range(0, prompt.length));
    (b.logits.data as Float32Array).forEach((v, i) => {
      assert.ok(Math.abs(v - (a.logits.data as Float32Array)[i]) < 1e-5);
    });
    const next = argmaxLast(a.logits);
    const da = await byIds.decode(ids([next]), range(prompt.length, 1), a.cache);
    const db = await onHost.decode(ids([next]), range(prompt.length, 1), b.cache);
    (db.logits.data as Float32Array).forEach((v, i) => {
      assert.ok(Math.abs(v - (da.logits.data as Float32Array)[i]) < 1e-5);
    });
    await assert.rejects(
      onHost.decode(ids([V]), range(prompt.length, 1), b.cache),
      /token id 23 outside the table's 23 rows/,
    );
  });

  it('continues several times from one cache (scoring answers), and refuses a cache a shorter one overwrote', async () => {
    const dec = await KVCacheDecoder.create(spec, weights());
    const prompt = [3, 14, 15, 9, 2];
    const pre = await dec.prefill(ids(prompt), range(0, prompt.length), { capacity: prompt.length }); // full: the answers grow it
    for (const answer of [
      [7, 1, 4],
      [20, 5],
      [11, 11, 11, 11],
    ]) {
      const branch = await dec.decode(ids(answer), range(prompt.length, answer.length), pre.cache);
      const whole = await dec.prefill(ids([...prompt, ...answer]), range(0, prompt.length + answer.length), {
        logits: 'all',
      });
      const a = branch.logits.data as Float32Array;
      const b = (whole.logits.data as Float32Array).subarray(prompt.length * V);
      assert.equal(a.length, b.length);
      for (let j = 0; j < a.length; j++)
        assert.ok(Math.abs(a[j] - b[j]) < 1e-5, `answer ${answer} logit ${j}`);
    }
    // The cache's first positions are the prompt's keys, whatever came after.
    const again = await dec.prefill(ids(prompt), range(0, prompt.length));
    assert.deepEqual(pre.cache.read(), again.cache.read());
    const longer = await dec.decode(ids([7]), range(prompt.length, 1), pre.cache);
    await dec.decode(ids([8]), range(prompt.length, 1), pre.cache); // rewrites position 5
    await assert.rejects(
      dec.decode(ids([1]), range(prompt.length + 1, 1), longer.cache),
      /stale: a later step over the same buffers rewrote position 5/,
    );
  });

  it('decodes several tokens at once for a batch of sequences', async () => {
    const dec = await KVCacheDecoder.create(spec, weights());
    const batch = (rows: number[][]) =>
      new HostTensor('int64', [rows.length, rows[0].length], BigInt64Array.from(rows.flat(), BigInt));
    const prompts = [
      [3, 14, 15, 9],
      [2, 7, 1, 8],
    ];
    const answers = [
      [6, 5, 3],
      [20, 0, 11],
    ];
    const positions = (from: number, n: number) =>
      batch([0, 1].map(() => Array.from({ length: n }, (_, i) => from + i)));
    const pre = await dec.prefill(batch(prompts), positions(0, 4));
    const step = await dec.decode(batch(answers), positions(4, 3), pre.cache);
    assert.deepEqual(step.logits.shape, [2, 3, V]);
    for (const row of [0, 1]) {
      const whole = await dec.prefill(ids([...prompts[row], ...answers[row]]), range(0, 7), {
        logits: 'all',
      });
      const a = (step.logits.data as Float32Array).subarray(row * 3 * V, (row + 1) * 3 * V);
      const b = (whole.logits.data as Float32Array).subarray(4 * V);
      for (let j = 0; j < a.length; j++) assert.ok(Math.abs(a[j] - b[j]) < 1e-5, `row ${row} logit ${j}`);
    }
  });

  it('shares one program by default only from SHARED_PROGRAM_FROM_BYTES of weights', async () => {
    const small = await KVCacheDecoder.create(spec, weights());
    assert.equal(small.sharesProgram, false);
    const w = weights();
    const bytes = [...w.values()].reduce((n, t) => n + t.data.byteLength, 0);
    assert.ok(bytes < SHARED_PROGRAM_FROM_BYTES);
    const withoutEmbedIds: DecoderSpec = { ...spec, hiddenSize: D, embedIds: undefined };
    await assert.rejects(
      KVCacheDecoder.create(withoutEmbedIds, w, { prefillInput: 'embeds', sharedProgram: true }),
      /needs spec\.embedIds/,
    );
  });

  it('names the weights it is missing', async () => {
    const w = weights();
    w.delete('h.1.up');
    await assert.rejects(KVCacheDecoder.create(spec, w), /no weights for h\.1\.up/);
  });
});
