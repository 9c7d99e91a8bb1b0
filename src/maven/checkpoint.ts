/**
 * A MaVEn model directory:
 *
 *   config.json                       MavenConfig (+ format version)
 *   tokenizer.json                    the text tokenizer (TextTokenizer.toJSON())
 *   model.safetensors                 every weight by full name — or, for large models,
 *   model.safetensors.index.json      Hugging Face's sharded layout with model-0000k-of-0000n files
 *
 * Loading checks every expected tensor's presence and shape first and reports all problems at
 * once; large shards are read tensor by tensor. Every weight is then checked for NaN and ±Inf,
 * so a damaged file fails at load, by name, instead of answering garbage.
 */

import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostTensor, RuntimeOptions } from '../engine/index.ts';
import { loadShardedSafetensors, SafetensorsFile, saveSafetensors } from '../engine/safetensors-file.ts';
import { loadTokenizer } from '../models/tokenizer.ts';
import type { MavenConfig } from './config.ts';
import { buildComponents, MavenModel, mavenParamShapes } from './model.ts';

export const CHECKPOINT_FORMAT = 'maven-ts/1';

interface StoredConfig extends MavenConfig {
  format: string;
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what}: ${path} is not valid JSON (${(e as Error).message})`);
  }
}

export async function loadMavenConfig(dir: string): Promise<MavenConfig> {
  const stored = (await readJson(join(dir, 'config.json'), 'model config')) as StoredConfig;
  if (stored.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${join(dir, 'config.json')}: format "${stored.format}" is not ${CHECKPOINT_FORMAT}`);
  }
  const { format: _, ...config } = stored;
  return config;
}

/** A checkpoint whose weights hold NaN or ±Inf (damaged bytes, or a diverged run saved). */
export class NonFiniteWeightsError extends Error {
  override readonly name = 'NonFiniteWeightsError';
  constructor(
    message: string,
    readonly tensors: number,
  ) {
    super(message);
  }
}

/** How many values of a floating-point tensor are NaN or ±Inf, and the first one's index. */
function nonFinite(t: HostTensor): { count: number; first: number } | null {
  const data = t.data;
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return null;
  let count = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    // x - x is 0 for every finite x, NaN for NaN and ±Inf: one test per value.
    if (data[i] - data[i] !== 0) {
      if (count === 0) first = i;
      count++;
    }
  }
  return count ? { count, first } : null;
}

/**
 * Read every weight the config expects from `dir` (single file or shards). Refuses a checkpoint
 * with missing or misshapen tensors, or with NaN/±Inf in any weight (NonFiniteWeightsError),
 * naming each tensor.
 */
export async function loadMavenWeights(dir: string, config: MavenConfig): Promise<Map<string, HostTensor>> {
  const expected = mavenParamShapes(buildComponents(config));
  const single = join(dir, 'model.safetensors');
  const index = join(dir, 'model.safetensors.index.json');
  const source = existsSync(single)
    ? await SafetensorsFile.open(single)
    : existsSync(index)
      ? await loadShardedSafetensors(index)
      : null;
  if (!source) throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  try {
    const problems: string[] = [];
    for (const [name, shape] of expected) {
      const entry = source.entries.get(name);
      if (!entry) problems.push(`missing "${name}" [${shape.join(', ')}]`);
      else if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
        problems.push(`"${name}": expected [${shape.join(', ')}], file has [${entry.shape.join(', ')}]`);
      }
    }
    if (problems.length) {
      throw new Error(
        `${dir}: checkpoint does not match ${config.name} (${problems.length} problem(s)):\n  ${problems.slice(0, 20).join('\n  ')}`,
      );
    }
    const weights = new Map<string, HostTensor>();
    const damaged: string[] = [];
    for (const name of expected.keys()) {
      const tensor = await source.get(name);
      const bad = nonFinite(tensor);
      if (bad) {
        damaged.push(
          `"${name}" [${tensor.shape.join(', ')}]: ${bad.count} of ${tensor.data.length} values are NaN or infinite (the first at index ${bad.first})`,
        );
      }
      weights.set(name, tensor);
    }
    if (damaged.length) {
      throw new NonFiniteWeightsError(
        `${dir}: ${damaged.length} weight tensor(s) hold NaN or infinite values, so the model's output would be garbage; the file is damaged or was saved from a diverged run (restore it from a good copy):\n  ${damaged.slice(0, 20).join('\n  ')}${damaged.length > 20 ? `\n  … and ${damaged.length - 20} more` : ''}`,
        damaged.length,
      );
    }
    return weights;
  } finally {
    await source.close();
  }
}

export async function loadMaven(dir: string, runtime: RuntimeOptions = {}): Promise<MavenModel> {
  if (!existsSync(dir)) throw new Error(`model directory ${dir} does not exist`);
  const config = await loadMavenConfig(dir);
  const tokenizer = loadTokenizer(await readJson(join(dir, 'tokenizer.json'), 'tokenizer'));
  return new MavenModel(config, await loadMavenWeights(dir, config), tokenizer, runtime);
}

export interface SaveOptions {
  metadata?: Record<string, string>;
  /** Split into Hugging Face-style shards of at most this many bytes (default: one file). */
  maxShardBytes?: number;
}

export async function saveMaven(dir: string, model: MavenModel, options: SaveOptions = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const metadata = { format: 'pt', ...options.metadata };
  const names = [...model.weights.keys()].sort();
  const sizes = names.map((n) => model.weights.get(n)!.data.byteLength);
  const total = sizes.reduce((a, b) => a + b, 0);
  const limit = options.maxShardBytes ?? Number.POSITIVE_INFINITY;
  if (total <= limit) {
    await saveSafetensors(join(dir, 'model.safetensors'), new Map(model.weights), metadata);
  } else {
    const shards: string[][] = [[]];
    let used = 0;
    names.forEach((n, i) => {
      if (used + sizes[i] > limit && shards[shards.length - 1].length) {
        shards.push([]);
        used = 0;
      }
      shards[shards.length - 1].push(n);
      used += sizes[i];
    });
    const pad = (k: number) => String(k).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    for (const [k, shard] of shards.entries()) {
      const file = `model-${pad(k + 1)}-of-${pad(shards.length)}.safetensors`;
      await saveSafetensors(join(dir, file), new Map(shard.map((n) => [n, model.weights.get(n)!])), metadata);
      for (const n of shard) weightMap[n] = file;
    }
    await writeJson(dir, 'model.safetensors.index.json', {
      metadata: { total_size: total },
      weight_map: weightMap,
    });
  }
  await writeJson(dir, 'tokenizer.json', model.tokenizer.toJSON());
  await writeJson(dir, 'config.json', { format: CHECKPOINT_FORMAT, ...model.config });
}

async function writeJson(dir: string, name: string, value: unknown): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, join(dir, name));
}
