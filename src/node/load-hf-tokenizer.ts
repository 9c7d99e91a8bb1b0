/**
 * Loading a Hugging Face tokenizer from its files (Node). HFTokenizer itself is built from parsed
 * JSON so that src/models runs in a browser; this adapter only reads tokenizer.json and its
 * tokenizer_config.json from disk.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HFTokenizer } from '../models/tokenizers/hf.ts';

/** Reads tokenizer.json, and tokenizer_config.json from `configPath` or beside it when present. */
export async function loadHFTokenizer(path: string, configPath?: string): Promise<HFTokenizer> {
  const json = JSON.parse(await readFile(path, 'utf8')) as unknown;
  const cfgPath = configPath ?? join(dirname(path), 'tokenizer_config.json');
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await readFile(cfgPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    if (configPath !== undefined || !missing)
      throw new Error(`loadHFTokenizer: cannot read ${cfgPath}: ${e}`);
  }
  return HFTokenizer.fromJSON(json, config);
}
