/**
 * MaVEn: the whole model. Holds the weights of every component under one name space,
 *
 *   vision_tower.vision_model.*           CLIP-style ViT (continuous patches)
 *   visual_tokenizer.*                    SEED-style tokenizer (causal Q-Former, task layer, codebook)
 *   visual_tokenizer.vision_tower.*       its own ViT, unless the config shares the first one
 *   model.*, lm_head.weight               the LLaMA decoder with the unified vocabulary
 *   model.mm_projector.*                  the projector (LLaVA's name)
 *   patch_selector.*                      the patch selector
 *
 * and turns (prompt with <image> placeholders, images) into answers. Images take two steps:
 * encoding (image-encoding.ts: the vision programs, h_EOS through the LLM, the selector's scores;
 * the same whatever the request), then selection and projection (patch-selection.ts: mode, ρ or
 * budget, strategy). The prompt is then assembled and embedded on the host and prefilled into the
 * KV-cache decoder.
 *
 * The graph-building functions at the top are shared with training (src/train).
 */
import {
  compile,
  FileTensor,
  Graph,
  HostTensor,
  isBlockQuantized,
  KVCacheDecoder,
  ops,
  type Program,
  type RuntimeOptions,
  type StoredTensor,
  storedByteLength,
  storedRows,
  storedWeightBytes,
  storedWeightProblem,
  type Tensor,
} from '../engine/index.ts';
import { ClipVisionModel } from '../models/clip-vision.ts';
import {
  type DecodedImage,
  fitToSquare,
  type ImagePreprocessConfig,
  normalizeImage,
} from '../models/image.ts';
import { Llama } from '../models/llama.ts';
import { SeedTokenizer } from '../models/seed-tokenizer.ts';
import type { TextTokenizer } from '../models/tokenizer.ts';
import type { MavenConfig } from './config.ts';
import {
  type CandidateScore,
  type GenerationPiece,
  generateTokens,
  type SamplingOptions,
  scoreCandidates,
} from './generation.ts';
import { encodeImages, type ImageEncoding, type ImageEncodingOptions } from './image-encoding.ts';
import { type SelectedImage, type SelectionOptions, selectPatches } from './patch-selection.ts';
import { PatchSelector } from './patch-selector.ts';
import { Projector } from './projector.ts';
import {
  type AssembledSequence,
  assembleSequence,
  type EncodingMode,
  embedSequence,
  type ImageTokens,
  splitPrompt,
} from './sequence.ts';
import { type UnifiedVocabulary, visualTokenId } from './vocabulary.ts';

export const VISION_SCOPE = 'vision_tower.';
/**
 * Programs whose weights in host memory total less than this get them as initializers:
 * onnxruntime can then pre-transpose and pack them once (tiny preset: decode ~2.5× faster than
 * with bound weights). Larger float weight sets are bound as inputs, so they are never copied. An
 * LLM that stores block-quantized weights is embedded whatever its size (`llmDecoder`), and
 * weights left in their files (FileTensor, `loadMaven(dir, { weightsOnDisk })`) always are:
 * onnxruntime reads them from the file, so there is no host copy to share.
 */
const EMBED_WEIGHTS_BELOW = 256 * 2 ** 20;
export const TOKENIZER_SCOPE = 'visual_tokenizer.';
export const TOKENIZER_VISION_SCOPE = 'visual_tokenizer.vision_tower.';

export interface MavenComponents {
  vision: ClipVisionModel;
  tokenizerVision: ClipVisionModel | null;
  tokenizer: SeedTokenizer;
  llm: Llama;
  selector: PatchSelector;
  projector: Projector;
}

export function buildComponents(config: MavenConfig): MavenComponents {
  if (config.llm.vocabSize !== config.textVocabSize + config.seed.codebookSize) {
    throw new Error(
      `config ${config.name}: LLM vocabulary ${config.llm.vocabSize} must be text ${config.textVocabSize} + visual ${config.seed.codebookSize}`,
    );
  }
  return {
    vision: new ClipVisionModel(config.vision),
    tokenizerVision: config.tokenizerVision === 'shared' ? null : new ClipVisionModel(config.tokenizerVision),
    tokenizer: new SeedTokenizer(config.seed),
    llm: new Llama(config.llm),
    selector: new PatchSelector({
      visionWidth: config.vision.hiddenSize,
      llmWidth: config.llm.hiddenSize,
      hiddenSize: config.selectorHiddenSize,
    }),
    projector: new Projector({ visionWidth: config.vision.hiddenSize, llmWidth: config.llm.hiddenSize }),
  };
}

function prefixed<T>(scope: string, m: Map<string, T>): [string, T][] {
  return [...m].map(([k, v]) => [scope + k, v]);
}

/** Every parameter of the model, by full name. */
export function mavenParamShapes(c: MavenComponents): Map<string, number[]> {
  return new Map([
    ...prefixed(VISION_SCOPE, c.vision.paramShapes()),
    ...(c.tokenizerVision ? prefixed(TOKENIZER_VISION_SCOPE, c.tokenizerVision.paramShapes()) : []),
    ...prefixed(TOKENIZER_SCOPE, c.tokenizer.paramShapes()),
    ...c.llm.paramShapes(),
    ...c.projector.paramShapes(),
    ...c.selector.paramShapes(),
  ]);
}

/** Fresh random weights for every component (each from its own seed stream). */
export function initMavenParams(c: MavenComponents, seed: number): Map<string, HostTensor> {
  return new Map([
    ...prefixed(VISION_SCOPE, c.vision.init(seed + 1)),
    ...(c.tokenizerVision ? prefixed(TOKENIZER_VISION_SCOPE, c.tokenizerVision.init(seed + 2)) : []),
    ...prefixed(TOKENIZER_SCOPE, c.tokenizer.init(seed + 3)),
    ...c.llm.init(seed + 4),
    ...c.projector.init(seed + 5),
    ...c.selector.init(seed + 6),
  ]);
}

// ---- graph builders, shared by inference and training ------------------------------------

/** Continuous patch features [B, N, Dv] of the vision tower. */
export function tracePatchFeatures(
  g: Graph,
  config: MavenConfig,
  c: MavenComponents,
  pixels: Tensor,
): Tensor {
  return g.scoped(VISION_SCOPE, () =>
    c.vision.patchFeatures(g, pixels, { layer: config.visionFeatureLayer }),
  );
}

/** The discrete tokenizer on `pixels` (its own ViT, or the shared one). */
export function traceDiscrete(g: Graph, config: MavenConfig, c: MavenComponents, pixels: Tensor) {
  const features = c.tokenizerVision
    ? g.scoped(TOKENIZER_VISION_SCOPE, () =>
        c.tokenizerVision!.patchFeatures(g, pixels, { layer: config.tokenizerVisionFeatureLayer }),
      )
    : g.scoped(VISION_SCOPE, () =>
        c.vision.patchFeatures(g, pixels, { layer: config.tokenizerVisionFeatureLayer }),
      );
  return g.scoped(TOKENIZER_SCOPE, () => c.tokenizer.encode(g, features));
}

/** h_EOS [B, D]: last-layer hidden state at the final position of `ids` [B, T] (visual ids then EOS). */
export function traceHEos(g: Graph, c: MavenComponents, ids: Tensor, positions: Tensor): Tensor {
  const { hidden } = c.llm.forward(g, c.llm.embedTokens(g, ids), positions);
  return ops.squeeze(ops.slice(hidden, 1, -1), 1); // [B, 1, D] → [B, D]
}

// ---- inference -------------------------------------------------------------------------

/** Preprocessed images: for the vision tower, and for the tokenizer's ViT when its resolution differs. */
export interface ImageBatch {
  pixels: HostTensor;
  tokenizerPixels?: HostTensor;
}

export type ImagesInput = HostTensor | ImageBatch | null;

function asBatch(images: ImagesInput): ImageBatch | null {
  if (!images) return null;
  return images instanceof HostTensor ? { pixels: images } : images;
}

export interface PreparedPrompt {
  sequence: AssembledSequence;
  embeds: HostTensor;
  images: SelectedImage[];
}

export interface ImageSummary {
  discreteTokens: number;
  keptPatches: number;
  totalPatches: number;
  keepRatio: number;
}

export function summarize(images: readonly ImageTokens[]): ImageSummary[] {
  return images.map((e) => ({
    discreteTokens: e.discreteIds.length,
    keptPatches: e.keptPatches.length,
    totalPatches: e.totalPatches,
    keepRatio: e.totalPatches ? e.keptPatches.length / e.totalPatches : 0,
  }));
}

export class MavenModel {
  readonly components: MavenComponents;
  readonly vocabulary: UnifiedVocabulary;
  private readonly programs = new Map<string, Promise<Program>>();
  private decoderPromise: Promise<KVCacheDecoder> | null = null;

  constructor(
    readonly config: MavenConfig,
    /** Every stored tensor by name: in host memory, or left in its file (FileTensor). */
    readonly weights: ReadonlyMap<string, StoredTensor>,
    readonly tokenizer: TextTokenizer,
    readonly runtime: RuntimeOptions = {},
  ) {
    this.components = buildComponents(config);
    this.vocabulary = { textVocabSize: config.textVocabSize, visualVocabSize: config.seed.codebookSize };
    const problems: string[] = [];
    for (const [name, shape] of mavenParamShapes(this.components)) {
      const problem = storedWeightProblem(weights, name, shape, 'got');
      if (problem) problems.push(problem);
    }
    if (problems.length) {
      const shown = problems.slice(0, 20).join('\n  ');
      throw new Error(
        `${config.name}: weights do not match the model (${problems.length} problem(s)):\n  ${shown}`,
      );
    }
    if (tokenizer.vocabSize !== config.textVocabSize) {
      throw new Error(
        `${config.name}: the tokenizer has ${tokenizer.vocabSize} ids, the config says ${config.textVocabSize}`,
      );
    }
    for (const t of [config.imageStartToken, config.imageEndToken]) {
      if (tokenizer.tokenToId(t) === undefined)
        throw new Error(`${config.name}: the tokenizer has no special token ${t}`);
    }
  }

  get imageStartId(): number {
    return this.tokenizer.tokenToId(this.config.imageStartToken)!;
  }

  get imageEndId(): number {
    return this.tokenizer.tokenToId(this.config.imageEndToken)!;
  }

  /**
   * The weights in host memory, for callers that read or rewrite them (training, quantizing,
   * export, saving). Refuses a model whose weights were left in their files, naming one.
   */
  hostWeights(): ReadonlyMap<string, HostTensor> {
    for (const [name, t] of this.weights)
      if (t instanceof FileTensor)
        throw new Error(
          `${this.config.name}: "${name}" was left in ${t.file} (loaded with weightsOnDisk); load the model without it to read or change its weights`,
        );
    return this.weights as ReadonlyMap<string, HostTensor>;
  }

  /** Compile (once) a program over the model's weights, embedded or bound, never copied on the host. */
  private program(key: string, build: (g: Graph) => Record<string, Tensor>): Promise<Program> {
    let p = this.programs.get(key);
    if (!p) {
      p = (async () => {
        const g = new Graph('float32', { weights: this.weights });
        const outputs = build(g);
        const used = [...g.params.keys()].map((n): [string, StoredTensor] => [n, this.weights.get(n)!]);
        const inHost = used.filter((u): u is [string, HostTensor] => u[1] instanceof HostTensor);
        const bytes = inHost.reduce((n, [, t]) => n + storedByteLength(t), 0);
        // Small weight sets are baked in (onnxruntime then pre-packs them); large ones are bound.
        // Weights left in their files are baked in by reference whatever their size.
        const bind = bytes < EMBED_WEIGHTS_BELOW ? [] : inHost;
        const bound = new Set(bind.map(([name]) => name));
        const embed = new Map(used.filter(([name]) => !bound.has(name)));
        const program = await compile(g, outputs, { ...this.runtime, label: key, embed });
        for (const [name, t] of bind) program.bind(name, t);
        return program;
      })();
      this.programs.set(key, p);
    }
    return p;
  }

  private llmIsQuantized(): boolean {
    return [...this.components.llm.paramShapes().keys()].some((name) => isBlockQuantized(this.weights, name));
  }

  private llmBytes(): number {
    let n = 0;
    for (const name of this.components.llm.paramShapes().keys()) n += storedWeightBytes(this.weights, name);
    return n;
  }

  /** The LLM as a KV-cache decoder that prefills from input embeddings. */
  llmDecoder(): Promise<KVCacheDecoder> {
    this.decoderPromise ??= KVCacheDecoder.create(this.components.llm.decoderSpec(), this.weights, {
      // Prompts are embedded on the host (embedSequence), so the table lives there once.
      embedOnHost: this.embeddingRows(),
      // MatMulNBits runs fast only on weights it pre-packed, which onnxruntime does for
      // initializers alone: maven-7b at 4 bits with bound weights decoded 0.06 tokens/s end to end
      // (its LLM alone, embedded, 5.0; bench:decode, 2026-12-07). Embedding costs a second copy.
      embedWeights: this.llmBytes() < EMBED_WEIGHTS_BELOW || this.llmIsQuantized(),
      runtime: this.runtime,
    });
    return this.decoderPromise;
  }

  /** How images are resized and normalised for the vision tower (CLIP: shortest side, centre crop). */
  preprocessConfig(size = this.config.vision.imageSize): ImagePreprocessConfig {
    return {
      size,
      mean: this.config.imageMean,
      std: this.config.imageStd,
      resample: 'bicubic',
      mode: 'clip',
    };
  }

  /** The tokenizer's own ViT resolution, when it differs from the vision tower's (SEED: 224 vs 336). */
  get tokenizerImageSize(): number | null {
    const tv = this.config.tokenizerVision;
    return tv !== 'shared' && tv.imageSize !== this.config.vision.imageSize ? tv.imageSize : null;
  }

  /** Preprocess already-decoded RGB images (data pipelines, evaluation) for both encoders. */
  preprocessRgb(images: readonly DecodedImage[]): ImageBatch {
    const at = (size: number) => {
      const config = this.preprocessConfig(size);
      const out = new Float32Array(images.length * 3 * size * size);
      images.forEach((img, i) => {
        out.set(
          normalizeImage(fitToSquare(img, config), config.mean, config.std).data as Float32Array,
          i * 3 * size * size,
        );
      });
      return new HostTensor('float32', [images.length, 3, size, size], out);
    };
    const tokenizerSize = this.tokenizerImageSize;
    return {
      pixels: at(this.config.vision.imageSize),
      ...(tokenizerSize ? { tokenizerPixels: at(tokenizerSize) } : {}),
    };
  }

  /** Patch features and discrete ids for a batch of preprocessed images. */
  async encodePixels(
    batch: ImageBatch,
    mode: EncodingMode,
  ): Promise<{ features: HostTensor | null; ids: HostTensor | null }> {
    const size = this.config.vision.imageSize;
    const tokenizerSize = this.tokenizerImageSize;
    if (tokenizerSize && mode !== 'continuous-only' && !batch.tokenizerPixels) {
      throw new Error(
        `${this.config.name}: the discrete tokenizer needs the images at ${tokenizerSize} px too (use preprocessRgb())`,
      );
    }
    const needFeatures = mode !== 'discrete-only';
    const needIds = mode !== 'continuous-only';
    const key = `vision:${needFeatures}:${needIds}`;
    const program = await this.program(key, (g) => {
      const px = g.input('pixels', 'float32', ['N', 3, size, size]);
      const out: Record<string, Tensor> = {};
      if (needFeatures) out.features = tracePatchFeatures(g, this.config, this.components, px);
      if (needIds) {
        const tpx = tokenizerSize
          ? g.input('tokenizer_pixels', 'float32', ['N', 3, tokenizerSize, tokenizerSize])
          : px;
        out.ids = traceDiscrete(g, this.config, this.components, tpx).ids;
      }
      return out;
    });
    const feeds: Record<string, HostTensor> = {};
    if (program.reads('pixels')) feeds.pixels = batch.pixels;
    if (program.reads('tokenizer_pixels')) feeds.tokenizer_pixels = batch.tokenizerPixels!;
    const r = await program.run(feeds);
    return { features: r.features ?? null, ids: r.ids ?? null };
  }

  /**
   * h_EOS for each image's discrete ids, all images in one batch: [N, D]. A prompt through the
   * decoder the answers use (what traceHEos computes in training), so the process holds one copy
   * of the LLM's weights, not one for this and one for generation.
   */
  async hEos(codes: number[][]): Promise<HostTensor> {
    const n = codes.length;
    const t = codes[0].length + 1;
    const ids = new BigInt64Array(n * t);
    const positions = new BigInt64Array(n * t);
    codes.forEach((row, i) => {
      if (row.length !== t - 1) throw new Error(`hEos: image ${i} has ${row.length} codes, image 0 ${t - 1}`);
      [...row.map((code) => visualTokenId(this.vocabulary, code)), this.tokenizer.eosId].forEach((id, j) => {
        ids[i * t + j] = BigInt(id);
        positions[i * t + j] = BigInt(j);
      });
    });
    const decoder = await this.llmDecoder();
    const { hidden } = await decoder.prefill(
      new HostTensor('int64', [n, t], ids),
      new HostTensor('int64', [n, t], positions),
      { capacity: t },
    );
    return new HostTensor('float32', [n, this.config.llm.hiddenSize], hidden.data as Float32Array); // [N, 1, D] → [N, D]
  }

  /** Host-side rows of the unified token table (text and visual ids). */
  private embeddingRows() {
    return storedRows(this.weights, 'model.embed_tokens.weight', [
      this.config.llm.vocabSize,
      this.config.llm.hiddenSize,
    ]);
  }

  async selectorScores(features: HostTensor, hEos: HostTensor): Promise<HostTensor> {
    const [, n, dv] = features.shape;
    const program = await this.program('selector', (g) => ({
      scores: this.components.selector.scores(
        g,
        g.input('features', 'float32', ['N', n, dv]),
        g.input('h_eos', 'float32', ['N', this.config.llm.hiddenSize]),
      ),
    }));
    return (await program.run({ features, h_eos: hEos })).scores;
  }

  async project(features: HostTensor): Promise<HostTensor> {
    const dv = this.config.vision.hiddenSize;
    const program = await this.program('projector', (g) => ({
      out: this.components.projector.forward(g, g.input('features', 'float32', ['K', dv])),
    }));
    return (await program.run({ features })).out;
  }

  /** Step 1 (image-encoding.ts): ids, selector scores and patch features of preprocessed images. */
  encodeImages(
    images: HostTensor | ImageBatch,
    options: ImageEncodingOptions = {},
  ): Promise<ImageEncoding[]> {
    return encodeImages(this, images, options);
  }

  /** Step 2 (patch-selection.ts): each image's tokens for a mode, ρ or budget, and strategy, projected. */
  selectPatches(
    encodings: readonly ImageEncoding[],
    options: SelectionOptions = {},
  ): Promise<SelectedImage[]> {
    return selectPatches(this, encodings, options);
  }

  /** Assemble and embed a prompt with its images (already preprocessed, [N, 3, S, S]). */
  async prepare(
    prompt: string,
    images: ImagesInput,
    options: SelectionOptions = {},
  ): Promise<PreparedPrompt> {
    const batch = asBatch(images);
    const count = batch ? batch.pixels.shape[0] : 0;
    const pieces = splitPrompt(prompt, count, this.config.maxImages);
    if (!batch || !count) return this.prepareEncoded(pieces, []);
    const resolved = { ...options, mode: options.mode ?? this.config.defaultMode };
    const encodings = await this.encodeImages(batch, resolved);
    return this.prepareEncoded(pieces, await this.selectPatches(encodings, resolved));
  }

  /**
   * `prepare` for images already through both steps (one per `<image>` of the prompt, in order):
   * callers that meet the same image again (a server's cache, the six box orders of an NLVR
   * picture) encode it once. `prompt` is the text with its `<image>` placeholders, or the text
   * pieces around the images (one more than images).
   */
  prepareEncoded(prompt: string | readonly string[], encoded: readonly SelectedImage[]): PreparedPrompt {
    const pieces =
      typeof prompt === 'string' ? splitPrompt(prompt, encoded.length, this.config.maxImages) : prompt;
    if (pieces.length !== encoded.length + 1)
      throw new Error(
        `prepareEncoded: ${pieces.length} text pieces for ${encoded.length} images (need images + 1)`,
      );
    const textPieces = pieces.map((p, i) => this.tokenizer.encode(p, { bos: i === 0 }));
    const sequence = assembleSequence(textPieces, encoded, {
      vocabulary: this.vocabulary,
      imageStartId: this.imageStartId,
      imageEndId: this.imageEndId,
      order: this.config.sequenceOrder,
    });
    const embeds = embedSequence(
      sequence,
      this.embeddingRows(),
      encoded.map((e) => e.projected),
    );
    return { sequence, embeds, images: [...encoded] };
  }

  /** Stream the answer token by token. Visual codes are never generated. */
  async *stream(prepared: PreparedPrompt, sampling: SamplingOptions = {}): AsyncGenerator<GenerationPiece> {
    yield* generateTokens(
      {
        decoder: await this.llmDecoder(),
        prompt: prepared.embeds,
        eosId: this.tokenizer.eosId,
        decodeText: (ids) => this.tokenizer.decode(ids),
      },
      { vocabLimit: this.config.textVocabSize, ...sampling },
    );
  }

  async generate(
    prompt: string,
    images: ImagesInput,
    options: SelectionOptions & SamplingOptions = {},
  ): Promise<{ text: string; prepared: PreparedPrompt; images: ImageSummary[] }> {
    const prepared = await this.prepare(prompt, images, options);
    let text = '';
    for await (const piece of this.stream(prepared, options)) text += piece.text;
    return { text: text.trim(), prepared, images: summarize(prepared.images) };
  }

  /** Log-likelihood of each candidate answer (multiple choice, SEED-Bench protocol). */
  async score(
    prompt: string,
    images: ImagesInput,
    candidates: readonly string[],
    options: SelectionOptions = {},
  ): Promise<CandidateScore[]> {
    return this.scorePrepared(await this.prepare(prompt, images, options), candidates);
  }

  /** As `score`, for a prompt already prepared (to show its encoding beside the answer). */
  async scorePrepared(prepared: PreparedPrompt, candidates: readonly string[]): Promise<CandidateScore[]> {
    const tokenized = candidates.map((c) => this.tokenizer.encode(c, { bos: false }));
    return scoreCandidates(await this.llmDecoder(), prepared.embeds, tokenized);
  }
}
