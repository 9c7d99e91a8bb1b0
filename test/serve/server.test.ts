/**
 * `maven serve` over real HTTP on 127.0.0.1 (a random free port) with a small random model: the
 * answers must be what MavenModel.generate gives for the same prompt and images; streaming, usage,
 * the encoding cache, the queue, and every bad input as a 4xx JSON error in OpenAI's shape.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { preprocessImages } from '../../src/node/preprocess-images.ts';
import { parseChatRequest } from '../../src/serve/chat-request.ts';
import { type ServerHandle, startServer } from '../../src/serve/server.ts';
import { smallModel } from '../maven/small-model.ts';

const IMAGES = fileURLToPath(new URL('../fixtures/images/', import.meta.url));
const bytesOf = (name: string) => new Uint8Array(readFileSync(join(IMAGES, name)));
const dataUrl = (bytes: Uint8Array, type = 'image/png') =>
  `data:${type};base64,${Buffer.from(bytes).toString('base64')}`;
const image = (url: string, detail?: string) => ({
  type: 'image_url',
  image_url: { url, ...(detail ? { detail } : {}) },
});
const text = (t: string) => ({ type: 'text', text: t });

/** A PNG no other test uses, so its first request is a cache miss. */
async function freshPng(seed: number): Promise<Uint8Array> {
  const raw = Buffer.alloc(24 * 20 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + seed * 101 + ((i * seed) % 13)) % 256;
  return new Uint8Array(
    await sharp(raw, { raw: { width: 24, height: 20, channels: 3 } })
      .png()
      .toBuffer(),
  );
}

interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON from the server, checked field by field
  json: any;
}

async function request(
  base: string,
  path: string,
  init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const res = await fetch(base + path, {
    method: init.method ?? (init.body !== undefined || init.raw !== undefined ? 'POST' : 'GET'),
    headers: { 'content-type': 'application/json', ...init.headers },
    body: init.raw ?? (init.body !== undefined ? JSON.stringify(init.body) : undefined),
  });
  const body = await res.text();
  return {
    status: res.status,
    json: res.headers.get('content-type')?.includes('json') ? JSON.parse(body) : body,
  };
}

/** The `data:` payloads of an SSE body, in order. */
function sseData(body: string): string[] {
  assert.ok(body.endsWith('\n\n'), 'an SSE body ends with a blank line');
  return body
    .trim()
    .split('\n\n')
    .map((event) => {
      assert.match(event, /^data: /);
      return event.slice(6);
    });
}

function assertApiError(r: Reply, status: number, code: string | null, pattern: RegExp) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(typeof r.json, 'object', `a JSON body, got ${r.json}`);
  const e = r.json.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(e.code, code);
  assert.match(e.message, pattern);
  assert.equal(typeof e.type, 'string');
}

const model = smallModel();
const rgba = bytesOf('rgba.png');
const blocks = bytesOf('blocks.jpg');
const gray = bytesOf('gray.png');
const QUESTION = 'how many yellow squares are there ?';
// Sampling (seeded) rather than greedy: the random model's greedy answer hardly depends on the
// images, a sampled one does, so a wrong image or order shows up in the text.
const SAMPLING = { temperature: 1, seed: 11, max_tokens: 8 };
const twoImages = (extra: Record<string, unknown> = {}) => ({
  model: 'maven-tiny',
  messages: [
    { role: 'user', content: [image(dataUrl(rgba)), image(dataUrl(blocks, 'image/jpeg')), text(QUESTION)] },
  ],
  ...SAMPLING,
  ...extra,
});

/** What the model itself answers: the independent reference the server is checked against. */
async function reference(prompt: string, images: Uint8Array[], options: Record<string, unknown> = {}) {
  const prepared = await model.prepare(prompt, await preprocessImages(model, images), options);
  let text = '';
  let tokens = 0;
  for await (const p of model.stream(prepared, { temperature: 1, seed: 11, maxNewTokens: 8 })) {
    text += p.text;
    if (p.id >= 0) tokens++;
  }
  return { text: text.trim(), tokens, prepared };
}

describe('maven serve over HTTP', () => {
  let server: ServerHandle;
  let base: string;
  let root: string;
  const logs: string[] = [];

  before(async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'maven-serve-root-')));
    writeFileSync(join(root, 'gray.png'), gray);
    server = await startServer(model, {
      port: 0,
      maxBodyBytes: 256 * 1024,
      maxTokens: 2040,
      images: { imageRoot: root },
      log: (line) => logs.push(line),
    });
    base = server.url;
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
  });
  after(() => server.close());

  it('answers GET /health and GET /v1/models', async () => {
    const h = await request(base, '/health');
    assert.equal(h.status, 200);
    assert.equal(h.json.status, 'ok');
    assert.equal(h.json.model, 'maven-tiny');
    const m = await request(base, '/v1/models');
    assert.deepEqual(
      m.json.data.map((d: { id: string; object: string }) => [d.id, d.object]),
      [['maven-tiny', 'model']],
    );
    assert.equal((await request(base, '/v1/models/maven-tiny')).json.id, 'maven-tiny');
    assertApiError(await request(base, '/v1/models/gpt-4o'), 404, 'model_not_found', /gpt-4o/);
    assertApiError(await request(base, '/nowhere'), 404, 'not_found', /GET \/nowhere/);
  });

  it('answers a two-image request as MavenModel.generate does, with usage per image', async () => {
    const r = await request(base, '/v1/chat/completions', { body: twoImages() });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const ref = await reference(`Image 1: <image>\nImage 2: <image>\n${QUESTION}`, [rgba, blocks]);
    const { json } = r;
    assert.equal(json.object, 'chat.completion');
    assert.match(json.id, /^chatcmpl-/);
    assert.equal(json.model, 'maven-tiny');
    assert.equal(json.choices.length, 1);
    assert.equal(json.choices[0].message.role, 'assistant');
    assert.ok(ref.text.length > 0);
    assert.equal(json.choices[0].message.content.trim(), ref.text);
    assert.equal(json.choices[0].finish_reason, ref.tokens === 8 ? 'length' : 'stop');
    // Per image: 4 discrete ids, ⌈0.25 · 16⌉ = 4 kept patches of a 4×4 grid, plus <img> and </img>.
    assert.deepEqual(json.usage.maven.images, [
      { discrete_tokens: 4, kept_patches: 4, total_patches: 16 },
      { discrete_tokens: 4, kept_patches: 4, total_patches: 16 },
    ]);
    assert.equal(json.usage.prompt_tokens_details.image_tokens, 2 * (1 + 4 + 4 + 1));
    assert.equal(json.usage.prompt_tokens, ref.prepared.sequence.slots.length);
    assert.equal(json.usage.completion_tokens, ref.tokens);
    assert.equal(json.usage.total_tokens, json.usage.prompt_tokens + json.usage.completion_tokens);
    json.maven.images.forEach((img: { kept: number[]; discrete_ids: number[]; grid: number }, i: number) => {
      assert.deepEqual(img.kept, ref.prepared.images[i].keptPatches);
      assert.deepEqual(img.discrete_ids, ref.prepared.images[i].discreteIds);
      assert.equal(img.grid, 4);
    });
    // The images matter: the other order gives another answer.
    const swapped = await reference(`Image 1: <image>\nImage 2: <image>\n${QUESTION}`, [blocks, rgba]);
    assert.notEqual(swapped.text, ref.text, 'the test images should lead to different answers');
  });

  it('assembles the same prompt embeddings as MavenModel.prepare', async () => {
    const req = parseChatRequest(twoImages(), server.service.limits());
    const chat = await server.service.prepare(req, await server.service.gather(req));
    const ref = await model.prepare(
      `Image 1: <image>\nImage 2: <image>\n${QUESTION}`,
      await preprocessImages(model, [rgba, blocks]),
    );
    assert.deepEqual(chat.prompt.sequence.slots, ref.sequence.slots);
    assert.deepEqual(chat.prompt.embeds.shape, ref.embeds.shape);
    const a = chat.prompt.embeds.data as Float32Array;
    const b = ref.embeds.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst < 1e-5, `embeddings differ by up to ${worst}`);
  });

  it('maps detail and the maven_* fields to the encoding', async () => {
    const kept = (r: Reply) => r.json.maven.images.map((i: { kept: number[] }) => i.kept);
    const counts = (r: Reply) =>
      r.json.usage.maven.images.map((i: { discrete_tokens: number; kept_patches: number }) => [
        i.discrete_tokens,
        i.kept_patches,
      ]);
    const prompt = `Image 1: <image>\nImage 2: <image>\n${QUESTION}`;

    const low = await request(base, '/v1/chat/completions', {
      body: {
        ...twoImages(),
        messages: [
          {
            role: 'user',
            content: [image(dataUrl(rgba), 'low'), image(dataUrl(blocks), 'high'), text(QUESTION)],
          },
        ],
      },
    });
    assert.deepEqual(counts(low), [
      [4, 0],
      [4, 4],
    ]);
    assert.equal(low.json.usage.prompt_tokens_details.image_tokens, 1 + 4 + 1 + (1 + 4 + 4 + 1));
    assert.deepEqual(
      low.json.maven.images.map((i: { mode: string }) => i.mode),
      ['discrete-only', 'hybrid'],
    );

    const ratio = await request(base, '/v1/chat/completions', { body: twoImages({ maven_keep_ratio: 0.5 }) });
    const refRatio = await reference(prompt, [rgba, blocks], { keepRatio: 0.5 });
    assert.deepEqual(
      kept(ratio),
      refRatio.prepared.images.map((i) => i.keptPatches),
    );
    assert.deepEqual(counts(ratio), [
      [4, 8],
      [4, 8],
    ]);
    assert.equal(ratio.json.choices[0].message.content.trim(), refRatio.text);

    const budget = await request(base, '/v1/chat/completions', {
      body: twoImages({ maven_visual_token_budget: 5 }),
    });
    const refBudget = await reference(prompt, [rgba, blocks], { visualTokenBudget: 5 });
    assert.deepEqual(
      kept(budget),
      refBudget.prepared.images.map((i) => i.keptPatches),
    );
    assert.equal(kept(budget).flat().length, 5);
    assert.equal(budget.json.choices[0].message.content.trim(), refBudget.text);

    const discrete = await request(base, '/v1/chat/completions', {
      body: twoImages({ maven_mode: 'discrete-only' }),
    });
    const refDiscrete = await reference(prompt, [rgba, blocks], { mode: 'discrete-only' });
    assert.equal(discrete.json.choices[0].message.content.trim(), refDiscrete.text);

    const all = await request(base, '/v1/chat/completions', {
      body: twoImages({ maven_mode: 'continuous-only' }),
    });
    assert.deepEqual(counts(all), [
      [0, 16],
      [0, 16],
    ]);
    const refAll = await reference(prompt, [rgba, blocks], { mode: 'continuous-only' });
    assert.equal(all.json.choices[0].message.content.trim(), refAll.text);
    assert.equal(all.json.usage.prompt_tokens, refAll.prepared.sequence.slots.length);

    const tooMany = await request(base, '/v1/chat/completions', {
      body: twoImages({ maven_visual_token_budget: 33 }),
    });
    assertApiError(tooMany, 400, 'invalid_value', /budget 33 is more than the 32 patches/);
  });

  it('streams chunks over SSE, with usage last when asked and [DONE] at the end', async () => {
    const plain = await request(base, '/v1/chat/completions', { body: twoImages() });
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(twoImages({ stream: true, stream_options: { include_usage: true } })),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const data = sseData(await res.text());
    assert.equal(data.at(-1), '[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.id, chunks[0].id);
      assert.ok('usage' in c, 'with include_usage every chunk has a usage field');
    }
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    assert.equal(chunks[0].maven.images.length, 2);
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk.choices, []);
    assert.deepEqual(usageChunk.usage, plain.json.usage);
    const finish = chunks.at(-2);
    assert.deepEqual(finish.choices[0].delta, {});
    assert.equal(finish.choices[0].finish_reason, plain.json.choices[0].finish_reason);
    const content = chunks
      .slice(1, -2)
      .map((c) => {
        assert.equal(c.usage, null);
        assert.equal(c.choices[0].finish_reason, null);
        return c.choices[0].delta.content;
      })
      .join('');
    assert.ok(chunks.length - 3 >= 2, 'the answer arrives in several chunks');
    assert.equal(content, plain.json.choices[0].message.content);

    const bare = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(twoImages({ stream: true })),
    });
    const bareChunks = sseData(await bare.text());
    assert.equal(bareChunks.at(-1), '[DONE]');
    const parsed = bareChunks.slice(0, -1).map((d) => JSON.parse(d));
    assert.ok(
      parsed.every((c) => !('usage' in c)),
      'no usage without include_usage',
    );
    assert.equal(parsed.at(-1).choices[0].finish_reason, plain.json.choices[0].finish_reason);
  });

  it('encodes a repeated image once: later turns hit the cache and skip the vision side', async () => {
    const first = await freshPng(1);
    const second = await freshPng(2);
    const encodedBefore = (await request(base, '/health')).json.encoder.encoded_images;
    const turn1 = {
      messages: [{ role: 'user', content: [image(dataUrl(first)), text('what is there ?')] }],
      ...SAMPLING,
    };
    const r1 = await request(base, '/v1/chat/completions', { body: turn1 });
    assert.equal(r1.status, 200);
    assert.equal(r1.json.maven.images[0].cached, false);
    assert.ok(r1.json.maven.images[0].encode_ms > 0);
    assert.equal((await request(base, '/health')).json.encoder.encoded_images, encodedBefore + 1);

    const again = await request(base, '/v1/chat/completions', { body: turn1 });
    assert.equal(again.json.maven.images[0].cached, true);
    assert.equal(again.json.maven.images[0].encode_ms, 0);
    assert.deepEqual(again.json.choices, r1.json.choices, 'a cached encoding gives the same answer');
    assert.deepEqual(again.json.maven.images[0].kept, r1.json.maven.images[0].kept);

    const turn2 = {
      messages: [
        ...turn1.messages,
        { role: 'assistant', content: r1.json.choices[0].message.content },
        { role: 'user', content: [image(dataUrl(second)), text('and there ?')] },
      ],
      ...SAMPLING,
    };
    const r2 = await request(base, '/v1/chat/completions', { body: turn2 });
    assert.equal(r2.status, 200);
    assert.deepEqual(
      r2.json.maven.images.map((i: { cached: boolean }) => i.cached),
      [true, false],
    );
    const health = (await request(base, '/health')).json;
    assert.equal(health.encoder.encoded_images, encodedBefore + 2, 'only the new image was encoded');
    assert.ok(health.cache.hits >= 2);
    assert.ok(health.cache.entries >= 2);
    // The conversation is one prompt in the plain template; the model agrees on it.
    const ref = await reference(
      `Image 1: <image>\nwhat is there ? ${r1.json.choices[0].message.content}\nImage 2: <image>\nand there ?`,
      [first, second],
    );
    assert.equal(r2.json.choices[0].message.content.trim(), ref.text);
    assert.equal(r2.json.usage.prompt_tokens, ref.prepared.sequence.slots.length);
  });

  it('reads images from the image root, and returns overlays when asked', async () => {
    const r = await request(base, '/v1/chat/completions', {
      body: {
        messages: [{ role: 'user', content: [image('gray.png'), text('what ?')] }],
        max_tokens: 2,
        maven_overlays: true,
      },
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const overlay: string = r.json.maven.images[0].overlay;
    assert.match(overlay, /^data:image\/png;base64,/);
    const meta = await sharp(Buffer.from(overlay.split(',')[1], 'base64')).metadata();
    assert.equal(meta.width, meta.height, 'the square the ViT saw');
    assert.ok((meta.width ?? 0) >= 192);
  });

  it('serves concurrent requests one at a time, each with its own answer', async () => {
    const bodies = [0, 1, 2, 3].map((i) => ({
      messages: [
        {
          role: 'user',
          content: [
            image(dataUrl([rgba, blocks, gray, rgba][i])),
            text(['how many ?', 'is it yellow ?', 'what ?', 'there is'][i]),
          ],
        },
      ],
      ...SAMPLING,
      seed: i,
    }));
    const sequential: Reply[] = [];
    for (const body of bodies) sequential.push(await request(base, '/v1/chat/completions', { body }));
    const concurrent = await Promise.all(
      bodies.map((body) => request(base, '/v1/chat/completions', { body })),
    );
    concurrent.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.choices, sequential[i].json.choices, `request ${i}`);
      assert.deepEqual(r.json.usage, sequential[i].json.usage);
    });
    const answers = new Set(sequential.map((r) => r.json.choices[0].message.content));
    assert.ok(answers.size >= 3, 'different requests get different answers');
    const waited = concurrent.map((r) => r.json.maven.timings_ms.queue);
    assert.ok(Math.max(...waited) > 0, `some request waited its turn: ${waited}`);
  });

  it('keeps answering /health during a long generation and frees the model when a client leaves', async () => {
    const controller = new AbortController();
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [{ role: 'user', content: 'there is' }],
        max_tokens: 1800,
        stream: true,
      }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // the first chunk: generation has started
    const t0 = performance.now();
    const busy = await request(base, '/health');
    assert.equal(busy.status, 200);
    assert.equal(busy.json.queue.running, 1);
    assert.ok(performance.now() - t0 < 1000, 'health is not queued behind the generation');
    const waiting = request(base, '/v1/chat/completions', {
      body: { messages: [{ role: 'user', content: 'yes' }], max_tokens: 2 },
    });
    for (let i = 0; i < 200 && (await request(base, '/health')).json.queue.waiting === 0; i++) {
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal((await request(base, '/health')).json.queue.waiting, 1);
    controller.abort();
    const after = await waiting;
    assert.equal(after.status, 200);
    const health = (await request(base, '/health')).json;
    assert.deepEqual([health.queue.running, health.queue.waiting], [0, 0]);
    assert.ok(
      logs.some((l) => / 499 /.test(l)),
      'the abandoned stream is logged as 499',
    );
  });

  describe('bad input: a 4xx JSON error in OpenAI shape, and the server goes on', () => {
    const post = (body: unknown) => request(base, '/v1/chat/completions', { body });
    const oneImage = (url: string) => ({
      messages: [{ role: 'user', content: [image(url), text('?')] }],
      max_tokens: 2,
    });

    it('malformed JSON', async () => {
      assertApiError(
        await request(base, '/v1/chat/completions', { raw: '{"messages": [' }),
        400,
        'invalid_json',
        /not valid JSON/,
      );
    });

    it('wrong content types: of the body, and of a message part', async () => {
      const r = await request(base, '/v1/chat/completions', {
        raw: JSON.stringify(twoImages()),
        headers: { 'content-type': 'text/plain' },
      });
      assertApiError(r, 415, 'unsupported_media_type', /application\/json, got "text\/plain"/);
      assertApiError(
        await post({
          messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: '' } }] }],
        }),
        400,
        'unsupported_content_type',
        /"text" or "image_url"/,
      );
      const r2 = await post({ messages: [{ role: 'user', content: [{ type: 'input_audio' }] }] });
      assert.equal(r2.json.error.param, 'messages[0].content[0].type');
    });

    it('a data URL that is not an image', async () => {
      assertApiError(
        await post(oneImage('data:text/plain;base64,aGVsbG8=')),
        400,
        'invalid_image',
        /not an image/,
      );
      const notImage = bytesOf('not-an-image.txt');
      const r = await post(oneImage(dataUrl(notImage)));
      assertApiError(
        r,
        400,
        'invalid_image',
        /messages\[0\]\.content\[0\]\.image_url\.url: not a readable image/,
      );
      assert.equal(r.json.error.param, 'messages[0].content[0].image_url.url');
      assertApiError(
        await post(oneImage(dataUrl(bytesOf('truncated.png')))),
        400,
        'invalid_image',
        /truncated|corrupt|readable/,
      );
    });

    it('a 0-byte image', async () => {
      assertApiError(
        await post(oneImage('data:image/png;base64,')),
        400,
        'invalid_image',
        /empty \(0 bytes\)/,
      );
      assertApiError(
        await post(oneImage(dataUrl(bytesOf('empty.png')))),
        400,
        'invalid_image',
        /0 bytes|empty/,
      );
    });

    it('an oversized body', async () => {
      const huge = dataUrl(new Uint8Array(300 * 1024));
      assertApiError(await post(oneImage(huge)), 413, 'request_too_large', /limit of 262144 bytes/);
      // Without a Content-Length (chunked), the limit is counted as the body streams in.
      const chunks = [JSON.stringify(oneImage(huge))];
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new ReadableStream({
          pull(c) {
            const next = chunks.shift();
            if (next) c.enqueue(new TextEncoder().encode(next));
            else c.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      assert.equal(res.status, 413);
      assert.equal((await res.json()).error.code, 'request_too_large');
    });

    it('too many images', async () => {
      const nine = Array.from({ length: 9 }, () => image(dataUrl(gray)));
      assertApiError(
        await post({ messages: [{ role: 'user', content: nine }] }),
        400,
        'too_many_images',
        /at most 8/,
      );
    });

    it('path traversal, local paths outside the root, remote URLs when not enabled', async () => {
      assertApiError(await post(oneImage('../../etc/passwd')), 400, 'path_not_allowed', /outside the folder/);
      assertApiError(await post(oneImage('/etc/passwd')), 400, 'path_not_allowed', /outside the folder/);
      assertApiError(
        await post(oneImage('file:///etc/passwd')),
        400,
        'path_not_allowed',
        /outside the folder/,
      );
      assertApiError(
        await post(oneImage('http://127.0.0.1:9/x.png')),
        400,
        'remote_images_disabled',
        /disabled/,
      );
    });

    it('other refusals: unknown model, n > 1, text posing as an image, prompt longer than the context', async () => {
      assertApiError(
        await post({ ...twoImages(), model: 'gpt-4o' }),
        404,
        'model_not_found',
        /serves "maven-tiny"/,
      );
      assertApiError(await post({ ...twoImages(), n: 2 }), 400, 'invalid_value', /one answer/);
      assertApiError(
        await post({ messages: [{ role: 'user', content: 'a <image> b' }] }),
        400,
        'invalid_value',
        /reserved for images/,
      );
      assertApiError(await post({ ...twoImages(), max_tokens: 2041 }), 400, 'invalid_value', /1\.\.2040/);
      assertApiError(
        await post({ ...twoImages(), max_tokens: 2040, maven_mode: 'continuous-only' }),
        400,
        'context_length_exceeded',
        /context is 2048/,
      );
    });

    it('still serves after all of that', async () => {
      const r = await post(twoImages());
      assert.equal(r.status, 200);
      const h = await request(base, '/health');
      assert.deepEqual([h.json.queue.running, h.json.queue.waiting], [0, 0]);
    });
  });
});

describe('maven serve with an API key and a deadline', () => {
  let server: ServerHandle;
  const auth = { authorization: 'Bearer sesame' };

  before(async () => {
    // A generous deadline: these requests must succeed even on a loaded machine (CI, a training
    // run beside the tests); the deadline itself is tested on its own server below.
    server = await startServer(model, {
      port: 0,
      apiKey: 'sesame',
      requestTimeoutMs: 60_000,
      maxTokens: 2000,
    });
  });
  after(() => server.close());

  it('refuses /v1/* without the right key; /health and the page stay open', async () => {
    assertApiError(await request(server.url, '/v1/models'), 401, 'missing_api_key', /Authorization: Bearer/);
    const wrong = await request(server.url, '/v1/chat/completions', {
      body: twoImages(),
      headers: { authorization: 'Bearer open' },
    });
    assertApiError(wrong, 401, 'invalid_api_key', /incorrect API key/);
    assert.equal(wrong.json.error.type, 'authentication_error');
    assert.equal((await request(server.url, '/v1/models', { headers: auth })).status, 200);
    assert.equal((await request(server.url, '/health')).status, 200);
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /API key <input id="apiKey"/);
    const ok = await request(server.url, '/v1/chat/completions', { body: twoImages(), headers: auth });
    assert.equal(ok.status, 200);
  });

  it('cuts a request off at the deadline: 504 as JSON, or an error event when streaming', async () => {
    // Its own server with a 40 ms deadline: 2,000 tokens take 0.25–1.4 s on this machine kind,
    // so even a quiet machine cannot answer in time (250 ms proved too close).
    const fast = await startServer(model, {
      port: 0,
      apiKey: 'sesame',
      requestTimeoutMs: 40,
      maxTokens: 2000,
    });
    try {
      const long = { messages: [{ role: 'user', content: 'there is' }], max_tokens: 2000 };
      // The second waits in the queue behind the first; its deadline counts the wait.
      const [r, queued] = await Promise.all([
        request(fast.url, '/v1/chat/completions', { body: long, headers: auth }),
        request(fast.url, '/v1/chat/completions', { body: long, headers: auth }),
      ]);
      assertApiError(r, 504, 'request_timeout', /limit of 40 ms \(waiting in the queue included\)/);
      assertApiError(queued, 504, 'request_timeout', /limit of 40 ms/);
      const res = await fetch(`${fast.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ ...long, stream: true }),
      });
      const data = sseData(await res.text());
      assert.equal(data.at(-1), '[DONE]');
      assert.equal(JSON.parse(data.at(-2)!).error.code, 'request_timeout');
      assert.equal((await request(fast.url, '/health')).json.queue.running, 0);
    } finally {
      await fast.close();
    }
  });
});
