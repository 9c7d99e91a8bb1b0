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
import type { ImageEncoding, MavenModel } from '../maven/model.ts';
import { allocateBudget, keepCount, topKInOrder } from '../maven/patch-selector.ts';
import type { EncodingMode } from '../maven/sequence.ts';
import { type DecodedImage, decodeImage, fitToSquare, ImageError } from '../models/image.ts';
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

/** An image of a request before the queue: its hash, and either its cached encoding or its pixels. */
export interface PendingImage {
  hash: string;
  cached: CachedImage | null;
  decoded: DecodedImage | null;
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

  constructor(
    readonly model: MavenModel,
    cacheBytes: number,
    readonly maxPixels = 25_000_000,
  ) {
    this.cache = new ByteLru(cacheBytes);
  }

  /**
   * Outside the queue: hash the bytes and, unless cached, decode them (sharp works off the main
   * thread), so a bad image is refused without waiting for a turn. Throws ImageError.
   */
  async resolve(bytes: Uint8Array, label: string): Promise<PendingImage> {
    const hash = imageHash(bytes);
    const cached = this.cache.get(hash) ?? null;
    if (cached) return { hash, cached, decoded: null };
    return { hash, cached: null, decoded: await decodeImage(bytes, label, { maxPixels: this.maxPixels }) };
  }

  /** Inside the queue: the encoding of one image, from the cache or by running the model. */
  async encode(pending: PendingImage): Promise<EncodedImage> {
    // peek: resolve() already counted this lookup; another request may have encoded it since.
    const hit = pending.cached ?? this.cache.peek(pending.hash);
    if (hit) return { image: hit, cached: true, ms: 0 };
    if (!pending.decoded) throw new ImageError(pending.hash, 'neither cached nor decoded');
    const t0 = performance.now();
    const image = await this.run(pending.hash, pending.decoded);
    const ms = performance.now() - t0;
    this.encoded++;
    this.encodeMs += ms;
    this.cache.set(image.hash, image, image.bytes);
    return { image, cached: false, ms };
  }

  private async run(hash: string, decoded: DecodedImage): Promise<CachedImage> {
    const model = this.model;
    // Hybrid at ρ = 1 with raw features: ids, scores, and the features of every patch in order.
    const [e] = await model.encodeImages(model.preprocessRgb([decoded]), {
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
    const view = fitToSquare(decoded, model.preprocessConfig());
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
