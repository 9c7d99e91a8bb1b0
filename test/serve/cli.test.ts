/** `maven serve` as an operator runs it: a real process on a free port, stopped with SIGTERM. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../src/cli/command.ts';
import { serveCommand } from '../../src/cli/commands/serve.ts';
import { saveMaven } from '../../src/node/model-directory.ts';
import { smallModel } from '../maven/small-model.ts';

const BIN = fileURLToPath(new URL('../../bin/maven.js', import.meta.url));

describe('maven serve (the command)', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maven-serve-cli-'));
    await saveMaven(dir, smallModel());
  });

  it('starts, warms up, serves the API with a key, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--model', dir, '--port', '0', '--api-key', 'k'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL within 60 s; stderr: ${stderr}`)), 60_000);
      child.stdout.on('data', (d) => {
        stdout += d;
        const m = /web page: +(http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on('exit', () => reject(new Error(`exited early: ${stderr}`)));
    });
    try {
      assert.match(stderr, /warmed up in \d+ ms/);
      assert.match(stdout, /API key required/);
      const health = await (await fetch(`${url}/health`)).json();
      assert.equal(health.status, 'ok');
      assert.equal(health.encoder.encoded_images, 1, 'the warm-up request encoded its image');
      assert.equal((await fetch(`${url}/v1/models`)).status, 401);
      const r = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'how many ?' }], max_tokens: 3 }),
      });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).object, 'chat.completion');
      // One request line: this request's. The warm-up request, before the banner, is not logged.
      const posts = stderr.split('\n').filter((l) => /POST \/v1\/chat\/completions/.test(l));
      assert.equal(posts.length, 1, stderr);
      assert.match(posts[0], /^\[\d{4}-.*\] POST \/v1\/chat\/completions 200 /);
      assert.match(await (await fetch(`${url}/`)).text(), /<title>MaVEn — maven-tiny<\/title>/);
      // The in-browser page, isolated for wasm threads, loading the served model's own directory.
      const local = await fetch(`${url}/local/`);
      assert.equal(local.status, 200);
      assert.equal(local.headers.get('cross-origin-embedder-policy'), 'require-corp');
      assert.match(await local.text(), /<meta name="maven-model" content="models\/maven-tiny\/">/);
      const config = await fetch(`${url}/local/models/maven-tiny/config.json`);
      assert.equal((await config.json()).name, 'maven-tiny');
      assert.equal((await fetch(`${url}/local/models/maven-tiny/training-report.json`)).status, 404);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });

  it('refuses bad options clearly (in process: the same parsing, without a process start each)', async () => {
    const usage = (argv: string[], pattern: RegExp) =>
      assert.rejects(
        serveCommand.run(argv),
        (e: unknown) => e instanceof UsageError && pattern.test(e.message),
      );
    await usage(['--model', dir, '--template', 'chatml'], /--template must be one of plain, vicuna/);
    await usage(['--model', dir, '--port', '70000'], /--port: invalid value '70000'/);
    await usage(['--model', dir, '--keep-ratio', '0'], /--keep-ratio: invalid value '0'/);
    await usage(['--model', dir, 'extra'], /unexpected argument 'extra'/);
    await assert.rejects(
      serveCommand.run(['--model', dir, '--port', '0', '--image-root', join(dir, 'nope')]),
      /--image-root .*nope does not exist/,
    );
    await assert.rejects(serveCommand.run(['--model', join(dir, 'missing')]), /does not exist/);
    assert.match(serveCommand.usage, /--allow-remote-images/);
  });
});
