/**
 * Every engine module can be the first thing a program imports. tensor.ts, ops/ and graph.ts
 * import one another, which is fine while no module of the cycle needs another's value as it is
 * evaluated; a subclass of Tensor in a module of its own did, and bench/train.ts (whose first
 * engine import reached tensor.ts before ops/) failed to start. Each module is imported alone, in
 * a fresh process.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENGINE = join(ROOT, 'src', 'engine');

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? modules(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('engine modules', () => {
  it('each loads as a program’s first import', async () => {
    const files = modules(ENGINE);
    assert.ok(files.length > 10, `${files.length} modules found`);
    const run = promisify(execFile);
    const failures: string[] = [];
    // A few at a time: each is a Node process with the TypeScript loader.
    for (let i = 0; i < files.length; i += 4) {
      await Promise.all(
        files.slice(i, i + 4).map(async (file) => {
          try {
            await run(
              process.execPath,
              ['--import', 'tsx', '-e', `await import(${JSON.stringify(pathToFileURL(file).href)})`],
              {
                cwd: ROOT,
              },
            );
          } catch (e) {
            const stderr = (e as { stderr?: string }).stderr ?? String(e);
            failures.push(
              `${relative(ROOT, file)}: ${stderr.split('\n').find((l) => /Error/.test(l)) ?? stderr}`,
            );
          }
        }),
      );
    }
    assert.deepEqual(failures, []);
  });
});
