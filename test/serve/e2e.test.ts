/**
 * The web page end to end in headless Chromium (Debian's `chromium`, driven by playwright-core):
 * upload two images, ask, and check that the streamed answer and each image's kept-patch overlay
 * and discrete ids appear, and match what the API itself returns for the same request. A
 * follow-up question shows the images served from the encoding cache. Saves a screenshot (to
 * $SERVE_SCREENSHOT, e.g. docs/serve-screenshot.png; else a temp file).
 *
 * Skipped when Chromium is not installed (.ci/run installs it). $SERVE_E2E_MODEL picks a trained
 * model directory (e.g. models/maven-tiny) instead of the small random one.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { loadMaven } from '../../src/node/model-directory.ts';
import { type ServerHandle, startServer } from '../../src/serve/server.ts';
import { smallModel } from '../maven/small-model.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = `headless Chromium is not installed at ${CHROMIUM} (apt-get install chromium, as .ci/run does)`;
// CI sets MAVEN_REQUIRE_BROWSER: there a missing browser fails the suite instead of skipping it unseen.
if (!existsSync(CHROMIUM) && process.env.MAVEN_REQUIRE_BROWSER === '1')
  throw new Error(`${missing}, and MAVEN_REQUIRE_BROWSER=1 requires it`);
const skip = existsSync(CHROMIUM) ? false : `${missing}; browser test skipped`;
const SAMPLES = fileURLToPath(new URL('../../assets/samples/', import.meta.url));
const FILES = [join(SAMPLES, 'fashion-test-0.png'), join(SAMPLES, 'fashion-test-2.png')];
const QUESTION = "Which image shows a pair of trousers? Answer with the image's number (1–2).";
const SCREENSHOT = process.env.SERVE_SCREENSHOT ?? join(tmpdir(), 'maven-serve-screenshot.png');

describe('the web page in headless Chromium', { timeout: 120_000 }, () => {
  let server: ServerHandle;
  let browser: Browser;

  before(async () => {
    if (skip) return;
    const model = process.env.SERVE_E2E_MODEL ? await loadMaven(process.env.SERVE_E2E_MODEL) : smallModel();
    server = await startServer(model, { port: 0 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('uploads two images, streams an answer, and shows each image with its kept patches and ids', {
    skip,
  }, async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    await page.goto(`${server.url}/`);
    await page.setInputFiles('#files', FILES);
    await page.locator('#thumbs img').nth(1).waitFor();
    assert.equal(await page.locator('#thumbs img').count(), 2);
    await page.fill('#prompt', QUESTION);
    await page.click('#send');

    const turn = page.locator('.turn').first();
    await turn.locator('.answer:not(.streaming)').waitFor({ timeout: 60_000 });
    assert.deepEqual(await page.locator('.error').allTextContents(), [], 'no error shown');
    const answer = await turn.locator('.answer').textContent();
    assert.ok(answer && answer.length > 0);

    // The same request straight to the API: the page must show what the API answers.
    const dataUrls = FILES.map((f) => `data:image/png;base64,${readFileSync(f).toString('base64')}`);
    const api = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          {
            role: 'user',
            content: [
              ...dataUrls.map((url) => ({ type: 'image_url', image_url: { url } })),
              { type: 'text', text: QUESTION },
            ],
          },
        ],
        max_tokens: 32,
      }),
    }).then((r) => r.json());
    assert.equal(answer, api.choices[0].message.content || '(empty answer)');

    const overlays = turn.locator('img.overlay');
    assert.equal(await overlays.count(), 2);
    for (let i = 0; i < 2; i++) {
      const width = await overlays
        .nth(i)
        .evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth);
      assert.ok(typeof width === 'number' && width >= 192, `overlay ${i} is drawn (natural width ${width})`);
    }
    const ids = await turn.locator('code.ids').allTextContents();
    assert.deepEqual(
      ids,
      api.maven.images.map((im: { discrete_ids: number[] }) => im.discrete_ids.join(' ')),
    );
    // Ids wrap between numbers, never inside one.
    const wordBreak = await turn
      .locator('code.ids')
      .first()
      .evaluate((e) => getComputedStyle(e).wordBreak);
    assert.equal(wordBreak, 'normal');
    // The words the model cannot read are named under the answer, as the API reports them.
    const unknown: string[] = api.maven.unknown_words;
    const note = turn.locator('.note.unknown');
    if (unknown.length) {
      assert.ok(await note.isVisible());
      const shown = unknown.map((w) => (/^[\p{L}\p{N}]+$/u.test(w) ? w : JSON.stringify(w)));
      assert.ok(((await note.textContent()) ?? '').endsWith(`as <unk>: ${shown.join(', ')}`));
    } else assert.equal(await note.isVisible(), false);
    const captions = await turn.locator('figcaption').allTextContents();
    api.maven.images.forEach((im: { kept_patches: number; total_patches: number }, i: number) => {
      assert.match(captions[i], new RegExp(`${im.kept_patches}/${im.total_patches} patches kept`));
    });
    assert.match(
      (await turn.locator('.usage').textContent()) ?? '',
      /prompt tokens \(\d+ for images\), \d+ generated/,
    );

    // A follow-up re-sends both images; the server answers from its encoding cache.
    await page.fill('#prompt', 'And which one is a shoe?');
    await page.click('#send');
    const second = page.locator('.turn').first();
    await second.locator('.answer:not(.streaming)').waitFor({ timeout: 60_000 });
    assert.equal(await second.locator('.badge', { hasText: 'cached' }).count(), 2);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.deepEqual(problems, []);
  });
});
