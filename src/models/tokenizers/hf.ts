/**
 * Any Hugging Face tokenizer.json (BPE, WordPiece, Unigram, WordLevel; with its normalizer,
 * pre-tokenizer and decoder), via @huggingface/tokenizers. Special tokens are added the way HF
 * adds them: as entries of `added_tokens`, which the library matches atomically before the model
 * sees the text. bos/eos/pad come from tokenizer_config.json when given, else from the usual
 * token names; a tokenizer that has none of them reports −1. Built from parsed JSON so that it
 * runs in a browser; src/node/load-hf-tokenizer.ts reads the files from a directory.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import type { EncodeOptions, TextTokenizer } from '../tokenizer.ts';
import { checkIds, checkSpecialToken } from './special.ts';

interface AddedTokenJSON {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/** The parts of tokenizer.json this class reads or writes; the rest goes to the library as is. */
interface TokenizerFileJSON {
  model: { unk_token?: string; [key: string]: unknown };
  added_tokens?: AddedTokenJSON[];
  [key: string]: unknown;
}

export interface HFTokenizerJSON {
  type: 'hf';
  tokenizer: TokenizerFileJSON;
  config: Record<string, unknown>;
}

const FALLBACK_NAMES = {
  bos: ['<s>', '<|begin_of_text|>', '<|startoftext|>', '<bos>', '[CLS]'],
  eos: ['</s>', '<|end_of_text|>', '<|endoftext|>', '<eos>', '[SEP]'],
  pad: ['<pad>', '[PAD]', '<|pad|>'],
};

/** tokenizer_config.json writes special tokens as strings or as {content: …} objects. */
function tokenName(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { content?: unknown }).content === 'string'
  )
    return (value as { content: string }).content;
  return undefined;
}

export class HFTokenizer implements TextTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly unkId: number | undefined;
  private readonly json: TokenizerFileJSON;
  private tokenizer: Tokenizer;

  private constructor(
    json: TokenizerFileJSON,
    private readonly config: Record<string, unknown>,
  ) {
    this.json = json;
    this.tokenizer = this.instantiate();
    const unk = tokenName(config.unk_token) ?? json.model.unk_token;
    this.unkId = unk === undefined ? undefined : this.tokenToId(unk);
    const find = (key: 'bos' | 'eos' | 'pad'): number | undefined => {
      const configured = tokenName(config[`${key}_token`]);
      const names = configured ? [configured] : FALLBACK_NAMES[key];
      for (const name of names) {
        const id = this.tokenToId(name);
        if (id !== undefined) return id;
      }
      return undefined;
    };
    this.bosId = find('bos') ?? -1;
    this.eosId = find('eos') ?? -1;
    this.padId = find('pad') ?? this.unkId ?? -1;
  }

  /** From the contents of tokenizer.json and, optionally, tokenizer_config.json (both are copied). */
  static fromJSON(tokenizerJson: unknown, config: Record<string, unknown> = {}): HFTokenizer {
    const j = tokenizerJson as Partial<TokenizerFileJSON> | null;
    if (typeof j !== 'object' || j === null || typeof j.model !== 'object' || j.model === null) {
      throw new Error(
        'HFTokenizer.fromJSON: expected the contents of a tokenizer.json (an object with a "model")',
      );
    }
    const json = structuredClone(j) as TokenizerFileJSON;
    json.added_tokens ??= [];
    for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) json[key] ??= null;
    return new HFTokenizer(json, structuredClone(config));
  }

  get vocabSize(): number {
    let max = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) max = Math.max(max, id);
    return max + 1;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string')
      throw new Error(`HFTokenizer.encode: expected a string, got ${typeof text}`);
    // The library leaves an id undefined for a word a WordLevel vocabulary lacks.
    const encoding: { ids: (number | undefined)[]; tokens: string[] } = text
      ? this.tokenizer.encode(text, { add_special_tokens: false })
      : { ids: [], tokens: [] };
    const ids = encoding.ids.map((id, i) => {
      if (id !== undefined) return id;
      if (this.unkId !== undefined) return this.unkId;
      throw new Error(
        `HFTokenizer.encode: ${JSON.stringify(encoding.tokens[i])} is not in the vocabulary and there is no unk token`,
      );
    });
    const control = (which: 'bos' | 'eos', id: number) => {
      if (id < 0)
        throw new Error(`HFTokenizer.encode: ${which} asked for, but this tokenizer has no ${which} token`);
      return id;
    };
    if (options.bos) ids.unshift(control('bos', this.bosId));
    if (options.eos) ids.push(control('eos', this.eosId));
    return ids;
  }

  decode(ids: readonly number[]): string {
    checkIds('HFTokenizer', ids, this.vocabSize);
    const kept = ids.filter((id) => id !== this.bosId && id !== this.eosId && id !== this.padId);
    if (kept.length === 0) return '';
    return this.tokenizer.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  addSpecialTokens(tokens: string[]): number[] {
    const added = this.json.added_tokens!;
    const ids = tokens.map((token) => {
      checkSpecialToken('HFTokenizer', token);
      const existing = added.find((t) => t.content === token);
      if (existing) return existing.id;
      const id = this.tokenToId(token) ?? this.vocabSize;
      added.push({
        id,
        content: token,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      });
      this.tokenizer = this.instantiate();
      return id;
    });
    return ids;
  }

  toJSON(): HFTokenizerJSON {
    return { type: 'hf', tokenizer: structuredClone(this.json), config: structuredClone(this.config) };
  }

  private instantiate(): Tokenizer {
    // WordLevel models find their unk token through the config (the library's "Legacy" model).
    const unk = tokenName(this.config.unk_token) ?? this.json.model.unk_token;
    try {
      return new Tokenizer(this.json, { ...this.config, ...(unk === undefined ? {} : { unk_token: unk }) });
    } catch (e) {
      throw new Error(`HFTokenizer: the tokenizer.json cannot be loaded: ${(e as Error).message}`);
    }
  }
}
