/** `maven data stats`: counts per task and a contact sheet. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { maven } from './run-maven.ts';

describe('maven data stats', () => {
  it('prints counts per split and category and writes a contact sheet', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'maven-data-')), 'sheet.png');
    const r = await maven(['data', 'stats', '--per-task', '20', '--samples', '1', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    for (const category of [
      'multi-image-reasoning',
      'visual-relation-inference',
      'multi-modal-cloze',
      'action-recognition',
      'procedure-understanding',
    ]) {
      assert.match(r.stdout, new RegExp(`train ${category}\\s+\\d+`));
      assert.match(r.stdout, new RegExp(`heldout ${category}\\s+\\d+`));
    }
    const meta = await sharp(readFileSync(out)).metadata();
    assert.equal(meta.format, 'png');
  });

  it('rejects an unknown subcommand', async () => {
    const r = await maven(['data', 'frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown 'maven data' subcommand 'frobnicate'/);
  });
});
