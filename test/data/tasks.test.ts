/**
 * Multi-image tasks. Every label is recomputed here from the example's boxes (or the photo
 * source's labels) by plain code written for the test; splits are checked by hashing the
 * rendered pixels of every example in both splits.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { dataSkipReason } from '../../src/data/data-dir.ts';
import { FASHION_CLASSES, idxImage, loadFashionMnist } from '../../src/data/fashion-mnist.ts';
import { evaluate } from '../../src/data/scene/evaluate.ts';
import type { Box, SceneObject } from '../../src/data/scene/scene.ts';
import { FASHION_NOUNS } from '../../src/data/tasks/fashion.ts';
import {
  FASHION_TASK_NAMES,
  generateExample,
  planExample,
  renderExample,
  SCENE_TASK_NAMES,
  TASK_NAMES,
} from '../../src/data/tasks/registry.ts';
import { contentKey, splitOfContent, visualKey } from '../../src/data/tasks/splits.ts';
import type { ImageSource } from '../../src/data/tasks/task.ts';
import {
  type ExamplePlan,
  IMAGE_TOKEN,
  OPTION_LETTERS,
  type TaskExample,
} from '../../src/data/tasks/types.ts';
import { IMAGE_PLACEHOLDER } from '../../src/maven/sequence.ts';

/** A fake photo source: 30 images per class, each image's bytes encode its index. */
const fakeFashion: ImageSource = {
  count: 300,
  image: (i) => new Uint8Array(784).fill(i % 251),
  label: (i) => i % 10,
  name: 'fake',
};

const json = (o: SceneObject) => JSON.stringify([o.type, o.color, o.size, o.x_loc, o.y_loc]);

/** Objects only in `a` and only in `b`, by plain counting. */
function naiveDiff(a: Box, b: Box): { gone: SceneObject[]; came: SceneObject[] } {
  const gone = a.filter(
    (o) => b.filter((p) => json(p) === json(o)).length < a.filter((p) => json(p) === json(o)).length,
  );
  const came = b.filter(
    (o) => a.filter((p) => json(p) === json(o)).length < b.filter((p) => json(p) === json(o)).length,
  );
  return { gone, came };
}

const COLOR_WORDS: Record<string, string> = { Black: 'black', Yellow: 'yellow', '#0099ff': 'blue' };
const SIZE_WORDS: Record<number, string> = { 10: 'small', 20: 'medium-sized', 30: 'large' };

/** The right what-changed sentence, worked out by hand from the two boxes. */
function expectedChange(before: Box, after: Box): string {
  const { gone, came } = naiveDiff(before, after);
  const name = (o: SceneObject) => `${SIZE_WORDS[o.size]} ${COLOR_WORDS[o.color]} ${o.type}`;
  if (gone.length === 0 && came.length === 1) return `a ${name(came[0])} was added`;
  if (gone.length === 1 && came.length === 0) return `the ${name(gone[0])} was removed`;
  assert.equal(gone.length, 1);
  assert.equal(came.length, 1);
  const [g, c] = [gone[0], came[0]];
  if (g.x_loc === c.x_loc && g.y_loc === c.y_loc && g.type === c.type)
    return `the ${name(g)} turned ${COLOR_WORDS[c.color]}`;
  if (g.x_loc === c.x_loc && g.y_loc === c.y_loc && g.color === c.color)
    return `the ${name(g)} became a ${c.type}`;
  const dx = c.x_loc - g.x_loc;
  const dy = c.y_loc - g.y_loc;
  assert.ok(dx === 0 || dy === 0, 'moves are along one axis');
  const dir = dx < 0 ? 'left' : dx > 0 ? 'right' : dy < 0 ? 'up' : 'down';
  return `the ${name(g)} moved ${dir}`;
}

/** Is the 4-frame sequence a valid continuation, by the rule's plain definition? */
function naiveFollows(rule: string, frames: Box[]): boolean {
  const diffs = frames.slice(1).map((f, t) => naiveDiff(frames[t], f));
  if (rule === 'count-up') {
    if (!diffs.every((d) => d.gone.length === 0 && d.came.length === 1)) return false;
    const kinds = new Set(diffs.map((d) => `${d.came[0].color}${d.came[0].type}`));
    return kinds.size === 1;
  }
  if (!diffs.every((d) => d.gone.length === 1 && d.came.length === 1)) return false;
  for (let t = 1; t < diffs.length; t++)
    if (json(diffs[t].gone[0]) !== json(diffs[t - 1].came[0])) return false;
  if (rule === 'moving') {
    const steps = diffs.map((d) =>
      [d.came[0].x_loc - d.gone[0].x_loc, d.came[0].y_loc - d.gone[0].y_loc].join(),
    );
    const sameLook = diffs.every(
      (d) => d.came[0].type === d.gone[0].type && d.came[0].color === d.gone[0].color,
    );
    return sameLook && new Set(steps).size === 1 && steps[0] !== '0,0';
  }
  // color-cycle: the mover keeps its place and shape; colours c0 c1 c2 c0.
  const colors = [diffs[0].gone[0].color, ...diffs.map((d) => d.came[0].color)];
  const samePlace = diffs.every(
    (d) => d.came[0].x_loc === d.gone[0].x_loc && d.came[0].type === d.gone[0].type,
  );
  return samePlace && new Set(colors.slice(0, 3)).size === 3 && colors[3] === colors[0];
}

const ORDINAL_INDEX: Record<string, number> = { first: 0, second: 1, third: 2 };
/** Plural noun → shape ('' for "objects", which names every shape). */
const NOUN_SHAPES: Record<string, string> = {
  objects: '',
  blocks: 'square',
  squares: 'square',
  circles: 'circle',
  triangles: 'triangle',
};

/** Does `o` match a plural noun phrase such as "large yellow circles touching the right wall"? */
function naiveMatches(o: SceneObject, phrase: string): boolean {
  const wallMatch =
    / (not touching any wall|touching the wall|touching the (top|bottom|left|right) wall)$/.exec(phrase);
  const words = (wallMatch === null ? phrase : phrase.slice(0, wallMatch.index)).split(' ');
  const noun = words.pop() ?? '';
  const top = o.y_loc <= 0;
  const bottom = o.y_loc + o.size >= 100;
  const left = o.x_loc <= 0;
  const right = o.x_loc + o.size >= 100;
  if (wallMatch !== null) {
    const touching = top || bottom || left || right;
    if (wallMatch[1] === 'not touching any wall' && touching) return false;
    if (wallMatch[1] === 'touching the wall' && !touching) return false;
    const side = wallMatch[2];
    if (side !== undefined && !{ top, bottom, left, right }[side as 'top' | 'bottom' | 'left' | 'right'])
      return false;
  }
  const shape = NOUN_SHAPES[noun];
  assert.ok(shape !== undefined, `unknown noun ${noun}`);
  if (shape !== '' && o.type !== shape) return false;
  for (const word of words) {
    const size = Object.entries(SIZE_WORDS).find(([, w]) => w === word)?.[0];
    const color = Object.entries(COLOR_WORDS).find(([, w]) => w === word)?.[0];
    assert.ok(size !== undefined || color !== undefined, `unknown word ${word}`);
    if (size !== undefined && o.size !== Number(size)) return false;
    if (color !== undefined && o.color !== color) return false;
  }
  return true;
}

/** The answer to an object-count question, counted by hand from the prompt and the boxes. */
function naiveCount(prompt: string, layout: string | undefined, boxes: Box[]): number {
  const inBox = /How many ([a-z -]+) are in the (first|second|third) box\?/.exec(prompt);
  if (inBox !== null) return boxes[ORDINAL_INDEX[inBox[2]]].filter((o) => naiveMatches(o, inBox[1])).length;
  const inAll = /How many ([a-z -]+) are there in the three boxes\?/.exec(prompt);
  if (inAll !== null) return boxes.flat().filter((o) => naiveMatches(o, inAll[1])).length;
  const towers = /How many towers (.+)\?/.exec(prompt);
  assert.ok(towers !== null, `unrecognised question: ${prompt}`);
  assert.equal(layout, 'towers');
  // One tower per box: blocks from the base (largest y) up.
  const columns = boxes.map((b) => [...b].sort((p, q) => q.y_loc - p.y_loc).map((o) => COLOR_WORDS[o.color]));
  const numbers = ['zero', 'one', 'two', 'three', 'four'];
  return columns.filter((c) => {
    const claim = towers[1];
    let m = /^have an? (\w+) base$/.exec(claim);
    if (m !== null) return c[0] === m[1];
    m = /^have an? (\w+) block at the top$/.exec(claim);
    if (m !== null) return c[c.length - 1] === m[1];
    m = /^are made only of (\w+) blocks$/.exec(claim);
    if (m !== null) return c.every((w) => w === m?.[1]);
    m = /^have (exactly|at least) (\w+) blocks?$/.exec(claim);
    assert.ok(m !== null, `unrecognised tower question: ${claim}`);
    const n = numbers.indexOf(m[2]);
    return m[1] === 'exactly' ? c.length === n : c.length >= n;
  }).length;
}

function boxesOf(plan: ExamplePlan): Box[] {
  return plan.visuals.map((v) => {
    assert.equal(v.kind, 'box');
    return v.kind === 'box' ? v.objects : [];
  });
}

/** Recomputes the right option index of a plan from its boxes / labels. */
function recomputeAnswer(plan: ExamplePlan): number {
  const boxes = plan.task.startsWith('fashion') ? [] : boxesOf(plan);
  switch (plan.task) {
    case 'nlvr-statement': {
      assert.ok(plan.meta.query && plan.meta.layout);
      const truth = evaluate(plan.meta.query, { layout: plan.meta.layout, boxes });
      return truth ? 0 : 1;
    }
    case 'what-changed':
      return plan.options?.indexOf(expectedChange(boxes[0], boxes[1])) ?? -1;
    case 'sequence-completion': {
      const right = [3, 4, 5, 6].filter((i) =>
        naiveFollows(plan.meta.rule ?? '', [boxes[0], boxes[1], boxes[2], boxes[i]]),
      );
      assert.equal(right.length, 1, 'exactly one candidate continues the sequence');
      return right[0] - 3;
    }
    case 'motion-direction': {
      const { gone, came } = naiveDiff(boxes[0], boxes[boxes.length - 1]);
      const dx = came[0].x_loc - gone[0].x_loc;
      const dy = came[0].y_loc - gone[0].y_loc;
      return plan.options?.indexOf(dx < 0 ? 'left' : dx > 0 ? 'right' : dy < 0 ? 'up' : 'down') ?? -1;
    }
    case 'procedure-order': {
      const order = boxes
        .map((b, i) => [b.length, i + 1])
        .sort((a, b) => a[0] - b[0])
        .map(([, i]) => i)
        .join(', ');
      return plan.options?.indexOf(order) ?? -1;
    }
    case 'object-count':
      return plan.options?.indexOf(String(naiveCount(plan.prompt, plan.meta.layout, boxes))) ?? -1;
    case 'fashion-which': {
      const noun = /shows an? ([^?]+)\?/.exec(plan.prompt)?.[1];
      const labels = (plan.meta.sourceIndices ?? []).map((i) => fakeFashion.label(i));
      return labels.indexOf(FASHION_NOUNS.indexOf(noun ?? ''));
    }
    case 'fashion-same': {
      const [, a, b] = /images (\d) and (\d)/.exec(plan.prompt) ?? [];
      const labels = (plan.meta.sourceIndices ?? []).map((i) => fakeFashion.label(i));
      return labels[Number(a) - 1] === labels[Number(b) - 1] ? 0 : 1;
    }
    case 'fashion-count': {
      const noun = FASHION_NOUNS.find((n) => plan.prompt.includes(` ${n}?`));
      return (plan.meta.sourceIndices ?? []).filter((i) => FASHION_NOUNS[fakeFashion.label(i)] === noun)
        .length;
    }
    case 'fashion-name': {
      const asked = Number(/in image (\d)\?/.exec(plan.prompt)?.[1]);
      return fakeFashion.label((plan.meta.sourceIndices ?? [])[asked - 1]);
    }
    case 'box-color': {
      // "the circle" / "the block": the only object of that shape (blocks are squares).
      const noun = /the (\w+)\?/.exec(plan.prompt)?.[1];
      const shape = noun === 'block' ? 'square' : noun;
      const only = boxes[0].filter((o) => o.type === shape);
      assert.equal(only.length, 1, `exactly one ${shape}`);
      const words: Record<string, string> = { Black: 'black', Yellow: 'yellow', '#0099ff': 'blue' };
      return plan.options?.indexOf(words[only[0].color]) ?? -1;
    }
    case 'box-shape': {
      const word = /the (\w+) object\?/.exec(plan.prompt)?.[1];
      const colors: Record<string, string> = { black: 'Black', yellow: 'Yellow', blue: '#0099ff' };
      const only = boxes[0].filter((o) => o.color === colors[word ?? '']);
      assert.equal(only.length, 1, `exactly one ${word} object`);
      return plan.options?.indexOf(only[0].type) ?? -1;
    }
    case 'box-count':
      return plan.options?.indexOf(String(boxes[0].length)) ?? -1;
    case 'box-wall': {
      const touches = boxes[0].some(
        (o) => o.x_loc === 0 || o.y_loc === 0 || o.x_loc + o.size === 100 || o.y_loc + o.size === 100,
      );
      return touches ? 0 : 1;
    }
    case 'fashion-class':
      return fakeFashion.label(plan.meta.sourceIndices?.[0] ?? -1);
  }
}

describe('tasks', () => {
  it('use the placeholder the model expects, and Fashion-MNIST class order', () => {
    assert.equal(IMAGE_TOKEN, IMAGE_PLACEHOLDER);
    assert.equal(FASHION_NOUNS.length, FASHION_CLASSES.length);
    const expected = [
      't-shirt',
      'trouser',
      'pullover',
      'dress',
      'coat',
      'sandal',
      'shirt',
      'sneaker',
      'bag',
      'ankle boot',
    ];
    FASHION_CLASSES.forEach((c, i) => {
      assert.ok(c.toLowerCase().startsWith(expected[i]), `class ${i}: ${c}`);
      assert.ok(FASHION_NOUNS[i].toLowerCase().includes(expected[i]), `noun ${i}: ${FASHION_NOUNS[i]}`);
    });
  });

  for (const task of TASK_NAMES) {
    describe(task, () => {
      const plans = Array.from({ length: 150 }, (_, i) =>
        planExample(task, 'train', i, { fashion: fakeFashion }),
      );

      it('has labels that match a recomputation from the content', () => {
        for (const plan of plans) {
          assert.equal(plan.answerIndex, recomputeAnswer(plan), `${plan.meta.key}: ${plan.prompt}`);
        }
      });

      it('has well-formed prompts and answers', () => {
        for (const plan of plans) {
          assert.equal(plan.prompt.split(IMAGE_TOKEN).length - 1, plan.visuals.length);
          assert.ok(plan.options !== undefined && plan.answerIndex !== undefined);
          const lettered = /\nA\. /.test(plan.prompt);
          assert.equal(
            plan.answer,
            lettered ? OPTION_LETTERS[plan.answerIndex] : plan.options[plan.answerIndex],
          );
          assert.equal(new Set(plan.options).size, plan.options.length, 'options are distinct');
          assert.doesNotMatch(plan.prompt, /undefined|NaN|#0099ff/);
        }
      });

      it('spreads its answers over the options', () => {
        const counts = new Map<number, number>();
        for (const p of plans) counts.set(p.answerIndex ?? -1, (counts.get(p.answerIndex ?? -1) ?? 0) + 1);
        const optionCount = plans[0].options?.length ?? 0;
        // Within [0.5, 1.8] × the uniform share, or 3.5 binomial standard deviations of it where
        // that is wider (many options, few plans: one of 8 options drew 9 of 150 by chance).
        const uniform = 1 / optionCount;
        const sd = Math.sqrt((uniform * (1 - uniform)) / plans.length);
        const low = Math.min(0.5 * uniform, uniform - 3.5 * sd);
        const high = Math.max(1.8 * uniform, uniform + 3.5 * sd);
        for (let i = 0; i < optionCount; i++) {
          const share = (counts.get(i) ?? 0) / plans.length;
          assert.ok(share > low && share < high, `option ${i}: ${share}`);
        }
      });

      it('is deterministic and renders every image', () => {
        const a = generateExample(task, 'train', 3, { fashion: fakeFashion });
        const b = generateExample(task, 'train', 3, { fashion: fakeFashion });
        assert.deepEqual(a, b);
        const [p3, p4] = [3, 4].map((i) => planExample(task, 'train', i, { fashion: fakeFashion }));
        assert.notDeepEqual(p4.visuals.map(visualKey), p3.visuals.map(visualKey));
        assert.equal(a.images.length, a.prompt.split(IMAGE_TOKEN).length - 1);
        for (const img of a.images) assert.equal(img.rgb.length, img.width * img.height * 3);
        const big = renderExample(planExample(task, 'train', 3, { fashion: fakeFashion }), { imageSize: 64 });
        for (const [i, img] of big.images.entries()) assert.equal(img.width, big.boxes[i] === null ? 28 : 64);
      });
    });
  }

  it('makes what-changed cover every kind of edit', () => {
    const rules = new Set(
      Array.from({ length: 100 }, (_, i) => planExample('what-changed', 'train', i).meta.rule),
    );
    assert.deepEqual([...rules].sort(), ['added', 'moved', 'recolored', 'removed', 'reshaped']);
    const cloze = new Set(
      Array.from({ length: 60 }, (_, i) => planExample('sequence-completion', 'train', i).meta.rule),
    );
    assert.deepEqual([...cloze].sort(), ['color-cycle', 'count-up', 'moving']);
  });

  it('explains bad requests', () => {
    assert.throws(
      () => planExample('nope' as 'what-changed', 'train', 0),
      /unknown task "nope" \(known: nlvr-statement/,
    );
    assert.throws(() => planExample('what-changed', 'test' as 'train', 0), /unknown split "test"/);
    assert.throws(() => planExample('what-changed', 'train', -1), /index must be an integer ≥ 0/);
    assert.throws(() => planExample('fashion-which', 'train', 0), /needs Fashion-MNIST images/);
    const broken: ImageSource = { ...fakeFashion, image: () => new Uint8Array(10) };
    assert.throws(
      () => planExample('fashion-which', 'train', 0, { fashion: broken }),
      /has 10 bytes, expected 28×28 = 784/,
    );
  });
});

describe('single-image tasks on the held-out split', () => {
  // A draw that gives up lets the registry draw a fresh answer; answers whose pictures are rare in
  // the held-out tenth of the content would then come up less often than the training split's.
  for (const task of ['box-color', 'box-shape', 'box-count', 'box-wall'] as const) {
    it(`${task}: answers as balanced as on the training split`, () => {
      const counts = new Map<string, number>();
      let options = 0;
      for (let i = 0; i < 300; i++) {
        const plan = planExample(task, 'heldout', i);
        options = plan.options?.length ?? 0;
        counts.set(plan.answer, (counts.get(plan.answer) ?? 0) + 1);
      }
      assert.equal(counts.size, options, [...counts].join(' '));
      const top = Math.max(...counts.values()) / 300;
      assert.ok(
        top < 1 / options + 0.1,
        `most common answer ${(100 * top).toFixed(0)} %: ${[...counts].join(' ')}`,
      );
    });
  }
});

describe('splits', () => {
  const imageSetHash = (example: TaskExample) =>
    example.images
      .map((img) => createHash('sha1').update(img.rgb).digest('hex'))
      .sort()
      .join('+');

  it('never show the same images in train and held-out', () => {
    for (const task of SCENE_TASK_NAMES) {
      const hashes = { train: new Set<string>(), heldout: new Set<string>() };
      for (const split of ['train', 'heldout'] as const) {
        for (let i = 0; i < 60; i++) {
          const plan = planExample(task, split, i);
          assert.equal(splitOfContent(contentKey(plan.visuals)), split);
          hashes[split].add(imageSetHash(renderExample(plan)));
        }
      }
      const shared = [...hashes.train].filter((h) => hashes.heldout.has(h));
      assert.deepEqual(shared, [], `${task}: ${shared.length} image sets in both splits`);
    }
  });

  it('keep small content spaces apart too (where repeats are common)', () => {
    // Tower-building sequences come in ~100 kinds, so repeats within a split are frequent —
    // and still never cross splits.
    const keys = { train: [] as string[], heldout: [] as string[] };
    for (const split of ['train', 'heldout'] as const) {
      for (let i = 0; i < 400; i++) {
        const plan = planExample('procedure-order', split, i);
        if (plan.meta.rule === 'tower') keys[split].push(contentKey(plan.visuals));
      }
    }
    assert.ok(new Set(keys.train).size < keys.train.length, 'tower sequences repeat within train');
    const heldout = new Set(keys.heldout);
    assert.ok(heldout.size > 3);
    assert.deepEqual(
      keys.train.filter((k) => heldout.has(k)),
      [],
    );
  });

  it('give different streams for different seeds', () => {
    assert.notDeepEqual(
      planExample('what-changed', 'train', 0, { seed: 1 }).visuals,
      planExample('what-changed', 'train', 0, { seed: 2 }).visuals,
    );
  });
});

describe('Fashion-MNIST tasks on the real t10k images', {
  skip: dataSkipReason('fashion-mnist/t10k-labels-idx1-ubyte.gz'),
}, () => {
  it('ask about the classes of the photos shown', async () => {
    const data = await loadFashionMnist('test');
    const source: ImageSource = {
      count: data.images.count,
      image: (i) => idxImage(data.images, i),
      label: (i) => data.labels[i],
      name: 'fashion-mnist/t10k',
    };
    for (const task of FASHION_TASK_NAMES) {
      for (let i = 0; i < 20; i++) {
        const ex = generateExample(task, 'heldout', i, { fashion: source });
        const labels = (ex.meta.sourceIndices ?? []).map((j) => data.labels[j]);
        assert.deepEqual(ex.meta.sourceLabels, labels);
        if (task === 'fashion-which')
          assert.ok(ex.prompt.includes(FASHION_NOUNS[labels[ex.answerIndex ?? -1]]));
        if (task === 'fashion-count') {
          const noun = FASHION_NOUNS.find((n) => ex.prompt.includes(` ${n}?`));
          assert.equal(Number(ex.answer), labels.filter((l) => FASHION_NOUNS[l] === noun).length);
        }
        assert.deepEqual(
          Array.from(ex.images[0].rgb.subarray(0, 3)),
          Array(3).fill(idxImage(data.images, ex.meta.sourceIndices?.[0] ?? 0)[0]),
        );
      }
    }
  });
});
