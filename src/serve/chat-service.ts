/**
 * A chat request → a prepared MaVEn prompt → tokens, with the HTTP layer left out. The steps are
 * split by where they run:
 *   gather   (before the queue) image bytes from their sources, hashed, their format checked
 *                               from the first bytes (raster formats only; no SVG);
 *   prepare  (in the queue)     decode and encode uncached images, choose and project the kept
 *                               patches, tokenize, assemble and embed the prompt
 *                               (MavenModel.prepareEncoded);
 *   generate (in the queue)     stream tokens from the model's KV-cache decoder.
 * Everything that costs CPU in proportion to what the client sent (decoding, tokenizing,
 * encoding, generating) is in the queue, so `--concurrency` bounds it, and under the request's
 * deadline (server.ts). Text is refused by its length before it is tokenized (chat-request.ts).
 */

import type { GenerationPiece, SamplingOptions } from '../maven/generation.ts';
import type { MavenModel, PreparedPrompt } from '../maven/model.ts';
import { type EncodingMode, IMAGE_PLACEHOLDER } from '../maven/sequence.ts';
import { type DecodedImage, ImageError } from '../models/image.ts';
import { renderPatchOverlay } from '../node/render-patch-overlay.ts';
import { type ChatRequest, imageMode, type RequestLimits } from './chat-request.ts';
import { type ChatTemplate, renderPrompt } from './chat-template.ts';
import { ApiError, badRequest } from './errors.ts';
import { ImageDecoderPool } from './image-decoder.ts';
import { CachedImageEncoder, type EncodedImage, type PendingImage } from './image-encoder.ts';
import { ACCEPTED_FORMATS, sniffImageFormat } from './image-format.ts';
import { type ImageSourcePolicy, isRemote, loadImageBytes, remoteImageFailed } from './image-source.ts';

export interface ChatServiceOptions {
  /** The id clients pass as `model`; default the config's name. */
  modelName?: string;
  /** How turns become one prompt (see chat-template.ts); default 'plain', maven-tiny's format. */
  template?: ChatTemplate;
  /** ρ for hybrid images when the request gives none; default the model's (0.25). */
  keepRatio?: number;
  /** New tokens when the request gives no max_tokens; 64 answers the trained tasks with room. */
  defaultMaxTokens?: number;
  /** Largest max_tokens accepted. */
  maxTokens?: number;
  /** Temperature when the request gives none: 0 (greedy), how the model is evaluated. */
  defaultTemperature?: number;
  /** Images per request; default (and at most) the model's maxImages. */
  maxImages?: number;
  /** Byte budget of the image-encoding cache; 256 MiB holds ~2,000 tiny or ~100 CLIP-L images. */
  cacheBytes?: number;
  /** Largest decoded image (width × height); 25 MP covers a 24 MP photo. */
  maxImagePixels?: number;
  /**
   * Most characters of text per request (all messages together), checked before tokenizing.
   * Default 32 characters per position of the model's context: more than any prompt that fits
   * (a token of the tiny model's word vocabulary averages ~5 characters, a LLaMA token ~4).
   */
  maxPromptChars?: number;
  /**
   * Decode and resize new images in worker threads, which a request's deadline terminates,
   * keeping up to this many idle for reuse; 0 (the default here) decodes on the main thread.
   * startServer uses its concurrency.
   */
  imageWorkers?: number;
  images?: Partial<ImageSourcePolicy>;
}

export interface ImageReport {
  mode: EncodingMode;
  discreteIds: readonly number[];
  kept: readonly number[];
  totalPatches: number;
  grid: number;
  /** Served from the encoding cache (no vision-side model run). */
  cached: boolean;
  encodeMs: number;
  /** PNG data URL of the image with its kept patches highlighted, when asked for. */
  overlay?: string;
}

export interface PreparedChat {
  prompt: PreparedPrompt;
  images: ImageReport[];
  promptTokens: number;
  /** Positions taken by images: `<img>`, discrete ids, kept patches, `</img>`. */
  imageTokens: number;
  sampling: SamplingOptions;
  encodeMs: number;
  /** Words of the prompt the tokenizer has no id for (they became `<unk>`), each once, in order. */
  unknownWords: string[];
}

/** Smallest side of an overlay picture in pixels. */
const OVERLAY_MIN_SIZE = 192;

const DEFAULT_POLICY: ImageSourcePolicy = {
  imageRoot: null,
  allowRemote: false,
  maxImageBytes: 20 * 2 ** 20,
  fetchTimeoutMs: 10_000,
};

export class ChatService {
  readonly encoder: CachedImageEncoder;
  readonly modelName: string;
  readonly template: ChatTemplate;
  readonly keepRatio: number;
  readonly defaultMaxTokens: number;
  readonly maxTokens: number;
  readonly defaultTemperature: number;
  readonly maxImages: number;
  readonly policy: ImageSourcePolicy;
  readonly maxPromptChars: number;

  constructor(
    readonly model: MavenModel,
    options: ChatServiceOptions = {},
  ) {
    const config = model.config;
    this.modelName = options.modelName ?? config.name;
    this.template = options.template ?? 'plain';
    this.keepRatio = options.keepRatio ?? config.keepRatio;
    if (!(this.keepRatio > 0 && this.keepRatio <= 1))
      throw new Error(`keep ratio must be in (0, 1], got ${this.keepRatio}`);
    this.maxTokens = options.maxTokens ?? 1024;
    this.defaultMaxTokens = Math.min(options.defaultMaxTokens ?? 64, this.maxTokens);
    this.defaultTemperature = options.defaultTemperature ?? 0;
    this.maxImages = Math.min(options.maxImages ?? config.maxImages, config.maxImages);
    this.policy = { ...DEFAULT_POLICY, ...options.images };
    this.maxPromptChars = options.maxPromptChars ?? config.llm.maxPositionEmbeddings * 32;
    if (!(Number.isInteger(this.maxPromptChars) && this.maxPromptChars > 0))
      throw new Error(`maxPromptChars must be a positive integer, got ${this.maxPromptChars}`);
    const workers = options.imageWorkers ?? 0;
    this.encoder = new CachedImageEncoder(
      model,
      options.cacheBytes ?? 256 * 2 ** 20,
      options.maxImagePixels,
      workers > 0 ? new ImageDecoderPool(workers) : null,
    );
  }

  /** Stop the image-decoding workers, if any. */
  async close(): Promise<void> {
    await this.encoder.decoder?.close();
  }

  limits(): RequestLimits {
    const c = this.model.config;
    return {
      maxImages: this.maxImages,
      maxTokens: this.maxTokens,
      reservedText: [IMAGE_PLACEHOLDER, c.imageStartToken, c.imageEndToken],
      maxTextChars: this.maxPromptChars,
      context: c.llm.maxPositionEmbeddings,
    };
  }

  /**
   * Before the queue: every image's bytes, hash and cache entry; 400s for images that cannot be
   * read or are not in a raster format this server decodes. Nothing is decoded here.
   */
  async gather(request: ChatRequest, signal?: AbortSignal): Promise<PendingImage[]> {
    return Promise.all(
      request.images.map(async (ref) => {
        const bytes = await loadImageBytes(ref, this.policy, signal);
        const sniffed = sniffImageFormat(bytes);
        if (!sniffed.ok) {
          if (isRemote(ref)) throw remoteImageFailed(ref, `not a raster image (${sniffed.format})`);
          if (sniffed.format === 'unknown') {
            throw badRequest(
              `${ref.param}: not a readable image (its first bytes are not those of ${ACCEPTED_FORMATS})`,
              ref.param,
              'invalid_image',
            );
          }
          throw badRequest(
            `${ref.param}: ${sniffed.format.toUpperCase()} images are not accepted here (rendering one can take unbounded time); send it as ${ACCEPTED_FORMATS}`,
            ref.param,
            'unsupported_image_format',
          );
        }
        return this.encoder.resolve(bytes, ref.param);
      }),
    );
  }

  /** In the queue: the prompt's embeddings with every image encoded (cached where possible). */
  async prepare(
    request: ChatRequest,
    pending: readonly PendingImage[],
    signal?: AbortSignal,
  ): Promise<PreparedChat> {
    const model = this.model;
    const rendered = renderPrompt(request.messages, this.template);
    const modes = request.images.map((img) => imageMode(img, request.maven.mode));
    const encoded: EncodedImage[] = [];
    for (const [i, p] of pending.entries()) {
      signal?.throwIfAborted();
      try {
        encoded.push(await this.encoder.encode(p, signal));
      } catch (e) {
        if (!(e instanceof ImageError)) throw e;
        const ref = request.images[i];
        if (ref && isRemote(ref)) throw remoteImageFailed(ref, e.reason);
        throw badRequest(e.message, ref?.param ?? p.label, 'invalid_image');
      }
    }
    signal?.throwIfAborted();
    const budget = request.maven.visualTokenBudget;
    const hybridPatches = encoded.reduce(
      (n, e, i) => n + (modes[i] === 'hybrid' ? e.image.encoding.totalPatches : 0),
      0,
    );
    if (budget !== undefined && budget > hybridPatches) {
      throw badRequest(
        `maven_visual_token_budget ${budget} is more than the ${hybridPatches} patches of the request's hybrid-mode images`,
        'maven_visual_token_budget',
      );
    }
    const images = await model.selectPatches(
      encoded.map((e) => e.image.encoding),
      { mode: modes, keepRatio: request.maven.keepRatio ?? this.keepRatio, visualTokenBudget: budget },
    );
    signal?.throwIfAborted();
    const { sequence, embeds } = model.prepareEncoded(rendered.pieces, images);
    const unknownWords = unknownWordsOf(model, rendered.pieces);
    const sampling: SamplingOptions = {
      maxNewTokens: request.sampling.maxTokens ?? this.defaultMaxTokens,
      temperature: request.sampling.temperature ?? this.defaultTemperature,
      topK: request.sampling.topK,
      topP: request.sampling.topP,
      seed: request.sampling.seed,
      stop: request.sampling.stop,
    };
    const promptTokens = sequence.slots.length;
    const context = model.config.llm.maxPositionEmbeddings;
    if (promptTokens + sampling.maxNewTokens! > context) {
      throw new ApiError(
        400,
        `the prompt takes ${promptTokens} tokens and max_tokens asks for ${sampling.maxNewTokens} more, but the model's context is ${context}; send fewer images or text, a smaller maven_keep_ratio, or a smaller max_tokens`,
        'context_length_exceeded',
        'messages',
      );
    }
    const reports: ImageReport[] = await Promise.all(
      images.map(async (e, i) => ({
        mode: modes[i],
        discreteIds: e.discreteIds,
        kept: e.keptPatches,
        totalPatches: e.totalPatches,
        grid: e.grid,
        cached: encoded[i].cached,
        encodeMs: encoded[i].ms,
        ...(request.maven.overlays ? { overlay: await this.overlay(encoded[i].image.view, e) } : {}),
      })),
    );
    return {
      prompt: { sequence, embeds, images },
      images: reports,
      promptTokens,
      imageTokens: sequence.images.reduce((n, s) => n + s.end - s.start, 0),
      sampling,
      encodeMs: encoded.reduce((n, e) => n + e.ms, 0),
      unknownWords,
    };
  }

  private async overlay(
    view: DecodedImage,
    e: { keptPatches: readonly number[]; totalPatches: number; grid: number },
  ): Promise<string> {
    const mask = new Uint8Array(e.totalPatches);
    for (const p of e.keptPatches) mask[p] = 1;
    // Small ViT inputs (96 px for tiny) are enlarged so the overlay's outline stays legible.
    const size = Math.max(view.width, OVERLAY_MIN_SIZE);
    const png = await renderPatchOverlay(view, { rows: e.grid, cols: e.grid }, mask, { size });
    return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
  }

  /** In the queue: the answer token by token; stops early when `signal` aborts (throws its reason). */
  async *generate(chat: PreparedChat, signal?: AbortSignal): AsyncGenerator<GenerationPiece> {
    for await (const piece of this.model.stream(chat.prompt, chat.sampling)) {
      if (signal?.aborted) throw signal.reason;
      yield piece;
    }
  }
}

/** At most this many distinct unknown words are reported per request. */
const MAX_UNKNOWN_REPORTED = 100;

/** Unknown words of the prompt's text pieces, when the tokenizer can tell (see TextTokenizer). */
function unknownWordsOf(model: MavenModel, pieces: readonly string[]): string[] {
  const tokenizer = model.tokenizer;
  if (!tokenizer.unknownWords) return [];
  const seen = new Set<string>();
  for (const piece of pieces) {
    for (const w of tokenizer.unknownWords(piece)) {
      if (seen.size >= MAX_UNKNOWN_REPORTED) return [...seen];
      seen.add(w.length > 64 ? `${w.slice(0, 63)}…` : w);
    }
  }
  return [...seen];
}
