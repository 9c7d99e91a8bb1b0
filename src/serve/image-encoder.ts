/**
 * Image encodings, computed once per distinct image and reused: a conversation re-sends every
 * earlier image with each turn, and the vision side (ViT, tokenizer, the h_EOS pass through the
 * LLM, the selector) is most of a short request's work.
 *
 * What is cached, keyed by the SHA-256 of the image bytes, is everything that does not depend on
 * the request: the discrete ids, the selector's score per patch (from h_EOS) and every patch's
 * ViT features, plus the square crop the ViT saw (to draw overlays). Per request only the cheap
 * part runs: choose the kept patches for the request's mode and ρ (or spread a token budget over
 * the images by score) and project them. So every mode, ratio and budget is served from one
 * entry, the global-budget mode included (it needs only the cached scores).
 *
 * An uncached image is encoded on its own (batch of one), so its encoding is bit-for-bit the same
 * whichever request brings it first.
 */
import { createHash } from 'node:crypto';
import { HostTensor } from '../engine/index.ts';
import type { ImageBatch, ImageEncoding, MavenModel } from '../maven/model.ts';
import { allocateBudget, keepCount, topKInOrder } from '../maven/patch-selector.ts';
import type { EncodingMode } from '../maven/sequence.ts';
import { type DecodedImage, fitToSquare, ImageError } from '../models/image.ts';
import { decodeImage } from '../node/decode-image.ts';
import type { ImageDecoderPool } from './image-decoder.ts';
import { ByteLru, type LruStats } from './lru.ts';

/** The request-independent encoding of one image. */
export interface CachedImage {
  hash: string;
  /** Codebook ids of the discrete tokenizer. */
  discreteIds: number[];
  /** Selector logit per patch, raster order (h_EOS of these ids against each patch). */
  scores: Float32Array;
  /** Every patch's ViT features [N, D_vision], raster order. */
  features: HostTensor;
  grid: number;
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

export interface SelectOptions {
  keepRatio: number;
  visualTokenBudget?: number;
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
    const model = this.model;
    // Hybrid at ρ = 1 with raw features: ids, scores, and the features of every patch in order.
    const [e] = await model.encodeImages(batch, {
      mode: 'hybrid',
      keepRatio: 1,
      rawFeatures: true,
    });
    const features = e.keptFeatures!;
    if (features.shape[0] !== e.totalPatches || !e.scores) {
      throw new Error(
        `encoding ${hash.slice(0, 12)}: expected all ${e.totalPatches} patches with scores, got ${features.shape[0]}`,
      );
    }
    const bytes =
      features.data.byteLength +
      e.scores.byteLength +
      view.rgb.byteLength +
      e.discreteIds.length * 8 +
      ENTRY_OVERHEAD;
    return { hash, discreteIds: [...e.discreteIds], scores: e.scores, features, grid: e.grid, view, bytes };
  }

  /**
   * Per request: kept patches for each image's mode (hybrid: top ρ·N by score, or the budget
   * spread over the hybrid images), projected in one batch. Throws (plain Error) for a budget
   * larger than the hybrid images' patches.
   */
  async select(
    images: readonly CachedImage[],
    modes: readonly EncodingMode[],
    options: SelectOptions,
  ): Promise<ImageEncoding[]> {
    const model = this.model;
    const hybrid = images.map((_, i) => i).filter((i) => modes[i] === 'hybrid');
    const kept: number[][] = images.map((img, i) =>
      modes[i] === 'continuous-only' ? Array.from({ length: img.scores.length }, (_, p) => p) : [],
    );
    if (options.visualTokenBudget !== undefined) {
      const allocation = allocateBudget(
        hybrid.map((i) => images[i].scores),
        options.visualTokenBudget,
      );
      hybrid.forEach((i, j) => {
        kept[i] = allocation[j];
      });
    } else {
      for (const i of hybrid) {
        const n = images[i].scores.length;
        kept[i] = topKInOrder(images[i].scores, keepCount(n, options.keepRatio));
      }
    }
    const dv = model.config.vision.hiddenSize;
    const dl = model.config.llm.hiddenSize;
    const total = kept.reduce((n, k) => n + k.length, 0);
    const rows = new Float32Array(total * dv); // [K, Dv]: every kept patch of the prompt
    let r = 0;
    kept.forEach((k, i) => {
      const f = images[i].features.data as Float32Array;
      for (const p of k) rows.set(f.subarray(p * dv, (p + 1) * dv), r++ * dv);
    });
    const projected = total ? await model.project(new HostTensor('float32', [total, dv], rows)) : null;
    let offset = 0;
    return images.map((img, i) => {
      const k = kept[i];
      const data = projected
        ? (projected.data as Float32Array).slice(offset * dl, (offset + k.length) * dl)
        : new Float32Array(0);
      offset += k.length;
      return {
        discreteIds: modes[i] === 'continuous-only' ? [] : img.discreteIds,
        keptPatches: k,
        totalPatches: img.scores.length,
        scores: modes[i] === 'hybrid' ? img.scores : null,
        projected: new HostTensor('float32', [k.length, dl], data), // [k, D_llm]
        grid: img.grid,
      };
    });
  }

  stats(): EncoderStats {
    return { encoded: this.encoded, encodeMs: this.encodeMs, cache: this.cache.stats() };
  }
}
