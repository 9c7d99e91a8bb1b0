/**
 * Conversation loader: hand-made Mantis and LLaVA records (good and bad), and the real
 * mantis-chat sample when the shared data is present.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  IMAGE_PLACEHOLDER,
  loadConversations,
  parseConversations,
  readConversations,
} from '../../src/data/conversations.ts';
import { dataPath, dataSkipReason } from '../../src/data/data-dir.ts';

const mantis = (id: string, images: string[], first = '<image><image>Compare them.') => ({
  id,
  images,
  conversation: [
    { role: 'user', content: first },
    { role: 'assistant', content: 'They differ.' },
  ],
});

const llava = (id: string, image: string | undefined, first = '<image>\nWhat is this?') => ({
  id,
  ...(image === undefined ? {} : { image }),
  conversations: [
    { from: 'human', value: first },
    { from: 'gpt', value: 'A cat.' },
  ],
});

describe('parseConversations (hand-made records)', () => {
  it('normalises Mantis records in a JSON array, resolving image paths against the root', () => {
    const text = JSON.stringify([mantis('m1', ['a/1.jpg', '/abs/2.jpg'])]);
    const { conversations, errors } = parseConversations(text, '/data/root');
    assert.deepEqual(errors, []);
    assert.deepEqual(conversations, [
      {
        id: 'm1',
        images: ['/data/root/a/1.jpg', '/abs/2.jpg'],
        turns: [
          { role: 'user', content: '<image><image>Compare them.' },
          { role: 'assistant', content: 'They differ.' },
        ],
      },
    ]);
  });

  it('normalises LLaVA records in JSON lines (human → user, gpt → assistant; text-only allowed)', () => {
    const text = [
      JSON.stringify(llava('l1', 'coco/x.jpg')),
      '',
      JSON.stringify(llava('l2', undefined, 'Hi')),
    ].join('\n');
    const { conversations, errors } = parseConversations(text, '/r');
    assert.deepEqual(errors, []);
    assert.deepEqual(
      conversations.map((c) => [c.id, c.images, c.turns.map((t) => t.role)]),
      [
        ['l1', ['/r/coco/x.jpg'], ['user', 'assistant']],
        ['l2', [], ['user', 'assistant']],
      ],
    );
  });

  it('rejects a placeholder/image count mismatch, naming the record id and line', () => {
    const lines = [
      JSON.stringify(llava('ok', 'x.jpg')),
      JSON.stringify(mantis('too-few-images', ['only-one.jpg'])),
      JSON.stringify(llava('no-placeholder', 'x.jpg', 'What is this?')),
    ].join('\n');
    const { conversations, errors } = parseConversations(lines, '/r', 'chat.jsonl');
    assert.deepEqual(
      conversations.map((c) => c.id),
      ['ok'],
    );
    assert.equal(errors.length, 2);
    assert.equal(errors[0].id, 'too-few-images');
    assert.equal(errors[0].position, 'line 2');
    assert.match(
      errors[0].message,
      /chat\.jsonl line 2 \(id "too-few-images"\): has 2 <image> placeholders but 1 images/,
    );
    assert.match(
      errors[1].message,
      /line 3 \(id "no-placeholder"\): has 0 <image> placeholders but 1 images/,
    );
  });

  it('rejects bad roles, missing turns, bad JSON, naming where', () => {
    const badRole = { ...llava('r', undefined, 'hi'), conversations: [{ from: 'robot', value: 'x' }] };
    const noTurns = { id: 'n', images: [] };
    const text = [JSON.stringify(badRole), '{not json', JSON.stringify(noTurns), JSON.stringify([1])].join(
      '\n',
    );
    const { conversations, errors } = parseConversations(text, '/r', 'f.jsonl');
    assert.equal(conversations.length, 0);
    assert.deepEqual(
      errors.map((e) => e.position),
      ['line 1', 'line 2', 'line 3', 'line 4'],
    );
    const byLine = Object.fromEntries(errors.map((e) => [e.position, e.message]));
    assert.match(byLine['line 1'], /id "r".*from must be "human" or "gpt", got "robot"/);
    assert.match(byLine['line 2'], /f\.jsonl line 2: invalid JSON/);
    assert.match(byLine['line 3'], /id "n".*neither "conversation" \(Mantis\) nor "conversations" \(LLaVA\)/);
    assert.match(byLine['line 4'], /line 4: record is not a JSON object/);
  });

  it('names the array index of a bad record in a JSON array', () => {
    const text = JSON.stringify([mantis('a', ['1.jpg', '2.jpg']), mantis('b', ['1.jpg'])]);
    const { errors } = parseConversations(text, '/r', 'arr.json');
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /arr\.json record 1 \(id "b"\): has 2 <image> placeholders but 1 images/);
    assert.throws(
      () => parseConversations('[{"id": 1,', '/r', 'broken.json'),
      /broken\.json: not valid JSON/,
    );
  });
});

describe('readConversations / loadConversations (files)', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'conv-'));
    await mkdir(join(dir, 'imgs'));
    await writeFile(join(dir, 'imgs', 'a.jpg'), 'not really a jpeg');
  });
  after(async () => {
    await rm(dir, { recursive: true });
  });

  it('checks that image files exist, naming the missing path', async () => {
    const file = join(dir, 'chat.json');
    await writeFile(file, JSON.stringify([llava('good', 'imgs/a.jpg'), llava('gone', 'imgs/missing.jpg')]));
    const { conversations, errors } = await readConversations(file);
    assert.deepEqual(
      conversations.map((c) => c.id),
      ['good'],
    );
    assert.equal(errors.length, 1);
    assert.ok(errors[0].message.includes(join(dir, 'imgs', 'missing.jpg')), errors[0].message);
    await assert.rejects(loadConversations(file), /id "gone".*image file not found/);
    assert.equal((await loadConversations(file, { checkImages: false })).length, 2);
    const elsewhere = await readConversations(file, { imageRoot: '/nowhere', checkImages: false });
    assert.equal(elsewhere.conversations[0].images[0], '/nowhere/imgs/a.jpg');
  });
});

describe('mantis-chat/train.json (real data)', { skip: dataSkipReason('mantis-chat/train.json') }, () => {
  it('loads 100 conversations with 2–6 existing images, one placeholder each', async () => {
    const conversations = await loadConversations(dataPath('mantis-chat/train.json'));
    assert.equal(conversations.length, 100);
    assert.equal(new Set(conversations.map((c) => c.id)).size, 100);
    for (const c of conversations) {
      assert.ok(c.images.length >= 2 && c.images.length <= 6, `${c.id}: ${c.images.length} images`);
      assert.ok(c.images.every((p) => isAbsolute(p) && existsSync(p)));
      const placeholders = c.turns.reduce((n, t) => n + t.content.split(IMAGE_PLACEHOLDER).length - 1, 0);
      assert.equal(placeholders, c.images.length);
      assert.equal(c.turns[0].role, 'user');
      assert.equal(c.turns[1].role, 'assistant');
    }
  });
});
