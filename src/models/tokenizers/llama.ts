/**
 * The LLaMA-1/2 SentencePiece tokenizer (32,000 ids: <unk>, <s>, </s>, 256 byte tokens, BPE
 * pieces with ▁ for spaces), via llama-tokenizer-js, which bakes the vocabulary and merges into
 * its module, so nothing is fetched. Its BPE gives the ids of HF's LlamaTokenizer.
 *
 * Special tokens (the control tokens and any added with `addSpecialTokens`) are cut out of the
 * text first. Only the text at the very start of the string gets SentencePiece's dummy-prefix
 * space, as HF does for text after a special token (legacy = false), so encode → decode gives the
 * text back exactly.
 */
import llamaVocabulary from 'llama-tokenizer-js';
import type { EncodeOptions, TextTokenizer } from '../tokenizer.ts';
import { checkIds, checkSpecialToken, decodeUtf8Prefix, SpecialTokenMatcher } from './special.ts';

const BASE_VOCAB_SIZE = 32000;
const SPACE = '\u2581'; // ▁, SentencePiece's space
const BYTE_TOKEN = /^<0x([0-9A-F]{2})>$/;

export interface LlamaTokenizerJSON {
  type: 'llama';
  /** Tokens given to `addSpecialTokens`, in order; replaying them gives the same ids. */
  specialTokens: string[];
}

export class LlamaTokenizer implements TextTokenizer {
  readonly bosId = 1;
  readonly eosId = 2;
  /** LLaMA has no pad token; LLaVA and Vicuna pad with <unk> (id 0). */
  readonly padId = 0;
  /** Tokens appended after the 32,000 base ids. */
  private readonly appended: string[] = [];
  /** Every token passed to addSpecialTokens, in order (for toJSON). */
  private readonly requested: string[] = [];
  private readonly specials = new SpecialTokenMatcher([
    ['<unk>', 0],
    ['<s>', 1],
    ['</s>', 2],
  ]);

  get vocabSize(): number {
    return BASE_VOCAB_SIZE + this.appended.length;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string')
      throw new Error(`LlamaTokenizer.encode: expected a string, got ${typeof text}`);
    const ids: number[] = options.bos ? [this.bosId] : [];
    this.specials.split(text).forEach((segment, i) => {
      if (typeof segment === 'number') ids.push(segment);
      // Dummy prefix only for text at the start of the string (i = 0 is a text piece there).
      else ids.push(...llamaVocabulary.encode(segment, false, i === 0));
    });
    if (options.eos) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[]): string {
    checkIds('LlamaTokenizer', ids, this.vocabSize);
    let text = '';
    let bytes: number[] = [];
    let atStart = true;
    const flush = (final: boolean) => {
      if (!bytes.length) return;
      let piece = final
        ? decodeUtf8Prefix(Uint8Array.from(bytes))
        : new TextDecoder('utf-8').decode(Uint8Array.from(bytes));
      // Undo the dummy prefix that encode gave text at the start of the string.
      if (atStart && piece.startsWith(' ')) piece = piece.slice(1);
      text += piece;
      bytes = [];
      atStart = false;
    };
    for (const id of ids) {
      if (id === this.bosId || id === this.eosId || id === this.padId) continue;
      const token = this.idToToken(id)!;
      if (id >= BASE_VOCAB_SIZE || this.specials.get(token) === id) {
        flush(false);
        text += token;
        atStart = false;
        continue;
      }
      const byte = BYTE_TOKEN.exec(token);
      if (byte) bytes.push(Number.parseInt(byte[1], 16));
      else for (const b of new TextEncoder().encode(token.replaceAll(SPACE, ' '))) bytes.push(b);
    }
    flush(true);
    return text;
  }

  tokenToId(token: string): number | undefined {
    const special = this.specials.get(token);
    return special ?? llamaVocabulary.vocabByString.get(token);
  }

  idToToken(id: number): string | undefined {
    if (!Number.isInteger(id) || id < 0) return undefined;
    return id < BASE_VOCAB_SIZE ? llamaVocabulary.vocabById[id] : this.appended[id - BASE_VOCAB_SIZE];
  }

  addSpecialTokens(tokens: string[]): number[] {
    return tokens.map((token) => {
      checkSpecialToken('LlamaTokenizer', token);
      if (!this.requested.includes(token)) this.requested.push(token);
      let id = this.tokenToId(token);
      if (id === undefined) {
        id = this.vocabSize;
        this.appended.push(token);
      }
      this.specials.set(token, id);
      return id;
    });
  }

  toJSON(): LlamaTokenizerJSON {
    return { type: 'llama', specialTokens: [...this.requested] };
  }

  static fromJSON(json: unknown): LlamaTokenizer {
    const j = json as Partial<LlamaTokenizerJSON> | null;
    if (j?.type !== 'llama' || !Array.isArray(j.specialTokens)) {
      throw new Error(`LlamaTokenizer.fromJSON: expected {type: 'llama', specialTokens: string[]}`);
    }
    const tokenizer = new LlamaTokenizer();
    tokenizer.addSpecialTokens(j.specialTokens);
    return tokenizer;
  }
}
