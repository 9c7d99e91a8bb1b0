/** MaVEn's own pieces: vocabulary extension, patch selection, projector, sequence assembly. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compile, Graph, HostTensor, storedRows } from '../../src/engine/index.ts';
import { allocateBudget, keepCount, PatchSelector, topKInOrder } from '../../src/maven/patch-selector.ts';
import { Projector } from '../../src/maven/projector.ts';
import { assembleSequence, embedSequence, slotIds, splitPrompt } from '../../src/maven/sequence.ts';
import { extendVocabulary, visualCode, visualTokenId } from '../../src/maven/vocabulary.ts';
import { ParamInit } from '../../src/models/init.ts';

const vocab = { textVocabSize: 10, visualVocabSize: 6 };

describe('unified vocabulary', () => {
  it('extends embed_tokens and lm_head keeping text rows bit-identical', () => {
    const init = new ParamInit(3);
    init.normal('model.embed_tokens.weight', [10, 4]);
    init.normal('lm_head.weight', [10, 4]);
    init.ones('model.norm.weight', [4]);
    const ext = extendVocabulary(init.params, vocab, {
      tables: ['model.embed_tokens.weight', 'lm_head.weight'],
      seed: 1,
    });
    for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
      const before = init.params.get(name)!.data as Float32Array;
      const after = ext.get(name)!;
      assert.deepEqual(after.shape, [16, 4]);
      assert.deepEqual((after.data as Float32Array).subarray(0, 40), before);
      assert.ok((after.data as Float32Array).subarray(40).some((v) => v !== 0));
    }
    assert.equal(ext.get('model.norm.weight'), init.params.get('model.norm.weight'));
  });

  it('maps codes to ids after the text vocabulary and back', () => {
    assert.equal(visualTokenId(vocab, 0), 10);
    assert.equal(visualTokenId(vocab, 5), 15);
    assert.equal(visualCode(vocab, 15), 5);
    assert.equal(visualCode(vocab, 9), undefined);
    assert.throws(() => visualTokenId(vocab, 6), /outside the codebook/);
  });

  it('refuses a table whose rows are not the text vocabulary', () => {
    const init = new ParamInit(1);
    init.normal('e', [12, 4]);
    assert.throws(
      () => extendVocabulary(init.params, vocab, { tables: ['e'] }),
      /"e" has shape \[12, 4\], expected \[10, width\]/,
    );
  });
});

describe('patch selection', () => {
  it('keeps exactly ⌈ρ·N⌉ patches', () => {
    assert.equal(keepCount(576, 0.25), 144);
    assert.equal(keepCount(100, 0.1), 10);
    assert.equal(keepCount(100, 0.333), 34);
    assert.equal(keepCount(7, 1e-6), 1);
    assert.equal(keepCount(64, 1), 64);
    assert.throws(() => keepCount(10, 0), /keep ratio must be in \(0, 1\]/);
    assert.throws(() => keepCount(10, 1.5), /keep ratio/);
  });

  it('returns the top-k in original spatial order', () => {
    const scores = [0.1, 0.9, -2, 0.5, 0.9, 3, 0];
    assert.deepEqual(topKInOrder(scores, 3), [1, 4, 5]);
    assert.deepEqual(topKInOrder(scores, 1), [5]);
    assert.deepEqual(topKInOrder(scores, 7), [0, 1, 2, 3, 4, 5, 6]);
    for (let trial = 0; trial < 20; trial++) {
      const s = Array.from({ length: 50 }, (_, i) => (Math.sin(i * 12.9898 + trial) * 43758.5453) % 1);
      const k = keepCount(50, 0.25);
      const kept = topKInOrder(s, k);
      assert.equal(kept.length, k);
      assert.deepEqual(
        kept,
        [...kept].sort((a, b) => a - b),
      );
      const threshold = Math.min(...kept.map((i) => s[i]));
      assert.ok(s.every((v, i) => kept.includes(i) || v <= threshold));
    }
  });

  it('spends a global budget across images by score', () => {
    const a = [5, 4, 3, 2];
    const b = [0, 0, 10, 0];
    assert.deepEqual(allocateBudget([a, b], 3), [[0, 1], [2]]);
    assert.deepEqual(allocateBudget([a, b], 3, 1), [[0, 1], [2]]);
    assert.deepEqual(
      allocateBudget(
        [
          [1, 1],
          [0, 0],
        ],
        2,
        1,
      ),
      [[0], [0]],
    );
    assert.throws(() => allocateBudget([a], 5), /exceeds the 4 patches/);
  });

  it('scores each patch with an MLP over concat(patch, h_EOS)', async () => {
    const sel = new PatchSelector({ visionWidth: 3, llmWidth: 2, hiddenSize: 4 });
    const init = { params: sel.init(7) };
    const g = new Graph();
    const patches = g.input('patches', 'float32', ['B', 'N', 3]);
    const hEos = g.input('h', 'float32', ['B', 2]);
    const p = await compile(g, { s: sel.scores(g, patches, hEos) }, { embed: init.params });
    const pv = [0.1, -0.2, 0.3, 0.5, 0.4, -0.1, -0.3, 0.2, 0.9, 0.0, 0.1, 0.2];
    const hv = [0.7, -0.5, 0.2, 0.3];
    const r = await p.run({
      patches: new HostTensor('float32', [2, 2, 3], Float32Array.from(pv)),
      h: new HostTensor('float32', [2, 2], Float32Array.from(hv)),
    });
    const w1 = init.params.get('patch_selector.fc1.weight')!.data as Float32Array;
    const w2 = init.params.get('patch_selector.fc2.weight')!.data as Float32Array;
    const b2 = (init.params.get('patch_selector.fc2.bias')!.data as Float32Array)[0];
    const erf = (x: number) => {
      let s = 0;
      let t = x;
      for (let n = 0; n < 60; n++) {
        s += t / (2 * n + 1);
        t *= (-x * x) / (n + 1);
      }
      return (2 / Math.sqrt(Math.PI)) * s;
    };
    for (let b = 0; b < 2; b++) {
      for (let n = 0; n < 2; n++) {
        const input = [...pv.slice((b * 2 + n) * 3, (b * 2 + n) * 3 + 3), ...hv.slice(b * 2, b * 2 + 2)];
        let out = b2;
        for (let j = 0; j < 4; j++) {
          let h = 0;
          for (let i = 0; i < 5; i++) h += w1[j * 5 + i] * input[i];
          out += w2[j] * 0.5 * h * (1 + erf(h / Math.SQRT2));
        }
        assert.ok(Math.abs((r.s.data as Float32Array)[b * 2 + n] - out) < 1e-5);
      }
    }
  });
});

describe('projector', () => {
  it('is Linear → GELU → Linear with LLaVA names', async () => {
    const proj = new Projector({ visionWidth: 2, llmWidth: 3 });
    assert.deepEqual(
      [...proj.paramShapes().keys()],
      [
        'model.mm_projector.0.weight',
        'model.mm_projector.0.bias',
        'model.mm_projector.2.weight',
        'model.mm_projector.2.bias',
      ],
    );
    const init = { params: proj.init(2) };
    const g = new Graph();
    const x = g.input('x', 'float32', ['N', 2]);
    const p = await compile(g, { y: proj.forward(g, x) }, { embed: init.params });
    const r = await p.run({ x: new HostTensor('float32', [1, 2], Float32Array.of(0.5, -1)) });
    const get = (n: string) => init.params.get(`model.mm_projector.${n}`)!.data as Float32Array;
    const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    const h = [0, 1, 2].map((j) =>
      gelu(get('0.weight')[j * 2] * 0.5 - get('0.weight')[j * 2 + 1] + get('0.bias')[j]),
    );
    const y = [0, 1, 2].map((j) =>
      h.reduce((s, v, i) => s + v * get('2.weight')[j * 3 + i], get('2.bias')[j]),
    );
    // tanh-GELU differs from erf-GELU by < 1e-3 at these magnitudes.
    (r.y.data as Float32Array).forEach((v, j) => {
      assert.ok(Math.abs(v - y[j]) < 1e-3, `${v} vs ${y[j]}`);
    });
  });
});

describe('sequence assembly', () => {
  const opts = { vocabulary: vocab, imageStartId: 8, imageEndId: 9 };
  const img = (d: number[], k: number[], n = 4) => ({ discreteIds: d, keptPatches: k, totalPatches: n });

  it('handles a text-only prompt (0 images)', () => {
    const seq = assembleSequence([[1, 2, 3]], [], opts);
    assert.deepEqual(slotIds(seq), [1, 2, 3]);
    assert.equal(seq.images.length, 0);
  });

  it('lays out one image as <img> discrete ids, kept patches </img>', () => {
    const seq = assembleSequence([[1], [2, 3]], [img([0, 5], [1, 3])], opts);
    assert.deepEqual(slotIds(seq), [1, 8, 10, 15, -1, -1, 9, 2, 3]);
    assert.deepEqual(seq.images[0], {
      start: 1,
      end: 7,
      discrete: [2, 4],
      continuous: [4, 6],
      keptPatches: [1, 3],
      totalPatches: 4,
    });
    const cf = assembleSequence([[1], [2, 3]], [img([0, 5], [1, 3])], { ...opts, order: 'continuous-first' });
    assert.deepEqual(slotIds(cf), [1, 8, -1, -1, 10, 15, 9, 2, 3]);
  });

  it('interleaves 8 images with text and embeds every slot', () => {
    const images = Array.from({ length: 8 }, (_, i) => img([i % 6], [i % 4]));
    const pieces = Array.from({ length: 9 }, (_, i) => [i % 8]);
    const seq = assembleSequence(pieces, images, opts);
    assert.equal(seq.slots.length, 9 + 8 * 4);
    assert.equal(seq.images.length, 8);
    seq.images.forEach((s, i) => {
      assert.deepEqual(seq.slots[s.start], { kind: 'token', id: 8 });
      assert.deepEqual(seq.slots[s.continuous[0]], { kind: 'patch', image: i, index: 0 });
    });
    const table = new HostTensor(
      'float32',
      [16, 2],
      Float32Array.from({ length: 32 }, (_, i) => i),
    );
    const projected = images.map((_, i) => new HostTensor('float32', [1, 2], Float32Array.of(100 + i, -i)));
    const e = embedSequence(seq, storedRows(new Map([['t', table]]), 't', table.shape), projected);
    assert.deepEqual(e.shape, [1, 41, 2]);
    const row = (t: number) => [...(e.data as Float32Array).subarray(t * 2, t * 2 + 2)];
    assert.deepEqual(row(0), [0, 1]); // text id 0
    assert.deepEqual(row(seq.images[3].continuous[0]), [103, -3]);
    assert.deepEqual(row(seq.images[3].discrete[0]), [2 * (10 + 3), 2 * (10 + 3) + 1]);
  });

  it('checks the <image> count against the images, and the limits', () => {
    assert.deepEqual(splitPrompt('a <image> b <image>', 2, 8), ['a ', ' b ', '']);
    assert.throws(
      () => splitPrompt('compare <image> and <image>', 3, 8),
      /has 2 <image> placeholder\(s\) but 3 image\(s\)/,
    );
    assert.throws(() => splitPrompt('<image>'.repeat(9), 9, 8), /at most 8/);
    assert.throws(() => splitPrompt('   ', 0, 8), /the prompt is empty/);
  });
});
