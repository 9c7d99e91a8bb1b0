/**
 * The unified vocabulary: text ids 0..V_text−1, then the visual codebook, code c ↦ V_text + c.
 * The LLM's embedding table (and untied LM head) is extended with V_visual new rows; the text
 * rows of a pretrained LLM are copied bit for bit, so extending never changes text behaviour.
 */
import { HostTensor } from '../engine/index.ts';
import { uniformSource } from '../models/init.ts';

export interface UnifiedVocabulary {
  textVocabSize: number;
  visualVocabSize: number;
}

export function totalVocabSize(v: UnifiedVocabulary): number {
  return v.textVocabSize + v.visualVocabSize;
}

/** Unified id of visual code `code`. */
export function visualTokenId(v: UnifiedVocabulary, code: number): number {
  if (!Number.isInteger(code) || code < 0 || code >= v.visualVocabSize) {
    throw new Error(`visual code ${code} is outside the codebook (0..${v.visualVocabSize - 1})`);
  }
  return v.textVocabSize + code;
}

/** The code of a unified id, or undefined for text ids. */
export function visualCode(v: UnifiedVocabulary, id: number): number | undefined {
  return id >= v.textVocabSize && id < totalVocabSize(v) ? id - v.textVocabSize : undefined;
}

export interface ExtendOptions {
  /** Names of the tables to extend (rows = vocabulary), e.g. embed_tokens and an untied lm_head. */
  tables: readonly string[];
  /** New rows: normal(mean of the text rows, std) per column, as LLaVA/SEED-LLaMA do; default std 0.02. */
  std?: number;
  seed?: number;
}

/**
 * Return `params` with each table in `options.tables` grown from V_text to V_text + V_visual rows.
 * Text rows are copied unchanged; new rows start near the mean text embedding.
 */
export function extendVocabulary(
  params: ReadonlyMap<string, HostTensor>,
  vocab: UnifiedVocabulary,
  options: ExtendOptions,
): Map<string, HostTensor> {
  const out = new Map(params);
  const rand = uniformSource(options.seed ?? 0);
  const std = options.std ?? 0.02;
  for (const name of options.tables) {
    const table = params.get(name);
    if (!table) throw new Error(`extendVocabulary: no table "${name}" among the parameters`);
    const [rows, width] = table.shape;
    if (table.shape.length !== 2 || rows !== vocab.textVocabSize) {
      throw new Error(
        `extendVocabulary: "${name}" has shape [${table.shape.join(', ')}], expected [${vocab.textVocabSize}, width] (the text vocabulary)`,
      );
    }
    if (table.dtype !== 'float32')
      throw new Error(`extendVocabulary: "${name}" must be float32, got ${table.dtype}`);
    const src = table.data as Float32Array;
    const mean = new Float64Array(width);
    for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) mean[c] += src[r * width + c] / rows;
    const data = new Float32Array(totalVocabSize(vocab) * width);
    data.set(src);
    for (let i = rows * width; i < data.length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12)));
      const theta = 2 * Math.PI * rand();
      data[i] = mean[i % width] + std * r * Math.cos(theta);
      if (i + 1 < data.length) data[i + 1] = mean[(i + 1) % width] + std * r * Math.sin(theta);
    }
    out.set(name, new HostTensor('float32', [totalVocabSize(vocab), width], data));
  }
  return out;
}
