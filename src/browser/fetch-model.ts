/**
 * A MaVEn model directory fetched over HTTP (the browser's counterpart of
 * src/node/model-directory.ts): config.json, tokenizer.json, and model.safetensors or Hugging
 * Face-style shards behind model.safetensors.index.json. Every file goes through the Cache API,
 * so a model is downloaded once and read from the browser's cache afterwards (revalidated by a
 * bodiless conditional request when the server answers; offline, as it is); a failed download is
 * never stored. The checks are the core's (src/maven/checkpoint.ts,
 * quantization.ts): shapes from the headers first, then values, each problem named.
 */
import {
  decodeTensor,
  type HostTensor,
  parseSafetensorsHeader,
  type RuntimeOptions,
} from '../engine/index.ts';
import type { SafetensorsEntry } from '../engine/safetensors.ts';
import { checkWeightShapes, mavenFromParts, parseMavenConfig } from '../maven/checkpoint.ts';
import type { MavenModel } from '../maven/model.ts';
import { checkQuantizationMetadata, QUANTIZATION_METADATA_KEY } from '../maven/quantization.ts';

/** The Cache API bucket holding model files; bump the suffix if the stored layout ever changes. */
export const MODEL_CACHE_NAME = 'maven-models-v1';

export interface FetchProgress {
  file: string;
  /** Bytes received so far for this file, and its size when the server says it. */
  loaded: number;
  total: number | null;
  fromCache: boolean;
}

export interface FetchModelOptions {
  runtime?: RuntimeOptions;
  onProgress?: (progress: FetchProgress) => void;
  /** Keep files in the Cache API (default true; unavailable outside secure contexts, then skipped). */
  cache?: boolean;
}

export interface FetchedModel {
  model: MavenModel;
  /** Every file read, with its size and whether it came from the cache. */
  files: { url: string; bytes: number; fromCache: boolean }[];
  /** Milliseconds spent fetching (or reading from the cache) and building the model. */
  fetchMs: number;
  buildMs: number;
}

async function openCache(enabled: boolean): Promise<Cache | null> {
  if (!enabled || typeof caches === 'undefined') return null;
  try {
    return await caches.open(MODEL_CACHE_NAME);
  } catch {
    return null; // e.g. storage disabled: fetch every time rather than fail
  }
}

/** Forget every cached model file (the page's "forget downloaded models"). */
export async function clearModelCache(): Promise<boolean> {
  return typeof caches !== 'undefined' && caches.delete(MODEL_CACHE_NAME);
}

async function readBody(
  response: Response,
  file: string,
  fromCache: boolean,
  onProgress?: FetchModelOptions['onProgress'],
): Promise<Uint8Array> {
  const header = Number(response.headers.get('content-length'));
  const total = Number.isFinite(header) && header > 0 ? header : null;
  if (!response.body || !onProgress) return new Uint8Array(await response.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress({ file, loaded, total, fromCache });
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

class ModelFiles {
  readonly files: FetchedModel['files'] = [];

  constructor(
    private readonly base: URL,
    private readonly cache: Cache | null,
    private readonly onProgress?: FetchModelOptions['onProgress'],
  ) {}

  url(name: string): string {
    return new URL(name, this.base).href;
  }

  /**
   * The file's bytes, or null when an optional file does not exist (404, or no server and no
   * cached copy). A cached copy is revalidated with the validators the server gave it (ETag,
   * Last-Modified): a 304 costs no body, a changed file is downloaded again (so a retrained model
   * at the same URL is not served stale), and no answer at all (offline) uses the copy.
   */
  async bytes(name: string, optional = false): Promise<Uint8Array | null> {
    const url = this.url(name);
    const cached = await this.cache?.match(url);
    const validators: Record<string, string> = {};
    const etag = cached?.headers.get('etag');
    const modified = cached?.headers.get('last-modified');
    if (etag) validators['if-none-match'] = etag;
    else if (modified) validators['if-modified-since'] = modified;
    let response: Response | null = null;
    let failure = '';
    if (!cached || Object.keys(validators).length) {
      try {
        // no-store: the answer comes from the server, not the HTTP cache; the Cache API is ours.
        response = await fetch(url, { headers: validators, cache: 'no-store' });
      } catch (e) {
        failure = `${(e as Error).message} (offline, or the server is down?)`;
      }
    }
    if (cached && (!response || response.status === 304 || !response.ok)) {
      const data = await readBody(cached, name, true, this.onProgress);
      this.files.push({ url, bytes: data.length, fromCache: true });
      return data;
    }
    if (!response) {
      if (optional) return null;
      throw new Error(`cannot fetch ${url}: ${failure}`);
    }
    if (response.status === 404 && optional) return null;
    if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status} ${response.statusText}`);
    const data = await readBody(response, name, false, this.onProgress);
    this.files.push({ url, bytes: data.length, fromCache: false });
    // Stored only once the whole body arrived, so an interrupted download is fetched again next time.
    const headers: Record<string, string> = {
      'content-type': response.headers.get('content-type') ?? 'application/octet-stream',
    };
    for (const h of ['etag', 'last-modified']) {
      const v = response.headers.get(h);
      if (v) headers[h] = v;
    }
    await this.cache?.put(url, new Response(data as Uint8Array<ArrayBuffer>, { headers }));
    return data;
  }

  async json(name: string, optional = false): Promise<unknown> {
    const data = await this.bytes(name, optional);
    if (data === null) return null;
    try {
      return JSON.parse(new TextDecoder().decode(data));
    } catch (e) {
      throw new Error(`${this.url(name)} is not valid JSON (${(e as Error).message})`);
    }
  }
}

interface WeightSource {
  entries: Map<string, SafetensorsEntry>;
  bytesOf: Map<string, Uint8Array>;
  quantization: string | undefined;
}

/** model.safetensors, or the shards model.safetensors.index.json names. */
async function readWeights(files: ModelFiles): Promise<WeightSource> {
  const entries = new Map<string, SafetensorsEntry>();
  const bytesOf = new Map<string, Uint8Array>();
  const add = (file: string, data: Uint8Array) => {
    const header = parseSafetensorsHeader(data, files.url(file));
    for (const [name, entry] of header.entries) {
      entries.set(name, entry);
      bytesOf.set(name, data);
    }
    return header.metadata;
  };
  const single = await files.bytes('model.safetensors', true);
  if (single) {
    const metadata = add('model.safetensors', single);
    return { entries, bytesOf, quantization: metadata[QUANTIZATION_METADATA_KEY] };
  }
  const index = (await files.json('model.safetensors.index.json', true)) as {
    weight_map?: Record<string, string>;
    metadata?: Record<string, unknown>;
  } | null;
  if (!index) {
    throw new Error(
      `${files.url('.')}: no model.safetensors or model.safetensors.index.json (or the server cannot be reached)`,
    );
  }
  if (typeof index.weight_map !== 'object' || index.weight_map === null) {
    throw new Error(`${files.url('model.safetensors.index.json')}: no "weight_map" object`);
  }
  for (const shard of new Set(Object.values(index.weight_map))) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
      throw new Error(`${files.url('model.safetensors.index.json')}: shard name ${JSON.stringify(shard)}`);
    }
    add(shard, (await files.bytes(shard))!);
  }
  const recorded = index.metadata?.[QUANTIZATION_METADATA_KEY];
  return { entries, bytesOf, quantization: typeof recorded === 'string' ? recorded : undefined };
}

/**
 * Fetches the model directory at `url` (e.g. 'models/maven-tiny/', relative to the page) and
 * builds the model. Refuses missing or misshapen weights and NaN/±Inf values, naming each tensor.
 */
export async function fetchMaven(url: string | URL, options: FetchModelOptions = {}): Promise<FetchedModel> {
  const base = new URL(url, globalThis.location?.href);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const t0 = performance.now();
  const files = new ModelFiles(base, await openCache(options.cache ?? true), options.onProgress);
  const source = base.href;
  const configJson = await files.json('config.json');
  const config = parseMavenConfig(configJson, files.url('config.json'));
  const tokenizerJson = await files.json('tokenizer.json');
  const { entries, bytesOf, quantization } = await readWeights(files);
  const fetchMs = performance.now() - t0;
  checkWeightShapes(source, config, entries);
  checkQuantizationMetadata(source, config, entries, quantization);
  const weights = new Map<string, HostTensor>();
  for (const [name, entry] of entries) {
    const data = bytesOf.get(name)!;
    weights.set(
      name,
      decodeTensor(entry, data.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength)),
    );
  }
  const model = mavenFromParts({ configJson, tokenizerJson, weights }, { runtime: options.runtime, source });
  return { model, files: files.files, fetchMs, buildMs: performance.now() - t0 - fetchMs };
}
