/**
 * The in-browser page (src/browser, served by `maven serve` at /local/ and built as static files
 * by scripts/build-page.ts) in headless Chromium, on the embedded maven-tiny:
 *
 * - loaded, then cut off from the network: it answers a two-image question with Node's answer,
 *   Node's candidate log-likelihoods (within 1e-3), discrete ids, kept patches and visual-token
 *   count, and no request it ever made carried a body (so none carried an image);
 * - the next visit reads the model from the Cache API (only bodiless 304 revalidations), and a
 *   model file that changed on the server is downloaded again;
 * - a file the browser cannot decode is named in the page, and the page goes on answering; so
 *   is a model directory that is not there;
 * - the static build, hosted without cross-origin isolation headers, runs on one thread.
 *
 * The first test saves a screenshot of the answered page to $LOCAL_PAGE_SCREENSHOT (e.g.
 * docs/browser-screenshot.png; else a temp file).
 *
 * Skipped when Chromium is not installed (.ci/run installs it; MAVEN_REQUIRE_BROWSER=1 fails instead).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import type { CandidateScore } from '../../src/maven/generation.ts';
import type { MavenModel } from '../../src/maven/model.ts';
import { loadMaven } from '../../src/node/model-directory.ts';
import { preprocessImages } from '../../src/node/preprocess-images.ts';
import { writeLocalPage } from '../../src/serve/local-page.ts';
import { type ServerHandle, startServer } from '../../src/serve/server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = `headless Chromium is not installed at ${CHROMIUM} (apt-get install chromium, as .ci/run does)`;
if (!existsSync(CHROMIUM) && process.env.MAVEN_REQUIRE_BROWSER === '1')
  throw new Error(`${missing}, and MAVEN_REQUIRE_BROWSER=1 requires it`);
const skip = existsSync(CHROMIUM) ? false : `${missing}; browser test skipped`;

const MODEL_DIR = fileURLToPath(new URL('../../models/maven-tiny', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../assets/samples/', import.meta.url));
const FILES = [join(SAMPLES, 'fashion-test-0.png'), join(SAMPLES, 'fashion-test-2.png')];
const QUESTION = "Which image shows a pair of trousers? Answer with the image's number (1–2).";
/** What the page asks for this question: each image numbered on its own line (maven-tiny's layout). */
const PROMPT = `Image 1: <image>\nImage 2: <image>\n${QUESTION}`;
const CANDIDATES = ['1', '2'];
const SCREENSHOT = process.env.LOCAL_PAGE_SCREENSHOT ?? join(tmpdir(), 'maven-local-page-screenshot.png');

interface NodeReference {
  text: string;
  scores: CandidateScore[];
  ids: string[];
  kept: number[];
  visualTokens: number;
}

async function nodeReference(model: MavenModel): Promise<NodeReference> {
  const images = await preprocessImages(model, FILES);
  const { text, prepared } = await model.generate(PROMPT, images, { maxNewTokens: 32 });
  return {
    text,
    scores: await model.scorePrepared(prepared, CANDIDATES),
    ids: prepared.images.map((im) => im.discreteIds.join(' ')),
    kept: prepared.images.map((im) => im.keptPatches.length),
    visualTokens: prepared.sequence.images.reduce((n, s) => n + s.end - s.start, 0),
  };
}

const launchArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run'];

/** Every request a page makes, with whether it had a body. */
function recordRequests(page: Page): { method: string; url: string; body: boolean }[] {
  const seen: { method: string; url: string; body: boolean }[] = [];
  page.on('request', (r) =>
    seen.push({ method: r.method(), url: r.url(), body: r.postDataBuffer() !== null }),
  );
  return seen;
}

function recordProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  return problems;
}

async function waitReady(page: Page): Promise<string> {
  await page.locator('#load.ready, #load.error').waitFor({ timeout: 90_000 });
  const line = (await page.locator('#load').textContent()) ?? '';
  assert.equal(await page.locator('#load').getAttribute('class'), 'ready', line);
  return line;
}

async function askTwoImages(page: Page) {
  await page.setInputFiles('#files', FILES);
  await page.locator('#thumbs canvas').nth(1).waitFor();
  await page.fill('#candidates', CANDIDATES.join(', '));
  await page.fill('#prompt', QUESTION);
  await page.click('#send');
  const turn = page.locator('.turn').first();
  await turn.locator('.answer:not(.streaming), .error').first().waitFor({ timeout: 60_000 });
  assert.deepEqual(await turn.locator('.error').allTextContents(), [], 'no error in the answer');
  return turn;
}

describe('the in-browser page in headless Chromium', { timeout: 240_000 }, () => {
  let server: ServerHandle;
  let browser: Browser;
  let reference: NodeReference;
  let servedDir: string;

  before(async () => {
    if (skip) return;
    // A copy of the model directory, whose files the cache test changes.
    servedDir = mkdtempSync(join(tmpdir(), 'maven-local-model-'));
    for (const f of readdirSync(MODEL_DIR)) copyFileSync(join(MODEL_DIR, f), join(servedDir, f));
    const model = await loadMaven(servedDir);
    reference = await nodeReference(model);
    server = await startServer(model, { port: 0, localPageModelDir: servedDir });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: launchArgs });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (servedDir) rmSync(servedDir, { recursive: true, force: true });
  });

  let context: BrowserContext;
  it('answers two images offline as Node does, and no request carries an image', { skip }, async (t) => {
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    const requests = recordRequests(page);
    const problems = recordProblems(page);
    await page.goto(`${server.url}/local/`);
    const loaded = await waitReady(page);
    assert.match(loaded, /on wasm, wasm SIMD, \d+ threads?/);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'maven serve makes /local/ isolated');

    // The network is cut: any request from now on fails, and is recorded.
    const afterCut: string[] = [];
    await context.route('**/*', (route) => {
      afterCut.push(route.request().url());
      return route.abort('internetdisconnected');
    });
    await context.setOffline(true);

    const turn = await askTwoImages(page);
    assert.equal(await turn.locator('.answer').textContent(), reference.text || '(empty answer)');
    const shown = await turn
      .locator('li.score')
      .evaluateAll((items) => items.map((li) => Number((li as HTMLElement).dataset.logLikelihood)));
    assert.equal(shown.length, CANDIDATES.length);
    const gaps = shown.map((score, i) => Math.abs(score - reference.scores[i].logLikelihood));
    t.diagnostic(
      `answer ${JSON.stringify(reference.text)}; largest page − Node score gap ${Math.max(...gaps).toExponential(2)}`,
    );
    shown.forEach((score, i) => {
      const node = reference.scores[i].logLikelihood;
      assert.ok(Math.abs(score - node) < 1e-3, `candidate "${CANDIDATES[i]}": page ${score}, Node ${node}`);
    });
    assert.deepEqual(await turn.locator('code.ids').allTextContents(), reference.ids);
    const captions = await turn.locator('figcaption').allTextContents();
    for (const [i, kept] of reference.kept.entries()) {
      assert.match(captions[i], new RegExp(`^image ${i + 1}: ${kept}/144 patches kept`));
    }
    assert.equal(
      await turn.locator('.usage').getAttribute('data-visual-tokens'),
      String(reference.visualTokens),
    );
    assert.equal(await turn.locator('canvas.overlay').count(), 2);

    assert.deepEqual(afterCut, [], 'nothing was fetched after loading');
    const withBody = requests.filter((r) => r.body || r.method !== 'GET');
    assert.deepEqual(withBody, [], 'every request was a GET without a body');
    const elsewhere = requests.filter((r) => !r.url.startsWith(`${server.url}/local/`));
    assert.deepEqual(elsewhere, [], 'every request stayed under /local/');
    assert.ok(requests.some((r) => r.url.endsWith('/models/maven-tiny/model.safetensors')));
    assert.deepEqual(problems, []);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it('reads the model from the browser cache on the next visit, and downloads it again once it changed', {
    skip,
  }, async () => {
    await context.unroute('**/*');
    await context.setOffline(false);
    const visit = async () => {
      const page = await context.newPage();
      const answers: { file: string; status: number }[] = [];
      page.on('response', (r) => {
        if (r.url().includes('/models/'))
          answers.push({ file: r.url().split('/').pop()!, status: r.status() });
      });
      await page.goto(`${server.url}/local/`);
      const line = await waitReady(page);
      await page.close();
      return { line, answers };
    };
    const again = await visit();
    assert.match(again.line, /from the browser cache/);
    assert.deepEqual(
      again.answers.map((a) => a.status),
      again.answers.map(() => 304),
      `only bodiless revalidations: ${JSON.stringify(again.answers)}`,
    );
    assert.ok(again.answers.some((a) => a.file === 'model.safetensors'));

    // The model file changes on the server (as when a model is retrained in place).
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(servedDir, 'model.safetensors'), later, later);
    const changed = await visit();
    assert.match(changed.line, /downloaded, now cached/);
    assert.deepEqual(
      changed.answers.find((a) => a.file === 'model.safetensors'),
      { file: 'model.safetensors', status: 200 },
    );
    await context.close();
  });

  it('names an image it cannot decode and goes on answering', { skip }, async () => {
    const page = await browser.newPage();
    const problems = recordProblems(page);
    await page.goto(`${server.url}/local/`);
    await waitReady(page);
    await page.setInputFiles('#files', [
      { name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('these bytes are not a PNG') },
      { name: 'empty.jpg', mimeType: 'image/jpeg', buffer: Buffer.alloc(0) },
    ]);
    const errors = page.locator('#image-errors .error');
    await errors.nth(1).waitFor();
    const messages = await errors.allTextContents();
    assert.match(messages[0], /^broken\.png: not a readable image/);
    assert.match(messages[1], /^empty\.jpg: empty \(0 bytes\), not an image/);
    assert.equal(await page.locator('#thumbs canvas').count(), 0, 'nothing broken was attached');
    const turn = await askTwoImages(page);
    assert.equal(await turn.locator('.answer').textContent(), reference.text || '(empty answer)');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('names a model directory it cannot load', { skip }, async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/local/?model=models/not-there/`);
    await page.locator('#load.error').waitFor({ timeout: 30_000 });
    assert.match(
      (await page.locator('#load').textContent()) ?? '',
      /^Could not load the model from models\/not-there\/: cannot fetch http:\/\/127\.0\.0\.1:\d+\/local\/models\/not-there\/config\.json: HTTP 404/,
    );
    assert.equal(await page.locator('#send').isDisabled(), true);
    await page.close();
  });

  it('runs from the static build on a plain file server (no isolation headers: one thread)', {
    skip,
  }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'maven-page-'));
    let files: Server | undefined;
    try {
      await writeLocalPage(out, MODEL_DIR);
      files = createServer(async (req, res) => {
        const path = normalize(join(out, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
        const file = path.endsWith('/') ? join(path, 'index.html') : path;
        try {
          if (!file.startsWith(out)) throw new Error('outside');
          const body = await readFile(file);
          const type = {
            '.html': 'text/html',
            '.js': 'text/javascript',
            '.mjs': 'text/javascript',
            '.wasm': 'application/wasm',
          }[extname(file)];
          res.writeHead(200, type ? { 'content-type': type } : {}).end(body);
        } catch {
          res.writeHead(404).end();
        }
      });
      await new Promise<void>((done) => files!.listen(0, '127.0.0.1', done));
      const port = (files.address() as AddressInfo).port;
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${port}/`);
      assert.match(
        await waitReady(page),
        /on wasm, wasm SIMD, 1 thread \(one thread: the page is not cross-origin isolated\)/,
      );
      const turn = await askTwoImages(page);
      assert.equal(await turn.locator('.answer').textContent(), reference.text || '(empty answer)');
      await page.close();
    } finally {
      await new Promise((done) => (files ? files.close(done) : done(undefined)));
      rmSync(out, { recursive: true, force: true });
    }
  });
});
