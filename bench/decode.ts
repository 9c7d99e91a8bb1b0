/**
 * Decode benchmark against llama.cpp (`npm run bench:decode`): the same seeded random LLaMA
 * weights in maven-ts (float32, 8-bit, 4-bit block-quantized, as `maven quantize` stores them)
 * and in llama.cpp through node-llama-cpp (f32, q8_0, q4_0, written by our GGUF export).
 *
 *   npm run bench:decode -- [--shapes tiny,135m,7b,maven-7b] [--threads 1,2] [--repeats 3]
 *                           [--max-rss-gib N] [--write]
 *
 * Per shape and configuration, one child process (so peak RSS is its own): load the weights
 * from their file, prefill a 512-token prompt, then decode 128 tokens greedily, one at a time.
 * Reported: load time (file → ready to run), prefill and decode tokens/s (median over the
 * repeats), peak RSS over the whole run (VmHWM), and peak RSS while decoding (VmHWM reset through
 * /proc/self/clear_refs after the prefill). Ratios compare maven-ts with its defaults (no thread
 * option) against llama.cpp's best thread count at the same bits, measured in the same run.
 *
 * The 7B shape runs 4 bits only: its float32 weights (27 GB) do not fit this machine, and its
 * 8-bit ones (8.4 GB with their scales) would pass --max-rss-gib while loading (about 3× the file).
 * node-llama-cpp is not a dependency of the project: its prebuilt binaries (CUDA and Vulkan
 * builds included) weigh about 700 MB, which every `npm install` of maven-ts would otherwise fetch
 * for a benchmark few users run. Install it for a run with `npm i --no-save -E node-llama-cpp@3.21.1`
 * (from the npm registry, nothing compiled); when it is absent the llama.cpp rows are skipped,
 * saying so. The few calls used here are typed by `LlamaCpp` below.
 * `maven-7b` runs the whole model end to end at 4 bits (runMaven7b). Generated files are cached
 * under the system's temporary folder (maven-bench-decode/), keyed by shape and seed.
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type BlockQuantSpec,
  blockQuantize,
  HostTensor,
  KVCacheDecoder,
  QWEIGHT_SUFFIX,
  SCALES_SUFFIX,
  storedRows,
} from '../src/engine/index.ts';
import { ggufChunks, llamaGguf, TokenType } from '../src/export/gguf.ts';
import { mavenWeightShapes } from '../src/maven/checkpoint.ts';
import { type MavenConfig, maven7bConfig, tinyConfig } from '../src/maven/config.ts';
import { MavenModel } from '../src/maven/model.ts';
import {
  defaultTableQuant,
  QUANTIZATION_METADATA_KEY,
  quantizationMetadata,
  quantizationPlan,
} from '../src/maven/quantization.ts';
import { Llama, type LlamaConfig } from '../src/models/llama.ts';
import { LlamaTokenizer } from '../src/models/tokenizer.ts';
import { loadMaven, saveMaven } from '../src/node/model-directory.ts';
import { preprocessImages } from '../src/node/preprocess-images.ts';
import { openSafetensors, saveSafetensors } from '../src/node/safetensors-file.ts';
import { writeBenchSection } from './write-section.ts';

const PROMPT_TOKENS = 512;
const DECODE_TOKENS = 128;
const SEED = 20261206;

type Shape = 'tiny' | '135m' | '7b';
type Impl = 'maven-ts' | 'llama.cpp';
type Bits = 32 | 8 | 4;

const SHAPES: Record<Shape, { label: string; llm: () => LlamaConfig; bits: Bits[] }> = {
  tiny: {
    label: 'tiny (maven-tiny LLM: 4 layers × 128, vocabulary 478, tied)',
    llm: () => tinyConfig(222).llm,
    bits: [32, 8, 4],
  },
  '135m': {
    label: '~135M (SmolLM-135M shape: 30 layers × 576, 9 / 3 heads, MLP 1536, vocabulary 49,152, tied)',
    llm: () => ({
      vocabSize: 49152,
      hiddenSize: 576,
      intermediateSize: 1536,
      numHiddenLayers: 30,
      numAttentionHeads: 9,
      numKeyValueHeads: 3,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      maxPositionEmbeddings: 2048,
      tieWordEmbeddings: true,
    }),
    bits: [32, 8, 4],
  },
  '7b': {
    label: '7B (maven-7b LLM: 32 layers × 4096, MLP 11008, vocabulary 40,194, untied head)',
    llm: () => maven7bConfig().llm,
    bits: [4],
  },
};

/** `maven quantize`'s defaults: blocks of 16 at 8 bits, 32 at 4 bits, the layers' projections. */
const BLOCK_SIZE: Record<8 | 4, number> = { 8: 16, 4: 32 };
const PROJECTIONS = /\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/;
const HEAD = /^(model\.embed_tokens|lm_head)\.weight$/;
const GGUF_TYPE: Record<Bits, 'f32' | 'q8_0' | 'q4_0'> = { 32: 'f32', 8: 'q8_0', 4: 'q4_0' };
const OURS_NAME: Record<Bits, string> = { 32: 'f32', 8: 'int8', 4: 'int4' };

// ---------------------------------------------------------------------------------------------
// Seeded weights: each tensor from its own seed, so any one can be made again alone (the 7B
// shape is generated, quantized and written one tensor at a time, never whole in float32).
// ---------------------------------------------------------------------------------------------

function seedOf(name: string): number {
  let h = 2166136261 ^ SEED;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0 || 1;
}

/** Matrices uniform with standard deviation 0.02 (HF's initializer range); norms 1 ± 0.1. */
function generate(name: string, shape: readonly number[]): HostTensor<'float32'> {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seedOf(name);
  const norm = shape.length === 1;
  const half = norm ? 0.1 : 0.02 * Math.sqrt(3);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const u = (s >>> 0) / 4294967296;
    out[i] = (norm ? 1 : 0) + (2 * u - 1) * half;
  }
  return new HostTensor('float32', [...shape], out);
}

/**
 * A map whose tensors make their values when first read, so the GGUF writer (which reads a
 * tensor's data only when its turn to be written comes) holds one tensor at a time.
 */
class GeneratedWeights extends Map<string, HostTensor> {
  constructor(private readonly shapes: ReadonlyMap<string, number[]>) {
    super();
  }
  override get(name: string): HostTensor | undefined {
    const shape = this.shapes.get(name);
    if (!shape) return undefined;
    // Made on every read (the writer reads once) and never kept, so tensors do not pile up.
    return Object.create(HostTensor.prototype, {
      dtype: { value: 'float32' },
      shape: { value: [...shape] },
      data: { get: () => generate(name, shape).data },
    }) as HostTensor;
  }
  override has(name: string): boolean {
    return this.shapes.has(name);
  }
}

function cacheDir(shape: Shape | 'maven-7b'): string {
  const dir = join(os.tmpdir(), 'maven-bench-decode', `${shape}-${SEED}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * The token tables (embedding, LM head) as `maven quantize` stores them by default
 * (`defaultTableQuant`: 8 bits in blocks of 16 beside 4-bit layers; beside 8-bit ones float32 for a
 * small table, 8 bits in blocks of 16 for a large one), or with `withHead` at the layers' bits, as
 * llama.cpp's q8_0 / q4_0 files hold them.
 */
async function prepareOurs(shape: Shape, bits: Bits, withHead = false): Promise<string> {
  const layers: BlockQuantSpec | null = bits === 32 ? null : { bits, blockSize: BLOCK_SIZE[bits] };
  const llm = SHAPES[shape].llm();
  const byDefault = bits === 32 ? 'float' : defaultTableQuant(bits, llm.vocabSize * llm.hiddenSize);
  const tables = withHead ? layers : byDefault === 'float' ? null : byDefault;
  // Named by how layers and tables are stored, so a cached file never stands for another storage.
  const path = join(
    cacheDir(shape),
    `maven-${OURS_NAME[bits]}-tables-${tables ? `q${tables.bits}` : 'f32'}.safetensors`,
  );
  if (existsSync(path)) return path;
  const llama = new Llama(llm);
  const weights = new Map<string, HostTensor>();
  for (const [name, s] of llama.paramShapes()) {
    const w = generate(name, s);
    const spec = PROJECTIONS.test(name) ? layers : HEAD.test(name) ? tables : null;
    if (spec) {
      const q = blockQuantize(w, spec, name);
      weights.set(name + QWEIGHT_SUFFIX, q.qweight);
      weights.set(name + SCALES_SUFFIX, q.scales);
    } else weights.set(name, w);
  }
  await saveSafetensors(path, weights);
  return path;
}

function prepareGguf(shape: Shape, bits: Bits): string {
  const path = join(cacheDir(shape), `llama-${GGUF_TYPE[bits]}.gguf`);
  if (existsSync(path)) return path;
  const llm = SHAPES[shape].llm();
  const shapes = new Llama(llm).paramShapes();
  // Ids are fed directly; the vocabulary only has to load (one control token, the rest words).
  const tokens = Array.from({ length: llm.vocabSize }, (_, i) => (i === 0 ? '<unk>' : `\u2581w${i}`));
  const file = llamaGguf(
    {
      name: `bench-${shape}`,
      llm,
      weights: new GeneratedWeights(shapes),
      vocabulary: {
        model: 'bert',
        tokens,
        scores: tokens.map(() => 0),
        types: tokens.map((_, i) => (i === 0 ? TokenType.UNKNOWN : TokenType.NORMAL)),
        bosId: 1,
        eosId: 2,
        unknownId: 0,
        paddingId: 0,
      },
    },
    GGUF_TYPE[bits],
  );
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  for (const chunk of ggufChunks(file)) writeSync(fd, chunk);
  closeSync(fd);
  // Renamed only when complete, so an interrupted run never leaves a file that looks ready.
  renameSync(tmp, path);
  return path;
}

// ---------------------------------------------------------------------------------------------
// maven-7b end to end at 4 bits: every weight at the preset's shape, generated and quantized one
// tensor at a time (the float32 model, 33 GB, never exists), saved as `maven quantize --bits 4
// --vision` would save it, then loaded, two images encoded and 32 tokens generated.
// ---------------------------------------------------------------------------------------------

// Blocks of 128, the group size GPTQ and AWQ checkpoints use at 4 bits: MatMulNBits holds 1.18× their
// bytes at accuracy level 4, against 1.45× at 32 (docs/quantization.md).
const MAVEN_7B_BITS = { bits: 4, blockSize: 128 } as const;

async function prepareMaven7b(): Promise<string> {
  const config: MavenConfig = maven7bConfig();
  const options = { ...MAVEN_7B_BITS, vision: true };
  const plan = new Map(quantizationPlan(config, options));
  // Named by what it holds, so a changed plan (more layers quantized) makes a new one.
  const dir = join(cacheDir('maven-7b'), `model-int4-b${MAVEN_7B_BITS.blockSize}-${plan.size}q`);
  if (existsSync(join(dir, 'config.json'))) return dir;
  const weights = new Map<string, HostTensor>();
  for (const [name, shape] of mavenWeightShapes(config)) {
    const w = generate(name, shape);
    const spec = plan.get(name);
    if (spec && shape[1] % spec.blockSize === 0) {
      const q = blockQuantize(w, spec, name);
      weights.set(name + QWEIGHT_SUFFIX, q.qweight);
      weights.set(name + SCALES_SUFFIX, q.scales);
    } else weights.set(name, w);
  }
  const tokenizer = new LlamaTokenizer();
  tokenizer.addSpecialTokens([config.imageStartToken, config.imageEndToken]);
  const model = new MavenModel(config, weights, tokenizer);
  // The metadata `maven quantize` writes.
  const metadata = quantizationMetadata(config, options);
  const tmp = `${dir}.tmp`;
  await saveMaven(tmp, model, {
    metadata: { [QUANTIZATION_METADATA_KEY]: metadata },
    maxShardBytes: 2 ** 31,
  });
  renameSync(tmp, dir);
  return dir;
}

const E2E_IMAGES = ['blocks.jpg', 'rgba.png'].map((f) =>
  fileURLToPath(new URL(`../test/fixtures/images/${f}`, import.meta.url)),
);
const E2E_NEW_TOKENS = 32;

async function runMaven7b(job: ChildJob): Promise<ChildResult> {
  const stages: [string, number][] = [];
  const stagePeaks: number[] = [];
  let t = performance.now();
  const stage = (name: string) => {
    const now = performance.now();
    stages.push([name, now - t]);
    stagePeaks.push(statusMiB('VmHWM'));
    t = now;
  };
  // As `maven generate` and `maven serve` load a model: the weights stay in the files for
  // onnxruntime to read (LoadOptions.weightsOnDisk); float ones are streamed once for NaN.
  const model = await loadMaven(job.file, job.threads ? { threads: job.threads } : {}, {
    weightsOnDisk: true,
  });
  stage('load (check the weights)');
  const images = (await preprocessImages(model, E2E_IMAGES))!;
  stage('decode + preprocess 2 images');
  const encodings = await model.encodeImages(images);
  stage(
    'encode 2 images (sessions made on first use: CLIP ViT-L/14-336, SEED tokenizer on EVA ViT-g, the LLM for h_EOS, selector)',
  );
  const selected = await model.selectPatches(encodings);
  const prepared = model.prepareEncoded(
    'USER: Image 1: <image>\nImage 2: <image>\nWhat changed from the first image to the second? ASSISTANT:',
    selected,
  );
  stage('select patches, project, embed the prompt');
  const pieces = model.stream(prepared, { maxNewTokens: E2E_NEW_TOKENS });
  let generated = 0;
  let decodeMs = 0;
  let first = true;
  for await (const piece of pieces) {
    if (piece.id < 0) continue;
    generated++;
    if (first) {
      // The first token comes out of the prefill (and the LLM program's compilation).
      stage(`prefill ${prepared.embeds.shape[1]} positions`);
      resetPeak();
      first = false;
    }
  }
  decodeMs = performance.now() - t;
  stage(`decode ${Math.max(0, generated - 1)} more tokens`);
  return {
    stages,
    stagePeaks,
    loadMs: stages[0][1],
    prefillTokS: Number.NaN,
    decodeTokS: generated > 1 ? ((generated - 1) / decodeMs) * 1000 : Number.NaN,
    peakRssMiB: Number.NaN,
    decodePeakRssMiB: statusMiB('VmHWM'),
    threadsUsed: job.threads ?? os.availableParallelism(),
    note: `${generated} tokens generated; prompt ${prepared.embeds.shape[1]} positions`,
  };
}

// ---------------------------------------------------------------------------------------------
// Child: one configuration in its own process.
// ---------------------------------------------------------------------------------------------

interface ChildJob {
  impl: Impl;
  /** The whole maven-7b model end to end (`file` is its directory) instead of the LLM alone. */
  endToEnd?: boolean;
  /** maven-ts with the embedding / head quantized too. */
  withHead?: boolean;
  shape: Shape;
  bits: Bits;
  file: string;
  /** null: maven-ts's default (the runtime's thread count). */
  threads: number | null;
  repeats: number;
}

interface ChildResult {
  /** End to end: milliseconds per stage, in order. */
  stages?: [string, number][];
  /** End to end: peak RSS (VmHWM) at the end of each stage, MiB. */
  stagePeaks?: number[];
  loadMs: number;
  prefillTokS: number;
  decodeTokS: number;
  peakRssMiB: number;
  decodePeakRssMiB: number;
  threadsUsed: number;
  note?: string;
}

function statusMiB(key: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Reset VmHWM to the current RSS (Linux ≥ 4.0), so the next reading is the peak from here. */
function resetPeak(): void {
  writeFileSync('/proc/self/clear_refs', '5');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function promptIds(vocab: number): number[] {
  let s = 7;
  return Array.from({ length: PROMPT_TOKENS }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 3 + (s % (vocab - 3));
  });
}

async function runOurs(job: ChildJob): Promise<ChildResult> {
  const llm = SHAPES[job.shape].llm();
  const model = new Llama(llm);
  const t0 = performance.now();
  // As `maven generate` runs its LLM: weights left in the file for onnxruntime to read, token ids
  // embedded on the host from the table's rows in the file (MavenModel.llmDecoder).
  const weights = await openSafetensors(job.file);
  const decoder = await KVCacheDecoder.create(model.decoderSpec(), weights, {
    runtime: job.threads ? { threads: job.threads } : {},
    embedOnHost: storedRows(weights, 'model.embed_tokens.weight', [llm.vocabSize, llm.hiddenSize]),
  });
  const loadMs = performance.now() - t0;
  const prompt = promptIds(llm.vocabSize);
  const V = llm.vocabSize;
  const ids = (a: number[]) => new HostTensor('int64', [1, a.length], BigInt64Array.from(a, BigInt));
  const argmaxLast = (logits: HostTensor) => {
    const T = logits.shape[1];
    const row = (logits.data as Float32Array).subarray((T - 1) * V, T * V);
    let best = 0;
    for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
    return best;
  };
  const run = async (promptLength: number, steps: number) => {
    const p = prompt.slice(0, promptLength);
    const t = performance.now();
    // As maven's generation runs it (src/maven/generation.ts): a DecoderStream.
    const stream = decoder.stream(promptLength + steps);
    let logits = await stream.prefill(ids(p), ids(p.map((_, i) => i)));
    const prefillMs = performance.now() - t;
    resetPeak();
    const d = performance.now();
    for (let i = 0; i < steps; i++) {
      const next = argmaxLast(logits);
      logits = await stream.decode(ids([next]), ids([promptLength + i]));
    }
    return { prefillMs, decodeMs: performance.now() - d, decodePeak: statusMiB('VmHWM') };
  };
  return {
    loadMs,
    ...(await measureRuns(run, job.repeats)),
    peakRssMiB: Number.NaN, // filled by the parent from the child's rusage
    threadsUsed: job.threads ?? os.availableParallelism(),
    note: decoder.sharesProgram ? 'one program' : 'two programs',
  };
}

type TimedRun = (
  promptLength: number,
  steps: number,
) => Promise<{ prefillMs: number; decodeMs: number; decodePeak: number }>;

/** A short warm-up, then `repeats` runs of the full prompt and decode: medians and the decode peak. */
async function measureRuns(
  run: TimedRun,
  repeats: number,
): Promise<{ prefillTokS: number; decodeTokS: number; decodePeakRssMiB: number }> {
  await run(16, 4);
  const prefill: number[] = [];
  const decode: number[] = [];
  let decodePeak = 0;
  for (let r = 0; r < repeats; r++) {
    const m = await run(PROMPT_TOKENS, DECODE_TOKENS);
    prefill.push((PROMPT_TOKENS / m.prefillMs) * 1000);
    decode.push((DECODE_TOKENS / m.decodeMs) * 1000);
    decodePeak = Math.max(decodePeak, m.decodePeak);
  }
  return { prefillTokS: median(prefill), decodeTokS: median(decode), decodePeakRssMiB: decodePeak };
}

/** The part of node-llama-cpp 3.21.1's API this benchmark calls (its types are absent when it is). */
interface LlamaCpp {
  getLlama(options: { gpu: false; build: 'never'; logLevel: string }): Promise<{
    loadModel(options: { modelPath: string }): Promise<{
      createContext(options: {
        contextSize: number;
        batchSize: number;
        threads: { ideal: number; min: number };
      }): Promise<{ contextSize: number; getSequence(): LlamaCppSequence }>;
    }>;
  }>;
  LlamaLogLevel: { error: string };
}
interface LlamaCppSequence {
  clearHistory(): Promise<void>;
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  evaluate(tokens: number[], options: { temperature: number }): AsyncIterable<number>;
}

/** node-llama-cpp, by a specifier the type checker does not resolve (it is not a dependency). */
const LLAMA_CPP_PACKAGE: string = 'node-llama-cpp';
const importLlamaCpp = (): Promise<LlamaCpp> => import(LLAMA_CPP_PACKAGE) as Promise<LlamaCpp>;

async function runLlamaCpp(job: ChildJob): Promise<ChildResult> {
  const { getLlama, LlamaLogLevel } = await importLlamaCpp();
  const threads = job.threads ?? os.availableParallelism();
  const t0 = performance.now();
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: job.file });
  const context = await model.createContext({
    contextSize: 1024,
    batchSize: PROMPT_TOKENS,
    threads: { ideal: threads, min: threads },
  });
  const sequence = context.getSequence();
  const loadMs = performance.now() - t0;
  const prompt = promptIds(SHAPES[job.shape].llm().vocabSize);
  const run = async (promptLength: number, steps: number) => {
    await sequence.clearHistory();
    const t = performance.now();
    await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, promptLength));
    const prefillMs = performance.now() - t;
    resetPeak();
    const d = performance.now();
    let n = 0;
    // Each yielded token is one evaluation of the token before it: `steps` one-token decodes.
    for await (const _ of sequence.evaluate([prompt[promptLength - 1]], { temperature: 0 })) {
      if (++n === steps) break;
    }
    return { prefillMs, decodeMs: performance.now() - d, decodePeak: statusMiB('VmHWM') };
  };
  return {
    loadMs,
    ...(await measureRuns(run, job.repeats)),
    peakRssMiB: Number.NaN,
    threadsUsed: threads,
    note: `KV cache ${context.contextSize} positions, llama.cpp defaults otherwise`,
  };
}

// ---------------------------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------------------------

function argValue(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function llamaCppAvailable(): Promise<string | null> {
  try {
    await importLlamaCpp();
    return null;
  } catch (e) {
    return `node-llama-cpp is not installed (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); the llama.cpp rows are skipped. Install it for a run with \`npm i --no-save -E node-llama-cpp@3.21.1\`.`;
  }
}

function runChild(job: ChildJob): (ChildResult & { peakRssMiB: number }) | { error: string } {
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, '--child', JSON.stringify(job)], {
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  const line = r.stdout
    ?.split('\n')
    .reverse()
    .find((l) => l.startsWith('RESULT '));
  if (r.status !== 0 || !line) {
    const why = (r.stderr || r.stdout || String(r.error ?? r.signal)).trim().split('\n').slice(-3).join(' ');
    return { error: `exit ${r.status ?? r.signal}: ${why}` };
  }
  return JSON.parse(line.slice('RESULT '.length));
}

const fmt = (x: number, digits = 1) =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '–';

async function main(): Promise<void> {
  const childArg = argValue('--child');
  if (childArg) {
    const job = JSON.parse(childArg) as ChildJob;
    const result = job.endToEnd
      ? await runMaven7b(job)
      : job.impl === 'maven-ts'
        ? await runOurs(job)
        : await runLlamaCpp(job);
    result.peakRssMiB = statusMiB('VmHWM');
    // The decode-phase reading can only be below the whole run's when measured the same way.
    console.log(`RESULT ${JSON.stringify(result)}`);
    process.exit(0);
  }
  const requested = (argValue('--shapes') ?? 'tiny,135m,7b,maven-7b').split(',');
  for (const s of requested)
    if (!(s in SHAPES) && s !== 'maven-7b') throw new Error(`unknown shape ${s} (tiny, 135m, 7b, maven-7b)`);
  const shapes = requested.filter((s): s is Shape => s in SHAPES);
  const cores = os.availableParallelism();
  const threadList = (argValue('--threads') ?? Array.from({ length: cores }, (_, i) => i + 1).join(','))
    .split(',')
    .map(Number);
  const repeatsArg = argValue('--repeats');
  // maven-ts rows whose load would pass this are skipped (a shared machine must not swap or OOM).
  // Default: 70 % of the machine's memory. On 24 GiB (16.8) the 7B int4 rows run: estimated at
  // 8.3 GiB, they peaked at 7.0 GiB (2026-12-07, weights left in the file).
  const maxRssGiB = Number(argValue('--max-rss-gib') ?? (0.7 * os.totalmem()) / 2 ** 30);
  const skipLlama = await llamaCppAvailable();
  const started = new Date();
  const lines: string[] = [];
  const say = (s = '') => {
    lines.push(s);
    console.log(s);
  };
  const ort = (await import('onnxruntime-node')).env.versions.node;
  say('## Decode against llama.cpp (`npm run bench:decode`)');
  say();
  say(
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${cores} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB; node ${process.version}; onnxruntime-node ${ort}; node-llama-cpp ${skipLlama ? 'absent' : '3.21.1 (prebuilt CPU binary)'}; ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
  );
  say(`Command: \`npm run bench:decode -- ${process.argv.slice(2).join(' ')}\`.`);
  say();
  say(
    `Same seeded random weights on both sides (matrices uniform with std 0.02, norms 1 ± 0.1). maven-ts: safetensors as \`maven quantize\` writes them (the layers' projections at 8 bits in blocks of 16 or 4 bits in blocks of 32; embedding and head at 8 bits in blocks of 16 beside 4-bit layers and beside 8-bit ones when the table holds over 2^21 weights, float32 beside 8-bit layers below that; with "head too" at the layers' bits as in llama.cpp's files, a row of its own where that is not the default), weights left in the file for onnxruntime to read (as \`maven generate\` loads a model; token ids embedded on the host from the table's rows in the file, as MaVEn does), \`KVCacheDecoder\` over \`Llama.decoderSpec()\` with its defaults except where a thread count is shown. llama.cpp: our GGUF export of the same weights (f32, q8_0, q4_0: every matrix, the head included). Prompt: ${PROMPT_TOKENS} token ids; decode: ${DECODE_TOKENS} greedy one-token steps after it. Each row is its own process; tokens/s are medians over the repeats after a short warm-up; "peak RSS" is the process's VmHWM, "while decoding" the VmHWM reset after the prefill.`,
  );
  if (skipLlama) {
    say();
    say(`**${skipLlama}**`);
  }
  for (const shape of shapes) {
    const spec = SHAPES[shape];
    const repeats = Number(repeatsArg ?? (shape === '7b' ? 1 : 3));
    say();
    say(`### ${spec.label}`);
    say();
    if (shape === '7b')
      say(
        'Float32 and 8-bit rows are not run at this shape: 27 GB of float32 weights do not fit this machine, and the issue compares 4 bits here (8-bit files, 8.4 GB and their q8_0 twin, would take a quarter hour to write).',
      );
    say(
      '| implementation | weights | threads | load s | prefill tok/s | decode tok/s | peak RSS MiB | peak RSS while decoding MiB | notes |',
    );
    say('|---|---|---:|---:|---:|---:|---:|---:|---|');
    type Row = { impl: Impl; bits: Bits; threads: number | null; withHead: boolean; r: ChildResult };
    const rows: Row[] = [];
    for (const bits of spec.bits) {
      const jobs: ChildJob[] = [];
      const ours = await prepareOurs(shape, bits);
      // null is the default, which is every core: an explicit run at that count would repeat it.
      for (const t of [null, ...threadList.filter((n) => n !== cores)])
        jobs.push({ impl: 'maven-ts', shape, bits, file: ours, threads: t, repeats });
      // Tables at the layers' bits, as llama.cpp's files hold them: a row of its own unless that is the default.
      const withHead = bits === 32 ? ours : await prepareOurs(shape, bits, true);
      if (withHead !== ours)
        jobs.push({ impl: 'maven-ts', shape, bits, file: withHead, threads: null, repeats, withHead: true });
      if (!skipLlama) {
        const gguf = prepareGguf(shape, bits);
        for (const t of threadList)
          jobs.push({ impl: 'llama.cpp', shape, bits, file: gguf, threads: t, repeats });
      }
      for (const job of jobs) {
        // The weights stay in the file; onnxruntime's packed copy, the KV cache and the prompt's
        // activations peaked at 1.68x the file for the 7B int4 row (2026-12-07, commit 2fbdf4d).
        const needGiB = (2 * statSync(job.file).size) / 2 ** 30;
        if (job.impl === 'maven-ts' && needGiB > maxRssGiB) {
          say(
            `| ${job.impl} | ${OURS_NAME[bits]}${job.withHead ? `, embedding / head at ${bits} bits too` : ''} | ${job.threads ?? 'default'} | | | | | | skipped: loading would need about ${fmt(needGiB)} GiB, over --max-rss-gib ${fmt(maxRssGiB)} |`,
          );
          continue;
        }
        const r = runChild(job);
        const weightsName =
          job.impl === 'maven-ts'
            ? `${OURS_NAME[bits]}${job.withHead ? `, embedding / head at ${bits} bits too` : ''}`
            : GGUF_TYPE[bits];
        const threadsShown =
          job.threads === null ? `default (${'error' in r ? '?' : r.threadsUsed})` : String(job.threads);
        if ('error' in r) {
          say(
            `| ${job.impl} | ${weightsName} | ${threadsShown} | | | | | | failed: ${r.error.replaceAll('|', '/')} |`,
          );
          continue;
        }
        rows.push({ impl: job.impl, bits, threads: job.threads, withHead: job.withHead === true, r });
        say(
          `| ${job.impl} | ${weightsName} | ${threadsShown} | ${fmt(r.loadMs / 1000, 2)} | ${fmt(r.prefillTokS)} | ${fmt(r.decodeTokS)} | ${fmt(r.peakRssMiB, 0)} | ${fmt(r.decodePeakRssMiB, 0)} | ${r.note ?? ''} |`,
        );
      }
    }
    if (skipLlama) continue;
    say();
    say(
      '| bits | maven-ts default decode tok/s | llama.cpp best decode tok/s (threads) | decode ratio | maven-ts prefill / llama.cpp prefill (same threads as that best) | peak RSS while decoding, maven-ts / llama.cpp |',
    );
    say('|---|---:|---:|---:|---:|---:|');
    const variants = spec.bits.flatMap((b): [Bits, boolean][] =>
      b !== 32
        ? [
            [b, false],
            [b, true],
          ]
        : [[b, false]],
    );
    for (const [bits, withHead] of variants) {
      const ours = rows.find(
        (x) => x.impl === 'maven-ts' && x.bits === bits && x.threads === null && x.withHead === withHead,
      );
      const theirs = rows
        .filter((x) => x.impl === 'llama.cpp' && x.bits === bits)
        .sort((a, b) => b.r.decodeTokS - a.r.decodeTokS)[0];
      if (!ours || !theirs) continue;
      const oursSameThreads = rows.find(
        (x) =>
          x.impl === 'maven-ts' &&
          x.bits === bits &&
          x.withHead === withHead &&
          (x.threads ?? cores) === theirs.threads,
      );
      say(
        `| ${OURS_NAME[bits]}${withHead ? ' (head too)' : ''} / ${GGUF_TYPE[bits]} | ${fmt(ours.r.decodeTokS)} | ${fmt(theirs.r.decodeTokS)} (${theirs.threads}) | ${fmt(ours.r.decodeTokS / theirs.r.decodeTokS, 2)}× | ${oursSameThreads ? `${fmt(oursSameThreads.r.prefillTokS / theirs.r.prefillTokS, 2)}×` : '–'} | ${fmt(ours.r.decodePeakRssMiB / theirs.r.decodePeakRssMiB, 2)}× |`,
      );
    }
  }
  if (requested.includes('maven-7b')) {
    say();
    say('### maven-7b end to end, 4 bits (`maven quantize --bits 4 --vision` layout), random weights');
    say();
    say(
      `Every weight at the preset's shape (src/maven/config.ts \`maven7bConfig\`: CLIP ViT-L/14-336, the SEED tokenizer on EVA ViT-g at 224 px with 8,192 codes, LLaMA-2-7B with 40,194 rows), the LLM's and both vision towers' linear layers at 4 bits in blocks of ${MAVEN_7B_BITS.blockSize}, the token tables at 8 bits in blocks of 16, the rest float32; saved as shards, then in a fresh process: loaded as \`maven generate\` loads it (weights left in the files for onnxruntime to read), two fixture images (test/fixtures/images/blocks.jpg, rgba.png) encoded in hybrid mode, ${E2E_NEW_TOKENS} new tokens greedily (fewer if the random model says EOS). Threads: the default.`,
    );
    const dir = await prepareMaven7b();
    const r = runChild({
      impl: 'maven-ts',
      endToEnd: true,
      shape: '7b',
      bits: 4,
      file: dir,
      threads: null,
      repeats: 1,
    });
    say();
    if ('error' in r) say(`Failed: ${r.error}`);
    else {
      say('| stage | seconds | peak RSS so far MiB |');
      say('|---|---:|---:|');
      for (const [i, [name, ms]] of r.stages!.entries())
        say(`| ${name} | ${fmt(ms / 1000, 2)} | ${fmt(r.stagePeaks![i], 0)} |`);
      say();
      say(
        `Peak RSS over the run: ${fmt(r.peakRssMiB, 0)} MiB (${fmt(r.peakRssMiB / 1024, 2)} GiB); while decoding: ${fmt(r.decodePeakRssMiB, 0)} MiB. Decode: ${fmt(r.decodeTokS, 2)} tokens/s. ${r.note}.`,
      );
    }
  }
  if (process.argv.includes('--write')) writeBenchSection('decode', lines);
}

await main();
