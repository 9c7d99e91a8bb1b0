/**
 * A MaVEn checkpoint as values: the contents of a model directory's config.json and
 * tokenizer.json and its weights by full name. Kept free of file I/O so that a browser can build a
 * model from fetched files; src/node/model-directory.ts (loadMaven, saveMaven) reads and writes
 * the directory:
 *
 *   config.json                       MavenConfig (+ format version)
 *   tokenizer.json                    the text tokenizer (TextTokenizer.toJSON())
 *   model.safetensors                 every weight by full name — or, for large models,
 *   model.safetensors.index.json      Hugging Face's sharded layout with model-0000k-of-0000n files
 *
 * A weight may be stored block-quantized, as `<name>.qweight` and `<name>.scales`
 * (src/engine/block-quantize.ts; `maven quantize`), and then runs with MatMulNBits.
 *
 * Building a model checks every expected tensor's presence and shape and reports all problems at
 * once; every weight is then checked for NaN and ±Inf, so a damaged file fails at load, by name,
 * instead of answering garbage. Weights left in their files (FileTensor) are counted by whoever
 * left them there, which streams through them (src/node/model-directory.ts).
 */
import {
  FileTensor,
  type HostTensor,
  type RuntimeOptions,
  type StoredTensor,
  sizeOf,
  storedWeightNames,
  storedWeightProblem,
} from '../engine/index.ts';
import { loadTokenizer } from '../models/tokenizer.ts';
import type { MavenConfig } from './config.ts';
import { buildComponents, MavenModel, mavenParamShapes } from './model.ts';

export const CHECKPOINT_FORMAT = 'maven-ts/1';

/** What a model directory holds, as values. */
export interface MavenParts {
  /** The contents of config.json: the MavenConfig plus `format`, which must be CHECKPOINT_FORMAT. */
  configJson: unknown;
  /** The contents of tokenizer.json (TextTokenizer.toJSON()). */
  tokenizerJson: unknown;
  /**
   * Every weight by full name, as in model.safetensors; names the config does not expect are
   * ignored. In host memory, or left in its file for onnxruntime to read (FileTensor).
   */
  weights: ReadonlyMap<string, StoredTensor>;
  /** Non-finite values of the float FileTensors, counted as their files were streamed (absent: none). */
  nonFiniteInFiles?: ReadonlyMap<string, NonFiniteCount>;
}

/** The MavenConfig of a config.json's contents; `source` names the file in errors. */
export function parseMavenConfig(configJson: unknown, source = 'config.json'): MavenConfig {
  if (typeof configJson !== 'object' || configJson === null || Array.isArray(configJson)) {
    throw new Error(`${source}: expected a JSON object (a MaVEn config), got ${JSON.stringify(configJson)}`);
  }
  const { format, ...config } = configJson as MavenConfig & { format?: unknown };
  if (format !== CHECKPOINT_FORMAT) {
    throw new Error(`${source}: format "${format}" is not ${CHECKPOINT_FORMAT}`);
  }
  return config;
}

/** Every weight a model of `config` has, by full name, with its shape. */
export function mavenWeightShapes(config: MavenConfig): Map<string, number[]> {
  return mavenParamShapes(buildComponents(config));
}

/**
 * Throws one Error listing every expected weight that is missing or misshapen in `found` (tensors,
 * or the entries of a safetensors header, so that files are checked before their data is read).
 */
export function checkWeightShapes(
  source: string,
  config: MavenConfig,
  found: ReadonlyMap<string, { readonly shape: readonly number[] }>,
): void {
  const problems: string[] = [];
  for (const [name, shape] of mavenWeightShapes(config)) {
    const problem = storedWeightProblem(found, name, shape, 'file has');
    if (problem) problems.push(problem);
  }
  if (problems.length) {
    throw new Error(
      `${source}: checkpoint does not match ${config.name} (${problems.length} problem(s)):\n  ${problems.slice(0, 20).join('\n  ')}`,
    );
  }
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

/** NaN and ±Inf among a tensor's values: how many, and the first one's index (-1: none). */
export interface NonFiniteCount {
  count: number;
  first: number;
}

/**
 * Adds the NaN and ±Inf of `data` to `into`, `data[0]` being value `at` of its tensor: a tensor
 * can be counted a piece at a time, as it is read.
 */
export function countNonFinite(data: Float32Array | Float64Array, at: number, into: NonFiniteCount): void {
  for (let i = 0; i < data.length; i++) {
    // x - x is 0 for every finite x, NaN for NaN and ±Inf: one test per value.
    if (data[i] - data[i] !== 0) {
      if (into.count === 0) into.first = at + i;
      into.count++;
    }
  }
}

/** How many values of a floating-point tensor are NaN or ±Inf, and the first one's index. */
function nonFinite(t: HostTensor): NonFiniteCount | null {
  const data = t.data;
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return null;
  const counted = { count: 0, first: -1 };
  countNonFinite(data, 0, counted);
  return counted.count ? counted : null;
}

/**
 * Throws NonFiniteWeightsError naming every weight that holds NaN or ±Inf: host tensors are
 * checked here, FileTensors by `inFiles` (counted while their files were streamed).
 */
export function checkWeightsFinite(
  source: string,
  weights: ReadonlyMap<string, StoredTensor>,
  inFiles: ReadonlyMap<string, NonFiniteCount> = new Map(),
): void {
  const damaged: string[] = [];
  for (const [name, tensor] of weights) {
    const bad = tensor instanceof FileTensor ? inFiles.get(name) : nonFinite(tensor);
    if (bad?.count) {
      const values = sizeOf(tensor.shape);
      damaged.push(
        `"${name}" [${tensor.shape.join(', ')}]: ${bad.count} of ${values} values are NaN or infinite (the first at index ${bad.first})`,
      );
    }
  }
  if (damaged.length) {
    throw new NonFiniteWeightsError(
      `${source}: ${damaged.length} weight tensor(s) hold NaN or infinite values, so the model's output would be garbage; the file is damaged or was saved from a diverged run (restore it from a good copy):\n  ${damaged.slice(0, 20).join('\n  ')}${damaged.length > 20 ? `\n  … and ${damaged.length - 20} more` : ''}`,
      damaged.length,
    );
  }
}

export interface FromPartsOptions {
  runtime?: RuntimeOptions;
  /** Where the parts came from (a directory, a URL), for errors. */
  source?: string;
}

/**
 * A model from a checkpoint's parts. Refuses missing or misshapen weights, and weights with NaN
 * or ±Inf (NonFiniteWeightsError), naming each tensor.
 */
export function mavenFromParts(parts: MavenParts, options: FromPartsOptions = {}): MavenModel {
  const source = options.source ?? 'MaVEn checkpoint';
  const config = parseMavenConfig(parts.configJson, `${source}: config.json`);
  checkWeightShapes(source, config, parts.weights);
  const weights = new Map<string, StoredTensor>();
  for (const name of mavenWeightShapes(config).keys()) {
    for (const stored of storedWeightNames(parts.weights, name))
      weights.set(stored, parts.weights.get(stored)!);
  }
  checkWeightsFinite(source, weights, parts.nonFiniteInFiles);
  return new MavenModel(config, weights, loadTokenizer(parts.tokenizerJson), options.runtime);
}

/** The parts a model directory stores for `model`: what mavenFromParts takes back. */
export function mavenToParts(
  model: MavenModel,
): Omit<MavenParts, 'weights'> & { weights: ReadonlyMap<string, HostTensor> } {
  return {
    configJson: { format: CHECKPOINT_FORMAT, ...model.config },
    tokenizerJson: model.tokenizer.toJSON(),
    weights: model.hostWeights(),
  };
}
