/**
 * Text tokenizers behind one interface: the real LLaMA SentencePiece vocabulary, any Hugging Face
 * tokenizer.json, and a small word-level vocabulary for the tiny preset. All three take extra
 * special tokens (image boundaries such as `<img>`, `</img>`) appended at the end of the
 * vocabulary and matched atomically in text, and all three serialise to JSON (`toJSON` →
 * `loadTokenizer`).
 */
import { HFTokenizer } from './tokenizers/hf.ts';
import { LlamaTokenizer } from './tokenizers/llama.ts';
import { WordTokenizer } from './tokenizers/word.ts';

export interface EncodeOptions {
  /** Prepend the beginning-of-sequence id (default false). */
  bos?: boolean;
  /** Append the end-of-sequence id (default false). */
  eos?: boolean;
}

export interface TextTokenizer {
  /** Ids are 0..vocabSize−1, added special tokens included. */
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  /** What padded positions hold; LLaMA has no pad token and pads with <unk>, as LLaVA does. */
  readonly padId: number;
  encode(text: string, options?: EncodeOptions): number[];
  /**
   * Text of `ids`. The control ids (bos, eos, pad) are left out; added special tokens come back
   * as their text. An incomplete UTF-8 character at the very end is withheld (streaming).
   */
  decode(ids: readonly number[]): string;
  /**
   * The words of `text` this vocabulary has no id for (each becomes the unknown token), in
   * order, repeats included. Only tokenizers that can lose words implement it (the word-level
   * one); byte-fallback vocabularies (LLaMA) encode every string.
   */
  unknownWords?(text: string): string[];
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /**
   * Append tokens to the vocabulary (a token already there keeps its id) and match them
   * atomically in text from now on. Returns their ids, in order.
   */
  addSpecialTokens(tokens: string[]): number[];
  toJSON(): unknown;
}

export { HFTokenizer, LlamaTokenizer, WordTokenizer };

/** A tokenizer back from the `toJSON()` output of any of the implementations. */
export function loadTokenizer(json: unknown): TextTokenizer {
  const type = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
  switch (type) {
    case 'llama':
      return LlamaTokenizer.fromJSON(json);
    case 'hf': {
      const saved = json as { tokenizer?: unknown; config?: unknown };
      return HFTokenizer.fromJSON(saved.tokenizer, (saved.config ?? {}) as Record<string, unknown>);
    }
    case 'word':
      return WordTokenizer.fromJSON(json);
    default:
      throw new Error(
        `loadTokenizer: expected the toJSON() of a tokenizer, with type 'llama', 'hf' or 'word'; got type ${JSON.stringify(type)}`,
      );
  }
}
