/** `maven generate` as a user runs it: a real process, a model directory, image files. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { saveMaven } from '../../src/node/model-directory.ts';
import { smallModel } from '../maven/small-model.ts';
import { maven } from './run-maven.ts';

const IMAGES = fileURLToPath(new URL('../fixtures/images/', import.meta.url));

describe('maven generate', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maven-cli-'));
    await saveMaven(dir, smallModel());
  });

  it('answers about two images and reports tokens per image (--json)', async () => {
    const r = await maven([
      'generate',
      '--model',
      dir,
      '--image',
      join(IMAGES, 'rgba.png'),
      '--image',
      join(IMAGES, 'blocks.jpg'),
      '--json',
      '--max-tokens',
      '4',
      'how many <image> squares <image> ?',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(typeof out.answer, 'string');
    assert.equal(out.images.length, 2);
    for (const img of out.images) {
      assert.equal(img.discreteTokens, 4);
      assert.equal(img.keptPatches, 4);
      assert.equal(img.totalPatches, 16);
      assert.equal(img.kept.length, 4);
    }
  });

  it('prints a human summary, and honours --mode and --keep-ratio', async () => {
    const r = await maven([
      'generate',
      '--model',
      dir,
      '--image',
      join(IMAGES, 'gray.png'),
      '--keep-ratio',
      '0.5',
      '--max-tokens',
      '2',
      'what is <image> ?',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /image 1 \(.*gray\.png\): 4 discrete tokens, 8\/16 patches kept \(ρ = 0\.50\)/);
    const c = await maven([
      'generate',
      '--model',
      dir,
      '--image',
      join(IMAGES, 'gray.png'),
      '--mode',
      'continuous-only',
      '--json',
      '--max-tokens',
      '1',
      '<image>',
    ]);
    assert.equal(JSON.parse(c.stdout).images[0].keptPatches, 16);
  });

  it('names the words the model cannot read, in the summary and in --json', async () => {
    const r = await maven([
      'generate',
      '--model',
      dir,
      '--max-tokens',
      '1',
      'there is a Zebra , a zebra and a yak',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /\nunknown words \(not in the model's vocabulary, read as <unk>\): zebra, ",", and, yak\n/,
    );
    const j = await maven([
      'generate',
      '--model',
      dir,
      '--json',
      '--max-tokens',
      '1',
      'a yak <image>',
      '--image',
      join(IMAGES, 'gray.png'),
    ]);
    assert.deepEqual(JSON.parse(j.stdout).unknown_words, ['yak']);
    const known = await maven(['generate', '--model', dir, '--max-tokens', '1', 'there is a black circle .']);
    assert.doesNotMatch(known.stdout, /unknown words/);
  });

  it('uses the embedded model when --model is left out', async () => {
    const r = await maven([
      'generate',
      '--json',
      '--max-tokens',
      '1',
      '--image',
      join(IMAGES, 'gray.png'),
      '<image> what is it ?',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).images.length, 1);
  });

  it('fails clearly on bad input', async () => {
    const notImage = await maven([
      'generate',
      '--model',
      dir,
      '--image',
      join(IMAGES, 'not-an-image.txt'),
      '<image> ?',
    ]);
    assert.equal(notImage.code, 1);
    assert.match(notImage.stderr, /not-an-image\.txt/);
    const mismatch = await maven([
      'generate',
      '--model',
      dir,
      '--image',
      join(IMAGES, 'gray.png'),
      'no placeholder',
    ]);
    assert.match(mismatch.stderr, /0 <image> placeholder\(s\) but 1 image\(s\)/);
    const badRatio = await maven(['generate', '--model', dir, '--keep-ratio', '2', 'hi']);
    assert.equal(badRatio.code, 2);
    assert.match(badRatio.stderr, /--keep-ratio: invalid value '2'/);
    const noModel = await maven(['generate', '--model', join(dir, 'nope'), 'hi']);
    assert.match(noModel.stderr, /does not exist/);
    const empty = await maven(['generate', '--model', dir, '  ']);
    assert.match(empty.stderr, /the prompt is empty/);
    const zero = await maven(['generate', '--model', dir, '--image', join(IMAGES, 'empty.png'), '<image>']);
    assert.equal(zero.code, 1);
    assert.match(zero.stderr, /empty\.png/);
  });
});
