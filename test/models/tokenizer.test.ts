/**
 * Text tokenizers: the LLaMA vocabulary against published encodings, special tokens as single ids
 * that survive encode → decode, a hand-made tokenizer.json (BPE merges and WordLevel) through
 * HFTokenizer with ids worked out by hand, the word-level vocabulary, and JSON round trips.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  HFTokenizer,
  LlamaTokenizer,
  loadTokenizer,
  type TextTokenizer,
  WordTokenizer,
} from '../../src/models/tokenizer.ts';
import { loadHFTokenizer } from '../../src/node/load-hf-tokenizer.ts';

const IMAGE_TOKENS = ['<img>', '</img>', '<image>'];

/** Reload through JSON text, as a saved model would. */
const reload = (t: TextTokenizer) => loadTokenizer(JSON.parse(JSON.stringify(t.toJSON())));

describe('LlamaTokenizer', () => {
  const llama = new LlamaTokenizer();

  it('has the 32,000 LLaMA ids with <unk>, <s>, </s> at 0, 1, 2', () => {
    assert.equal(llama.vocabSize, 32000);
    assert.deepEqual([llama.padId, llama.bosId, llama.eosId], [0, 1, 2]);
    assert.deepEqual(
      [0, 1, 2].map((id) => llama.idToToken(id)),
      ['<unk>', '<s>', '</s>'],
    );
    assert.equal(llama.idToToken(13), '<0x0A>');
    assert.equal(llama.tokenToId('▁Hello'), 15043);
    assert.equal(llama.idToToken(32000), undefined);
  });

  // Expected ids from llama-tokenizer-js's README and test suite (made with Meta's SentencePiece model).
  const published: [string, number[]][] = [
    ['Hello world!', [1, 15043, 3186, 29991]],
    ['grabbed', [1, 2646, 1327, 287]],
    [' grabbed', [1, 29871, 2646, 1327, 287]],
    ['           grabbed', [1, 9651, 2646, 1327, 287]],
    ['\n', [1, 29871, 13]],
    ['ax\n####\nboo', [1, 4853, 13, 4136, 13, 833, 29877]],
    ['镇', [1, 29871, 30411]],
    ['🦙Ꙋ', [1, 29871, 243, 162, 169, 156, 237, 156, 141]],
  ];
  for (const [text, ids] of published) {
    it(`encodes ${JSON.stringify(text)} as published and decodes it back`, () => {
      assert.deepEqual(llama.encode(text, { bos: true }), ids);
      assert.equal(llama.decode(ids), text);
    });
  }

  it('bos and eos only when asked; decode leaves them out', () => {
    assert.deepEqual(llama.encode('Hello world!'), [15043, 3186, 29991]);
    assert.deepEqual(llama.encode('Hello world!', { bos: true, eos: true }), [1, 15043, 3186, 29991, 2]);
    assert.equal(llama.decode([1, 15043, 3186, 29991, 2]), 'Hello world!');
    assert.deepEqual(llama.encode(''), []);
  });

  it('added special tokens are single ids after 32,000, matched inside text, and survive decode', () => {
    const t = new LlamaTokenizer();
    assert.deepEqual(t.addSpecialTokens(IMAGE_TOKENS), [32000, 32001, 32002]);
    assert.equal(t.vocabSize, 32003);
    assert.deepEqual(t.addSpecialTokens(['</img>', '</s>']), [32001, 2], 'existing tokens keep their ids');
    assert.equal(t.vocabSize, 32003);
    const text = 'USER: <image>\nWhat is in<img></img> the picture? ASSISTANT:';
    const ids = t.encode(text, { bos: true });
    for (const [k, token] of IMAGE_TOKENS.entries()) {
      assert.equal(ids.filter((id) => id === 32000 + k).length, 1, token);
      assert.equal(t.idToToken(32000 + k), token);
      assert.equal(t.tokenToId(token), 32000 + k);
    }
    assert.equal(t.decode(ids), text);
    // Text around a special token is tokenized as it is in HF: "<image>" then "\nWhat" with no dummy space.
    assert.deepEqual(t.encode('<image>Hello'), [32002, 10994]);
    assert.deepEqual(t.encode('Hello<image>'), [15043, 32002]);
  });

  it('control tokens written in text are single ids too (as in HF)', () => {
    assert.deepEqual(llama.encode('Hi</s>'), [6324, 2]);
  });

  it('streams: an incomplete UTF-8 character at the end is withheld', () => {
    assert.equal(llama.decode([29871, 243, 162]), '');
    assert.equal(llama.decode([29871, 243, 162, 169, 156]), '🦙');
    assert.equal(llama.decode([15043, 243, 162, 169, 156, 3186]), 'Hello🦙 world');
  });

  it('serialises its special tokens and reloads with the same ids', () => {
    const t = new LlamaTokenizer();
    t.addSpecialTokens(IMAGE_TOKENS);
    const back = reload(t);
    assert.ok(back instanceof LlamaTokenizer);
    assert.equal(back.vocabSize, 32003);
    const text = '<img> a cat </img>';
    assert.deepEqual(back.encode(text), t.encode(text));
  });

  it('rejects ids outside the vocabulary and empty special tokens', () => {
    assert.throws(
      () => llama.decode([15043, 32000]),
      /id 32000 at index 1 is outside the vocabulary \(0\.\.31999\)/,
    );
    assert.throws(() => llama.decode([-1]), /id -1/);
    assert.throws(() => new LlamaTokenizer().addSpecialTokens(['']), /non-empty string/);
  });
});

describe('HFTokenizer on a hand-written tokenizer.json', () => {
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  // LLaMA-style: BPE over ▁-marked text, Metaspace prepending ▁ to the first piece only.
  const bpeJson = {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: null,
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    model: {
      type: 'BPE',
      unk_token: '<unk>',
      fuse_unk: true,
      byte_fallback: false,
      vocab: {
        '<unk>': 0,
        '<s>': 1,
        '</s>': 2,
        '▁': 3,
        a: 4,
        b: 5,
        c: 6,
        t: 7,
        '▁a': 8,
        '▁c': 9,
        '▁ca': 10,
        '▁cat': 11,
        ab: 12,
        '▁ab': 13,
      },
      merges: ['▁ a', '▁ c', '▁c a', '▁ca t', 'a b', '▁a b'],
    },
  };

  it('applies the merges in rank order (ids worked out by hand)', () => {
    const t = HFTokenizer.fromJSON(bpeJson);
    assert.equal(t.vocabSize, 14);
    assert.deepEqual([t.bosId, t.eosId, t.padId], [1, 2, 0], 'bos/eos by name, pad falls back to unk');
    // ▁cat▁ab: ▁+a? no; ▁+c → ▁c; ▁c+a → ▁ca; ▁ca+t → ▁cat; then ▁+a → ▁a, ▁a+b → ▁ab.
    assert.deepEqual(t.encode('cat ab', { bos: true, eos: true }), [1, 11, 13, 2]);
    // ▁cab: ▁c, ▁ca, then no merge for ▁ca+b.
    assert.deepEqual(t.encode('cab'), [10, 5]);
    // z is unknown: one fused <unk>.
    assert.deepEqual(t.encode('zz'), [3, 0]);
    assert.equal(t.decode([1, 11, 13, 2]), 'cat ab');
  });

  it('special tokens: appended ids, atomic in text, exact round trips, reload from JSON', () => {
    const t = HFTokenizer.fromJSON(bpeJson);
    assert.deepEqual(t.addSpecialTokens(['<img>', '</img>']), [14, 15]);
    assert.deepEqual(t.addSpecialTokens(['<img>']), [14]);
    assert.equal(t.vocabSize, 16);
    assert.deepEqual(t.encode('a cat <img> ab'), [8, 11, 3, 14, 13]);
    // After a special token no ▁ is prepended: c a t, then ▁+a → ▁a, ▁a+b → ▁ab.
    assert.deepEqual(t.encode('<img>cat ab</img>'), [14, 6, 4, 7, 13, 15]);
    for (const text of ['a cat <img> ab', '<img>cat ab</img>', 'cat<img></img>ab']) {
      assert.equal(t.decode(t.encode(text)), text);
    }
    const back = reload(t);
    assert.ok(back instanceof HFTokenizer);
    assert.equal(back.vocabSize, 16);
    assert.deepEqual(back.encode('<img>cat ab</img>'), [14, 6, 4, 7, 13, 15]);
    assert.equal(HFTokenizer.fromJSON(bpeJson).vocabSize, 14, 'the caller’s JSON is not modified');
  });

  it('WordLevel with tokenizer_config.json: unknown words, configured pad, no bos/eos', async () => {
    const json = {
      added_tokens: [special(0, '[UNK]'), special(1, '[PAD]')],
      normalizer: { type: 'Lowercase' },
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: {
        type: 'WordLevel',
        vocab: { '[UNK]': 0, '[PAD]': 1, hello: 2, world: 3, '!': 4 },
        unk_token: '[UNK]',
      },
    };
    const dir = await mkdtemp(join(tmpdir(), 'hf-tokenizer-'));
    try {
      await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(json));
      await writeFile(
        join(dir, 'tokenizer_config.json'),
        JSON.stringify({ pad_token: { content: '[PAD]' } }),
      );
      const t = await loadHFTokenizer(join(dir, 'tokenizer.json'));
      assert.equal(t.vocabSize, 5);
      assert.deepEqual([t.bosId, t.eosId, t.padId], [-1, -1, 1]);
      assert.deepEqual(t.encode('Hello, World!'), [2, 0, 3, 4]);
      assert.equal(t.decode([2, 3, 4, 1]), 'hello world !');
      assert.throws(
        () => t.encode('hello', { bos: true }),
        /bos asked for, but this tokenizer has no bos token/,
      );
      assert.deepEqual(t.addSpecialTokens(['<image>']), [5]);
      assert.deepEqual(t.encode('hello <image> world'), [2, 5, 3]);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('bad tokenizer.json is reported, not crashed on', () => {
    assert.throws(() => HFTokenizer.fromJSON({ vocab: {} }), /tokenizer\.json \(an object with a "model"\)/);
    assert.throws(
      () => HFTokenizer.fromJSON({ ...bpeJson, decoder: { type: 'NoSuchDecoder' } }),
      /cannot be loaded: Unknown Decoder type: NoSuchDecoder/,
    );
    assert.throws(
      () => HFTokenizer.fromJSON(bpeJson).decode([14]),
      /id 14 at index 0 is outside the vocabulary \(0\.\.13\)/,
    );
  });
});

describe('WordTokenizer', () => {
  const corpus = [
    'A red square and a blue circle.',
    'The blue circle is left of the red square!',
    'Two squares, one circle',
  ];

  it('control ids 0..3, then words by count (ties alphabetical), lower-cased, punctuation split off', () => {
    const t = WordTokenizer.build(corpus);
    assert.deepEqual(
      [0, 1, 2, 3].map((id) => t.idToToken(id)),
      ['<unk>', '<s>', '</s>', '<pad>'],
    );
    assert.deepEqual([t.bosId, t.eosId, t.padId], [1, 2, 3]);
    // circle ×3; a, blue, red, square, the ×2; then the singletons in code-point order.
    const vocab = (t.toJSON() as { vocab: string[] }).vocab;
    assert.deepEqual(vocab.slice(4, 10), ['circle', 'a', 'blue', 'red', 'square', 'the']);
    assert.deepEqual(vocab.slice(10), ['!', ',', '.', 'and', 'is', 'left', 'of', 'one', 'squares', 'two']);
    assert.deepEqual(t.encode('The RED circle!', { bos: true, eos: true }), [1, 9, 7, 4, 10, 2]);
  });

  it('is deterministic: the same vocabulary whatever the corpus order', () => {
    const a = WordTokenizer.build(corpus).toJSON();
    const b = WordTokenizer.build([...corpus].reverse()).toJSON();
    assert.deepEqual(a, b);
  });

  it('unknown words and words under minCount become <unk>; maxSize caps the vocabulary', () => {
    const t = WordTokenizer.build(corpus, { minCount: 2 });
    assert.equal(t.vocabSize, 4 + 6);
    assert.deepEqual(t.encode('a green square and'), [5, 0, 8, 0]);
    assert.equal(WordTokenizer.build(corpus, { maxSize: 6 }).vocabSize, 6);
    assert.throws(() => WordTokenizer.build(corpus, { minCount: 0 }), /minCount must be a positive integer/);
  });

  it('unknownWords names exactly the words encode turns into <unk>, in order', () => {
    const t = WordTokenizer.build(corpus, { minCount: 2 });
    t.addSpecialTokens(IMAGE_TOKENS);
    const text = 'A GREEN square <img></img> and a green ? <unk> <image>';
    const unknown = t.unknownWords(text);
    assert.deepEqual(unknown, ['green', 'and', 'green', '?']);
    // The same count as the <unk> ids encode produces for words (the typed "<unk>" is the control id).
    const unkIds = t.encode(text).filter((id) => id === 0).length;
    assert.equal(unkIds, unknown.length + 1);
    assert.deepEqual(t.unknownWords('the red circle'), []);
  });

  it('special tokens are single ids; decode → encode gives the same ids back', () => {
    const t = WordTokenizer.build(corpus);
    const n = t.vocabSize;
    assert.deepEqual(t.addSpecialTokens(IMAGE_TOKENS), [n, n + 1, n + 2]);
    const ids = t.encode('<image> Is the red square left of<img></img>the blue circle?', { bos: true });
    assert.equal(ids.filter((id) => id >= n).length, 3);
    assert.ok(ids.includes(0), 'the "?" is unknown');
    const text = t.decode(ids);
    assert.equal(text, '<image> is the red square left of <img> </img> the blue circle <unk>');
    assert.deepEqual(t.encode(text, { bos: true }), ids);
    assert.equal(t.decode(t.encode('two squares, one circle.')), 'two squares, one circle.');
  });

  it('round-trips through JSON and rejects malformed JSON', () => {
    const t = WordTokenizer.build(corpus);
    t.addSpecialTokens(['<img>', '</img>']);
    const back = reload(t);
    assert.ok(back instanceof WordTokenizer);
    assert.deepEqual(back.toJSON(), t.toJSON());
    assert.deepEqual(back.encode('<img> red </img>'), t.encode('<img> red </img>'));
    assert.throws(
      () => WordTokenizer.fromJSON({ type: 'word', vocab: ['a'], specialTokens: [] }),
      /id 0 must be <unk>/,
    );
    assert.throws(() => loadTokenizer({ type: 'bpe' }), /type 'llama', 'hf' or 'word'; got type "bpe"/);
  });
});
