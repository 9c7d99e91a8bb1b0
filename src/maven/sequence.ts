/**
 * Sequence assembly: a prompt with one `<image>` placeholder per image becomes one sequence of
 * slots, each either a token id (text, delimiters, discrete visual codes) or a kept continuous
 * patch of some image. Per image: `<img>`, its discrete ids, its kept patches, `</img>` (the
 * order of the discrete and continuous parts is a switch; discrete first by default, as in the
 * paper). The slots are then embedded: token rows from the LLM's (extended) embedding table,
 * patch rows from the projector's output.
 */
import { HostTensor, type StoredRows } from '../engine/index.ts';
import { type UnifiedVocabulary, visualTokenId } from './vocabulary.ts';

export const IMAGE_PLACEHOLDER = '<image>';

export type EncodingMode = 'hybrid' | 'discrete-only' | 'continuous-only';
export const ENCODING_MODES: readonly EncodingMode[] = ['hybrid', 'discrete-only', 'continuous-only'];

export interface ImageTokens {
  /** Codebook ids (0..V_visual−1), empty in continuous-only mode. */
  discreteIds: readonly number[];
  /** Kept patch indices in raster order, empty in discrete-only mode. */
  keptPatches: readonly number[];
  totalPatches: number;
}

export type Slot = { kind: 'token'; id: number } | { kind: 'patch'; image: number; index: number };

export interface ImageSpan {
  /** Position of `<img>`; `</img>` is at end − 1. */
  start: number;
  end: number;
  discrete: [number, number];
  continuous: [number, number];
  keptPatches: readonly number[];
  totalPatches: number;
}

export interface AssembledSequence {
  slots: Slot[];
  images: ImageSpan[];
}

export interface SequenceOptions {
  vocabulary: UnifiedVocabulary;
  imageStartId: number;
  imageEndId: number;
  order?: 'discrete-first' | 'continuous-first';
}

/**
 * Split a prompt at its `<image>` placeholders: n images give n + 1 text pieces. Too many or
 * too few placeholders, more images than `maxImages`, or an empty prompt are errors.
 */
export function splitPrompt(prompt: string, imageCount: number, maxImages: number): string[] {
  if (prompt.trim() === '' && imageCount === 0) throw new Error('the prompt is empty');
  if (imageCount > maxImages)
    throw new Error(`${imageCount} images given, but this model takes at most ${maxImages}`);
  const pieces = prompt.split(IMAGE_PLACEHOLDER);
  const placeholders = pieces.length - 1;
  if (placeholders !== imageCount) {
    throw new Error(
      `the prompt has ${placeholders} ${IMAGE_PLACEHOLDER} placeholder(s) but ${imageCount} image(s) were given; put one ${IMAGE_PLACEHOLDER} where each image belongs`,
    );
  }
  return pieces;
}

/** Interleave tokenised text pieces (n + 1) with n images. */
export function assembleSequence(
  textPieces: readonly (readonly number[])[],
  images: readonly ImageTokens[],
  options: SequenceOptions,
): AssembledSequence {
  if (textPieces.length !== images.length + 1) {
    throw new Error(
      `assembleSequence: ${images.length} images need ${images.length + 1} text pieces, got ${textPieces.length}`,
    );
  }
  const slots: Slot[] = [];
  const spans: ImageSpan[] = [];
  const pushText = (ids: readonly number[]) => {
    for (const id of ids) slots.push({ kind: 'token', id });
  };
  pushText(textPieces[0]);
  images.forEach((img, i) => {
    const start = slots.length;
    slots.push({ kind: 'token', id: options.imageStartId });
    const discrete = (): [number, number] => {
      const from = slots.length;
      for (const code of img.discreteIds)
        slots.push({ kind: 'token', id: visualTokenId(options.vocabulary, code) });
      return [from, slots.length];
    };
    const continuous = (): [number, number] => {
      const from = slots.length;
      img.keptPatches.forEach((_, k) => {
        slots.push({ kind: 'patch', image: i, index: k });
      });
      return [from, slots.length];
    };
    let d: [number, number];
    let c: [number, number];
    if ((options.order ?? 'discrete-first') === 'discrete-first') {
      d = discrete();
      c = continuous();
    } else {
      c = continuous();
      d = discrete();
    }
    slots.push({ kind: 'token', id: options.imageEndId });
    spans.push({
      start,
      end: slots.length,
      discrete: d,
      continuous: c,
      keptPatches: img.keptPatches,
      totalPatches: img.totalPatches,
    });
    pushText(textPieces[i + 1]);
  });
  return { slots, images: spans };
}

/**
 * Input embeddings [1, T, D] for a sequence: token slots copy rows of `embedTable` [V, D]
 * (host-side: a row copy, dequantized when the table is stored block-quantized, is all an
 * embedding lookup is), patch slots copy rows of the image's
 * projected kept patches [k, D].
 */
export function embedSequence(
  seq: AssembledSequence,
  embedTable: StoredRows,
  projected: readonly HostTensor[],
): HostTensor {
  const [rows, width] = embedTable.shape;
  const out = new Float32Array(seq.slots.length * width);
  seq.slots.forEach((slot, t) => {
    if (slot.kind === 'token') {
      if (slot.id < 0 || slot.id >= rows)
        throw new Error(`token id ${slot.id} at position ${t} is outside the ${rows}-row embedding table`);
      embedTable.read(slot.id, out, t * width);
    } else {
      const p = projected[slot.image];
      if (!p || p.shape[1] !== width || slot.index >= p.shape[0]) {
        throw new Error(`image ${slot.image}: no projected patch ${slot.index} of width ${width}`);
      }
      out.set((p.data as Float32Array).subarray(slot.index * width, (slot.index + 1) * width), t * width);
    }
  });
  return new HostTensor('float32', [1, seq.slots.length, width], out);
}

/** Token ids of the sequence with patch slots replaced by `fill` (for display and debugging). */
export function slotIds(seq: AssembledSequence, fill = -1): number[] {
  return seq.slots.map((s) => (s.kind === 'token' ? s.id : fill));
}
