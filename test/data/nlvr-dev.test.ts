/**
 * Real NLVR sentences as stage-4 examples (`nlvrDevExample`): deterministic per (seed, index), the
 * evaluation's prompt, the three boxes rendered in one of the six orders, the label as the answer.
 * Hand-made examples stand in for NLVR dev (no data files needed).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderSceneBox } from '../../src/data/scene/render.ts';
import type { Box } from '../../src/data/scene/scene.ts';
import { type LabelledNlvrExample, nlvrDevExample } from '../../src/data/tasks/nlvr-dev.ts';
import { IMAGE_TOKEN } from '../../src/data/tasks/types.ts';
import { nlvrPrompt } from '../../src/eval/nlvr.ts';

/** Three distinct boxes: a black square, a yellow circle, two blue triangles. */
const BOXES: Box[] = [
  [{ x_loc: 10, y_loc: 10, size: 30, type: 'square', color: 'Black' }],
  [{ x_loc: 50, y_loc: 40, size: 20, type: 'circle', color: 'Yellow' }],
  [
    { x_loc: 0, y_loc: 80, size: 20, type: 'triangle', color: '#0099ff' },
    { x_loc: 20, y_loc: 80, size: 20, type: 'triangle', color: '#0099ff' },
  ],
];

const EXAMPLES: LabelledNlvrExample[] = [
  { identifier: 'dev-0', sentence: 'There is a black square.', label: true, boxes: BOXES },
  { identifier: 'dev-1', sentence: 'There are two yellow circles.', label: false, boxes: BOXES },
  {
    identifier: 'dev-2',
    sentence: 'There is a box with 2 blue triangles.',
    label: true,
    boxes: [BOXES[2], BOXES[0], []],
  },
];

/** Canonical text of a box, to compare boxes as values. */
const keyOf = (box: Box | null): string => JSON.stringify(box);
const multiset = (boxes: readonly (Box | null)[]): string[] => boxes.map(keyOf).sort();

/** Which example a drawn example came from, by its sentence (the sentences are distinct). */
function sourceOf(prompt: string): LabelledNlvrExample {
  const found = EXAMPLES.filter((e) => prompt.endsWith(`\n${e.sentence}`));
  assert.equal(found.length, 1, `one source for ${JSON.stringify(prompt)}`);
  return found[0];
}

describe('nlvrDevExample', () => {
  it('is deterministic per (seed, index), and the seed changes the draws', () => {
    for (const index of [0, 1, 7, 123]) {
      assert.deepEqual(
        nlvrDevExample(EXAMPLES, index, { seed: 5 }),
        nlvrDevExample(EXAMPLES, index, { seed: 5 }),
      );
    }
    const draw = (seed: number) =>
      Array.from({ length: 30 }, (_, i) => {
        const e = nlvrDevExample(EXAMPLES, i, { seed });
        return `${e.prompt}|${e.boxes.map(keyOf).join(',')}`;
      });
    assert.notDeepEqual(draw(5), draw(6));
    assert.notDeepEqual(draw(5).slice(0, 15), draw(5).slice(15), 'different indices differ');
  });

  it("uses the evaluation's prompt and the label as the answer", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const e = nlvrDevExample(EXAMPLES, i, { seed: 1 });
      const source = sourceOf(e.prompt);
      seen.add(source.identifier);
      assert.equal(e.prompt, nlvrPrompt(source.sentence));
      assert.equal(e.prompt.split(IMAGE_TOKEN).length - 1, 3, 'three image placeholders');
      assert.equal(e.answer, source.label ? 'true' : 'false');
      assert.equal(e.answerIndex, source.label ? 0 : 1);
      assert.deepEqual(e.options, ['true', 'false']);
      assert.equal(e.options[e.answerIndex], e.answer);
      assert.equal(e.task, 'nlvr-statement');
      assert.equal(e.split, 'train');
      assert.equal(e.index, i);
    }
    assert.deepEqual([...seen].sort(), ['dev-0', 'dev-1', 'dev-2'], 'every example gets drawn');
  });

  it('renders the three boxes in one of the six orders, each order occurring', () => {
    const orders = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const e = nlvrDevExample([EXAMPLES[0]], i, { seed: 3 });
      assert.equal(e.images.length, 3);
      assert.equal(e.boxes.length, 3);
      assert.deepEqual(multiset(e.boxes), multiset(BOXES), `example ${i}: a permutation of the boxes`);
      // Image k shows box k: the renderer's pixels of that box.
      e.boxes.forEach((box, k) => {
        assert.ok(box);
        const want = renderSceneBox(box);
        assert.equal(e.images[k].width, want.width);
        assert.equal(e.images[k].height, want.height);
        assert.ok(Buffer.from(e.images[k].rgb).equals(Buffer.from(want.rgb)), `example ${i}: image ${k}`);
      });
      orders.add(e.boxes.map((b) => BOXES.findIndex((x) => keyOf(x) === keyOf(b))).join(''));
    }
    assert.deepEqual([...orders].sort(), ['012', '021', '102', '120', '201', '210']);
  });

  it('copies the boxes: editing an example leaves the source untouched', () => {
    const before = JSON.stringify(EXAMPLES);
    const e = nlvrDevExample(EXAMPLES, 0, { seed: 0 });
    e.boxes[0]?.push({ x_loc: 0, y_loc: 0, size: 10, type: 'square', color: 'Black' });
    assert.equal(JSON.stringify(EXAMPLES), before);
  });

  it('renders at the requested image size', () => {
    const e = nlvrDevExample(EXAMPLES, 4, { seed: 0, imageSize: 64 });
    for (const image of e.images) {
      assert.equal(image.width, 64);
      assert.equal(image.height, 64);
      assert.equal(image.rgb.length, 64 * 64 * 3);
    }
  });

  it('rejects an empty list and an example without three boxes, clearly', () => {
    assert.throws(() => nlvrDevExample([], 0), /nlvrDevExample: no NLVR examples to draw from/);
    const two = { ...EXAMPLES[0], identifier: 'two-boxes', boxes: BOXES.slice(0, 2) };
    assert.throws(() => nlvrDevExample([two], 0), /two-boxes has 2 boxes, not 3/);
  });
});
