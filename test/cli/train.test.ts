/**
 * `maven train --recipe tiny` end to end at a tiny scale (a smoke run of every stage: stage 0,
 * then 1–4), then `maven demo` on the model it produced; the full recipe is a documented
 * command, not a test. Also `--stage N` from a model directory.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { saveMaven } from '../../src/node/model-directory.ts';
import { smallModel } from '../maven/small-model.ts';
import { maven } from './run-maven.ts';

describe('maven train', () => {
  it('runs the tiny recipe (smoke scale) and the demo answers with its model', async () => {
    const out = mkdtempSync(join(tmpdir(), 'maven-recipe-'));
    const r = await maven(['train', '--recipe', 'tiny', '--out', out, '--scale', '0.003']);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    // Stages 4a–4b train on Fashion-MNIST photos only: without them the recipe says so and skips it.
    const withFashion = !/Fashion-MNIST not available/.test(r.stderr);
    assert.equal(
      /stages 4a–4b \(finding and comparing images\) need Fashion-MNIST photos: skipped/.test(r.stderr),
      !withFashion,
    );
    const folders = [
      'stage0a-clip',
      ...(withFashion ? ['stage0a-photos'] : []),
      'stage0b-tokenizer',
      'stage0c-llm',
      'stage1-selector',
      'stage2-visual-embeddings',
      'stage3-projector',
      ...(withFashion ? ['stage4a-find-image', 'stage4b-compare-images'] : []),
      'stage4-instruction',
    ];
    for (const stage of folders) {
      assert.ok(existsSync(join(out, stage, 'final.safetensors')), stage);
      assert.ok(existsSync(join(out, stage, 'loss.png')), `${stage} loss curve`);
    }
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.deepEqual(
      report.stages.map((s: { folder: string }) => s.folder),
      folders,
    );
    const html = join(out, 'demo.html');
    const demo = await maven(['demo', '--model', join(out, 'model'), '--out', html]);
    assert.equal(demo.code, 0, demo.stderr);
    const tally = /(\d+)\/8 right \(hybrid\): (\d+)\/2 single-image, (\d+)\/6 multi-image questions/.exec(
      demo.stdout,
    );
    assert.ok(tally, demo.stdout);
    assert.equal(Number(tally[1]), Number(tally[2]) + Number(tally[3]));
    assert.match(demo.stdout, /One photo: what is it\?/);
    assert.match(readFileSync(html, 'utf8'), /data:image\/png;base64/);
  });

  it('runs one stage from a model directory and writes the trained model', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maven-stage-'));
    await saveMaven(join(dir, 'start'), smallModel());
    const r = await maven([
      'train',
      '--stage',
      '3',
      '--model',
      join(dir, 'start'),
      '--out',
      join(dir, 'run'),
      '--steps',
      '3',
      '--batch-size',
      '2',
    ]);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.ok(existsSync(join(dir, 'run', 'model', 'model.safetensors')));
  });

  it('runs stage 4a from a model directory, or says that it needs the Fashion-MNIST photos', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maven-stage4a-'));
    await saveMaven(join(dir, 'start'), smallModel());
    const args = ['train', '--stage', '4a', '--model', join(dir, 'start'), '--out', join(dir, 'run')];
    const r = await maven([...args, '--steps', '2', '--batch-size', '2']);
    if (/Fashion-MNIST not available/.test(r.stderr)) {
      assert.equal(r.code, 1);
      assert.match(r.stderr, /stage4a-find-image: needs Fashion-MNIST photos/);
    } else {
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      assert.match(r.stderr, /stage4a-find-image/);
      assert.ok(existsSync(join(dir, 'run', 'model', 'model.safetensors')));
    }
    const missing = await maven([...args, '--steps', '2', '--data', join(dir, 'no-data-here')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /stage4a-find-image: needs Fashion-MNIST photos/);
  });

  it('explains bad usage', async () => {
    const r = await maven(['train', '--out', '/tmp/x']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /give --recipe tiny or --stage 1\|2\|3\|4a\|4b\|4/);
  });
});
