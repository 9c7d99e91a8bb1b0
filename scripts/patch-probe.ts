/**
 * What single patches of a model's ViT say about the object under them: a one-vs-rest ridge
 * probe (src/eval/ridge-probe.ts) on the patch features MaVEn reads, each patch of a generated box
 * labelled with the object covering it (colour × shape, or background: `patchObjectClasses`), fitted
 * on training-split boxes and scored on held-out ones. The perception bench's probes pool the
 * patches; this one asks whether the patch the LLM would attend to names its object's shape and
 * colour (docs/training-experiments.md: an epoch of photos alone took the shape from 87 to 74 %).
 *
 *   npx tsx scripts/patch-probe.ts [--model models/maven-tiny] [--train 600] [--heldout 150]
 */
import { parseArgs } from 'node:util';
import { PATCH_CLASS_COUNT, patchObjectClasses } from '../src/data/patch-labels.ts';
import { NLVR_SHAPES } from '../src/data/shapes.ts';
import { boxQuizExample } from '../src/data/tasks/stage-datasets.ts';
import { fitRidgeClassifier, matrix, ridgeScores } from '../src/eval/ridge-probe.ts';
import { loadMaven } from '../src/node/model-directory.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/maven-tiny' },
    train: { type: 'string', default: '600' },
    heldout: { type: 'string', default: '150' },
  },
});
const model = await loadMaven(values.model);
const grid = { imageSize: model.config.vision.imageSize, patchSize: model.config.vision.patchSize };
const width = model.config.vision.hiddenSize;
/** Patch classes are 1 + colour · shapes + shape (0: background). */
const SHAPE_COUNT = NLVR_SHAPES.length;

/** Every patch of `count` boxes of `split`: its feature row and its object class. */
async function patchRows(split: 'train' | 'heldout', count: number) {
  const features: Float32Array[] = [];
  const classes: number[] = [];
  for (let start = 0; start < count; start += 32) {
    const boxes = Array.from({ length: Math.min(32, count - start) }, (_, i) =>
      boxQuizExample(start + i, { split, seed: 99 }),
    );
    const encoded = await model.encodePixels(model.preprocessRgb(boxes.map((b) => b.image)), 'hybrid');
    const f = encoded.features;
    if (!f) throw new Error('the model returned no patch features');
    const [, n] = f.shape; // [B, N, D]
    const data = f.data as Float32Array;
    boxes.forEach((box, b) => {
      const labels = patchObjectClasses(box.objects, grid).classes;
      for (let p = 0; p < n; p++) {
        features.push(data.slice((b * n + p) * width, (b * n + p + 1) * width));
        classes.push(labels[p]);
      }
    });
  }
  const m = matrix(features.length, width);
  features.forEach((row, i) => {
    m.data.set(row, i * width);
  });
  return { m, classes };
}

const train = await patchRows('train', Number(values.train));
const heldout = await patchRows('heldout', Number(values.heldout));
const probe = fitRidgeClassifier(train.m, train.classes, PATCH_CLASS_COUNT, 1e-2);
const scores = ridgeScores(probe, heldout.m).data;
let all = 0;
let objects = 0;
let rightObject = 0;
let rightColour = 0;
let rightShape = 0;
heldout.classes.forEach((truth, i) => {
  let best = 0;
  for (let c = 1; c < PATCH_CLASS_COUNT; c++)
    if (scores[i * PATCH_CLASS_COUNT + c] > scores[i * PATCH_CLASS_COUNT + best]) best = c;
  if (best === truth) all++;
  if (truth === 0) return;
  objects++;
  if (best === truth) rightObject++;
  if (best > 0 && Math.floor((best - 1) / SHAPE_COUNT) === Math.floor((truth - 1) / SHAPE_COUNT))
    rightColour++;
  if (best > 0 && (best - 1) % SHAPE_COUNT === (truth - 1) % SHAPE_COUNT) rightShape++;
});
const pct = (k: number, n: number) => `${((100 * k) / n).toFixed(1)} %`;
console.log(
  `${values.model}: ${heldout.classes.length} held-out patches of ${values.heldout} boxes (probe fitted on ${values.train}): ` +
    `class ${pct(all, heldout.classes.length)}; the ${objects} object patches: class ${pct(rightObject, objects)}, ` +
    `colour ${pct(rightColour, objects)}, shape ${pct(rightShape, objects)}`,
);
