/**
 * Greedy answers of a float32 model and its quantized copies (`maven quantize`) on the first N
 * NLVR test sentences (box order 0, the prompt `maven eval` uses), and how many are identical.
 * `maven eval --bench nlvr-test` scores "true" against "false" by likelihood; this compares what
 * the models generate.
 *
 *   npx tsx scripts/quantization-greedy.ts --model DIR --quantized Q1[,Q2...] [--limit 200] [--data DIR]
 */
import { parseArgs } from 'node:util';
import { loadNlvr, loadNlvrImages } from '../src/data/nlvr.ts';
import { nlvrPrompt } from '../src/eval/nlvr.ts';
import type { MavenModel } from '../src/maven/model.ts';
import { loadMaven } from '../src/node/model-directory.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/maven-tiny' },
    quantized: { type: 'string' },
    limit: { type: 'string', default: '200' },
    data: { type: 'string' },
  },
});
if (!values.quantized) throw new Error('--quantized DIR[,DIR...] is required');
const dirs = [values.model, ...values.quantized.split(',')];
const models: MavenModel[] = [];
for (const dir of dirs) models.push(await loadMaven(dir));
const { examples } = await loadNlvr('test', { dataDir: values.data });
const chosen = examples.slice(0, Number(values.limit));
const answers: string[][] = dirs.map(() => []);
for (const ex of chosen) {
  const boxes = await loadNlvrImages(ex, 0);
  for (const [i, model] of models.entries()) {
    const images = model.preprocessRgb(boxes.map((b) => ({ width: b.width, height: b.height, rgb: b.data })));
    const { text } = await model.generate(nlvrPrompt(ex.sentence), images, { maxNewTokens: 8 });
    answers[i].push(text);
  }
}
console.log(`${chosen.length} NLVR test sentences (box order 0), greedy answers, max 8 new tokens`);
for (const [i, dir] of dirs.entries()) {
  const same = answers[i].filter((a, j) => a === answers[0][j]).length;
  const right = answers[i].filter((a, j) => a === String(chosen[j].label)).length;
  console.log(`${dir}: ${same} of ${chosen.length} identical to ${dirs[0]}; ${right} answer the label`);
  for (const [j, a] of answers[i].entries()) {
    if (a !== answers[0][j])
      console.log(`  ${chosen[j].identifier}: ${JSON.stringify(answers[0][j])} → ${JSON.stringify(a)}`);
  }
}
