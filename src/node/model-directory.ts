/**
 * MaVEn model directories on disk (Node): loadMaven and saveMaven. The checkpoint's contents and
 * their checks are src/maven/checkpoint.ts (mavenFromParts, mavenToParts), which runs in a
 * browser too; this file adds the files:
 *
 *   config.json                       MavenConfig (+ format version)
 *   tokenizer.json                    the text tokenizer (TextTokenizer.toJSON())
 *   model.safetensors                 every weight by full name — or, for large models,
 *   model.safetensors.index.json      Hugging Face's sharded layout with model-0000k-of-0000n files
 *
 * Loading checks every expected tensor's presence and shape from the safetensors headers before
 * any tensor data is read, and large shards are read tensor by tensor — or, with
 * `weightsOnDisk`, left in the files for onnxruntime to read (FileTensor). A quantized directory
 * (`maven quantize`, src/maven/quantization.ts) loads the same way: its weights' `.qweight` and
 * `.scales` pairs are checked against the "maven.quantization" metadata, naming any tensor that
 * disagrees.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type FileTensor,
  type RuntimeOptions,
  type StoredTensor,
  storedWeightNames,
} from '../engine/index.ts';
import {
  checkWeightShapes,
  countNonFinite,
  mavenFromParts,
  mavenToParts,
  mavenWeightShapes,
  type NonFiniteCount,
  parseMavenConfig,
} from '../maven/checkpoint.ts';
import type { MavenConfig } from '../maven/config.ts';
import type { MavenModel } from '../maven/model.ts';
import { checkQuantizationMetadata, QUANTIZATION_METADATA_KEY } from '../maven/quantization.ts';
import { loadShardedSafetensors, SafetensorsFile, saveSafetensors } from './safetensors-file.ts';

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
  const path = join(dir, 'config.json');
  return parseMavenConfig(await readJson(path, 'model config'), path);
}

export interface LoadOptions {
  /**
   * Leave the weights in the model's files for onnxruntime to read as it makes each session
   * (ONNX external data at their offsets in the safetensors files) instead of reading them into
   * this process: a model then costs what its sessions hold, not that plus a host copy. For
   * inference: a model loaded so refuses to be trained, quantized, exported or saved
   * (`MavenModel.hostWeights`), and its files must stay in place while it runs. The token table's
   * rows are read from the file as prompts need them. Tensors a file stores in a layout
   * onnxruntime does not take (bf16, f16) are read and converted all the same. Float tensors left
   * in the files are still checked for NaN and ±Inf, streamed a piece at a time.
   */
  weightsOnDisk?: boolean;
}

/**
 * Reads every weight the config expects from `dir` (single file or shards), after checking their
 * presence and shapes in the headers, or leaves them in the files (`weightsOnDisk`); the values
 * read are checked by mavenFromParts, those left in files here.
 */
async function readMavenWeights(
  dir: string,
  config: MavenConfig,
  options: LoadOptions,
): Promise<{ weights: Map<string, StoredTensor>; nonFiniteInFiles: Map<string, NonFiniteCount> }> {
  const single = join(dir, 'model.safetensors');
  const index = join(dir, 'model.safetensors.index.json');
  const source = existsSync(single)
    ? await SafetensorsFile.open(single)
    : existsSync(index)
      ? await loadShardedSafetensors(index)
      : null;
  if (!source) throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  try {
    checkWeightShapes(dir, config, source.entries);
    const recorded = source.metadata[QUANTIZATION_METADATA_KEY];
    checkQuantizationMetadata(
      dir,
      config,
      source.entries,
      typeof recorded === 'string' ? recorded : undefined,
    );
    const weights = new Map<string, StoredTensor>();
    const nonFiniteInFiles = new Map<string, NonFiniteCount>();
    for (const name of mavenWeightShapes(config).keys()) {
      for (const stored of storedWeightNames(source.entries, name)) {
        const left: FileTensor | null = options.weightsOnDisk ? source.fileTensor(stored) : null;
        if (!left) {
          weights.set(stored, await source.get(stored));
          continue;
        }
        weights.set(stored, left);
        if (left.dtype === 'float32' || left.dtype === 'float64') {
          const counted = { count: 0, first: -1 };
          await source.scan(stored, (values, at) => countNonFinite(values, at, counted));
          if (counted.count) nonFiniteInFiles.set(stored, counted);
        }
      }
    }
    return { weights, nonFiniteInFiles };
  } finally {
    await source.close();
  }
}

/**
 * Loads a model directory. Refuses a checkpoint with missing or misshapen tensors, or with NaN/±Inf
 * in any weight (NonFiniteWeightsError, from src/maven/checkpoint.ts), naming each tensor.
 */
export async function loadMaven(
  dir: string,
  runtime: RuntimeOptions = {},
  options: LoadOptions = {},
): Promise<MavenModel> {
  if (!existsSync(dir)) throw new Error(`model directory ${dir} does not exist`);
  const configPath = join(dir, 'config.json');
  const configJson = await readJson(configPath, 'model config');
  const config = parseMavenConfig(configJson, configPath);
  const tokenizerJson = await readJson(join(dir, 'tokenizer.json'), 'tokenizer');
  const { weights, nonFiniteInFiles } = await readMavenWeights(dir, config, options);
  return mavenFromParts({ configJson, tokenizerJson, weights, nonFiniteInFiles }, { runtime, source: dir });
}

export interface SaveOptions {
  metadata?: Record<string, string>;
  /** Split into Hugging Face-style shards of at most this many bytes (default: one file). */
  maxShardBytes?: number;
}

/** Writes a model directory; each file goes through a temp file and a rename. */
export async function saveMaven(dir: string, model: MavenModel, options: SaveOptions = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const { configJson, tokenizerJson, weights } = mavenToParts(model);
  const metadata: Record<string, string> = { format: 'pt', ...options.metadata };
  const q = metadata[QUANTIZATION_METADATA_KEY];
  const quantization = q === undefined ? {} : { [QUANTIZATION_METADATA_KEY]: q };
  const names = [...weights.keys()].sort();
  const sizes = names.map((n) => weights.get(n)!.data.byteLength);
  const total = sizes.reduce((a, b) => a + b, 0);
  const limit = options.maxShardBytes ?? Number.POSITIVE_INFINITY;
  if (total <= limit) {
    await saveSafetensors(join(dir, 'model.safetensors'), new Map(weights), metadata);
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
      await saveSafetensors(join(dir, file), new Map(shard.map((n) => [n, weights.get(n)!])), metadata);
      for (const n of shard) weightMap[n] = file;
    }
    await writeJson(dir, 'model.safetensors.index.json', {
      metadata: { total_size: total, ...quantization },
      weight_map: weightMap,
    });
  }
  await writeJson(dir, 'tokenizer.json', tokenizerJson);
  await writeJson(dir, 'config.json', configJson);
}

async function writeJson(dir: string, name: string, value: unknown): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, join(dir, name));
}
