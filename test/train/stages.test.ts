/** The four MaVEn stages on a small random model: each trains exactly its parameters and learns. */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { collateSelector, IGNORE_INDEX } from '../../src/data/collate.ts';
import type { LabelledNlvrExample } from '../../src/data/tasks/nlvr-dev.ts';
import { selectorExample } from '../../src/data/tasks/stage-datasets.ts';
import type { ImageSource } from '../../src/data/tasks/task.ts';
import { compile, Graph, HostTensor } from '../../src/engine/index.ts';
import type { MavenModel } from '../../src/maven/model.ts';
import type { EncodeOptions, TextTokenizer } from '../../src/models/tokenizer.ts';
import { precisionRecall, rocAuc } from '../../src/train/metrics.ts';
import { collateMultimodal, type MultimodalLayout } from '../../src/train/multimodal.ts';
import { type StageDefinition, stageTrainer } from '../../src/train/stage.ts';
import { LENGTH_GROUP_WINDOW, type MavenStageOptions } from '../../src/train/stages/common.ts';
import { selectorStage } from '../../src/train/stages/stage1-selector.ts';
import { visualEmbeddingStage } from '../../src/train/stages/stage2-visual-embeddings.ts';
import { projectorStage } from '../../src/train/stages/stage3-projector.ts';
import { instructionStage, STAGE4_FROZEN } from '../../src/train/stages/stage4-instruction.ts';
import { ROUTING_PHASES, routingStage } from '../../src/train/stages/stage4a-routing.ts';
import { readBoxesStage } from '../../src/train/stages/stage4c-read-boxes.ts';
import { smallModel } from '../maven/small-model.ts';

const copy = (m: ReadonlyMap<string, HostTensor>) =>
  new Map([...m].map(([k, v]) => [k, Float32Array.from(v.data as Float32Array)]));

/** Train `steps` steps on the stage's first batch, repeated; return first and last loss. */
async function trainOnOneBatch(def: StageDefinition, steps: number) {
  const trainer = await stageTrainer(def);
  const batch = (await def.batches(0).next()).value as Record<string, HostTensor>;
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await trainer.trainStep(batch)).loss);
  return { trainer, losses };
}

function checkOnlyTrainable(
  def: StageDefinition,
  before: Map<string, Float32Array>,
  after: ReadonlyMap<string, HostTensor>,
) {
  let changed = 0;
  for (const [name, value] of after) {
    const same = Buffer.from((value.data as Float32Array).buffer).equals(
      Buffer.from(before.get(name)!.buffer),
    );
    if (def.trainable(name)) changed += same ? 0 : 1;
    else assert.ok(same, `frozen ${name} changed`);
  }
  assert.ok(changed > 0, 'no trainable parameter changed');
}

/**
 * Checks a batch of box quizzes (stage 4c, stage 4's boxQuizShare): one image per example, and
 * more answers under the loss than examples (every box answers its count, most of them more).
 */
function checkBoxQuizBatch(feeds: Record<string, HostTensor>, model: MavenModel): void {
  const [B, T] = feeds.ids.shape;
  const vt = model.config.textVocabSize;
  const eos = model.tokenizer.eosId;
  let answers = 0;
  for (let b = 0; b < B; b++) {
    let ids = 0;
    for (let t = 0; t < T; t++) {
      if (Number(feeds.ids.data[b * T + t]) >= vt) ids++;
      if (Number(feeds.targets.data[b * T + t]) === eos) answers++;
    }
    assert.equal(ids, model.config.seed.qformer.numQueryTokens, `example ${b}: one image`);
  }
  assert.ok(answers > B, `${answers} answers in ${B} examples`);
}

/** A 10-word text vocabulary, 4 codes, `<img>` 8, `</img>` 9, 2-wide patch features. */
const TOY_LAYOUT: MultimodalLayout = {
  vocabulary: { textVocabSize: 10, visualVocabSize: 4 },
  imageStartId: 8,
  imageEndId: 9,
  order: 'discrete-first',
  padId: 0,
  visionWidth: 2,
};

describe('MaVEn training stages', () => {
  let model: MavenModel;
  let options: MavenStageOptions;
  before(() => {
    model = smallModel();
    options = {
      config: model.config,
      weights: model.hostWeights(),
      tokenizer: model.tokenizer,
      steps: 20,
      batchSize: 4,
      lr: 3e-3,
      seed: 1,
    };
  });

  it('collates a multimodal example position by position', () => {
    const feats = new HostTensor('float32', [2, 2], Float32Array.of(1, 2, 3, 4));
    const b = collateMultimodal(
      [
        {
          pieces: [[1], [5]],
          images: [{ discreteIds: [0, 3], keptPatches: [4, 7], totalPatches: 9, keptFeatures: feats }],
          answer: [6, 2],
        },
      ],
      TOY_LAYOUT,
    );
    // bos <img> v0 v3 p p </img> 5 | 6 2
    assert.deepEqual([...b.ids.data].map(Number), [1, 8, 10, 13, 0, 0, 9, 5, 6, 2]);
    assert.deepEqual([...b.is_patch.data], [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]);
    assert.deepEqual([...b.patch_index.data].map(Number), [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    const I = IGNORE_INDEX;
    assert.deepEqual([...b.targets.data].map(Number), [I, I, I, I, I, I, I, 6, 2, I]);
    assert.deepEqual([...b.patch_features.data], [1, 2, 3, 4]);
  });

  it('collates follow-up questions with the loss on every answer and no question', () => {
    const b = collateMultimodal(
      [
        {
          pieces: [[1, 5]],
          images: [],
          answer: [6, 2],
          followUps: [
            { question: [3, 4], answer: [7, 2] },
            { question: [5], answer: [6, 2] },
          ],
        },
      ],
      TOY_LAYOUT,
    );
    // bos 5 | 6 2 | 3 4 | 7 2 | 5 | 6 2: each target sits one position before its token.
    assert.deepEqual([...b.ids.data].map(Number), [1, 5, 6, 2, 3, 4, 7, 2, 5, 6, 2]);
    const I = IGNORE_INDEX;
    assert.deepEqual([...b.targets.data].map(Number), [I, 6, 2, I, I, 7, 2, I, 6, 2, I]);
  });

  it('stage 4c: one box per example, several questions about it, the loss on each answer', async () => {
    const texts = new RecordingTokenizer(model.tokenizer);
    const def = readBoxesStage({ ...options, tokenizer: texts, singleImageModes: { hybrid: 1 } });
    assert.equal(def.name, 'stage4c-read-boxes');
    checkBoxQuizBatch((await def.batches(0).next()).value as Record<string, HostTensor>, model);
    assert.ok(
      texts.texts.some((t) => /^ (what color|what shape|how many|does an)/i.test(t)),
      'follow-up questions encoded',
    );
    for (const name of def.params.keys())
      assert.equal(def.trainable(name), instructionStage(options).trainable(name));
  });

  it('stage 1 trains only the selector, and its loss falls', async () => {
    const def = selectorStage(options);
    const before = copy(def.params);
    const { trainer, losses } = await trainOnOneBatch(def, 15);
    assert.ok(losses[14] < losses[0] * 0.8, `${losses[0]} → ${losses[14]}`);
    checkOnlyTrainable(def, before, trainer.parameters());
    const weights = trainer.parameters();
    const metrics = await def.evaluate!(weights);
    // The same held-out patches scored here: 64 examples of the held-out split, 16 at a time.
    const g = new Graph();
    const { logits } = def.build(g).metrics!;
    const program = await compile(
      g,
      { logits },
      { embed: new Map([...g.params.keys()].map((n) => [n, weights.get(n)!])) },
    );
    const scores: number[] = [];
    const labels: boolean[] = [];
    const collate = { preprocess: model.preprocessConfig(), patchSize: model.config.vision.patchSize };
    for (let k = 0; k < 4; k++) {
      const examples = Array.from({ length: 16 }, (_, i) =>
        selectorExample(k * 16 + i, { seed: options.seed, split: 'heldout' }),
      );
      const batch = collateSelector(examples, collate);
      scores.push(...((await program.run({ pixels: batch.pixels })).logits.data as Float32Array));
      labels.push(...[...(batch.labels.data as Float32Array)].map((l) => l > 0.5));
    }
    // AUC by its definition, over every (positive, negative) pair: P(positive outscores negative), ties ½.
    const pos = scores.filter((_, i) => labels[i]);
    const neg = scores.filter((_, i) => !labels[i]);
    let wins = 0;
    for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
    const auc = wins / (pos.length * neg.length);
    assert.ok(Math.abs(metrics.auc - auc) < 1e-12, `stage AUC ${metrics.auc}, by pairs ${auc}`);
    const tp = scores.filter((s, i) => s > 0 && labels[i]).length;
    assert.equal(metrics.precision, tp / scores.filter((s) => s > 0).length);
    assert.equal(metrics.recall, tp / pos.length);
    assert.equal(metrics.positiveShare, pos.length / scores.length);
    // Fifteen steps on one training batch already rank held-out object patches well above
    // chance (untrained: 0.49; trained: 0.79).
    assert.ok(metrics.auc > 0.7, `held-out AUC ${metrics.auc}`);
  });

  it('stage 2 trains only the visual rows; text rows stay bit-identical after stitching', async () => {
    const def = visualEmbeddingStage(options);
    const before = copy(def.params);
    const { trainer, losses } = await trainOnOneBatch(def, 15);
    assert.ok(losses[14] < losses[0], `${losses[0]} → ${losses[14]}`);
    checkOnlyTrainable(def, before, trainer.parameters());
    const stitched = def.finalize!(trainer.parameters());
    const table = stitched.get('model.embed_tokens.weight')!;
    const vt = model.config.textVocabSize;
    const d = model.config.llm.hiddenSize;
    assert.deepEqual(table.shape, [vt + model.config.seed.codebookSize, d]);
    const original = model.hostWeights().get('model.embed_tokens.weight')!.data as Float32Array;
    assert.deepEqual((table.data as Float32Array).subarray(0, vt * d), original.subarray(0, vt * d));
    assert.notDeepEqual((table.data as Float32Array).subarray(vt * d), original.subarray(vt * d));
  });

  it('stage 3 trains only the projector on selected continuous tokens', async () => {
    const def = projectorStage(options);
    const before = copy(def.params);
    const { trainer, losses } = await trainOnOneBatch(def, 15);
    assert.ok(losses[14] < losses[0], `${losses[0]} → ${losses[14]}`);
    checkOnlyTrainable(def, before, trainer.parameters());
    assert.ok(
      [...trainer.parameters().keys()]
        .filter((n) => def.trainable(n))
        .every((n) => n.startsWith('model.mm_projector.')),
    );
  });

  it('stage 4 trains the LLM and projector, never the encoders or selector', async () => {
    const def = instructionStage(options);
    const before = copy(def.params);
    const { trainer, losses } = await trainOnOneBatch(def, 15);
    assert.ok(losses[14] < losses[0] * 0.8, `${losses[0]} → ${losses[14]}`);
    checkOnlyTrainable(def, before, trainer.parameters());
    for (const prefix of STAGE4_FROZEN)
      assert.ok([...def.params.keys()].some((n) => n.startsWith(prefix)) && !def.trainable(`${prefix}x`));
  });

  it('stage 3 with trainLlm trains the LLM too, never the encoders or selector', async () => {
    const def = projectorStage({ ...options, trainLlm: true });
    const before = copy(def.params);
    const { trainer, losses } = await trainOnOneBatch(def, 15);
    assert.ok(losses[14] < losses[0] * 0.8, `${losses[0]} → ${losses[14]}`);
    checkOnlyTrainable(def, before, trainer.parameters());
    assert.ok(
      def.trainable('model.layers.0.self_attn.q_proj.weight') && def.trainable('model.mm_projector.0.weight'),
    );
    for (const prefix of STAGE4_FROZEN) assert.ok(!def.trainable(`${prefix}x`));
  });

  it('singleImageModes: stage 3 and 4 single-image examples come in each encoding', async () => {
    const vt = model.config.textVocabSize;
    const q = model.config.seed.qformer.numQueryTokens;
    const n = (model.config.vision.imageSize / model.config.vision.patchSize) ** 2;
    const kept = Math.ceil(model.config.keepRatio * n);
    /** Per example of a batch: visual ids and patch positions in it. */
    const layoutOf = (feeds: Record<string, HostTensor>) => {
      const [B, T] = feeds.ids.shape;
      return Array.from({ length: B }, (_, b) => {
        let ids = 0;
        let patches = 0;
        for (let t = 0; t < T; t++) {
          if (Number(feeds.ids.data[b * T + t]) >= vt) ids++;
          patches += (feeds.is_patch.data as Float32Array)[b * T + t];
        }
        return `${ids}/${patches}`;
      });
    };
    const mix = { hybrid: 1, 'continuous-only': 1, 'discrete-only': 1 };
    // Stage 3: every example is one image with its caption.
    const seen3 = new Set<string>();
    const it3 = projectorStage({ ...options, trainLlm: true, singleImageModes: mix }).batches(0);
    for (let i = 0; i < 4; i++) for (const l of layoutOf((await it3.next()).value!)) seen3.add(l);
    assert.deepEqual([...seen3].sort(), [`${q}/${kept}`, `${q}/0`, `0/${n}`].sort());
    // Without the option stage 3 is the paper's: kept patches only, no ids.
    const paper = new Set(layoutOf((await projectorStage(options).batches(0).next()).value!));
    assert.deepEqual([...paper], [`0/${kept}`]);
    // Stage 4: single-image questions only, so every example is one image in one of the modes.
    const it4 = instructionStage({
      ...options,
      taskWeights: { 'box-count': 1, 'box-wall': 1 },
      singleImageModes: mix,
    }).batches(0);
    const seen4 = new Set<string>();
    for (let i = 0; i < 4; i++) for (const l of layoutOf((await it4.next()).value!)) seen4.add(l);
    assert.deepEqual([...seen4].sort(), [`${q}/${kept}`, `${q}/0`, `0/${n}`].sort());
  });

  it('stage 4a: three photos per example, every one discrete-only; trains what stage 4 trains', async () => {
    // Photos that differ by class (a grey level per label), ten of each class.
    const fashion = {
      count: 100,
      image: (i: number) => new Uint8Array(28 * 28).fill(20 + 20 * (i % 10)),
      label: (i: number) => i % 10,
      name: 'stub',
    };
    assert.throws(
      () => routingStage(options, ROUTING_PHASES.find),
      /stage4a-find-image: needs Fashion-MNIST photos/,
    );
    const def = routingStage({ ...options, fashion }, ROUTING_PHASES.find);
    assert.equal(def.name, 'stage4a-find-image');
    const vt = model.config.textVocabSize;
    const q = model.config.seed.qformer.numQueryTokens;
    const feeds = (await def.batches(0).next()).value as Record<string, HostTensor>;
    const [B, T] = feeds.ids.shape;
    for (let b = 0; b < B; b++) {
      let ids = 0;
      let patches = 0;
      for (let t = 0; t < T; t++) {
        if (Number(feeds.ids.data[b * T + t]) >= vt) ids++;
        patches += (feeds.is_patch.data as Float32Array)[b * T + t];
      }
      assert.deepEqual([ids, patches], [3 * q, 0], `example ${b}`);
    }
    for (const name of def.params.keys())
      assert.equal(def.trainable(name), instructionStage(options).trainable(name));
  });

  it('batches are deterministic and resumable by step', async () => {
    const def = projectorStage(options);
    const it0 = def.batches(0);
    await it0.next();
    await it0.next();
    const third = (await it0.next()).value as Record<string, HostTensor>;
    const resumed = (await def.batches(2).next()).value as Record<string, HostTensor>;
    assert.deepEqual([...resumed.ids.data], [...third.ids.data]);
    assert.deepEqual([...resumed.patch_features.data], [...third.patch_features.data]);
  });
});

/** Delegates to a tokenizer and records every text it encodes (prompt pieces and answers). */
class RecordingTokenizer implements TextTokenizer {
  readonly texts: string[] = [];
  constructor(private readonly inner: TextTokenizer) {}
  get vocabSize() {
    return this.inner.vocabSize;
  }
  get bosId() {
    return this.inner.bosId;
  }
  get eosId() {
    return this.inner.eosId;
  }
  get padId() {
    return this.inner.padId;
  }
  encode(text: string, options?: EncodeOptions): number[] {
    this.texts.push(text);
    return this.inner.encode(text, options);
  }
  decode(ids: readonly number[]): string {
    return this.inner.decode(ids);
  }
  tokenToId(token: string): number | undefined {
    return this.inner.tokenToId(token);
  }
  idToToken(id: number): string | undefined {
    return this.inner.idToToken(id);
  }
  addSpecialTokens(tokens: string[]): number[] {
    return this.inner.addSpecialTokens(tokens);
  }
  toJSON(): unknown {
    return this.inner.toJSON();
  }
}

describe('stage 4 with real NLVR statements', () => {
  // A marker word no generated task uses, so a dev sentence is recognisable in what is encoded.
  const MARKER = 'zzdev';
  const box = (color: 'Black' | 'Yellow' | '#0099ff') => [
    { x_loc: 30, y_loc: 30, size: 30, type: 'square' as const, color },
  ];
  const dev: LabelledNlvrExample[] = [0, 1, 2, 3].map((i) => ({
    identifier: `dev-${i}`,
    sentence: `${MARKER} sentence ${i}`,
    label: i % 2 === 0,
    boxes: [box('Black'), box('Yellow'), box('#0099ff')],
  }));
  const BATCHES = 3;
  const BATCH = 4;
  // Examples the stage tokenises to give its first batches: a whole window of batches is drawn
  // and grouped by length at once (lengthGroupedFrom).
  const DRAWN = Math.ceil(BATCHES / LENGTH_GROUP_WINDOW) * LENGTH_GROUP_WINDOW * BATCH;
  const DRAWN_FOR_ONE = LENGTH_GROUP_WINDOW * BATCH;
  let model: MavenModel;
  before(() => {
    model = smallModel();
  });
  const stageWith = (
    realStatements: { examples: LabelledNlvrExample[]; share: number } | undefined,
    more: {
      captionShare?: number;
      boxQuizShare?: number;
      photoQuizShare?: number;
      fashion?: ImageSource;
    } = {},
  ) => {
    const tokenizer = new RecordingTokenizer(model.tokenizer);
    const def = instructionStage({
      config: model.config,
      weights: model.hostWeights(),
      tokenizer,
      steps: 10,
      batchSize: BATCH,
      lr: 1e-3,
      seed: 1,
      realStatements,
      ...more,
    });
    return { def, tokenizer };
  };
  /** The first BATCHES batches, and how many of their examples were dev sentences. */
  async function draw(realStatements: { examples: LabelledNlvrExample[]; share: number } | undefined) {
    const { def, tokenizer } = stageWith(realStatements);
    const it = def.batches(0);
    const batches: Record<string, HostTensor>[] = [];
    for (let i = 0; i < BATCHES; i++) batches.push((await it.next()).value as Record<string, HostTensor>);
    const devPieces = tokenizer.texts.filter((t) => t.includes(MARKER));
    return { def, batches, devPieces, texts: tokenizer.texts };
  }
  const sameBatches = (a: Record<string, HostTensor>[], b: Record<string, HostTensor>[]) => {
    assert.equal(a.length, b.length);
    a.forEach((batch, i) => {
      assert.deepEqual(Object.keys(batch).sort(), Object.keys(b[i]).sort());
      for (const k of Object.keys(batch)) assert.deepEqual(batch[k].data, b[i][k].data, `batch ${i}: ${k}`);
    });
  };

  it('share 0: no dev sentence, the same batches as without the option', async () => {
    const none = await draw(undefined);
    const zero = await draw({ examples: dev, share: 0 });
    assert.equal(zero.devPieces.length, 0);
    sameBatches(zero.batches, none.batches);
    assert.doesNotMatch(zero.def.description, /real NLVR/);
  });

  it('share 1: every example is a dev sentence with a true/false answer', async () => {
    const all = await draw({ examples: dev, share: 1 });
    // One prompt piece per example holds the sentence (the text after the last image).
    assert.equal(all.devPieces.length, DRAWN);
    assert.ok(all.devPieces.every((t) => /Is this statement true or false\?\nzzdev sentence [0-3]$/.test(t)));
    const answers = all.texts.filter((t) => t === ' true' || t === ' false');
    assert.equal(answers.length, DRAWN);
    assert.match(all.def.description, /100 % real NLVR dev sentences/);
  });

  it('share 0.5 mixes both; no dev examples at all falls back to the task mix', async () => {
    const half = await draw({ examples: dev, share: 0.5 });
    assert.ok(
      half.devPieces.length > 0 && half.devPieces.length < DRAWN,
      `${half.devPieces.length} of ${DRAWN} examples from dev`,
    );
    const none = await draw(undefined);
    const empty = await draw({ examples: [], share: 1 });
    assert.equal(empty.devPieces.length, 0);
    sameBatches(empty.batches, none.batches);
  });

  it('captionShare 1: every example is one image and its caption', async () => {
    const { def, tokenizer } = stageWith(undefined, { captionShare: 1 });
    const feeds = (await def.batches(0).next()).value as Record<string, HostTensor>;
    assert.equal(feeds.ids.shape[0], BATCH);
    // Per example: the empty pieces around one image, then the caption as the answer.
    const answers = tokenizer.texts.filter((t) => t.trim().length > 0);
    assert.equal(answers.length, DRAWN_FOR_ONE);
    assert.ok(
      answers.every((t) => /^ [A-Z].*\.$/.test(t)),
      answers.join(' | '),
    );
    assert.match(def.description, /100 % captions/);
    assert.throws(() => stageWith(undefined, { captionShare: 2 }), /captionShare must be in \[0, 1\], got 2/);
  });

  it('boxQuizShare 1: every example is one box and several questions about it, each answered', async () => {
    const { def, tokenizer } = stageWith(undefined, { boxQuizShare: 1 });
    const feeds = (await def.batches(0).next()).value as Record<string, HostTensor>;
    assert.equal(feeds.ids.shape[0], BATCH);
    checkBoxQuizBatch(feeds, model);
    const questions = tokenizer.texts.filter((t) => /^\s*(what color|what shape|how many|does an)/i.test(t));
    assert.ok(questions.length > BATCH, questions.join(' | '));
    assert.match(def.description, /100 % box quizzes/);
    assert.throws(
      () => stageWith(undefined, { boxQuizShare: -1 }),
      /boxQuizShare must be in \[0, 1\], got -1/,
    );
  });

  it('photoQuizShare 1: every example is four photos and three which-image questions, each answered', async () => {
    const fashion: ImageSource = {
      count: 100,
      image: (i: number) => new Uint8Array(28 * 28).fill(20 + 20 * (i % 10)),
      label: (i: number) => i % 10,
      name: 'stub',
    };
    assert.throws(
      () => stageWith(undefined, { photoQuizShare: 0.5 }),
      /photoQuizShare needs Fashion-MNIST photos/,
    );
    const { def, tokenizer } = stageWith(undefined, { photoQuizShare: 1, fashion });
    const feeds = (await def.batches(0).next()).value as Record<string, HostTensor>;
    const [B, T] = feeds.ids.shape;
    assert.equal(B, BATCH);
    const vt = model.config.textVocabSize;
    const q = model.config.seed.qformer.numQueryTokens;
    for (let b = 0; b < B; b++) {
      let ids = 0;
      let answers = 0;
      for (let t = 0; t < T; t++) {
        if (Number(feeds.ids.data[b * T + t]) >= vt) ids++;
        if (Number(feeds.targets.data[b * T + t]) === model.tokenizer.eosId) answers++;
      }
      // Images are hybrid by default: their discrete ids count 4 images.
      assert.deepEqual([ids, answers], [4 * q, 3], `example ${b}`);
    }
    const questions = tokenizer.texts.filter((t) => /Which image shows/.test(t));
    assert.equal(questions.length, 3 * DRAWN_FOR_ONE, questions.join(' | '));
    assert.match(def.description, /100 % photo quizzes/);
    assert.throws(
      () => stageWith(undefined, { photoQuizShare: 2, fashion }),
      /photoQuizShare must be in \[0, 1\], got 2/,
    );
  });

  it('rejects a share outside [0, 1]', () => {
    for (const share of [-0.1, 1.5, Number.NaN]) {
      assert.throws(
        () => stageWith({ examples: dev, share }),
        new RegExp(`stage4-instruction: realStatements\\.share must be in \\[0, 1\\], got ${share}`),
      );
    }
  });
});

describe('selector metrics', () => {
  it('ROC AUC and precision/recall on hand-made cases', () => {
    assert.equal(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
    assert.equal(rocAuc([1, 2, 3], [0, 1, 1]), 1);
    assert.equal(rocAuc([1, 1], [0, 1]), 0.5);
    assert.ok(Number.isNaN(rocAuc([1, 2], [1, 1])));
    assert.deepEqual(precisionRecall([2, -1, 3, -2], [1, 1, 0, 0]), { precision: 0.5, recall: 0.5 });
  });
});
