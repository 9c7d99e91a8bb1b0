/** `maven labels`: NLVR patch labels as JSON lines with an overlay, and labels for any mask image. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { dataSkipReason } from '../../src/data/data-dir.ts';
import { maven } from './run-maven.ts';

describe('maven labels', () => {
  it('labels the patches a binary mask overlaps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maven-labels-'));
    // 16×16 mask, white only in the top-left 4×4 and one pixel at (12, 9): with 8-px patches on a
    // 16-px input, patch 0 overlaps 16/64, patch 3 (row 1, col 1) 1/64, the others nothing.
    const px = new Uint8Array(16 * 16);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) px[y * 16 + x] = 255;
    px[9 * 16 + 12] = 255;
    const file = join(dir, 'mask.png');
    writeFileSync(
      file,
      await sharp(px, { raw: { width: 16, height: 16, channels: 1 } })
        .png()
        .toBuffer(),
    );
    const r = await maven(['labels', '--mask', file, '--image-size', '16', '--patch-size', '8']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.labels, [1, 0, 0, 1]);
    assert.deepEqual(out.fractions, [0.25, 0, 0, 0.0156]);
    const strict = JSON.parse(
      (
        await maven([
          'labels',
          '--mask',
          file,
          '--image-size',
          '16',
          '--patch-size',
          '8',
          '--threshold',
          '0.1',
        ])
      ).stdout,
    );
    assert.deepEqual(strict.labels, [1, 0, 0, 0]);
  });

  it('writes NLVR labels and an overlay', { skip: dataSkipReason('nlvr/dev/dev.json') }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maven-labels-'));
    const out = join(dir, 'labels.jsonl');
    const png = join(dir, 'overlay.png');
    const r = await maven(['labels', '--split', 'dev', '--limit', '3', '--out', out, '--overlay', png]);
    assert.equal(r.code, 0, r.stderr);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 9);
    for (const l of lines) {
      assert.equal(l.grid, 12);
      assert.equal(l.labels.length, 144);
    }
    const meta = await sharp(readFileSync(png)).metadata();
    assert.equal(meta.format, 'png');
    assert.ok((meta.width ?? 0) > 600);
  });

  it('refuses bad options', async () => {
    const r = await maven(['labels', '--image-size', '90', '--patch-size', '8', '--out', '/tmp/x']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /multiple of --patch-size/);
  });
});
