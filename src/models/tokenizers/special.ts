/**
 * Special tokens matched atomically in text: the text is cut at every occurrence (longest token
 * first where two overlap), and the pieces in between go to the ordinary tokenizer. Shared by
 * the LLaMA and word-level tokenizers (the Hugging Face one has its own added-token splitter).
 */

/** A piece of text to tokenize normally, or the id of a special token found in the text. */
export type Segment = string | number;

export class SpecialTokenMatcher {
  private readonly ids = new Map<string, number>();
  private pattern: RegExp | null = null;

  constructor(tokens: Iterable<[string, number]> = []) {
    for (const [token, id] of tokens) this.ids.set(token, id);
    this.compile();
  }

  set(token: string, id: number): void {
    this.ids.set(token, id);
    this.compile();
  }

  get(token: string): number | undefined {
    return this.ids.get(token);
  }

  /** Text pieces (never empty strings) and special-token ids, in order. */
  split(text: string): Segment[] {
    if (!this.pattern) return text ? [text] : [];
    const out: Segment[] = [];
    let last = 0;
    for (const m of text.matchAll(this.pattern)) {
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(this.ids.get(m[0])!);
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  private compile(): void {
    const tokens = [...this.ids.keys()].sort((a, b) => b.length - a.length);
    const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    this.pattern = tokens.length ? new RegExp(tokens.map(escapeRegExp).join('|'), 'gu') : null;
  }
}

/** Checks shared by every `addSpecialTokens`. */
export function checkSpecialToken(owner: string, token: unknown): asserts token is string {
  if (typeof token !== 'string' || token.length === 0) {
    throw new Error(
      `${owner}.addSpecialTokens: a special token must be a non-empty string, got ${JSON.stringify(token)}`,
    );
  }
}

/** Checks shared by every `decode`. */
export function checkIds(owner: string, ids: readonly number[], vocabSize: number): void {
  for (const [i, id] of ids.entries()) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(
        `${owner}.decode: id ${id} at index ${i} is outside the vocabulary (0..${vocabSize - 1})`,
      );
    }
  }
}

/**
 * UTF-8 bytes to text, withholding an incomplete character at the very end (so a streamed
 * answer never shows a replacement character for a half-generated one); invalid bytes elsewhere
 * become U+FFFD as usual.
 */
export function decodeUtf8Prefix(bytes: Uint8Array): string {
  return new TextDecoder('utf-8').decode(bytes, { stream: true });
}
