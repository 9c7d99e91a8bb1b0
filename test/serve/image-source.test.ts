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

  describe('remote URLs (loopback servers only; nothing leaves this machine)', () => {
    let server: ReturnType<typeof createServer>;
    let secret: ReturnType<typeof createServer>;
    let base: string;
    let port: number;
    let secretUrl: string;
    let secretConnections = 0;
    let requests = 0;
    before(async () => {
      server = createServer((req, res) => {
        requests++;
        if (req.url === '/a.png') res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
        else if (req.url === '/big') res.writeHead(200).end(Buffer.alloc(20_000));
        else if (req.url === '/big-chunked') {
          // No Content-Length: the cap must hold while the body streams.
          res.writeHead(200, { 'content-type': 'image/png' });
          res.write(Buffer.alloc(6000));
          res.write(Buffer.alloc(6000));
          res.end(Buffer.alloc(6000));
        } else if (req.url === '/to-secret') res.writeHead(302, { location: secretUrl }).end();
        else if (req.url === '/to-localhost')
          res.writeHead(301, { location: secretUrl.replace('127.0.0.1', 'localhost') }).end();
        else if (req.url === '/to-a') res.writeHead(307, { location: '/a.png' }).end();
        else if (req.url === '/loop') res.writeHead(302, { location: '/loop' }).end();
        else if (req.url === '/hang') {
          // never answers
        } else res.writeHead(404).end();
      });
      secret = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(PNG));
      secret.on('connection', () => secretConnections++);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      await new Promise<void>((r) => secret.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
      base = `http://127.0.0.1:${port}`;
      secretUrl = `http://127.0.0.1:${(secret.address() as AddressInfo).port}/a.png`;
    });
    after(() => {
      server.closeAllConnections();
      server.close();
      secret.close();
    });

    /** Enabled, with loopback allowed for the test server's port only (as if it were public). */
    const onlyTestServer = (over: Partial<ImageSourcePolicy> = {}) =>
      policy({ allowRemote: true, allowAddress: (a, p) => a === '127.0.0.1' && p === port, ...over });

    it('are refused unless the operator enabled them', async () => {
      await refused(
        loadImageBytes(ref(`${base}/a.png`), policy()),
        'remote_images_disabled',
        /--allow-remote-images/,
      );
    });

    it('never connect to loopback when enabled: literal, decimal, IPv6 and DNS names', async () => {
      const before = requests;
      const p = policy({ allowRemote: true });
      for (const url of [
        `${base}/a.png`,
        `http://2130706433:${port}/a.png`, // 127.0.0.1 as one number
        `http://0x7f.1:${port}/a.png`,
        `http://[::1]:${port}/a.png`,
        `http://[::ffff:127.0.0.1]:${port}/a.png`,
        `http://localhost:${port}/a.png`,
      ]) {
        await refused(loadImageBytes(ref(url), p), 'image_fetch_failed', /could not get an image/);
      }
      // A name that an (injected) resolver maps to loopback is refused after resolution.
      await refused(
        loadImageBytes(
          ref(`http://images.example:${port}/a.png`),
          policy({ allowRemote: true, resolver: async () => [{ address: '127.0.0.1', family: 4 }] }),
        ),
        'image_fetch_failed',
        /could not get an image/,
      );
      assert.equal(requests, before, 'the loopback server was never asked');
    });

    it('check every redirect: a public-looking URL cannot bounce the fetch to loopback', async () => {
      const before = secretConnections;
      await refused(
        loadImageBytes(ref(`${base}/to-secret`), onlyTestServer()),
        'image_fetch_failed',
        /could not get an image/,
      );
      await refused(
        loadImageBytes(ref(`${base}/to-localhost`), onlyTestServer()),
        'image_fetch_failed',
        /could not get an image/,
      );
      assert.equal(secretConnections, before, 'no connection reached the redirect target');
      // Redirects to allowed addresses are followed (relative ones included), up to a limit.
      assert.deepEqual(Buffer.from(await loadImageBytes(ref(`${base}/to-a`), onlyTestServer())), PNG);
      await refused(loadImageBytes(ref(`${base}/loop`), onlyTestServer()), 'image_fetch_failed', /could not/);
    });

    it('fetch allowed addresses with a byte cap, and answer every failure with one message', async () => {
      const p = onlyTestServer({ fetchTimeoutMs: 300 });
      assert.deepEqual(Buffer.from(await loadImageBytes(ref(`${base}/a.png`), p)), PNG);
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const closedPort = (closed.address() as AddressInfo).port;
      await new Promise<void>((r) => closed.close(() => r()));
      const messages = new Set<string>();
      const failures: [string, Partial<ImageSourcePolicy>][] = [
        [`${base}/missing`, {}], // HTTP 404
        [`${base}/big`, {}], // Content-Length over the cap
        [`${base}/big-chunked`, {}], // streamed past the cap
        [`${base}/hang`, {}], // times out
        [`http://127.0.0.1:${closedPort}/a.png`, { allowAddress: () => true }], // closed port
        [`${base}/to-secret`, {}], // refused redirect
      ];
      for (const [url, over] of failures) {
        await assert.rejects(loadImageBytes(ref(url), { ...p, ...over }), (e: unknown) => {
          assert.ok(e instanceof ApiError, String(e));
          assert.equal(e.status, 400);
          assert.equal(e.code, 'image_fetch_failed');
          assert.ok(e.detail, 'the reason is kept for the server log');
          messages.add(e.message);
          return true;
        });
      }
      assert.equal(messages.size, 1, `one message for every failure, got ${[...messages].join(' | ')}`);
    });
  });
});
