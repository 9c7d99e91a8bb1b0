/**
 * Image encodings, computed once per distinct image and reused: a conversation re-sends every
 * earlier image with each turn, and the vision side (ViT, tokenizer, the h_EOS pass through the
 * LLM, the selector) is most of a short request's work.
 *
 * What is cached, keyed by the SHA-256 of the image bytes, is step 1 of the model's image path
 * (MavenModel.encodeImages), everything that does not depend on the request: the discrete ids,
 * the selector's score per patch (from h_EOS) and every patch's ViT features, plus the square
 * crop the ViT saw (to draw overlays). Per request only the cheap step 2 runs
 * (MavenModel.selectPatches: the request's modes, ρ or token budget; projection). So every mode,
 * ratio and budget is served from one entry, the global-budget mode included (it needs only the
 * cached scores).
 *
 * An uncached image is encoded on its own (batch of one), so its encoding is bit-for-bit the same
 * whichever request brings it first.
 */
import { createHash } from 'node:crypto';
import { HostTensor } from '../engine/index.ts';
import type { ImageEncoding } from '../maven/image-encoding.ts';
import type { ImageBatch, MavenModel } from '../maven/model.ts';
import { type DecodedImage, fitToSquare, ImageError } from '../models/image.ts';
import { decodeImage } from '../node/decode-image.ts';
import type { ImageDecoderPool } from './image-decoder.ts';
import { ByteLru, type LruStats } from './lru.ts';

/** The request-independent encoding of one image. */
export interface CachedImage {
  hash: string;
  /** Step 1, for hybrid mode: ids, scores and features, from which every mode is selected. */
  encoding: ImageEncoding;
  /** The square the ViT saw (its pixels, before normalisation), for overlays. */
  view: DecodedImage;
  /** What the entry holds, for the cache's byte budget. */
  bytes: number;
}

/**
 * An image of a request before the queue: its hash, and either its cached encoding or its bytes
 * (decoded only inside the queue, under the request's deadline).
 */
export interface PendingImage {
  hash: string;
  cached: CachedImage | null;
  bytes: Uint8Array | null;
  /** Names the image in decoding errors (the request field it came from). */
  label: string;
}

export interface EncoderStats {
  /** Images run through the vision side (cache misses that were encoded). */
  encoded: number;
  encodeMs: number;
  cache: LruStats;
}

export interface EncodedImage {
  image: CachedImage;
  /** True when the encoding came from the cache (no model run for it). */
  cached: boolean;
  ms: number;
}

/** Bookkeeping per entry beyond its arrays (object headers, the hash string). */
const ENTRY_OVERHEAD = 512;

export function imageHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class CachedImageEncoder {
  readonly cache: ByteLru<CachedImage>;
  private encoded = 0;
  private encodeMs = 0;

  /**
   * `decoder`: where new images are decoded and resized — worker threads the deadline can
   * terminate (the server's choice), or null to do it on this thread (same pixels either way).
   */
  constructor(
    readonly model: MavenModel,
    cacheBytes: number,
    readonly maxPixels = 25_000_000,
    readonly decoder: ImageDecoderPool | null = null,
  ) {
    this.cache = new ByteLru(cacheBytes);
  }

  /**
   * Outside the queue: hash the bytes and look them up. Nothing is decoded here: decoding is
   * work the request pays for inside the queue (`encode`), under its deadline.
   */
  resolve(bytes: Uint8Array, label: string): PendingImage {
    const hash = imageHash(bytes);
    const cached = this.cache.get(hash) ?? null;
    return cached ? { hash, cached, bytes: null, label } : { hash, cached: null, bytes, label };
  }

  /**
   * Inside the queue: the encoding of one image, from the cache or by decoding it and running
   * the model. Throws ImageError for bytes that do not decode; stops before the model run when
   * `signal` has aborted during the decode.
   */
  async encode(pending: PendingImage, signal?: AbortSignal): Promise<EncodedImage> {
    // peek: resolve() already counted this lookup; another request may have encoded it since.
    const hit = pending.cached ?? this.cache.peek(pending.hash);
    if (hit) return { image: hit, cached: true, ms: 0 };
    if (!pending.bytes) throw new ImageError(pending.label, 'neither cached nor given as bytes');
    const t0 = performance.now();
    const { batch, view } = await this.pixels(pending.bytes, pending.label, signal);
    signal?.throwIfAborted();
    const image = await this.run(pending.hash, batch, view);
    const ms = performance.now() - t0;
    this.encoded++;
    this.encodeMs += ms;
    this.cache.set(image.hash, image, image.bytes);
    return { image, cached: false, ms };
  }

  /**
   * The model's input pixels for one image (as MavenModel.preprocessRgb makes them) and the
   * square the ViT sees, decoded in a worker when there is a decoder pool.
   */
  private async pixels(
    bytes: Uint8Array,
    label: string,
    signal?: AbortSignal,
  ): Promise<{ batch: ImageBatch; view: DecodedImage }> {
    const model = this.model;
    if (!this.decoder) {
      const decoded = await decodeImage(bytes, label, { maxPixels: this.maxPixels });
      return { batch: model.preprocessRgb([decoded]), view: fitToSquare(decoded, model.preprocessConfig()) };
    }
    const sizes = [model.config.vision.imageSize];
    if (model.tokenizerImageSize) sizes.push(model.tokenizerImageSize);
    const configs = sizes.map((size) => model.preprocessConfig(size));
    const { pixels, view } = await this.decoder.decode(
      { bytes, label, maxPixels: this.maxPixels, configs },
      signal,
    );
    const tensor = (i: number) => new HostTensor('float32', [1, 3, sizes[i], sizes[i]], pixels[i]);
    return {
      batch: { pixels: tensor(0), ...(sizes.length > 1 ? { tokenizerPixels: tensor(1) } : {}) },
      view,
    };
  }

  private async run(hash: string, batch: ImageBatch, view: DecodedImage): Promise<CachedImage> {
    const [encoding] = await this.model.encodeImages(batch, { mode: 'hybrid' });
    const { features, scores, discreteIds } = encoding;
    if (!features || !scores || !discreteIds)
      throw new Error(`encoding ${hash.slice(0, 12)}: a hybrid encoding lacks its ids, scores or features`);
    const bytes =
      features.data.byteLength +
      scores.byteLength +
      view.rgb.byteLength +
      discreteIds.length * 8 +
      ENTRY_OVERHEAD;
    return { hash, encoding, view, bytes };
  }

  stats(): EncoderStats {
    return { encoded: this.encoded, encodeMs: this.encodeMs, cache: this.cache.stats() };
  }
}
