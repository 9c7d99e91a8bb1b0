/** The `maven` command itself: version, help, unknown commands. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { maven } from './run-maven.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

describe('maven', () => {
  it('prints its version with --version, -V and version', async () => {
    for (const flag of ['--version', '-V', 'version']) {
      const r = await maven([flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${pkg.name} ${pkg.version} (node ${process.version})\n`);
      assert.equal(r.stderr, '');
    }
  });

  it('refuses an unknown command with the list of commands', async () => {
    const r = await maven(['--verison']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command '--verison'/);
    assert.match(r.stderr, /maven --version/);
  });
});
