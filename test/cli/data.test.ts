/** `maven data stats`: counts per task and a contact sheet. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const BIN = fileURLToPath(new URL('../../bin/maven.js', import.meta.url));

function maven(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

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
