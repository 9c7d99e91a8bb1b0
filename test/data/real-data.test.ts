/**
 * Which real-data suites a run covers. Without the data folder (or with some of its files
 * missing) about a dozen suites skip themselves, each with its own `# SKIP` line, and node:test
 * does not count skipped suites in its summary. This test names them all in one place and says
 * how to run them, so a green run without the data is not mistaken for a complete one; with the
 * data it checks that every file those suites read is there.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DATA_DIR_ENV, dataPath, dataSkipReason, resolveDataDir } from '../../src/data/data-dir.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TESTS = join(ROOT, 'test');
const DATA_FILE = /'((?:nlvr|fashion-mnist|mantis-chat)\/[\w./-]+\.(?:json|gz))'/g;

/** Test files that skip suites without the data, and the data files they name. */
function realDataSuites(): { files: string[]; data: string[] } {
  const files: string[] = [];
  const data = new Set<string>();
  for (const dir of readdirSync(TESTS, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    for (const name of readdirSync(join(TESTS, dir.name))) {
      if (!name.endsWith('.test.ts')) continue;
      const path = join(TESTS, dir.name, name);
      const text = readFileSync(path, 'utf8');
      if (path === fileURLToPath(import.meta.url) || !text.includes('dataSkipReason(')) continue;
      files.push(relative(ROOT, path));
      for (const m of text.matchAll(DATA_FILE)) data.add(m[1]);
    }
  }
  return { files: files.sort(), data: [...data].sort() };
}

const { files, data } = realDataSuites();
const missing = data.filter((d) => dataSkipReason(d) !== false);
const { dir } = resolveDataDir();
const skip = missing.length
  ? `${missing.length} of ${data.length} data files missing in ${dir} (${missing.join(', ')}): the real-data suites of ${files.length} test files are skipped (${files.join(', ')}); to run them, point ${DATA_DIR_ENV} at the data folder: ${DATA_DIR_ENV}=/path/to/data npm test`
  : false;

describe('real data sets', () => {
  it(`are all present for the real-data suites (data folder: ${dir})`, { skip }, () => {
    assert.ok(files.length >= 10, `found the real-data suites: ${files.join(', ')}`);
    assert.ok(data.length >= 5, `found the data files they read: ${data.join(', ')}`);
    for (const d of data) assert.ok(dataPath(d));
  });
});
