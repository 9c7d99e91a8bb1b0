/**
 * The perception benchmark (`maven eval --bench perception`): does the model see? Single-image
 * questions whose answers are in the picture, asked in each encoding mode (hybrid, discrete-only,
 * continuous-only) on held-out data, each set beside a ceiling — a linear probe on the same frozen
 * features — so a reader sees how much of what the encoders know reaches the answer.
 *
 * LLM rows (all answers greedy / argmax, so a rerun gives the same predictions):
 * - fashion-class/caption: a t10k photo after the captioning prompt (`<image>` alone, as stages
 *   2–3 train), the ten captions " A photo of {a sneaker}." scored by the SUM of their token
 *   log-likelihoods. All ten share the prefix " A photo of", so the sum compares p(class | image).
 *   The length-normalised mean does not: it measurably favours the multi-token names ("T-shirt or
 *   top", "pair of trousers", whose later tokens are nearly certain once the first is out) — on
 *   an earlier model one class took 173 of 200 answers that way.
 * - fashion-class/question: the same photos with the `fashion-class` task's own question and its
 *   ten options, by summed log-likelihood.
 * - fashion-caption: a greedy caption after `<image>`; right when it names the photo's class
 *   (FASHION_NOUNS, whole words, case-insensitive; "T-shirt or top" is not also "shirt") and no
 *   other class.
 * - box-color, box-shape, box-count, box-wall: their options by summed log-likelihood.
 * - box-caption: a greedy caption of a held-out generated box after `<image>`: ROUGE-L against the
 *   exact caption, and attribute recall — the share of the reference's colour and shape words
 *   (black / yellow / blue, square / block / circle / triangle, singular or plural) that the
 *   caption contains.
 * - fashion-same: two of three photos, same kind of item or not, by likelihood.
 *
 * Ceilings (rows `probe:vit`, `probe:ids`): one-vs-rest ridge classifiers (src/eval/ridge-probe.ts)
 * on (a) the mean over all N patches of the ViT features MaVEn reads (the vision tower at its
 * feature layer), and (b) the discrete ids as a position × code one-hot. They are trained on the
 * TRAIN split (Fashion-MNIST training photos; train-split examples of each box task) and tested on
 * exactly the held-out examples of the LLM rows. For box-color and box-shape the question changes
 * the answer, so there is one probe per asked value (the shape, or colour, the question names) and
 * each test example goes to its own. fashion-same's ceiling compares the fashion-class probe's
 * classes of the two asked photos. Codebook usage: the distinct discrete codes over the held-out
 * images, as a share of the codebook.
 *
 * Chance on every accuracy row is what the best constant answer scores on those very examples
 * (the majority share of the expected answers; 1 / options when they are balanced).
 *
 * Without Fashion-MNIST (DataUnavailableError) the box rows still run and the protocol says why
 * the photo rows are missing.
 */
import { DataUnavailableError } from '../data/data-dir.ts';
import { idxImage, loadFashionMnist } from '../data/fashion-mnist.ts';
import type { RgbImage } from '../data/scene/render.ts';
import { type SceneObject, SHAPES } from '../data/scene/scene.ts';
import { COLOR_WORD } from '../data/scene/words.ts';
import { FASHION_NOUNS, fashionPhrase } from '../data/tasks/fashion.ts';
import { generateExample, grayToRgb } from '../data/tasks/registry.ts';
import { type CaptionPair, captionPair } from '../data/tasks/stage-datasets.ts';
import type { ImageSource } from '../data/tasks/task.ts';
import type { TaskExample } from '../data/tasks/types.ts';
import type { MavenModel, PreparedPrompt } from '../maven/model.ts';
import type { SelectedImage, SelectionOptions } from '../maven/patch-selection.ts';
import { ENCODING_MODES, type EncodingMode } from '../maven/sequence.ts';
import type { BenchMetric, BenchOptions, BenchPrediction, BenchRow } from './benchmarks.ts';
import { CAPTION_PROMPT, DEFAULT_PER_TASK, loadFashionTest } from './benchmarks.ts';
import { bestOption, mean, rougeL, rougeTokens } from './metrics.ts';
import { visualTokensPerImage } from './nlvr.ts';
import { selectionOptions } from './patch-strategies.ts';
import { markdownTable, pct } from './report.ts';
import { type Matrix, matrix, meanPool, oneHotIds, predictRidge, trainRidgeProbe } from './ridge-probe.ts';
import { answerCandidates } from './tasks.ts';

export const PERCEPTION_BOX_TASKS = ['box-color', 'box-shape', 'box-count', 'box-wall'] as const;
export type PerceptionBoxTask = (typeof PERCEPTION_BOX_TASKS)[number];
export const PROBE_KINDS = ['vit', 'ids'] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];

/** Row task names (each row's `task` is one of these with ` (mode)` or ` (probe:kind)` after it). */
export const FASHION_CAPTION_CHOICE = 'fashion-class/caption';
export const FASHION_QUESTION = 'fashion-class/question';
export const FASHION_CLASS = 'fashion-class';
export const FASHION_CAPTION = 'fashion-caption';
export const BOX_CAPTION = 'box-caption';
export const FASHION_SAME = 'fashion-same';
export const CODEBOOK_USAGE = 'codebook-usage';

/** Probe training sizes when not given: Fashion-MNIST training photos, and examples per box task. */
export const DEFAULT_PROBE_PHOTOS = 3000;
export const DEFAULT_PROBE_BOX_EXAMPLES = 1500;
/** Most new tokens of a photo caption ("a grayscale product photo of an ankle boot." is 10). */
export const PHOTO_CAPTION_TOKENS = 24;
/** Images per vision-program run. */
const ENCODE_BATCH = 16;

export interface PerceptionOptions extends BenchOptions {
  /** Held-out Fashion photos (default 2 × the per-task count: 200). */
  photos?: number;
  /** Fashion-MNIST training photos for the probes; loaded from the data folder when not given. */
  fashionTrain?: ImageSource;
  /** Probe training set sizes (defaults DEFAULT_PROBE_PHOTOS, DEFAULT_PROBE_BOX_EXAMPLES). */
  probePhotos?: number;
  probeBoxExamples?: number;
}

/** What `runBenchmark` completes into a BenchResult. */
export interface PerceptionPartial {
  protocol: string;
  rows: BenchRow[];
  predictions: BenchPrediction[];
  /** Mean accuracy of the hybrid-mode LLM rows (the model as it is used). */
  headline: { metric: BenchMetric; value: number };
  /** Hybrid-mode means (the protocol gives every mode's). */
  visualTokensPerImage: number;
  promptTokens: number;
}

/** `box-color (hybrid)`, `box-color (probe:vit)`. */
export function perceptionTask(task: string, variant: EncodingMode | `probe:${ProbeKind}`): string {
  return `${task} (${variant})`;
}

/**
 * Fashion classes a text names, as whole words, longest name first so that "T-shirt or top" is
 * class 0 and not also "shirt" (class 6). Sorted class indices.
 */
export function namedFashionClasses(text: string): number[] {
  const words = rougeTokens(text);
  const names = FASHION_NOUNS.map((noun, label) => ({ label, words: rougeTokens(noun) })).sort(
    (a, b) => b.words.length - a.words.length,
  );
  const found = new Set<number>();
  for (let i = 0; i < words.length; ) {
    const hit = names.find((n) => n.words.every((w, k) => words[i + k] === w));
    if (hit) {
      found.add(hit.label);
      i += hit.words.length;
    } else i++;
  }
  return [...found].sort((a, b) => a - b);
}

const COLOR_WORDS: readonly string[] = Object.values(COLOR_WORD);
/** Shape words of the captions: the shapes, and "block" (squares in towers). */
const SHAPE_WORDS: readonly string[] = [...SHAPES, 'block'];

/** The colour and shape words of a caption, plurals made singular ("circles" → "circle"). */
export function attributeWords(text: string): Set<string> {
  const out = new Set<string>();
  for (const w of rougeTokens(text)) {
    const singular = w.endsWith('s') && SHAPE_WORDS.includes(w.slice(0, -1)) ? w.slice(0, -1) : w;
    if (COLOR_WORDS.includes(singular) || SHAPE_WORDS.includes(singular)) out.add(singular);
  }
  return out;
}

/** Share of the reference's colour and shape words found in the caption; null when it has none. */
export function attributeRecall(caption: string, reference: string): number | null {
  const wanted = attributeWords(reference);
  if (wanted.size === 0) return null;
  const said = attributeWords(caption);
  return [...wanted].filter((w) => said.has(w)).length / wanted.size;
}

/**
 * The colour–shape pairs a caption names: a colour word right before a shape word ("a small blue
 * circle", "two black squares", "a single yellow block"), as "blue circle" (blocks are squares).
 */
export function colourShapePairs(text: string): string[] {
  const words = rougeTokens(text);
  const pairs: string[] = [];
  for (let i = 0; i + 1 < words.length; i++) {
    const next = words[i + 1];
    const singular = next.endsWith('s') && SHAPE_WORDS.includes(next.slice(0, -1)) ? next.slice(0, -1) : next;
    if (COLOR_WORDS.includes(words[i]) && SHAPE_WORDS.includes(singular))
      pairs.push(`${words[i]} ${singular === 'block' ? 'square' : singular}`);
  }
  return pairs;
}

/**
 * Share of the colour–shape pairs a caption names that are objects of the box; null when it names
 * none. Attribute recall cannot see binding: "a blue circle and a black square" for a black circle
 * and a blue square recalls every word and names no true pair.
 */
export function pairPrecision(caption: string, objects: readonly SceneObject[]): number | null {
  const named = colourShapePairs(caption);
  if (named.length === 0) return null;
  const present = new Set(objects.map((o) => `${COLOR_WORD[o.color]} ${o.type}`));
  return named.filter((p) => present.has(p)).length / named.length;
}

const SHAPE_NOUNS: Record<string, string> = {
  square: 'square',
  block: 'square',
  circle: 'circle',
  triangle: 'triangle',
};

/**
 * What a box-color / box-shape question asks about (the shape or colour it names), which decides
 * the answer: the key of the probe that answers it. Other tasks: one probe for all.
 */
export function askedValue(ex: Pick<TaskExample, 'task' | 'prompt'>): string {
  if (ex.task === 'box-color') {
    const noun = ex.prompt.match(/What color is the (\w+)\?/)?.[1];
    const shape = noun === undefined ? undefined : SHAPE_NOUNS[noun];
    if (shape === undefined)
      throw new Error(`box-color: no shape in the question ${JSON.stringify(ex.prompt)}`);
    return shape;
  }
  if (ex.task === 'box-shape') {
    const color = ex.prompt.match(/What shape is the (\w+) object\?/)?.[1];
    if (color === undefined || !COLOR_WORDS.includes(color))
      throw new Error(`box-shape: no colour in the question ${JSON.stringify(ex.prompt)}`);
    return color;
  }
  return 'all';
}

/** The two photos a fashion-same question compares (0-based, from "Are images 1 and 3 …"). */
export function comparedImages(prompt: string): [number, number] {
  const m = prompt.match(/Are images (\d+) and (\d+)/);
  if (!m) throw new Error(`fashion-same: no "Are images A and B" in ${JSON.stringify(prompt)}`);
  return [Number(m[1]) - 1, Number(m[2]) - 1];
}

/** The best constant answer's score on these examples: the majority share of the expected answers. */
export function majorityShare(expected: readonly string[]): number {
  const counts = new Map<string, number>();
  for (const e of expected) counts.set(e, (counts.get(e) ?? 0) + 1);
  return expected.length ? Math.max(...counts.values()) / expected.length : 0;
}

/** Fashion-MNIST training photos; throws DataUnavailableError when absent. */
export async function loadFashionTrain(options: { dataDir?: string } = {}): Promise<ImageSource> {
  const data = await loadFashionMnist('train', options);
  return {
    count: data.images.count,
    image: (i: number) => idxImage(data.images, i),
    label: (i: number) => data.labels[i],
    name: 'fashion-mnist/train',
  };
}

/** A source, or the DataUnavailableError message when its files are absent. */
async function optionalSource(
  given: ImageSource | undefined,
  load: () => Promise<ImageSource>,
): Promise<ImageSource | string> {
  if (given) return given;
  try {
    return await load();
  } catch (e) {
    if (e instanceof DataUnavailableError) return e.message;
    throw e;
  }
}

function photoOf(source: ImageSource, i: number): RgbImage {
  return grayToRgb(source.cols ?? 28, source.rows ?? 28, source.image(i));
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`perception: ${name} must be a positive integer, got ${n}`);
  return n;
}

/**
 * Encodes the images of `items` (whole items per run, ENCODE_BATCH images at most) and calls
 * `visit` with each item's encodings in order. A visual-token budget is spent per prompt, so then
 * each item is encoded alone.
 */
async function forEachEncoded<T>(
  model: MavenModel,
  items: readonly T[],
  imagesOf: (item: T) => readonly RgbImage[],
  encode: SelectionOptions,
  visit: (item: T, index: number, encoded: SelectedImage[]) => Promise<void>,
): Promise<void> {
  let start = 0;
  while (start < items.length) {
    let end = start + 1;
    let images = imagesOf(items[start]).length;
    while (
      encode.visualTokenBudget === undefined &&
      end < items.length &&
      images + imagesOf(items[end]).length <= ENCODE_BATCH
    )
      images += imagesOf(items[end++]).length;
    const chunk = items.slice(start, end);
    const encodings = await model.encodeImages(model.preprocessRgb(chunk.flatMap(imagesOf)), encode);
    const encoded = await model.selectPatches(encodings, encode);
    let offset = 0;
    for (const [j, item] of chunk.entries()) {
      const count = imagesOf(item).length;
      await visit(item, start + j, encoded.slice(offset, offset + count));
      offset += count;
    }
    start = end;
  }
}

/** The frozen features the probes read: mean-pooled ViT patch features, and the discrete ids. */
export interface ProbeFeatures {
  vit: Matrix;
  ids: number[][];
}

/**
 * Probe features of `images`: one run of the vision programs per batch gives the ViT patch
 * features (all N patches, the layer MaVEn projects; the same values as
 * `encodeImages`' features) and the ids, without the selector's h_EOS pass.
 */
export async function probeFeatures(
  model: MavenModel,
  images: readonly RgbImage[],
  onImages?: (count: number) => void,
): Promise<ProbeFeatures> {
  const dim = model.config.vision.hiddenSize;
  const vit = matrix(images.length, dim);
  const ids: number[][] = [];
  const batchSize = 2 * ENCODE_BATCH;
  for (let start = 0; start < images.length; start += batchSize) {
    const batch = images.slice(start, start + batchSize);
    const { features, ids: codes } = await model.encodePixels(model.preprocessRgb(batch), 'hybrid');
    const [count, tokens] = features!.shape;
    vit.data.set(meanPool(features!.data as Float32Array, count, tokens, dim).data, start * dim);
    const q = codes!.shape[1];
    const flat = codes!.data as BigInt64Array;
    for (let i = 0; i < count; i++) ids.push(Array.from(flat.subarray(i * q, (i + 1) * q), Number));
    onImages?.(count);
  }
  return { vit, ids };
}

function rowsOf(x: Matrix, indices: readonly number[]): Matrix {
  const out = matrix(indices.length, x.cols);
  indices.forEach((r, i) => {
    out.data.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), i * x.cols);
  });
  return out;
}

/** The probe input of one kind. */
function probeInput(kind: ProbeKind, f: ProbeFeatures, codebookSize: number): Matrix {
  return kind === 'vit' ? f.vit : oneHotIds(f.ids, codebookSize);
}

/**
 * Train one probe per group of training examples and predict each test example with its group's
 * probe (a test group no training example shares falls back to a probe on every training
 * example). Returns the predicted class of each test example.
 */
export function groupedProbePredictions(
  train: { x: Matrix; labels: readonly number[]; groups: readonly string[] },
  test: { x: Matrix; groups: readonly string[] },
  classes: number,
): number[] {
  const predictions = new Array<number>(test.x.rows).fill(-1);
  const testGroups = [...new Set(test.groups)];
  for (const group of testGroups) {
    let members = train.groups.flatMap((g, i) => (g === group ? [i] : []));
    if (members.length < 2) members = train.labels.map((_, i) => i);
    const probe = trainRidgeProbe(
      rowsOf(train.x, members),
      members.map((i) => train.labels[i]),
      classes,
    );
    const at = test.groups.flatMap((g, i) => (g === group ? [i] : []));
    predictRidge(probe.classifier, rowsOf(test.x, at)).forEach((p, k) => {
      predictions[at[k]] = p;
    });
  }
  return predictions;
}

async function greedyText(
  model: MavenModel,
  prepared: PreparedPrompt,
  maxNewTokens: number,
): Promise<string> {
  let text = '';
  for await (const piece of model.stream(prepared, { maxNewTokens, temperature: 0, stop: ['\n'] }))
    text += piece.text;
  return text.trim();
}

/** The fashion-class/caption candidates: " A photo of a T-shirt or top." … */
export function photoCaptionCandidates(): string[] {
  return FASHION_NOUNS.map((_, c) => ` A photo of ${fashionPhrase(c)}.`);
}

/** The held-out examples every row of a task shares (photo sets empty without Fashion-MNIST). */
interface HeldOut {
  photos: TaskExample[];
  same: TaskExample[];
  boxes: Record<PerceptionBoxTask, TaskExample[]>;
  captions: CaptionPair[];
}

const VARIANT_ORDER: readonly string[] = [...ENCODING_MODES, 'probe:vit', 'probe:ids'];
const TASK_ORDER: readonly string[] = [
  FASHION_CAPTION_CHOICE,
  FASHION_QUESTION,
  FASHION_CLASS,
  FASHION_CAPTION,
  ...PERCEPTION_BOX_TASKS,
  BOX_CAPTION,
  FASHION_SAME,
  CODEBOOK_USAGE,
];

/** Rows and predictions as they are measured; `rows()` puts them in reading order. */
class RowCollector {
  readonly predictions: BenchPrediction[] = [];
  private readonly specs: { order: [number, number]; row: BenchRow }[] = [];

  /** `order`: where the row goes within its task (the variant's place, or later). */
  add(task: string, order: number, row: BenchRow): void {
    this.specs.push({ order: [TASK_ORDER.indexOf(task), order], row });
  }

  /** An accuracy row from its predictions (kept too); chance is the best constant answer's score. */
  accuracy(category: string, task: string, variant: string, predictions: BenchPrediction[]): void {
    this.predictions.push(...predictions);
    this.add(task, VARIANT_ORDER.indexOf(variant), {
      category,
      task: `${task} (${variant})`,
      metric: 'accuracy',
      examples: predictions.length,
      value: mean(predictions.map((p) => (p.correct ? 1 : 0))),
      chance: majorityShare(predictions.map((p) => p.expected)),
    });
  }

  /** Grouped by task (in TASK_ORDER), each task's modes then its probes. */
  rows(): BenchRow[] {
    return [...this.specs]
      .sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1])
      .map((s) => s.row);
  }
}

/** Visual tokens per image and prompt slots of every LLM question of one mode. */
interface ModeCost {
  visual: number[];
  prompt: number[];
}

/** The LLM rows of one encoding mode. */
async function llmRows(
  model: MavenModel,
  mode: EncodingMode,
  heldOut: HeldOut,
  options: PerceptionOptions,
  out: RowCollector,
  tick: () => void,
): Promise<ModeCost> {
  const encode: SelectionOptions = { ...selectionOptions(options), mode };
  const rowTask = (task: string) => perceptionTask(task, mode);
  const seen: ModeCost = { visual: [], prompt: [] };
  const cost = (prepared: PreparedPrompt) => {
    const visual = visualTokensPerImage(prepared.images);
    seen.visual.push(visual);
    seen.prompt.push(prepared.sequence.slots.length);
    return { promptTokens: prepared.sequence.slots.length, visualTokens: visual };
  };
  /** An example's options scored by summed log-likelihood on its encoded images. */
  const scoreExample = async (
    ex: TaskExample,
    encoded: SelectedImage[],
    task: string,
    i: number,
  ): Promise<BenchPrediction> => {
    const prepared = model.prepareEncoded(ex.prompt, encoded);
    const candidates = answerCandidates(ex);
    const raw = await model.scorePrepared(
      prepared,
      candidates.map((c) => ` ${c}`),
    );
    const chosen = bestOption(raw, 'sum');
    return {
      task: rowTask(task),
      category: ex.category,
      id: `heldout/${i}`,
      expected: ex.answer,
      predicted: candidates[chosen],
      correct: chosen === ex.answerIndex,
      scores: raw.map((r) => r.logLikelihood),
      ...cost(prepared),
    };
  };
  /** A likelihood row: every example of `examples` scored on its own images. */
  const likelihoodRow = async (task: string, examples: readonly TaskExample[]) => {
    const predictions: BenchPrediction[] = [];
    await forEachEncoded(
      model,
      examples,
      (ex) => ex.images,
      encode,
      async (ex, i, encoded) => {
        predictions.push(await scoreExample(ex, encoded, task, i));
        tick();
      },
    );
    out.accuracy(categoryOf(examples), task, mode, predictions);
  };

  const { photos } = heldOut;
  if (photos.length) {
    const captionCandidates = photoCaptionCandidates();
    const byCaption: BenchPrediction[] = [];
    const byQuestion: BenchPrediction[] = [];
    const byGeneration: BenchPrediction[] = [];
    await forEachEncoded(
      model,
      photos,
      (ex) => ex.images,
      encode,
      async (ex, i, encoded) => {
        const photoClass = ex.answerIndex!;
        const captionPrompt = model.prepareEncoded(CAPTION_PROMPT, encoded);
        const promptCost = cost(captionPrompt);
        const raw = await model.scorePrepared(captionPrompt, captionCandidates);
        const chosen = bestOption(raw, 'sum');
        byCaption.push({
          task: rowTask(FASHION_CAPTION_CHOICE),
          category: ex.category,
          id: `heldout/${i}`,
          expected: ex.answer,
          predicted: fashionPhrase(chosen),
          correct: chosen === photoClass,
          scores: raw.map((r) => r.logLikelihood),
          ...promptCost,
        });
        byQuestion.push(await scoreExample(ex, encoded, FASHION_QUESTION, i));
        const text = await greedyText(model, captionPrompt, options.maxCaptionTokens ?? PHOTO_CAPTION_TOKENS);
        const named = namedFashionClasses(text);
        byGeneration.push({
          task: rowTask(FASHION_CAPTION),
          category: 'image-captioning',
          id: `heldout/${i}`,
          expected: ex.answer,
          predicted: named.map(fashionPhrase).join(' + '),
          correct: named.length === 1 && named[0] === photoClass,
          generated: text,
          ...promptCost,
        });
        tick();
      },
    );
    out.accuracy(categoryOf(photos), FASHION_CAPTION_CHOICE, mode, byCaption);
    out.accuracy(categoryOf(photos), FASHION_QUESTION, mode, byQuestion);
    out.accuracy('image-captioning', FASHION_CAPTION, mode, byGeneration);
  }

  for (const task of PERCEPTION_BOX_TASKS) await likelihoodRow(task, heldOut.boxes[task]);

  const rouge: number[] = [];
  const recall: number[] = [];
  const precision: number[] = [];
  await forEachEncoded(
    model,
    heldOut.captions,
    (pair) => [pair.image],
    encode,
    async (pair, i, encoded) => {
      const prepared = model.prepareEncoded(CAPTION_PROMPT, encoded);
      const text = await greedyText(model, prepared, options.maxCaptionTokens ?? 64);
      const score = rougeL(text, pair.caption).f;
      const attributes = attributeRecall(text, pair.caption);
      const pairs = pair.objects ? pairPrecision(text, pair.objects) : null;
      rouge.push(score);
      if (attributes !== null) recall.push(attributes);
      if (pairs !== null) precision.push(pairs);
      out.predictions.push({
        task: rowTask(BOX_CAPTION),
        category: 'image-captioning',
        id: `heldout/${i}`,
        expected: pair.caption,
        predicted: text,
        rougeL: score,
        ...(attributes === null ? {} : { attributeRecall: attributes }),
        ...(pairs === null ? {} : { pairPrecision: pairs }),
        ...cost(prepared),
      });
      tick();
    },
  );
  const modeIndex = VARIANT_ORDER.indexOf(mode);
  const captionRow = { category: 'image-captioning', task: rowTask(BOX_CAPTION) };
  out.add(BOX_CAPTION, modeIndex, {
    ...captionRow,
    metric: 'rouge-l',
    examples: rouge.length,
    value: mean(rouge),
  });
  // The attribute rows after all three ROUGE-L rows.
  out.add(BOX_CAPTION, ENCODING_MODES.length + modeIndex, {
    ...captionRow,
    metric: 'attribute-recall',
    examples: recall.length,
    value: mean(recall),
  });
  // Over the captions that name a pair at all (none may, from an untrained model).
  if (precision.length > 0)
    out.add(BOX_CAPTION, 2 * ENCODING_MODES.length + modeIndex, {
      ...captionRow,
      metric: 'pair-precision',
      examples: precision.length,
      value: mean(precision),
    });

  if (heldOut.same.length) await likelihoodRow(FASHION_SAME, heldOut.same);
  return seen;
}

/** Distinct discrete codes over the held-out images the probes encoded. */
interface CodesSeen {
  boxes: Set<number>;
  photos: Set<number>;
  boxImages: number;
  photoImages: number;
}

/** The probe rows (ceilings) and the codes the held-out images use. */
async function probeRows(
  model: MavenModel,
  heldOut: HeldOut,
  train: { fashion: ImageSource | undefined; photos: number; boxExamples: number; seed: number },
  out: RowCollector,
  tick: (images: number) => void,
): Promise<CodesSeen> {
  const codebookSize = model.config.seed.codebookSize;
  const patches = (model.config.vision.imageSize / model.config.vision.patchSize) ** 2;
  const codes: CodesSeen = { boxes: new Set(), photos: new Set(), boxImages: 0, photoImages: 0 };
  const row = (
    task: string,
    kind: ProbeKind,
    examples: readonly TaskExample[],
    predicted: readonly string[],
  ) =>
    out.accuracy(
      categoryOf(examples),
      task,
      `probe:${kind}`,
      examples.map((ex, i) => ({
        task: perceptionTask(task, `probe:${kind}`),
        category: ex.category,
        id: `heldout/${i}`,
        expected: ex.answer,
        predicted: predicted[i],
        correct: predicted[i] === ex.answer,
        promptTokens: 0,
        visualTokens: kind === 'vit' ? patches : model.config.seed.qformer.numQueryTokens,
      })),
    );

  const { photos, same } = heldOut;
  if (train.fashion && photos.length) {
    const source = train.fashion;
    const count = Math.min(train.photos, source.count);
    const trainFeatures = await probeFeatures(
      model,
      Array.from({ length: count }, (_, i) => photoOf(source, i)),
      tick,
    );
    const trainLabels = Array.from({ length: count }, (_, i) => source.label(i));
    const testFeatures = await probeFeatures(
      model,
      photos.map((ex) => ex.images[0]),
      tick,
    );
    for (const ids of testFeatures.ids) for (const c of ids) codes.photos.add(c);
    codes.photoImages = photos.length;
    // The two compared photos of each fashion-same question, in order.
    const pairFeatures = await probeFeatures(
      model,
      same.flatMap((ex) => comparedImages(ex.prompt).map((k) => ex.images[k])),
      tick,
    );
    const classNames = answerCandidates(photos[0]);
    for (const kind of PROBE_KINDS) {
      const probe = trainRidgeProbe(
        probeInput(kind, trainFeatures, codebookSize),
        trainLabels,
        FASHION_NOUNS.length,
      );
      const predicted = predictRidge(probe.classifier, probeInput(kind, testFeatures, codebookSize));
      row(
        FASHION_CLASS,
        kind,
        photos,
        predicted.map((c) => classNames[c]),
      );
      if (same.length) {
        const pair = predictRidge(probe.classifier, probeInput(kind, pairFeatures, codebookSize));
        row(
          FASHION_SAME,
          kind,
          same,
          same.map((_, i) => (pair[2 * i] === pair[2 * i + 1] ? 'yes' : 'no')),
        );
      }
    }
  }

  for (const task of PERCEPTION_BOX_TASKS) {
    const trainExamples = Array.from({ length: train.boxExamples }, (_, i) =>
      generateExample(task, 'train', i, { seed: train.seed }),
    );
    const trainFeatures = await probeFeatures(
      model,
      trainExamples.map((ex) => ex.images[0]),
      tick,
    );
    const testExamples = heldOut.boxes[task];
    const testFeatures = await probeFeatures(
      model,
      testExamples.map((ex) => ex.images[0]),
      tick,
    );
    for (const ids of testFeatures.ids) for (const c of ids) codes.boxes.add(c);
    codes.boxImages += testExamples.length;
    const candidates = answerCandidates(testExamples[0]);
    for (const kind of PROBE_KINDS) {
      const predicted = groupedProbePredictions(
        {
          x: probeInput(kind, trainFeatures, codebookSize),
          labels: trainExamples.map((ex) => ex.answerIndex!),
          groups: trainExamples.map(askedValue),
        },
        { x: probeInput(kind, testFeatures, codebookSize), groups: testExamples.map(askedValue) },
        candidates.length,
      );
      row(
        task,
        kind,
        testExamples,
        predicted.map((c) => candidates[c]),
      );
    }
  }
  return codes;
}

export async function perceptionBench(
  model: MavenModel,
  options: PerceptionOptions = {},
): Promise<PerceptionPartial> {
  const perTask = positiveInteger(options.limit, DEFAULT_PER_TASK, 'limit');
  const photoCount = positiveInteger(options.photos, 2 * perTask, 'photos');
  const probePhotos = positiveInteger(options.probePhotos, DEFAULT_PROBE_PHOTOS, 'probePhotos');
  const probeBox = positiveInteger(options.probeBoxExamples, DEFAULT_PROBE_BOX_EXAMPLES, 'probeBoxExamples');
  const seed = options.seed ?? 0;
  const codebookSize = model.config.seed.codebookSize;
  const notes: string[] = [];

  const test = await optionalSource(options.fashion, () => loadFashionTest(options));
  const fashion = typeof test === 'string' ? undefined : test;
  if (typeof test === 'string') notes.push(`Fashion-MNIST rows skipped: ${test}`);
  const trainSource = fashion
    ? await optionalSource(options.fashionTrain, () => loadFashionTrain(options))
    : undefined;
  const fashionTrain = typeof trainSource === 'string' ? undefined : trainSource;
  if (typeof trainSource === 'string') notes.push(`Fashion-MNIST probes skipped: ${trainSource}`);

  const heldOut: HeldOut = {
    photos: fashion
      ? Array.from({ length: photoCount }, (_, i) =>
          generateExample('fashion-class', 'heldout', i, { seed, fashion }),
        )
      : [],
    same: fashion
      ? Array.from({ length: perTask }, (_, i) =>
          generateExample('fashion-same', 'heldout', i, { seed, fashion }),
        )
      : [],
    boxes: Object.fromEntries(
      PERCEPTION_BOX_TASKS.map((task) => [
        task,
        Array.from({ length: perTask }, (_, i) => generateExample(task, 'heldout', i, { seed })),
      ]),
    ) as Record<PerceptionBoxTask, TaskExample[]>,
    captions: Array.from({ length: perTask }, (_, i) => captionPair(i, { seed, split: 'heldout' })),
  };
  const { photos, same } = heldOut;
  const trainPhotos = fashionTrain ? Math.min(probePhotos, fashionTrain.count) : 0;

  // Progress: one step per LLM question and per image the probes encode.
  const llmPerMode = photos.length + same.length + (PERCEPTION_BOX_TASKS.length + 1) * perTask;
  const probeImages =
    (trainPhotos ? trainPhotos + photos.length + 2 * same.length : 0) +
    PERCEPTION_BOX_TASKS.length * (probeBox + perTask);
  const total = ENCODING_MODES.length * llmPerMode + probeImages;
  let done = 0;
  const tick = (n = 1) => {
    done += n;
    options.onProgress?.(done, total);
  };

  const out = new RowCollector();
  const costs = new Map<EncodingMode, ModeCost>();
  for (const mode of ENCODING_MODES) costs.set(mode, await llmRows(model, mode, heldOut, options, out, tick));
  const codes = await probeRows(
    model,
    heldOut,
    { fashion: fashionTrain, photos: probePhotos, boxExamples: probeBox, seed },
    out,
    tick,
  );
  const usage = (source: 'boxes' | 'photos', seen: Set<number>, images: number, order: number) =>
    out.add(CODEBOOK_USAGE, order, {
      category: 'discrete-tokenizer',
      task: `${CODEBOOK_USAGE} (${source})`,
      metric: 'codebook-usage',
      examples: images,
      value: seen.size / codebookSize,
    });
  usage('boxes', codes.boxes, codes.boxImages, 0);
  if (codes.photoImages) usage('photos', codes.photos, codes.photoImages, 1);

  const rows = out.rows();
  const hybrid = ENCODING_MODES[0];
  const hybridAccuracy = rows.filter((r) => r.metric === 'accuracy' && r.task.endsWith(`(${hybrid})`));
  const modeCost = ENCODING_MODES.map((m) => `${m} ${mean(costs.get(m)!.visual).toFixed(1)}`).join(', ');
  const protocol = [
    `every row on held-out data, once per encoding mode (the row says which); options scored by their summed log-likelihood; captions greedy after \`<image>\` alone (fashion-caption: right when it names the photo's class and no other; box-caption: ROUGE-L F1 against the exact caption, attribute recall of its colour and shape words, and pair precision: the share of the colour–shape pairs it names ("blue circle") that are objects of the box)`,
    `${photos.length} Fashion photos, ${perTask} examples per other task`,
    `probe rows: one-vs-rest ridge classifiers (λ picked on a held-out fifth of the training split) on the mean-pooled ViT patch features (probe:vit) or the ids as a position × code one-hot (probe:ids), trained on ${trainPhotos ? `${trainPhotos} Fashion training photos and ` : ''}${probeBox} train-split examples per box task (box-color / box-shape: one probe per asked shape / colour), tested on the same held-out examples; fashion-same's probe compares the fashion-class probe's classes of the two photos`,
    `codebook usage: distinct codes over the held-out images, of ${codebookSize} (boxes ${codes.boxes.size}, photos ${codes.photos.size})`,
    `chance: the majority share of the expected answers; headline: mean accuracy of the hybrid rows`,
    `visual tokens per image: ${modeCost} (the figures below: hybrid)`,
    ...notes,
  ].join('; ');
  return {
    protocol,
    rows,
    predictions: out.predictions,
    headline: { metric: 'accuracy', value: mean(hybridAccuracy.map((r) => r.value)) },
    visualTokensPerImage: mean(costs.get(hybrid)!.visual),
    promptTokens: mean(costs.get(hybrid)!.prompt),
  };
}

function categoryOf(examples: readonly TaskExample[]): string {
  return examples[0]?.category ?? '';
}

/**
 * The perception tables of several models side by side (e.g. after stage 3 and after stage 4):
 * one line per row of the first result, its value in each; rows a result lacks show '–'.
 */
export function perceptionComparison(
  results: readonly { label: string; rows: readonly BenchRow[] }[],
): string {
  if (results.length === 0) throw new Error('perceptionComparison: no results');
  const key = (r: BenchRow) => `${r.task}\u0000${r.metric}`;
  const cell = (r: BenchRow | undefined) =>
    r === undefined ? '–' : r.metric === 'rouge-l' ? r.value.toFixed(3) : pct(r.value);
  const lookups = results.map((res) => new Map(res.rows.map((r) => [key(r), r])));
  const lines = results[0].rows.map((row) => [
    row.task,
    row.metric,
    String(row.examples),
    ...lookups.map((m) => cell(m.get(key(row)))),
    row.chance === undefined ? '' : pct(row.chance),
  ]);
  return markdownTable(['task', 'metric', 'n', ...results.map((r) => r.label), 'chance'], lines);
}
