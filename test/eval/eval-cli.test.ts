/** `maven eval` as a user runs it: a real process, a model directory, tables on stdout, JSON on request. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { saveMaven } from '../../src/node/model-directory.ts';
import { maven } from '../cli/run-maven.ts';
import { smallModel } from '../maven/small-model.ts';

describe('maven eval', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maven-eval-'));
    await saveMaven(join(dir, 'model'), smallModel());
  });

  it('prints a table per benchmark and writes every prediction as JSON', async () => {
    const json = join(dir, 'out.json');
    const r = await maven([
      'eval',
      '--model',
      join(dir, 'model'),
      '--bench',
      'seed-mc,demon',
      '--limit',
      '2',
      '--selection',
      'grid',
      '--keep-ratio',
      '0.5',
      '--json',
      json,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /### seed-mc: [\d.]+ % accuracy/);
    assert.match(r.stdout, /\| action-recognition +\| motion-direction +\| accuracy \| +2 \|/);
    assert.match(r.stdout, /\| image-captioning +\| scene-caption +\| rouge-l +\| +2 \|/);
    assert.match(r.stdout, /selection grid, keep ratio 0\.5/);
    assert.match(r.stderr, /seed-mc 4\/4/); // progress went to stderr
    const out = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(out.settings.selection, 'grid');
    assert.deepEqual(
      out.results.map((b: { bench: string }) => b.bench),
      ['seed-mc', 'demon'],
    );
    assert.equal(out.results[0].predictions.length, 4);
    assert.equal(out.results[1].predictions.length, 8);
    // ρ = 0.5 of a 4×4 grid: 8 patches + 4 discrete ids per image.
    assert.equal(out.results[0].visualTokensPerImage, 12);
  });

  it('fails clearly on bad options', async () => {
    const model = join(dir, 'model');
    const bad = await maven(['eval', '--model', model, '--bench', 'seed-mc,mmlu']);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /--bench: unknown benchmark "mmlu" \(known: nlvr-test, nlvr-dev, seed-mc, demon, fashion, perception\)/,
    );
    const limit = await maven(['eval', '--model', model, '--bench', 'demon', '--limit', '0']);
    assert.match(limit.stderr, /--limit: invalid value '0'/);
    const noModel = await maven(['eval', '--model', join(dir, 'nope'), '--bench', 'demon']);
    assert.equal(noModel.code, 1);
    assert.match(noModel.stderr, /nope/);
  });
});
