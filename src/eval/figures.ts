/**
 * The paper's qualitative figures, made measurable on generated scenes (whose objects and masks
 * are known exactly):
 * - Figure 5 analogue: which patches each selection rule keeps (overlays), and how well the kept
 *   patches cover the objects (precision: kept patches on an object; recall: object patches kept).
 * - Figure 6 analogue: what a discrete codebook id means — the held-out images whose tokens
 *   include it, and the image attribute (colour, shape, count) most over-represented among them.
 */
import sharp from 'sharp';
import { patchLabels } from '../data/patch-labels.ts';
import { maskOf, type RgbImage, renderSceneBox } from '../data/scene/render.ts';
import type { Box } from '../data/scene/scene.ts';
import { captionPair } from '../data/tasks/stage-datasets.ts';
import type { MavenModel } from '../maven/model.ts';
import { choosePatches } from '../maven/patch-selection.ts';
import { contactSheet } from '../node/contact-sheet.ts';
import { renderPatchOverlay } from '../node/render-patch-overlay.ts';
import { mean } from './metrics.ts';
import { type PatchSelection, patchStrategy } from './patch-strategies.ts';

/** A held-out generated box with its objects. */
export interface SceneImage {
  image: RgbImage;
  objects: Box;
}

/** The first `count` held-out caption boxes (scene boxes only): a fixed, reproducible image set. */
export function heldoutBoxes(count: number, seed = 0): SceneImage[] {
  return Array.from({ length: count }, (_, i) => {
    const pair = captionPair(i, { seed, split: 'heldout' });
    return { image: pair.image, objects: pair.objects ?? [] };
  });
}

/** Per patch of the model's grid, 1 when any object pixel falls in it. */
export function objectPatches(box: SceneImage, imageSize: number, patchSize: number): Uint8Array {
  const rendered = renderSceneBox(box.objects, box.image.width);
  const mask = maskOf(
    rendered,
    box.objects.map((_, i) => i),
  );
  return patchLabels(mask, rendered.width, rendered.height, { imageSize, patchSize }).labels;
}

export interface Coverage {
  selection: PatchSelection;
  /** Share of kept patches that touch an object. */
  precision: number;
  /** Share of object patches that were kept. */
  recall: number;
  keptPerImage: number;
}

/** Encode `boxes` in batches of this many images: one ViT / h_EOS / selector call each. */
const ENCODE_BATCH = 16;

/** Per selection rule, the patches each box keeps (and the scores they were ranked by, if any). */
async function keptPatches(
  model: MavenModel,
  boxes: readonly SceneImage[],
  selections: readonly PatchSelection[],
  keepRatio = model.config.keepRatio,
): Promise<{ kept: number[][]; scores: (Float32Array | null)[] }[]> {
  const out = selections.map(() => ({ kept: [] as number[][], scores: [] as (Float32Array | null)[] }));
  for (let i = 0; i < boxes.length; i += ENCODE_BATCH) {
    const batch = boxes.slice(i, i + ENCODE_BATCH).map((b) => b.image);
    // Encoded once, chosen from by every rule: only the choice differs between the columns.
    const encoded = await model.encodeImages(model.preprocessRgb(batch));
    selections.forEach((selection, s) => {
      const chosen = choosePatches(encoded, {
        mode: 'hybrid',
        keepRatio,
        strategy: patchStrategy(selection),
      });
      for (const c of chosen) {
        out[s].kept.push([...c.keptPatches]);
        out[s].scores.push(c.scores);
      }
    });
  }
  return out;
}

/** How well each selection rule's kept patches cover the objects of `boxes` (exact masks). */
export async function patchCoverage(
  model: MavenModel,
  boxes: readonly SceneImage[],
  selections: readonly PatchSelection[],
  keepRatio?: number,
): Promise<{ coverage: Coverage[]; objectShare: number }> {
  const { imageSize, patchSize } = model.config.vision;
  const objects = boxes.map((b) => objectPatches(b, imageSize, patchSize));
  const objectShare = mean(objects.map((o) => o.reduce((a, b) => a + b, 0) / o.length));
  const coverage: Coverage[] = [];
  const perSelection = await keptPatches(model, boxes, selections, keepRatio);
  for (const [s, selection] of selections.entries()) {
    const { kept } = perSelection[s];
    let hits = 0;
    let keptTotal = 0;
    let objectTotal = 0;
    kept.forEach((k, i) => {
      for (const p of k) hits += objects[i][p];
      keptTotal += k.length;
      objectTotal += objects[i].reduce((a, b) => a + b, 0);
    });
    coverage.push({
      selection,
      precision: keptTotal ? hits / keptTotal : 0,
      recall: objectTotal ? hits / objectTotal : 0,
      keptPerImage: keptTotal / Math.max(1, boxes.length),
    });
  }
  return { coverage, objectShare };
}

async function pngOf(image: RgbImage): Promise<Uint8Array> {
  const png = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.length);
}

/**
 * Figure 5 analogue: one row per image, one column per selection rule; dropped patches dark, kept
 * ones outlined (the selector's column is tinted by its scores, blue low → red high).
 */
export async function overlaySheet(
  model: MavenModel,
  images: readonly RgbImage[],
  selections: readonly PatchSelection[],
  keepRatio?: number,
): Promise<Uint8Array> {
  const grid = model.config.vision.imageSize / model.config.vision.patchSize;
  const asBoxes = images.map((image) => ({ image, objects: [] }));
  const perSelection = await keptPatches(model, asBoxes, selections, keepRatio);
  const tiles = [];
  for (let i = 0; i < images.length; i++) {
    for (const [s, selection] of selections.entries()) {
      const { kept, scores } = perSelection[s];
      const mask = new Uint8Array(grid * grid);
      for (const p of kept[i]) mask[p] = 1;
      const png = await renderPatchOverlay(images[i], { rows: grid, cols: grid }, mask, {
        size: 192,
        ...(scores[i] ? { scores: scores[i]! } : {}),
      });
      tiles.push({ png, caption: selection });
    }
  }
  return contactSheet(tiles, { columns: selections.length, tileSize: 192 });
}

/** Facts about a box a codebook id might stand for: colours, shapes, colour+shape, object count. */
export function boxAttributes(objects: Box): string[] {
  const out = new Set<string>();
  for (const o of objects) {
    out.add(o.color);
    out.add(o.type);
    out.add(`${o.color} ${o.type}`);
  }
  out.add(objects.length >= 5 ? '5+ objects' : `${objects.length} object${objects.length === 1 ? '' : 's'}`);
  return [...out];
}

export interface CodeMeaning {
  code: number;
  /** Images whose discrete tokens include the code. */
  support: number;
  /** The attribute most over-represented among them, its share there and overall. */
  attribute: string;
  shareWithCode: number;
  shareOverall: number;
  /** Indices (into the image list) of the images with the code, in order. */
  images: number[];
}

/**
 * For each codebook id used by at least `minSupport` images (and by at most `maxShare` of them —
 * an id in every image means nothing in particular), the attribute with the largest excess
 * P(attribute | id) − P(attribute). Sorted by that excess, strongest first.
 */
export function codeMeanings(
  codesPerImage: readonly (readonly number[])[],
  attributesPerImage: readonly (readonly string[])[],
  options: { minSupport?: number; maxShare?: number } = {},
): CodeMeaning[] {
  const n = codesPerImage.length;
  if (attributesPerImage.length !== n)
    throw new Error(`codeMeanings: ${n} code lists but ${attributesPerImage.length} attribute lists`);
  const minSupport = options.minSupport ?? 5;
  const maxShare = options.maxShare ?? 0.5;
  const overall = new Map<string, number>();
  for (const attrs of attributesPerImage)
    for (const a of new Set(attrs)) overall.set(a, (overall.get(a) ?? 0) + 1);
  const byCode = new Map<number, number[]>();
  codesPerImage.forEach((codes, i) => {
    for (const c of new Set(codes)) byCode.set(c, [...(byCode.get(c) ?? []), i]);
  });
  const out: CodeMeaning[] = [];
  for (const [code, images] of byCode) {
    if (images.length < minSupport || images.length > maxShare * n) continue;
    const counts = new Map<string, number>();
    for (const i of images)
      for (const a of new Set(attributesPerImage[i])) counts.set(a, (counts.get(a) ?? 0) + 1);
    let best: { attribute: string; excess: number; withCode: number; base: number } | null = null;
    for (const [attribute, k] of counts) {
      const withCode = k / images.length;
      const base = overall.get(attribute)! / n;
      const excess = withCode - base;
      if (!best || excess > best.excess || (excess === best.excess && attribute < best.attribute))
        best = { attribute, excess, withCode, base };
    }
    if (best)
      out.push({
        code,
        support: images.length,
        attribute: best.attribute,
        shareWithCode: best.withCode,
        shareOverall: best.base,
        images,
      });
  }
  return out.sort(
    (a, b) => b.shareWithCode - b.shareOverall - (a.shareWithCode - a.shareOverall) || a.code - b.code,
  );
}

export interface CodebookStudy {
  images: number;
  /** Distinct ids used over all images, and ids per image. */
  codesUsed: number;
  codebookSize: number;
  meanings: CodeMeaning[];
  /** Contact sheet: one row per shown id, its first images. */
  sheet: Uint8Array;
}

/** Figure 6 analogue over `boxes`: encode them, find what the most specific ids mean, draw them. */
export async function codebookStudy(
  model: MavenModel,
  boxes: readonly SceneImage[],
  options: { show?: number; perCode?: number } = {},
): Promise<CodebookStudy> {
  const codes: number[][] = [];
  for (let i = 0; i < boxes.length; i += ENCODE_BATCH) {
    const batch = boxes.slice(i, i + ENCODE_BATCH).map((b) => b.image);
    for (const e of await model.encodeImages(model.preprocessRgb(batch), { mode: 'discrete-only' }))
      codes.push([...e.discreteIds!]);
  }
  const meanings = codeMeanings(
    codes,
    boxes.map((b) => boxAttributes(b.objects)),
    { minSupport: Math.max(3, Math.round(boxes.length * 0.02)) },
  );
  const show = meanings.slice(0, options.show ?? 6);
  const perCode = options.perCode ?? 8;
  const tiles = [];
  for (const m of show) {
    for (let j = 0; j < perCode; j++) {
      const i = m.images[j];
      if (i === undefined) tiles.push({ png: await pngOf(blank(boxes[0].image)), caption: '' });
      else
        tiles.push({
          png: await pngOf(boxes[i].image),
          caption: j === 0 ? `id ${m.code}: ${m.attribute}?` : `id ${m.code}`,
        });
    }
  }
  return {
    images: boxes.length,
    codesUsed: new Set(codes.flat()).size,
    codebookSize: model.config.seed.codebookSize,
    meanings,
    sheet: tiles.length ? await contactSheet(tiles, { columns: perCode, tileSize: 96 }) : new Uint8Array(),
  };
}

function blank(like: RgbImage): RgbImage {
  return { width: like.width, height: like.height, rgb: new Uint8Array(like.rgb.length).fill(255) };
}
