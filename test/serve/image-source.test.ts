/** Image sources under the operator's rules: data URLs, local paths inside the root, remote only when enabled. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ApiError } from '../../src/serve/errors.ts';
import { decodeDataUrl, type ImageSourcePolicy, loadImageBytes } from '../../src/serve/image-source.ts';

const PNG = readFileSync(fileURLToPath(new URL('../fixtures/images/gray.png', import.meta.url)));
const ref = (url: string) => ({
  url,
  detail: 'auto' as const,
  param: 'messages[0].content[0].image_url.url',
});

async function refused(promise: Promise<unknown>, code: string, pattern: RegExp) {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.code, code);
    assert.equal(e.param, 'messages[0].content[0].image_url.url');
    assert.match(e.message, pattern);
    return true;
  });
}

describe('image sources', () => {
  let root: string;
  let outside: string;
  const policy = (over: Partial<ImageSourcePolicy> = {}): ImageSourcePolicy => ({
    imageRoot: root,
    allowRemote: false,
    maxImageBytes: 10_000,
    fetchTimeoutMs: 2000,
    ...over,
  });

  before(() => {
    const base = realpathSync(mkdtempSync(join(tmpdir(), 'maven-serve-src-')));
    root = join(base, 'images');
    outside = join(base, 'secret.png');
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(root, 'sub', 'a.png'), PNG);
    writeFileSync(join(root, 'empty.png'), new Uint8Array(0));
    writeFileSync(outside, PNG);
    symlinkSync(outside, join(root, 'link.png'));
  });

  it('decodes base64 data URLs (standard and URL-safe) and percent-encoded ones', () => {
    const b64 = `data:image/png;base64,${PNG.toString('base64')}`;
    assert.deepEqual(Buffer.from(decodeDataUrl(b64, 'p', 1e6)), PNG);
    assert.deepEqual(
      Buffer.from(decodeDataUrl(`data:image/png;base64,${PNG.toString('base64url')}`, 'p', 1e6)),
      PNG,
    );
    assert.deepEqual(
      Buffer.from(decodeDataUrl('data:image/svg+xml,%3Csvg%2F%3E', 'p', 1e6)).toString(),
      '<svg/>',
    );
  });

  it('refuses data URLs that are not images, empty, malformed or too large', async () => {
    const p = policy();
    await refused(
      loadImageBytes(ref('data:text/plain;base64,aGVsbG8='), p),
      'invalid_image',
      /text\/plain, not an image/,
    );
    await refused(loadImageBytes(ref('data:image/png;base64,'), p), 'invalid_image', /empty \(0 bytes\)/);
    await refused(loadImageBytes(ref('data:image/png;base64,@@@@'), p), 'invalid_image', /malformed/);
    await refused(loadImageBytes(ref('data:image/png;base64'), p), 'invalid_image_url', /comma/);
    await refused(
      loadImageBytes(ref(`data:image/png;base64,${Buffer.alloc(20_000).toString('base64')}`), p),
      'image_too_large',
      /limit of 10000/,
    );
  });

  it('reads local paths only inside the image root, after resolving .. and symlinks', async () => {
    const p = policy();
    assert.deepEqual(Buffer.from(await loadImageBytes(ref('sub/a.png'), p)), PNG);
    assert.deepEqual(Buffer.from(await loadImageBytes(ref(join(root, 'sub', 'a.png')), p)), PNG);
    assert.deepEqual(
      Buffer.from(await loadImageBytes(ref(pathToFileURL(join(root, 'sub/a.png')).href), p)),
      PNG,
    );
    assert.deepEqual(Buffer.from(await loadImageBytes(ref('sub/../sub/a.png'), p)), PNG);
    await refused(loadImageBytes(ref('../../etc/passwd'), p), 'path_not_allowed', /outside the folder/);
    await refused(loadImageBytes(ref('/etc/passwd'), p), 'path_not_allowed', /outside the folder/);
    await refused(loadImageBytes(ref('file:///etc/passwd'), p), 'path_not_allowed', /outside the folder/);
    await refused(loadImageBytes(ref('../secret.png'), p), 'path_not_allowed', /outside/);
    await refused(loadImageBytes(ref('link.png'), p), 'path_not_allowed', /outside/);
    await refused(loadImageBytes(ref('missing.png'), p), 'image_not_found', /no image file/);
    await refused(loadImageBytes(ref('sub'), p), 'image_not_found', /not a file/);
    await refused(loadImageBytes(ref('empty.png'), p), 'invalid_image', /0 bytes/);
    await refused(
      loadImageBytes(ref('sub/a.png'), policy({ imageRoot: null })),
      'local_images_disabled',
      /--image-root/,
    );
    await refused(loadImageBytes(ref('ftp://host/x.png'), p), 'invalid_image_url', /"ftp:"/);
  });

  describe('remote URLs (a loopback server; nothing leaves this machine)', () => {
    let server: ReturnType<typeof createServer>;
    let base: string;
    before(async () => {
      server = createServer((req, res) => {
        if (req.url === '/a.png') res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
        else if (req.url === '/big') res.writeHead(200).end(Buffer.alloc(20_000));
        else res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => server.close());

    it('are refused unless the operator enabled them', async () => {
      await refused(
        loadImageBytes(ref(`${base}/a.png`), policy()),
        'remote_images_disabled',
        /--allow-remote-images/,
      );
    });

    it('are fetched with a size cap when enabled', async () => {
      const p = policy({ allowRemote: true });
      assert.deepEqual(Buffer.from(await loadImageBytes(ref(`${base}/a.png`), p)), PNG);
      await refused(loadImageBytes(ref(`${base}/missing`), p), 'image_fetch_failed', /HTTP 404/);
      await refused(loadImageBytes(ref(`${base}/big`), p), 'image_too_large', /20000 bytes/);
    });
  });
});
