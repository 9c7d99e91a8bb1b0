/** The assembled MaVEn model on a tiny random configuration: modes, token counts, h_EOS, budgets, checkpoints. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { deserializeSafetensors, HostTensor, serializeSafetensors } from '../../src/engine/index.ts';
import {
  mavenFromParts,
  mavenToParts,
  NonFiniteWeightsError,
  parseMavenConfig,
} from '../../src/maven/checkpoint.ts';
import { MavenModel } from '../../src/maven/model.ts';
import { loadMaven, saveMaven } from '../../src/node/model-directory.ts';
import { pixels, smallModel } from './small-model.ts';

describe('MavenModel', () => {
  let model: MavenModel;
  before(() => {
    model = smallModel();
  });

  it('builds the hybrid sequence: per image <img>, Q discrete ids, ⌈ρN⌉ patches in order, </img>', async () => {
    const prompt = 'how many <image> squares <image> ?';
    const prepared = await model.prepare(prompt, pixels(2));
    const text =
      model.tokenizer.encode('how many ', { bos: true }).length +
      model.tokenizer.encode(' squares ').length +
      model.tokenizer.encode(' ?').length;
    assert.equal(prepared.sequence.slots.length, text + 2 * (2 + 4 + 4)); // 16 patches, ρ = 0.25 → 4
    for (const img of prepared.images) {
      assert.equal(img.discreteIds.length, 4);
      assert.equal(img.keptPatches.length, 4);
      assert.deepEqual(
        [...img.keptPatches],
        [...img.keptPatches].sort((a, b) => a - b),
      );
      assert.ok(img.discreteIds.every((c) => c >= 0 && c < 16));
    }
    assert.deepEqual(prepared.embeds.shape, [1, prepared.sequence.slots.length, 32]);
  });

  it('counts tokens per mode: discrete-only, continuous-only (all patches), any keep ratio, a global budget', async () => {
    const px = pixels(3, 1);
    const p = 'a <image> b <image> c <image>';
    const lengths = async (options: Parameters<MavenModel['prepare']>[2]) =>
      (await model.prepare(p, px, options)).images.map((i) => [i.discreteIds.length, i.keptPatches.length]);
    assert.deepEqual(await lengths({ mode: 'discrete-only' }), [
      [4, 0],
      [4, 0],
      [4, 0],
    ]);
    assert.deepEqual(await lengths({ mode: 'continuous-only' }), [
      [0, 16],
      [0, 16],
      [0, 16],
    ]);
    assert.deepEqual(await lengths({ keepRatio: 0.5 }), [
      [4, 8],
      [4, 8],
      [4, 8],
    ]);
    assert.deepEqual(await lengths({ keepRatio: 1 }), [
      [4, 16],
      [4, 16],
      [4, 16],
    ]);
    const budget = await lengths({ visualTokenBudget: 10 });
    assert.equal(
      budget.reduce((n, [, k]) => n + k, 0),
      10,
    );
  });

  it('computes h_EOS for all images in one batch, equal to one image at a time', async () => {
    const codes = [
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [0, 0, 15, 9],
    ];
    const batched = (await model.hEos(codes)).data as Float32Array;
    const d = model.config.llm.hiddenSize;
    for (let i = 0; i < codes.length; i++) {
      const single = (await model.hEos([codes[i]])).data as Float32Array;
      for (let j = 0; j < d; j++) assert.ok(Math.abs(single[j] - batched[i * d + j]) < 1e-5);
    }
  });

  it('generates and scores for 0, 1 and 8 images', async () => {
    for (const n of [0, 1, 8]) {
      const prompt = `${'<image> '.repeat(n)}how many yellow squares ?`;
      const r = await model.generate(prompt, n ? pixels(n, n) : null, { maxNewTokens: 5 });
      assert.equal(r.images.length, n);
      assert.equal(typeof r.text, 'string');
      const scores = await model.score(prompt, n ? pixels(n, n) : null, ['yes', 'no']);
      assert.equal(scores.length, 2);
      assert.ok(scores.every((s) => Number.isFinite(s.logLikelihood) && s.logLikelihood < 0));
    }
  });

  it('prepareEncoded on images encoded once gives what prepare gives, in any image order', async () => {
    const px = pixels(3, 4);
    const encoded = await model.selectPatches(await model.encodeImages(px));
    const prompt = 'a <image> b <image> c <image> ?';
    const direct = await model.prepare(prompt, px);
    const reused = model.prepareEncoded(prompt, encoded);
    assert.deepEqual(reused.sequence, direct.sequence);
    assert.deepEqual([...reused.embeds.data], [...direct.embeds.data]);
    // Reordered encodings = the reordered pictures, encoded afresh (encoding is per image).
    const order = [2, 0, 1];
    const size = px.data.length / 3;
    const reorderedPixels = new HostTensor(
      'float32',
      px.shape,
      Float32Array.from(
        order.flatMap((i) => [...(px.data as Float32Array).subarray(i * size, (i + 1) * size)]),
      ),
    );
    const fresh = await model.prepare(prompt, reorderedPixels);
    const swapped = model.prepareEncoded(
      prompt,
      order.map((i) => encoded[i]),
    );
    assert.deepEqual(swapped.sequence, fresh.sequence);
    const a = swapped.embeds.data as Float32Array;
    const b = fresh.embeds.data as Float32Array;
    assert.ok(a.every((v, i) => Math.abs(v - b[i]) < 1e-5));
    // Pieces instead of a prompt string; their count must be images + 1.
    const pieces = model.prepareEncoded(['a ', ' b ', ' c ', ' ?'], encoded);
    assert.deepEqual(pieces.sequence, direct.sequence);
    assert.throws(() => model.prepareEncoded(['a ', ' b '], encoded), /2 text pieces for 3 images/);
    assert.throws(() => model.prepareEncoded('only <image>', encoded), /placeholder/);
  });

  it('refuses mismatched placeholders and too many images', async () => {
    await assert.rejects(
      model.prepare('just <image>', pixels(2)),
      /1 <image> placeholder\(s\) but 2 image\(s\)/,
    );
    await assert.rejects(model.prepare('<image>'.repeat(9), pixels(9)), /at most 8/);
  });

  it('round-trips through a checkpoint directory and answers identically', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maven-ckpt-'));
    await saveMaven(dir, model);
    const loaded = await loadMaven(dir);
    const a = await model.generate('<image> how many ?', pixels(1, 5), { maxNewTokens: 6 });
    const b = await loaded.generate('<image> how many ?', pixels(1, 5), { maxNewTokens: 6 });
    assert.equal(b.text, a.text);
    assert.deepEqual(b.prepared.images[0].keptPatches, a.prepared.images[0].keptPatches);
    assert.deepEqual(b.prepared.images[0].discreteIds, a.prepared.images[0].discreteIds);
  });

  it('round-trips through its parts in memory, as a browser would load fetched files', async () => {
    const parts = mavenToParts(model);
    const loaded = mavenFromParts({
      configJson: JSON.parse(JSON.stringify(parts.configJson)),
      tokenizerJson: JSON.parse(JSON.stringify(parts.tokenizerJson)),
      weights: deserializeSafetensors(serializeSafetensors(new Map(parts.weights))),
    });
    assert.deepEqual(loaded.config, model.config);
    const a = await model.generate('<image> how many ?', pixels(1, 5), { maxNewTokens: 6 });
    const b = await loaded.generate('<image> how many ?', pixels(1, 5), { maxNewTokens: 6 });
    assert.equal(b.text, a.text);
  });

  it('mavenFromParts names the source, a wrong format, missing and non-finite weights', () => {
    const parts = mavenToParts(model);
    assert.throws(
      () => parseMavenConfig({ ...(parts.configJson as object), format: 'other/9' }, 'x/config.json'),
      /^Error: x\/config\.json: format "other\/9" is not maven-ts\/1/,
    );
    const missing = new Map(parts.weights);
    missing.delete('patch_selector.fc2.bias');
    assert.throws(
      () => mavenFromParts({ ...parts, weights: missing }, { source: 'https://example.org/m' }),
      /^Error: https:\/\/example\.org\/m: checkpoint does not match .*\n {2}missing "patch_selector\.fc2\.bias" \[1\]/,
    );
    const damaged = new Map(parts.weights);
    const bias = damaged.get('patch_selector.fc2.bias')!;
    damaged.set(
      'patch_selector.fc2.bias',
      new HostTensor('float32', bias.shape, new Float32Array([Number.NaN])),
    );
    assert.throws(
      () => mavenFromParts({ ...parts, weights: damaged }),
      (e: unknown) =>
        e instanceof NonFiniteWeightsError &&
        e.tensors === 1 &&
        /"patch_selector\.fc2\.bias"/.test(e.message),
    );
  });

  it('names missing and misshapen weights', () => {
    const weights = new Map(model.weights);
    weights.delete('patch_selector.fc2.bias');
    weights.set('model.norm.weight', new HostTensor('float32', [3], new Float32Array(3)));
    assert.throws(
      () => new MavenModel(model.config, weights, model.tokenizer),
      (e: Error) =>
        /missing "patch_selector\.fc2\.bias" \[1\]/.test(e.message) &&
        /"model\.norm\.weight": expected \[32\], got \[3\]/.test(e.message),
    );
  });
});
