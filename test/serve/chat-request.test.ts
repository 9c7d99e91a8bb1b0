/** Request parsing and chat templates: every rule, without a server. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imageLines } from '../../src/data/tasks/types.ts';
import {
  type ChatRequest,
  imageMode,
  parseChatRequest,
  type RequestLimits,
} from '../../src/serve/chat-request.ts';
import { promptText, renderPrompt } from '../../src/serve/chat-template.ts';
import { ApiError } from '../../src/serve/errors.ts';

const limits: RequestLimits = { maxImages: 3, maxTokens: 100, reservedText: ['<image>', '<img>', '</img>'] };
const image = (url: string, detail?: string) => ({
  type: 'image_url',
  image_url: { url, ...(detail ? { detail } : {}) },
});
const text = (t: string) => ({ type: 'text', text: t });
const parse = (body: unknown): ChatRequest => parseChatRequest(body, limits);

function rejects(body: unknown, param: string | null, pattern: RegExp, code?: string) {
  assert.throws(
    () => parse(body),
    (e: unknown) => {
      assert.ok(e instanceof ApiError, String(e));
      assert.equal(e.status, 400);
      assert.equal(e.param, param);
      assert.match(e.message, pattern);
      if (code) assert.equal(e.code, code);
      assert.equal(e.toJSON().error.type, 'invalid_request_error');
      return true;
    },
  );
}

describe('parseChatRequest', () => {
  it('reads messages with text and image parts, in order, and the sampling fields', () => {
    const r = parse({
      model: 'm',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [image('data:a', 'low'), text('what is this?'), image('b.png')] },
        { role: 'assistant', content: 'a cat' },
        { role: 'user', content: [{ type: 'image_url', image_url: 'c.png' }, text('and this?')] },
      ],
      max_tokens: 7,
      temperature: 0.5,
      top_p: 0.9,
      top_k: 5,
      seed: 3,
      stop: 'END',
      stream: true,
      stream_options: { include_usage: true },
      maven_keep_ratio: 0.5,
      maven_overlays: true,
    });
    assert.equal(r.model, 'm');
    assert.deepEqual(
      r.images.map((i) => [i.url, i.detail, i.param]),
      [
        ['data:a', 'low', 'messages[1].content[0].image_url.url'],
        ['b.png', 'auto', 'messages[1].content[2].image_url.url'],
        ['c.png', 'auto', 'messages[3].content[0].image_url.url'],
      ],
    );
    assert.deepEqual(r.sampling, {
      maxTokens: 7,
      temperature: 0.5,
      topP: 0.9,
      topK: 5,
      seed: 3,
      stop: ['END'],
    });
    assert.equal(r.stream, true);
    assert.equal(r.includeUsage, true);
    assert.deepEqual(r.maven, {
      keepRatio: 0.5,
      visualTokenBudget: undefined,
      mode: undefined,
      overlays: true,
    });
    assert.equal(imageMode(r.images[0]), 'discrete-only');
    assert.equal(imageMode(r.images[1]), 'hybrid');
    assert.equal(imageMode(r.images[0], 'continuous-only'), 'continuous-only');
  });

  it('prefers max_completion_tokens, maps developer to system, and leaves optional fields unset', () => {
    const r = parse({
      messages: [
        { role: 'developer', content: 'x' },
        { role: 'user', content: 'hi' },
      ],
      max_tokens: 9,
      max_completion_tokens: 4,
    });
    assert.equal(r.messages[0].role, 'system');
    assert.equal(r.sampling.maxTokens, 4);
    assert.equal(r.sampling.temperature, undefined);
    assert.equal(r.model, null);
    assert.equal(r.stream, false);
    assert.equal(r.includeUsage, false);
  });

  it('refuses malformed requests, naming the field', () => {
    rejects([], null, /JSON object, got an array/);
    rejects({}, 'messages', /non-empty list/);
    rejects({ messages: [] }, 'messages', /non-empty list/);
    rejects({ messages: ['hi'] }, 'messages[0]', /must be an object, got a string/);
    rejects({ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role', /one of system, developer/);
    rejects({ messages: [{ role: 'user', content: 3 }] }, 'messages[0].content', /string or a list of parts/);
    rejects({ messages: [{ role: 'user' }] }, 'messages[0].content', /missing/);
    rejects(
      { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] },
      'messages[0].content[0].type',
      /"text" or "image_url", got "input_audio"/,
      'unsupported_content_type',
    );
    rejects(
      { messages: [{ role: 'user', content: [{ type: 'text', text: 5 }] }] },
      'messages[0].content[0].text',
      /string/,
    );
    rejects(
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] },
      'messages[0].content[0].image_url.url',
      /non-empty string/,
    );
    rejects(
      { messages: [{ role: 'user', content: [image('x.png', 'medium')] }] },
      'messages[0].content[0].image_url.detail',
      /low, high, auto/,
    );
    rejects(
      {
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: [image('x.png')] },
          { role: 'user', content: 'q' },
        ],
      },
      'messages[1].content[0]',
      /user messages only/,
    );
    rejects(
      {
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a' },
        ],
      },
      'messages[1].role',
      /last message must be the user's/,
    );
  });

  it('refuses text that could be mistaken for an image, and too many images across turns', () => {
    rejects(
      { messages: [{ role: 'user', content: 'look: <image>' }] },
      'messages[0].content',
      /reserved for images/,
    );
    rejects(
      { messages: [{ role: 'user', content: [text('a </img> b')] }] },
      'messages[0].content[0].text',
      /"<\/img>"/,
    );
    rejects(
      {
        messages: [
          { role: 'user', content: [image('a'), image('b')] },
          { role: 'assistant', content: 'x' },
          { role: 'user', content: [image('c'), image('d')] },
        ],
      },
      'messages[2].content[1]',
      /at most 3/,
      'too_many_images',
    );
  });

  it('refuses text over the character limit, counted over all messages, before looking at it', () => {
    const small: RequestLimits = { ...limits, maxTextChars: 10, context: 4 };
    const body = (...texts: string[]) => ({
      messages: [
        ...texts.map((t, i) => ({ role: i % 2 ? 'assistant' : 'user', content: t as unknown })),
        { role: 'user', content: [text('')] },
      ],
    });
    assert.equal(parseChatRequest(body('12345', '67890'), small).messages.length, 3);
    assert.throws(
      () => parseChatRequest(body('12345', '678901'), small),
      (e: unknown) =>
        e instanceof ApiError &&
        e.status === 400 &&
        e.code === 'context_length_exceeded' &&
        e.param === 'messages[1].content' &&
        /more than 10 characters of text.*context is 4 tokens/.test(e.message),
    );
    // Counted first: an oversized text is refused for its length even if it also holds <image>.
    assert.throws(
      () => parseChatRequest(body(`<image>${'x'.repeat(20)}`), small),
      (e: unknown) => e instanceof ApiError && e.code === 'context_length_exceeded',
    );
    assert.equal(parse(body('x'.repeat(100_000))).messages.length, 2, 'no limit unless one is given');
  });

  it('range-checks sampling and MaVEn fields', () => {
    const user = [{ role: 'user', content: 'q' }];
    rejects({ messages: user, max_tokens: 0 }, 'max_tokens', /1\.\.100/);
    rejects({ messages: user, max_tokens: 101 }, 'max_tokens', /1\.\.100/);
    rejects({ messages: user, max_tokens: 2.5 }, 'max_tokens', /integer/);
    rejects({ messages: user, temperature: -1 }, 'temperature', /\[0, 2\]/);
    rejects({ messages: user, temperature: '1' }, 'temperature', /got "1"/);
    rejects({ messages: user, top_p: 0 }, 'top_p', /\(0, 1\]/);
    rejects({ messages: user, n: 2 }, 'n', /one answer/);
    rejects({ messages: user, stop: [1] }, 'stop', /at most 4 strings/);
    rejects({ messages: user, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', /at most 4/);
    rejects({ messages: user, stream: 'yes' }, 'stream', /true or false/);
    rejects(
      { messages: user, stream_options: { include_usage: 1 } },
      'stream_options.include_usage',
      /true or false/,
    );
    rejects({ messages: user, maven_keep_ratio: 0 }, 'maven_keep_ratio', /\(0, 1\]/);
    rejects({ messages: user, maven_keep_ratio: 1.5 }, 'maven_keep_ratio', /\(0, 1\]/);
    rejects({ messages: user, maven_visual_token_budget: -1 }, 'maven_visual_token_budget', /non-negative/);
    rejects(
      { messages: user, maven_keep_ratio: 0.5, maven_visual_token_budget: 3 },
      'maven_visual_token_budget',
      /not both/,
    );
    rejects({ messages: user, maven_mode: 'all' }, 'maven_mode', /hybrid, discrete-only, continuous-only/);
    rejects({ messages: user, model: 3 }, 'model', /string/);
  });
});

describe('renderPrompt', () => {
  const msgs = parse({
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: [image('a'), image('b'), text('same?')] },
      { role: 'assistant', content: 'yes' },
      { role: 'user', content: [text('and'), image('c'), text('?')] },
    ],
  }).messages;

  it("plain: the tiny recipe's layout, numbered images joined to text by newlines, answers after a space", () => {
    const r = renderPrompt(msgs, 'plain');
    assert.deepEqual(r.pieces, ['be brief\nImage 1: ', '\nImage 2: ', '\nsame? yes\nand\nImage 3: ', '\n?']);
    assert.deepEqual(
      r.images.map((i) => i.url),
      ['a', 'b', 'c'],
    );
    assert.equal(
      promptText(r),
      'be brief\nImage 1: <image>\nImage 2: <image>\nsame? yes\nand\nImage 3: <image>\n?',
    );
    // One user message of images then a question is exactly what the training tasks look like.
    const single = parse({
      messages: [{ role: 'user', content: [image('a'), image('b'), text('how many?')] }],
    });
    assert.equal(promptText(renderPrompt(single.messages)), `${imageLines(2)}\nhow many?`);
  });

  it('vicuna: USER:/ASSISTANT: turns ending with ASSISTANT:', () => {
    const r = renderPrompt(msgs, 'vicuna');
    assert.equal(
      promptText(r),
      'be brief USER: <image>\n<image>\nsame? ASSISTANT: yes USER: and\n<image>\n? ASSISTANT:',
    );
    assert.equal(r.pieces.length, r.images.length + 1);
  });
});
