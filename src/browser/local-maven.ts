/**
 * A MaVEn model running in the page, nothing sent anywhere: loads a model directory over HTTP
 * (fetch-model.ts) on onnxruntime-web (onnx-runtime.ts), compiles every program with one warm-up
 * question so that nothing is fetched after loading (the runtime's .wasm included), then answers
 * questions about decoded images — streamed token by token, with each image's discrete ids, kept
 * patches, the visual-token count and timings. DOM-free, so tests and the browser benchmark drive
 * it directly (the page exposes it as `window.maven`).
 *
 * The steps are the ones `MavenModel.generate` and `score` take in Node — every image of a
 * question encoded in one batch (step 1), patches selected for the mode (step 2), the prompt
 * assembled with each image numbered on its own line — so a question gets the answer Node gives.
 */
import { HostTensor } from '../engine/index.ts';
import type { CandidateScore, GenerationPiece } from '../maven/generation.ts';
import type { MavenModel } from '../maven/model.ts';
import { drawPatchOverlay } from '../maven/overlay.ts';
import type { SelectedImage } from '../maven/patch-selection.ts';
import type { EncodingMode } from '../maven/sequence.ts';
import { type DecodedImage, fitToSquare } from '../models/image.ts';
import { type FetchedModel, type FetchModelOptions, fetchMaven } from './fetch-model.ts';
import { type BrowserRuntime, loadBrowserRuntime, type ProviderPreference } from './onnx-runtime.ts';

/** Smallest side of an overlay: tiny's 96-px ViT input is enlarged so the outline stays legible. */
const OVERLAY_MIN_SIZE = 192;

export interface LoadTimings {
  /** Loading onnxruntime-web's JavaScript (its .wasm comes with the first session). */
  runtimeMs: number;
  /** Fetching (or reading from the Cache API) the model's files. */
  fetchMs: number;
  /** Parsing the weights, checking them, building the model. */
  buildMs: number;
  /** The warm-up question: onnxruntime's wasm, every session compiled, one answer. */
  warmupMs: number;
  totalMs: number;
  /** performance.now() when ready: in a page, milliseconds since navigation started. */
  readyAtMs: number;
}

export interface QuestionOptions {
  /** Default: the model's (hybrid for maven-tiny). */
  mode?: EncodingMode;
  /** ρ for hybrid images; default the model's. */
  keepRatio?: number;
  maxNewTokens?: number;
  /** Candidate answers to score by log-likelihood (multiple choice), after the answer. */
  candidates?: readonly string[];
  /** Called with each piece of the answer as it is generated. */
  onPiece?: (piece: GenerationPiece) => void;
  /** Called once the images are encoded, before the answer starts. */
  onImages?: (images: readonly ImageReport[]) => void;
}

export interface ImageReport {
  discreteIds: readonly number[];
  keptPatches: readonly number[];
  totalPatches: number;
  grid: number;
  /** The square the ViT saw with the dropped patches darkened, as RGBA for a canvas. */
  overlay: { width: number; height: number; rgba: Uint8ClampedArray<ArrayBuffer> };
}

export interface Answer {
  prompt: string;
  text: string;
  images: ImageReport[];
  /** Prompt positions taken by images: `<img>`, discrete ids, kept patches, `</img>` each. */
  visualTokens: number;
  promptTokens: number;
  generatedTokens: number;
  unknownWords: string[];
  scores: { candidate: string; score: CandidateScore }[];
  timings: {
    /** Preprocessing, both encoding steps, assembling the prompt. */
    encodeMs: number;
    /** Prefill and the first token. */
    prefillMs: number;
    /** Tokens after the first, per second (null with fewer than two tokens). */
    tokensPerSecond: number | null;
    scoreMs: number;
  };
}

/** The prompt the page asks: each image numbered on its own line, then the question (maven-tiny's layout). */
export function numberedPrompt(imageCount: number, question: string): string {
  const lines = Array.from({ length: imageCount }, (_, i) => `Image ${i + 1}: <image>`);
  return [...lines, question].join('\n');
}

/** An RGB image as the RGBA a canvas takes (opaque). */
export function rgbaPixels(image: DecodedImage): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(image.width * image.height * 4);
  for (let i = 0, j = 0; j < image.rgb.length; i += 4, j += 3) {
    out[i] = image.rgb[j];
    out[i + 1] = image.rgb[j + 1];
    out[i + 2] = image.rgb[j + 2];
    out[i + 3] = 255;
  }
  return out;
}

export class LocalMaven {
  private constructor(
    readonly model: MavenModel,
    readonly runtime: BrowserRuntime,
    readonly source: string,
    readonly fetched: FetchedModel['files'],
    readonly loadTimings: LoadTimings,
  ) {}

  /**
   * Loads the model directory at `url` and warms it up (so every later question runs offline).
   * `preference` picks the provider; 'auto' takes WebGPU when there is an adapter.
   */
  static async load(
    url: string,
    preference: ProviderPreference = 'auto',
    onProgress?: FetchModelOptions['onProgress'],
  ): Promise<LocalMaven> {
    const t0 = performance.now();
    let runtime = await loadBrowserRuntime(preference);
    const runtimeMs = performance.now() - t0;
    let fetched = await fetchMaven(url, { runtime: runtime.options, onProgress });
    const t1 = performance.now();
    // What the first fetch read and how long it took, even when a fallback fetches again.
    const { files, fetchMs, buildMs } = fetched;
    try {
      await warmUp(fetched.model);
    } catch (e) {
      // WebGPU kernels cover most ops, not all shapes and types on every adapter: when the
      // automatic choice fails, wasm runs the same graphs (the files now come from the cache).
      if (preference !== 'auto' || runtime.options.ep !== 'webgpu') throw e;
      const why = e instanceof Error ? e.message : String(e);
      runtime = await loadBrowserRuntime('wasm');
      runtime.description += ` (WebGPU failed: ${why.slice(0, 200)})`;
      fetched = await fetchMaven(url, { runtime: runtime.options, onProgress });
      await warmUp(fetched.model);
    }
    const local = new LocalMaven(fetched.model, runtime, url, files, {
      runtimeMs,
      fetchMs,
      buildMs,
      warmupMs: 0,
      totalMs: 0,
      readyAtMs: 0,
    });
    const end = performance.now();
    local.loadTimings.warmupMs = end - t1;
    local.loadTimings.totalMs = end - t0;
    local.loadTimings.readyAtMs = end;
    return local;
  }

  get name(): string {
    return this.model.config.name;
  }

  get maxImages(): number {
    return this.model.config.maxImages;
  }

  /** Answers `question` about `images` (numbered in order), streaming through `options.onPiece`. */
  ask(images: readonly DecodedImage[], question: string, options: QuestionOptions = {}): Promise<Answer> {
    return answerQuestion(this.model, images, question, options);
  }

  /** `timeDecode` on this model. */
  timeDecode(images: readonly DecodedImage[], question: string, steps: number): Promise<DecodeTiming> {
    return timeDecode(this.model, images, question, steps);
  }
}

/**
 * A mid-grey square through every program (both encoding steps, generation, scoring), so that
 * onnxruntime fetches its .wasm and compiles each session now — not on the user's first
 * question, and not after the network is gone.
 */
export async function warmUp(model: MavenModel): Promise<void> {
  const grey: DecodedImage = { width: 8, height: 8, rgb: new Uint8Array(8 * 8 * 3).fill(128) };
  await answerQuestion(model, [grey], 'what is it?', { maxNewTokens: 2, candidates: ['yes'] });
}

/**
 * Answers `question` about `images` (numbered in order), streaming through `options.onPiece`.
 * Plain core calls on any MavenModel, so the Node side of the browser benchmark runs it too.
 */
export async function answerQuestion(
  model: MavenModel,
  images: readonly DecodedImage[],
  question: string,
  options: QuestionOptions = {},
): Promise<Answer> {
  if (images.length > model.config.maxImages) {
    throw new Error(
      `${images.length} images, but ${model.config.name} takes at most ${model.config.maxImages}`,
    );
  }
  const prompt = numberedPrompt(images.length, question);
  const mode = options.mode ?? model.config.defaultMode;
  const t0 = performance.now();
  let selected: SelectedImage[] = [];
  if (images.length) {
    const encodings = await model.encodeImages(model.preprocessRgb(images), { mode });
    selected = await model.selectPatches(encodings, { mode, keepRatio: options.keepRatio });
  }
  const prepared = model.prepareEncoded(prompt, selected);
  const t1 = performance.now();
  const reports = selected.map((s, i) => imageReport(model, images[i], s));
  options.onImages?.(reports);

  let text = '';
  let tokens = 0;
  let firstAt = t1;
  for await (const piece of model.stream(prepared, { maxNewTokens: options.maxNewTokens ?? 32 })) {
    if (tokens === 0) firstAt = performance.now();
    tokens++;
    text += piece.text;
    options.onPiece?.(piece);
  }
  const t2 = performance.now();
  const candidates = (options.candidates ?? []).filter((c) => c.trim() !== '');
  const scored = candidates.length ? await model.scorePrepared(prepared, candidates) : [];
  const scores: Answer['scores'] = candidates.map((candidate, i) => ({ candidate, score: scored[i] }));
  const t3 = performance.now();
  const unknown = model.tokenizer.unknownWords?.(prompt.replaceAll('<image>', ' ')) ?? [];
  return {
    prompt,
    text: text.trim(),
    images: reports,
    visualTokens: prepared.sequence.images.reduce((n, s) => n + s.end - s.start, 0),
    promptTokens: prepared.sequence.slots.length,
    generatedTokens: tokens,
    unknownWords: [...new Set(unknown)],
    scores,
    timings: {
      encodeMs: t1 - t0,
      prefillMs: tokens ? firstAt - t1 : t2 - t1,
      tokensPerSecond: tokens > 1 ? ((tokens - 1) / (t2 - firstAt)) * 1000 : null,
      scoreMs: t3 - t2,
    },
  };
}

function imageReport(model: MavenModel, image: DecodedImage, s: SelectedImage): ImageReport {
  const view = fitToSquare(image, model.preprocessConfig());
  const mask = new Uint8Array(s.totalPatches);
  for (const p of s.keptPatches) mask[p] = 1;
  const size = Math.max(view.width, OVERLAY_MIN_SIZE);
  const overlay = drawPatchOverlay(view, { rows: s.grid, cols: s.grid }, mask, { size });
  return {
    discreteIds: s.discreteIds,
    keptPatches: s.keptPatches,
    totalPatches: s.totalPatches,
    grid: s.grid,
    overlay: { width: overlay.width, height: overlay.height, rgba: rgbaPixels(overlay) },
  };
}

export interface DecodeTiming {
  promptTokens: number;
  encodeMs: number;
  prefillMs: number;
  tokensPerSecond: number;
}

/**
 * The benchmark's measure: encode `images` for `question` (preprocessing included), prefill,
 * then `steps` greedy decode steps that ignore end-of-sequence (a trained model's one-word
 * answers would leave nothing to time).
 */
export async function timeDecode(
  model: MavenModel,
  images: readonly DecodedImage[],
  question: string,
  steps: number,
): Promise<DecodeTiming> {
  const mode = model.config.defaultMode;
  const t0 = performance.now();
  const encodings = await model.encodeImages(model.preprocessRgb(images), { mode });
  const prepared = model.prepareEncoded(
    numberedPrompt(images.length, question),
    await model.selectPatches(encodings, { mode }),
  );
  const decoder = await model.llmDecoder();
  const T = prepared.embeds.shape[1];
  const ids = (xs: number[]) => new HostTensor('int64', [1, xs.length], BigInt64Array.from(xs, BigInt));
  const t1 = performance.now();
  let out = await decoder.prefill(prepared.embeds, ids(Array.from({ length: T }, (_, i) => i)));
  const t2 = performance.now();
  const vocab = model.config.textVocabSize;
  for (let s = 0; s < steps; s++) {
    const logits = out.logits.data as Float32Array;
    const row = logits.subarray(logits.length - out.logits.shape[2]);
    let best = 0;
    for (let i = 1; i < vocab; i++) if (row[i] > row[best]) best = i;
    out = await decoder.decode(ids([best]), ids([T + s]), out.cache);
  }
  const t3 = performance.now();
  return {
    promptTokens: T,
    encodeMs: t1 - t0,
    prefillMs: t2 - t1,
    tokensPerSecond: (steps / (t3 - t2)) * 1000,
  };
}
