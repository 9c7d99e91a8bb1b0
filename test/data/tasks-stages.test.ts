/**
 * Streaming stage datasets: determinism, resumability, shuffling and batching, and that each
 * stage's examples carry what that stage trains on (masks for stage 1, captions for 2–3, prompts
 * with image placeholders for 4).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { captionBox } from '../../src/data/scene/captions.ts';
import { Rng } from '../../src/data/scene/rng.ts';
import { wallsTouched } from '../../src/data/scene/scene.ts';
import { COLOR_WORD } from '../../src/data/scene/words.ts';
import { exampleText, taskContactSheet } from '../../src/data/tasks/contact-sheet.ts';
import { FASHION_NOUNS, fashionPhrase } from '../../src/data/tasks/fashion.ts';
import { generateExample } from '../../src/data/tasks/registry.ts';
import { contentKey, splitOfContent } from '../../src/data/tasks/splits.ts';
import {
  batches,
  boxQuizExample,
  captionPair,
  captionPairs,
  instructionExamples,
  photoQuizExample,
  selectorExample,
  selectorExamples,
  shuffleBuffer,
  stageBatches,
} from '../../src/data/tasks/stage-datasets.ts';
import { formatTaskStats, taskStats } from '../../src/data/tasks/stats.ts';
import type { ImageSource } from '../../src/data/tasks/task.ts';
import { IMAGE_TOKEN } from '../../src/data/tasks/types.ts';

const fakeFashion: ImageSource = {
  count: 100,
  image: (i) => new Uint8Array(784).fill(i),
  label: (i) => i % 10,
  name: 'fake',
};

const take = <T>(iter: Iterable<T>, n: number): T[] => {
  const out: T[] = [];
  for (const x of iter) {
    out.push(x);
    if (out.length === n) break;
  }
  return out;
};

describe('batches and shuffleBuffer', () => {
  it('batch with or without the short tail', () => {
    assert.deepEqual([...batches([1, 2, 3, 4, 5], 2)], [[1, 2], [3, 4], [5]]);
    assert.deepEqual(
      [...batches([1, 2, 3, 4, 5], 2, { dropLast: true })],
      [
        [1, 2],
        [3, 4],
      ],
    );
    assert.deepEqual([...batches([], 3)], []);
    assert.throws(() => [...batches([1], 0)], /size must be an integer ≥ 1, got 0/);
  });

  it('shuffle: a permutation, deterministic given the rng, local within the buffer', () => {
    const input = Array.from({ length: 100 }, (_, i) => i);
    const a = [...shuffleBuffer(input, 10, Rng.fromKey('sh'))];
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      input,
    );
    assert.notDeepEqual(a, input);
    assert.deepEqual([...shuffleBuffer(input, 10, Rng.fromKey('sh'))], a);
    // An element can come out at most (buffer − 1) places early.
    a.forEach((x, pos) => {
      assert.ok(pos >= x - 9, `${x} at ${pos}`);
    });
    assert.deepEqual([...shuffleBuffer(input, 1, Rng.fromKey('sh'))], input);
    assert.throws(() => [...shuffleBuffer(input, 0, Rng.fromKey('sh'))], /size must be an integer ≥ 1/);
  });
});

describe('stage 1: selector examples', () => {
  it('carry object masks and the union of the objects the statement is about', () => {
    for (const ex of take(selectorExamples({ seed: 5 }), 30)) {
      assert.equal(ex.objectMasks.length, ex.objects.length);
      assert.equal(ex.image.rgb.length, 100 * 100 * 3);
      const union = new Uint8Array(100 * 100);
      for (const i of ex.relevant) {
        for (let p = 0; p < union.length; p++) union[p] |= ex.objectMasks[i][p];
      }
      assert.deepEqual(ex.relevantMask, union);
      // Masked pixels are painted in the object's colour.
      for (const [i, mask] of ex.objectMasks.entries()) {
        const p = mask.indexOf(1);
        assert.ok(p >= 0, 'every object covers some pixels');
        assert.notDeepEqual(
          Array.from(ex.image.rgb.subarray(3 * p, 3 * p + 3)),
          [211, 211, 211],
          `object ${i}`,
        );
      }
      assert.match(ex.statement, /\.$/);
    }
  });

  it('are a pure function of (seed, split, index)', () => {
    const stream = take(selectorExamples({ seed: 2, start: 4, limit: 3 }), 10);
    assert.equal(stream.length, 3);
    assert.deepEqual(stream[1], selectorExample(5, { seed: 2 }));
    assert.notDeepEqual(selectorExample(5, { seed: 3 }).objects, stream[1].objects);
    assert.equal(selectorExample(0, { imageSize: 56 }).image.width, 56);
  });
});

describe('stages 2–3: caption pairs', () => {
  it('pair scene boxes with their exact captions, and mix in photos when given', () => {
    const pairs = take(captionPairs({ fashion: fakeFashion, fashionShare: 0.3 }), 200);
    const photos = pairs.filter((p) => p.source === 'fashion');
    assert.ok(photos.length > 35 && photos.length < 85, `${photos.length} photos`);
    for (const p of pairs) {
      if (p.source === 'scene') {
        assert.ok(p.objects !== undefined);
        assert.equal(p.image.width, 100);
        assert.ok(
          p.caption === captionBox(p.objects, 'scattered') || p.caption === captionBox(p.objects, 'towers'),
        );
      } else {
        assert.equal(p.image.width, 28);
        assert.ok(
          p.caption.includes(
            [
              'T-shirt',
              'trousers',
              'pullover',
              'dress',
              'coat',
              'sandal',
              'shirt',
              'sneaker',
              'bag',
              'ankle boot',
            ][p.label ?? -1],
          ),
        );
      }
    }
    assert.ok(take(captionPairs(), 50).every((p) => p.source === 'scene'));
    assert.deepEqual(captionPair(7, { seed: 1 }), captionPair(7, { seed: 1 }));
  });
});

describe('stage 4c: questions about one box', () => {
  it('ask only what the box answers unambiguously, with the right answers, in the split', () => {
    const kinds = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const q = boxQuizExample(i, { split: 'heldout', maxQuestions: 8 });
      assert.equal(splitOfContent(contentKey([{ kind: 'box', objects: q.objects }])), 'heldout');
      assert.ok(q.turns.length >= 1 && q.turns.length <= 8);
      assert.equal(new Set(q.turns.map((t) => t.question)).size, q.turns.length, 'no question twice');
      for (const { question, answer } of q.turns) {
        kinds.add(question.split(' ').slice(0, 2).join(' '));
        const color = /^What color is the (\w+)\?$/.exec(question);
        const shape = /^What shape is the (\w+) object\?$/.exec(question);
        if (color) {
          const type = color[1] === 'block' ? 'square' : color[1];
          const matches = q.objects.filter((o) => o.type === type);
          assert.equal(matches.length, 1, question);
          assert.equal(answer, COLOR_WORD[matches[0].color]);
        } else if (shape) {
          const matches = q.objects.filter((o) => COLOR_WORD[o.color] === shape[1]);
          assert.equal(matches.length, 1, question);
          assert.equal(answer, matches[0].type);
        } else if (question === 'How many objects are in this box?')
          assert.equal(answer, String(q.objects.length));
        else {
          assert.equal(question, 'Does an object touch the wall?');
          assert.equal(answer, q.objects.some((o) => wallsTouched(o).length > 0) ? 'yes' : 'no');
        }
      }
    }
    assert.deepEqual([...kinds].sort(), ['Does an', 'How many', 'What color', 'What shape']);
    assert.deepEqual(boxQuizExample(7, { seed: 3 }), boxQuizExample(7, { seed: 3 }));
  });

  it('ask about the wall about as often with "yes" as with "no", as box-wall does', () => {
    const answers = { yes: 0, no: 0 };
    for (let i = 0; i < 600; i++)
      for (const t of boxQuizExample(i, { seed: 5, maxQuestions: 8 }).turns)
        if (t.question === 'Does an object touch the wall?') answers[t.answer as 'yes' | 'no']++;
    const share = answers.yes / (answers.yes + answers.no);
    assert.ok(share > 0.4 && share < 0.6, `"yes" ${answers.yes}, "no" ${answers.no}`);
  });

  it('ask at most maxQuestions', () => {
    assert.equal(boxQuizExample(7, { maxQuestions: 1 }).turns.length, 1);
    assert.throws(() => boxQuizExample(0, { maxQuestions: 0 }), /maxQuestions must be an integer ≥ 1/);
  });
});

describe('stage 4: which-image questions about the same photos', () => {
  it('show four photos of different classes and ask where three of them are, rightly', () => {
    const positions = [0, 0, 0, 0];
    for (let i = 0; i < 200; i++) {
      const q = photoQuizExample(i, { fashion: fakeFashion });
      assert.equal(q.images.length, 4);
      assert.equal(new Set(q.labels).size, 4, 'four different classes');
      // fakeFashion's image i is filled with the byte i, and its label is i % 10.
      for (const [k, image] of q.images.entries())
        assert.equal(image.rgb[0] % 10, q.labels[k], `quiz ${i} image ${k}`);
      assert.equal(q.turns.length, 3);
      const asked = q.turns.map((t) => {
        const m = /^Which image shows (.+)\? Answer with the image's number \(1–4\)\.$/.exec(t.question);
        assert.ok(m, t.question);
        const label = FASHION_NOUNS.findIndex((_, l) => fashionPhrase(l) === m[1]);
        assert.equal(t.answer, String(q.labels.indexOf(label) + 1), t.question);
        positions[Number(t.answer) - 1]++;
        return label;
      });
      assert.equal(new Set(asked).size, 3, 'no class asked twice');
    }
    // Every position answers about a quarter of the questions (600 in all).
    assert.ok(
      positions.every((n) => n > 110 && n < 190),
      `answers per image: ${positions.join(', ')}`,
    );
    assert.deepEqual(
      photoQuizExample(7, { seed: 3, fashion: fakeFashion }),
      photoQuizExample(7, { seed: 3, fashion: fakeFashion }),
    );
    assert.notDeepEqual(
      photoQuizExample(7, { fashion: fakeFashion }).labels,
      photoQuizExample(8, { fashion: fakeFashion }).labels,
    );
    assert.throws(() => photoQuizExample(0), /photoQuizExample: needs Fashion-MNIST photos/);
  });
});

describe('stage 4: instruction examples', () => {
  it('mix the tasks, with one image per placeholder', () => {
    const examples = take(instructionExamples({ fashion: fakeFashion, split: 'heldout', limit: 80 }), 100);
    assert.equal(examples.length, 80);
    const tasks = new Set(examples.map((e) => e.task));
    assert.ok(tasks.size >= 7, `tasks ${[...tasks]}`);
    for (const e of examples) {
      assert.equal(e.split, 'heldout');
      assert.equal(e.prompt.split(IMAGE_TOKEN).length - 1, e.images.length);
    }
    const onlyScenes = take(instructionExamples({ limit: 40 }), 40);
    assert.ok(onlyScenes.every((e) => !e.task.startsWith('fashion')));
    const weighted = take(instructionExamples({ taskWeights: { 'motion-direction': 1 }, limit: 5 }), 5);
    assert.ok(weighted.every((e) => e.task === 'motion-direction'));
    assert.throws(
      () => take(instructionExamples({ taskWeights: { 'fashion-count': 1 } }), 1),
      /needs the fashion option/,
    );
  });
});

describe('stageBatches', () => {
  it('yields deterministic shuffled batches for every stage', () => {
    const s1 = take(stageBatches(1, { batchSize: 4, seed: 9, shuffle: 8 }), 2);
    assert.deepEqual(
      s1.map((b) => b.length),
      [4, 4],
    );
    assert.deepEqual(
      take(stageBatches(1, { batchSize: 4, seed: 9, shuffle: 8 }), 2).map((b) => b.map((e) => e.key)),
      s1.map((b) => b.map((e) => e.key)),
    );
    const keys = s1.flat().map((e) => e.key);
    assert.notDeepEqual(
      keys,
      [...keys].sort((a, b) => Number(a.split('/')[2]) - Number(b.split('/')[2])),
      'shuffled',
    );
    const s2 = take(stageBatches(2, { batchSize: 3, limit: 7 }), 10);
    assert.deepEqual(
      s2.map((b) => b.length),
      [3, 3, 1],
    );
    const s4 = take(stageBatches(4, { batchSize: 2, seed: 1 }), 1)[0];
    assert.ok(s4.every((e) => typeof e.answer === 'string' && e.images.length > 0));
    assert.throws(() => stageBatches(5 as 4, { batchSize: 1 }), /stage must be 1, 2, 3 or 4/);
  });
});

describe('data statistics and contact sheet', () => {
  it('count examples and answers per task and split', () => {
    const stats = taskStats({
      perTask: 12,
      tasks: ['what-changed', 'nlvr-statement', 'fashion-same'],
      fashion: { train: fakeFashion },
    });
    // fashion-same has a source only for 'train', so its held-out row is left out.
    assert.deepEqual(
      stats.map((s) => `${s.task}/${s.split}`),
      [
        'what-changed/train',
        'what-changed/heldout',
        'nlvr-statement/train',
        'nlvr-statement/heldout',
        'fashion-same/train',
      ],
    );
    for (const s of stats) {
      assert.equal(s.examples, 12);
      assert.equal(
        Object.values(s.answers).reduce((a, b) => a + b, 0),
        12,
      );
    }
    const nlvr = stats[2].templates ?? {};
    assert.equal(
      Object.values(nlvr).reduce((a, [n]) => a + n, 0),
      12,
    );
    const table = formatTaskStats(stats);
    assert.match(table, /what-changed\s+visual-relation-inference\s+heldout\s+12/);
    assert.match(table, /train multi-image-reasoning\s+24/);
  });

  it('draws a PNG sheet with each example’s question and answer', async () => {
    const cloze = generateExample('sequence-completion', 'train', 0);
    const lines = exampleText(cloze);
    assert.ok(lines.includes(`answer: ${cloze.answer}`));
    assert.ok(lines.every((l) => !l.includes(IMAGE_TOKEN) && l.length <= 60));
    const png = await taskContactSheet([
      cloze,
      generateExample('fashion-count', 'train', 0, { fashion: fakeFashion }),
    ]);
    assert.deepEqual(Array.from(png.subarray(0, 4)), [0x89, 0x50, 0x4e, 0x47]);
  });
});
