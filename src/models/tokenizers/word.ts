/**
 * A word-level vocabulary built from a corpus, for the tiny preset: lower-cased words (runs of
 * letters and digits) and single punctuation marks, most frequent first. Small enough that a
 * tiny LLM learns every id, and readable in tests. Ids 0..3 are <unk>, <s>, </s>, <pad>.
 */
import type { EncodeOptions, TextTokenizer } from '../tokenizer.ts';
import { checkIds, checkSpecialToken, SpecialTokenMatcher } from './special.ts';

const CONTROL = ['<unk>', '<s>', '</s>', '<pad>'] as const;
const WORD_OR_MARK = /[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu;
const NO_SPACE_BEFORE = /^[.,!?;:%)\]}]$/;
const NO_SPACE_AFTER = /^[([{]$/;

export interface WordTokenizerOptions {
  /** Words seen fewer times become <unk> (default 1: keep every word). */
  minCount?: number;
  /** Keep at most this many ids, control tokens included (default: no limit). */
  maxSize?: number;
}

export interface WordTokenizerJSON {
  type: 'word';
  /** Every token by id, control tokens and added special tokens included. */
  vocab: string[];
  /** The tokens added with `addSpecialTokens`. */
  specialTokens: string[];
}

/** Lower-cased words and punctuation marks of `text`. */
export function splitWords(text: string): string[] {
  return text.toLowerCase().match(WORD_OR_MARK) ?? [];
}

export class WordTokenizer implements TextTokenizer {
  readonly bosId = 1;
  readonly eosId = 2;
  readonly padId = 3;
  private readonly unkId = 0;
  private readonly byToken = new Map<string, number>();
  private readonly specials: SpecialTokenMatcher;
  private readonly added: string[] = [];

  private constructor(private readonly vocab: string[]) {
    vocab.forEach((token, id) => {
      if (this.byToken.has(token))
        throw new Error(`WordTokenizer: token ${JSON.stringify(token)} appears twice`);
      this.byToken.set(token, id);
    });
    this.specials = new SpecialTokenMatcher(CONTROL.map((t, id) => [t, id]));
  }

  /** Count words over the corpus; ids by descending count, ties in code-point order (deterministic). */
  static build(corpus: readonly string[], options: WordTokenizerOptions = {}): WordTokenizer {
    const minCount = options.minCount ?? 1;
    if (!Number.isInteger(minCount) || minCount < 1)
      throw new Error(`WordTokenizer.build: minCount must be a positive integer, got ${minCount}`);
    const counts = new Map<string, number>();
    for (const text of corpus) for (const w of splitWords(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
    for (const t of CONTROL) counts.delete(t);
    let words = [...counts]
      .filter(([, n]) => n >= minCount)
      .sort(([a, na], [b, nb]) => nb - na || (a < b ? -1 : a > b ? 1 : 0))
      .map(([w]) => w);
    if (options.maxSize !== undefined) words = words.slice(0, Math.max(0, options.maxSize - CONTROL.length));
    return new WordTokenizer([...CONTROL, ...words]);
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string')
      throw new Error(`WordTokenizer.encode: expected a string, got ${typeof text}`);
    const ids: number[] = options.bos ? [this.bosId] : [];
    for (const segment of this.specials.split(text)) {
      if (typeof segment === 'number') ids.push(segment);
      else for (const w of splitWords(segment)) ids.push(this.byToken.get(w) ?? this.unkId);
    }
    if (options.eos) ids.push(this.eosId);
    return ids;
  }

  unknownWords(text: string): string[] {
    if (typeof text !== 'string')
      throw new Error(`WordTokenizer.unknownWords: expected a string, got ${typeof text}`);
    const unknown: string[] = [];
    for (const segment of this.specials.split(text)) {
      if (typeof segment !== 'number')
        for (const w of splitWords(segment)) if (!this.byToken.has(w)) unknown.push(w);
    }
    return unknown;
  }

  decode(ids: readonly number[]): string {
    checkIds('WordTokenizer', ids, this.vocabSize);
    let text = '';
    let previous = '';
    for (const id of ids) {
      if (id === this.bosId || id === this.eosId || id === this.padId) continue;
      const token = this.vocab[id];
      const glue = text === '' || NO_SPACE_BEFORE.test(token) || NO_SPACE_AFTER.test(previous);
      text += glue ? token : ` ${token}`;
      previous = token;
    }
    return text;
  }

  tokenToId(token: string): number | undefined {
    return this.byToken.get(token);
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.vocab[id] : undefined;
  }

  addSpecialTokens(tokens: string[]): number[] {
    return tokens.map((token) => {
      checkSpecialToken('WordTokenizer', token);
      let id = this.byToken.get(token);
      if (id === undefined) {
        id = this.vocab.length;
        this.vocab.push(token);
        this.byToken.set(token, id);
      }
      if (!this.added.includes(token)) this.added.push(token);
      this.specials.set(token, id);
      return id;
    });
  }

  toJSON(): WordTokenizerJSON {
    return { type: 'word', vocab: [...this.vocab], specialTokens: [...this.added] };
  }

  static fromJSON(json: unknown): WordTokenizer {
    const j = json as Partial<WordTokenizerJSON> | null;
    const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((t) => typeof t === 'string');
    if (j?.type !== 'word' || !strings(j.vocab) || !strings(j.specialTokens)) {
      throw new Error(
        `WordTokenizer.fromJSON: expected {type: 'word', vocab: string[], specialTokens: string[]}`,
      );
    }
    CONTROL.forEach((t, id) => {
      if (j.vocab![id] !== t) {
        throw new Error(`WordTokenizer.fromJSON: id ${id} must be ${t}, got ${JSON.stringify(j.vocab![id])}`);
      }
    });
    const tokenizer = new WordTokenizer([...j.vocab]);
    tokenizer.addSpecialTokens(j.specialTokens);
    return tokenizer;
  }
}
