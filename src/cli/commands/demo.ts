/**
 * `maven demo` (what `npm start` runs): the embedded default model answers single-image
 * questions (what is in a Fashion-MNIST photo, how many objects are in a box) and multi-image
 * questions — two real NLVR pictures, generated what-changed / motion scenes, Fashion-MNIST
 * photos — printing each answer with the expected one and the visual tokens per image, and
 * writes an HTML page showing every image with its kept patches highlighted and its discrete ids.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { cropNlvrBoxes } from '../../data/nlvr.ts';
import { generateExample } from '../../data/tasks/registry.ts';
import type { TaskExample } from '../../data/tasks/types.ts';
import { nlvrPrompt } from '../../eval/nlvr.ts';
import { answerCandidates } from '../../eval/tasks.ts';
import type { MavenModel, PreparedPrompt } from '../../maven/model.ts';
import type { SelectionOptions } from '../../maven/patch-selection.ts';
import { ENCODING_MODES, type EncodingMode } from '../../maven/sequence.ts';
import type { DecodedImage } from '../../models/image.ts';
import { loadMaven } from '../../node/model-directory.ts';
import { renderPatchOverlay } from '../../node/render-patch-overlay.ts';
import { type Command, numberOption, UsageError } from '../command.ts';
import { DEFAULT_MODEL_DIR } from '../default-model.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SAMPLES = join(ROOT, 'assets', 'samples');

const usage = `usage: maven demo [--model DIR] [--out FILE.html] [--mode MODE] [--keep-ratio R]

Answers a handful of multi-image questions with the model (default: the embedded
models/maven-tiny), prints answers and visual-token counts, and writes an HTML page (default
demo.html) showing each image with the patches the selector kept.`;

interface Question {
  title: string;
  prompt: string;
  images: DecodedImage[];
  options: string[];
  expected: string;
  source: string;
  /**
   * How options are compared: 'mean' log-likelihood per token (SEED-Bench's protocol, the
   * multi-image questions) or the 'sum' (the option's likelihood; the single-image questions,
   * whose options differ in length: "a T-shirt or top" against "a bag").
   */
  scoring: 'mean' | 'sum';
}

interface Answered extends Question {
  answer: string;
  prepared: PreparedPrompt;
}

async function rgbOf(
  path: string,
): Promise<{ pixels: Uint8Array; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  return { pixels: new Uint8Array(data), width: info.width, height: info.height, channels: info.channels };
}

function fromTask(ex: TaskExample, title: string): Question {
  return {
    title,
    prompt: ex.prompt,
    images: ex.images,
    options: answerCandidates(ex),
    expected: ex.answer,
    source: `generated (${ex.task}, held-out #${ex.index})`,
    scoring: ex.images.length === 1 ? 'sum' : 'mean',
  };
}

async function questions(): Promise<Question[]> {
  const samples = JSON.parse(await readFile(join(SAMPLES, 'samples.json'), 'utf8')) as {
    nlvr: { file: string; sentence: string; label: boolean; identifier: string }[];
    fashion: { file: string; label: number; className: string }[];
  };
  const photos = await Promise.all(
    samples.fashion.map(async (f) => {
      const { pixels, width } = await rgbOf(join(SAMPLES, f.file));
      const gray = new Uint8Array(width * width);
      for (let i = 0; i < gray.length; i++) gray[i] = pixels[i * (pixels.length / gray.length)];
      return { gray, label: f.label };
    }),
  );
  const fashion = {
    count: photos.length,
    image: (i: number) => photos[i].gray,
    label: (i: number) => photos[i].label,
    name: 'assets/samples',
  };
  const out: Question[] = [
    {
      ...fromTask(generateExample('fashion-class', 'heldout', 0, { fashion }), 'One photo: what is it?'),
      source: 'Fashion-MNIST test photo (MIT)',
    },
    fromTask(generateExample('box-count', 'heldout', 0), 'One box: how many objects?'),
  ];
  for (const s of samples.nlvr) {
    const png = await rgbOf(join(SAMPLES, s.file));
    const boxes = cropNlvrBoxes(png.pixels, png.width, png.height, png.channels, s.file);
    out.push({
      title: `NLVR: “${s.sentence}”`,
      prompt: nlvrPrompt(s.sentence),
      images: boxes.map((b) => ({ width: b.width, height: b.height, rgb: b.data })),
      options: ['true', 'false'],
      expected: String(s.label),
      source: `NLVR test ${s.identifier} (CC BY-SA 4.0)`,
      scoring: 'mean',
    });
  }
  out.push(fromTask(generateExample('what-changed', 'heldout', 0), 'What changed?'));
  out.push(fromTask(generateExample('motion-direction', 'heldout', 1), 'Which way did it move?'));
  out.push(fromTask(generateExample('nlvr-statement', 'heldout', 2), 'A generated NLVR-style statement'));
  out.push({
    ...fromTask(generateExample('fashion-which', 'heldout', 0, { fashion }), 'Which image shows …?'),
    source: 'Fashion-MNIST test photos (MIT)',
  });
  return out;
}

async function answer(model: MavenModel, q: Question, options: SelectionOptions): Promise<Answered> {
  const prepared = await model.prepare(q.prompt, model.preprocessRgb(q.images), options);
  const scores = await model.scorePrepared(
    prepared,
    q.options.map((o) => ` ${o}`),
  );
  const score = (s: (typeof scores)[number]) => (q.scoring === 'sum' ? s.logLikelihood : s.meanLogLikelihood);
  let best = 0;
  scores.forEach((s, i) => {
    if (score(s) > score(scores[best])) best = i;
  });
  return { ...q, answer: q.options[best], prepared };
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);

async function page(model: MavenModel, answered: Answered[], mode: EncodingMode): Promise<string> {
  const sections: string[] = [];
  for (const a of answered) {
    const figures: string[] = [];
    for (const [i, img] of a.images.entries()) {
      const enc = a.prepared.images[i];
      const kept = new Uint8Array(enc.totalPatches);
      for (const p of enc.keptPatches) kept[p] = 1;
      const png = await renderPatchOverlay(img, { rows: enc.grid, cols: enc.grid }, kept, { size: 192 });
      figures.push(
        `<figure><img src="data:image/png;base64,${Buffer.from(png).toString('base64')}" alt="image ${i + 1}"><figcaption>image ${i + 1}: ${enc.keptPatches.length}/${enc.totalPatches} patches kept<br><code>${enc.discreteIds.join(' ')}</code></figcaption></figure>`,
      );
    }
    const ok = a.answer === a.expected;
    sections.push(`<section>
<h2>${escapeHtml(a.title)}</h2>
<p class="source">${escapeHtml(a.source)}</p>
<div class="images">${figures.join('')}</div>
<pre>${escapeHtml(a.prompt)}</pre>
<p>Options: ${a.options.map((o) => `<code>${escapeHtml(o)}</code>`).join(' ')}</p>
<p class="${ok ? 'right' : 'wrong'}">Model: <b>${escapeHtml(a.answer)}</b> — expected <b>${escapeHtml(a.expected)}</b> ${ok ? '✓' : '✗'}</p>
<p class="tokens">Prompt: ${a.prepared.sequence.slots.length} tokens (${mode})</p>
</section>`);
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MaVEn demo — ${escapeHtml(model.config.name)}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
section { border-top: 1px solid #ddd; padding: 1em 0; }
.images { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 192px; } figure img { width: 192px; height: 192px; image-rendering: pixelated; border: 1px solid #ccc; }
figcaption { font-size: 12px; color: #555; } figcaption code { word-break: normal; overflow-wrap: normal; white-space: normal; }
pre { background: #f6f6f6; padding: .6em; white-space: pre-wrap; }
.right { color: #0a6b2e; } .wrong { color: #a01818; } .source, .tokens { color: #666; font-size: 13px; }
</style></head><body>
<h1>MaVEn demo: ${escapeHtml(model.config.name)}</h1>
<p>Each image is shown with the patches the selector kept (bright, outlined) and the ones it dropped (dark); the numbers under it are its discrete codebook ids. Answers are the option with the highest log-likelihood: summed over its tokens for the single-image questions, length-normalised (per token) for the multi-image ones.</p>
${sections.join('\n')}
</body></html>
`;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'answer sample multi-image questions and write an HTML page of what the model kept',
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        out: { type: 'string' },
        mode: { type: 'string' },
        'keep-ratio': { type: 'string' },
      },
    });
    const mode = (values.mode ?? 'hybrid') as EncodingMode;
    if (!ENCODING_MODES.includes(mode))
      throw new UsageError(`--mode must be one of ${ENCODING_MODES.join(', ')}`);
    const options = {
      mode,
      keepRatio: numberOption(values['keep-ratio'], 'keep-ratio', (n) => n > 0 && n <= 1),
    };
    const model = await loadMaven(values.model ?? DEFAULT_MODEL_DIR, {}, { weightsOnDisk: true });
    const answered: Answered[] = [];
    for (const q of await questions()) {
      const a = await answer(model, q, options);
      answered.push(a);
      console.log(`\n${a.title}   [${a.source}]`);
      console.log(`  model: ${a.answer}   expected: ${a.expected}   ${a.answer === a.expected ? '✓' : '✗'}`);
      a.prepared.images.forEach((e, i) => {
        console.log(
          `  image ${i + 1}: ${e.discreteIds.length} discrete tokens, ${e.keptPatches.length}/${e.totalPatches} patches kept`,
        );
      });
    }
    const tally = (group: Answered[]) =>
      `${group.filter((a) => a.answer === a.expected).length}/${group.length}`;
    const single = answered.filter((a) => a.images.length === 1);
    const multi = answered.filter((a) => a.images.length > 1);
    console.log(
      `\n${tally(answered)} right (${mode}): ${tally(single)} single-image, ${tally(multi)} multi-image questions.`,
    );
    const out = values.out ?? 'demo.html';
    await writeFile(out, await page(model, answered, mode));
    console.log(`HTML page with the kept patches: ${out}`);
    return 0;
  },
};
