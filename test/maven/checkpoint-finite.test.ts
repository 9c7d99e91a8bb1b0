/**
 * A damaged checkpoint (issue 15: 2,000 bytes of model.safetensors set to 0xFF) must fail at load,
 * naming the tensors, instead of answering 64 × <unk>: in loadMaven, `maven generate` and
 * `maven serve`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { serveCommand } from '../../src/cli/commands/serve.ts';
import { NonFiniteWeightsError } from '../../src/maven/checkpoint.ts';
import { loadMaven, saveMaven } from '../../src/node/model-directory.ts';
import { maven } from '../cli/run-maven.ts';
import { smallModel } from './small-model.ts';

/** The tensors whose bytes overlap [from, to) of a safetensors file. */
function tensorsAt(file: Buffer, from: number, to: number): string[] {
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString()) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  const base = 8 + headerLength;
  return Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .filter(([, e]) => base + e.data_offsets[0] < to && base + e.data_offsets[1] > from)
    .map(([name]) => name);
}

describe('non-finite weights are refused at load', () => {
  let good: string;
  let damaged: string;
  let names: string[];

  before(async () => {
    good = mkdtempSync(join(tmpdir(), 'maven-finite-good-'));
    damaged = mkdtempSync(join(tmpdir(), 'maven-finite-bad-'));
    const model = smallModel();
    await saveMaven(good, model);
    await saveMaven(damaged, model);
    const path = join(damaged, 'model.safetensors');
    const bytes = readFileSync(path);
    // Start on a float boundary (data begins 8-aligned after the header), so every float32 the
    // 2,000 bytes touch is 0xFFFFFFFF, a NaN.
    const base = 8 + Number(bytes.readBigUInt64LE(0));
    const from = base + 4 * Math.floor((bytes.length - base) / 8);
    bytes.fill(0xff, from, from + 2000);
    writeFileSync(path, bytes);
    names = tensorsAt(bytes, from, from + 2000);
    assert.ok(names.length >= 1);
  });

  it('loads the intact copy', async () => {
    const model = await loadMaven(good);
    assert.ok(model.weights.size > 0);
  });

  it('names every damaged tensor', async () => {
    await assert.rejects(loadMaven(damaged), (e: unknown) => {
      assert.ok(e instanceof NonFiniteWeightsError, String(e));
      assert.equal(e.tensors, names.length);
      for (const name of names) assert.ok(e.message.includes(`"${name}"`), `${name} is named: ${e.message}`);
      assert.match(e.message, /NaN or infinite/);
      assert.match(e.message, /of \d+ values are NaN or infinite \(the first at index \d+\)/);
      return true;
    });
  });

  it('maven generate exits 1 with the reason; maven serve refuses to start', async () => {
    const r = await maven(['generate', '--model', damaged, '--max-tokens', '4', 'there is']);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stdout, '', 'no garbage answer');
    assert.match(r.stderr, /hold NaN or infinite values/);
    assert.ok(r.stderr.includes(`"${names[0]}"`));
    await assert.rejects(
      serveCommand.run(['--model', damaged, '--port', '0', '--no-warmup', '--quiet']),
      NonFiniteWeightsError,
    );
  });
});
