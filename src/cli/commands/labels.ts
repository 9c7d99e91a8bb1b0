/**
 * `maven labels`: patch pseudo-labels for the patch selector (stage 1), from exact object masks —
 * our stand-in for the paper's Grounding SAM. For NLVR: every example's three boxes, optionally
 * text-guided (only the objects the sentence mentions), as JSON lines, plus an overlay PNG of a
 * sample so a person can check them. Or, with --mask, for any binary mask image.
 */
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadNlvr, loadNlvrImages, type NlvrSplit } from '../../data/nlvr.ts';
import { nlvrPatchLabels, patchLabels } from '../../data/patch-labels.ts';
import { contactSheet } from '../../node/contact-sheet.ts';
import { decodeImage } from '../../node/decode-image.ts';
import { renderPatchOverlay } from '../../node/render-patch-overlay.ts';
import { type Command, numberOption, UsageError } from '../command.ts';

const usage = `usage: maven labels [options] --out FILE.jsonl          (NLVR boxes)
       maven labels --mask MASK.png [options]              (any binary mask; JSON to stdout)

options:
  --split dev|test     NLVR split (default dev)
  --data DIR           data folder (default $MAVEN_DATA_DIR or ../shared/data)
  --image-size N       model input side the masks are resized to (default 96, the tiny preset)
  --patch-size N       ViT patch side (default 8)
  --threshold F        a patch is 1 when its overlap fraction is > F (default 0)
  --all-objects        label every object, not only those the sentence mentions
  --limit N            only the first N examples
  --out FILE           JSON lines: {identifier, box, sentence, grid, selected, labels, fractions}
  --overlay FILE.png   also draw the labels of one example over its three boxes
  --sample ID          which example to draw (default: the first)`;

export const labelsCommand: Command = {
  name: 'labels',
  summary: 'patch pseudo-labels from object masks (NLVR, or any mask image)',
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        split: { type: 'string' },
        data: { type: 'string' },
        'image-size': { type: 'string' },
        'patch-size': { type: 'string' },
        threshold: { type: 'string' },
        'all-objects': { type: 'boolean' },
        limit: { type: 'string' },
        out: { type: 'string' },
        overlay: { type: 'string' },
        sample: { type: 'string' },
        mask: { type: 'string' },
      },
    });
    const positive = (n: number) => Number.isInteger(n) && n > 0;
    const grid = {
      imageSize: numberOption(values['image-size'], 'image-size', positive) ?? 96,
      patchSize: numberOption(values['patch-size'], 'patch-size', positive) ?? 8,
      threshold: numberOption(values.threshold, 'threshold', (n) => n >= 0 && n < 1) ?? 0,
    };
    if (grid.imageSize % grid.patchSize !== 0)
      throw new UsageError('--image-size must be a multiple of --patch-size');

    if (values.mask) {
      const img = await decodeImage(values.mask);
      const mask = new Uint8Array(img.width * img.height);
      for (let i = 0; i < mask.length; i++)
        mask[i] = img.rgb[3 * i] | img.rgb[3 * i + 1] | img.rgb[3 * i + 2] ? 1 : 0;
      const r = patchLabels(mask, img.width, img.height, grid);
      console.log(
        JSON.stringify({
          mask: values.mask,
          grid: r.grid,
          labels: [...r.labels],
          fractions: [...r.fractions].map((f) => +f.toFixed(4)),
        }),
      );
      return 0;
    }

    const split = (values.split ?? 'dev') as NlvrSplit;
    if (split !== 'dev' && split !== 'test') throw new UsageError('--split must be dev or test');
    if (!values.out && !values.overlay) throw new UsageError(`give --out and/or --overlay\n\n${usage}`);
    const { examples, errors } = await loadNlvr(split, { dataDir: values.data });
    for (const e of errors) console.error(`skipped ${e.file}:${e.line}: ${e.message}`);
    const limit = numberOption(values.limit, 'limit', positive) ?? examples.length;
    const chosen = examples.slice(0, limit);
    const textGuided = !values['all-objects'];

    if (values.out) {
      const out = createWriteStream(values.out);
      let positives = 0;
      let patches = 0;
      for (const [i, ex] of chosen.entries()) {
        for (let box = 0; box < 3; box++) {
          const r = nlvrPatchLabels(ex, box, { ...grid, textGuided });
          positives += r.labels.reduce((a, b) => a + b, 0);
          patches += r.labels.length;
          out.write(
            `${JSON.stringify({ identifier: ex.identifier, box, sentence: ex.sentence, grid: r.grid, selected: r.selected, labels: [...r.labels], fractions: [...r.fractions].map((f) => +f.toFixed(4)) })}\n`,
          );
        }
        if (process.stderr.isTTY && (i % 50 === 0 || i === chosen.length - 1)) {
          process.stderr.write(`\r${i + 1}/${chosen.length} examples`);
        }
      }
      await new Promise<void>((resolve, reject) =>
        out.end((e?: Error | null) => (e ? reject(e) : resolve())),
      );
      if (process.stderr.isTTY) process.stderr.write('\n');
      console.log(
        `${chosen.length} examples × 3 boxes → ${values.out}; ${((100 * positives) / Math.max(1, patches)).toFixed(1)}% of patches labelled 1 (${textGuided ? 'text-guided' : 'all objects'}, ${grid.imageSize / grid.patchSize}×${grid.imageSize / grid.patchSize} grid)`,
      );
    }

    if (values.overlay) {
      const ex = values.sample ? examples.find((e) => e.identifier === values.sample) : chosen[0];
      if (!ex) throw new UsageError(`no example ${values.sample} in ${split}`);
      const boxes = await loadNlvrImages(ex, 0);
      const tiles = [];
      for (let box = 0; box < 3; box++) {
        const r = nlvrPatchLabels(ex, box, { ...grid, textGuided });
        const img = boxes[box];
        const png = await renderPatchOverlay(
          { width: img.width, height: img.height, rgb: img.data },
          { rows: r.grid, cols: r.grid },
          r.labels,
          { size: 240 },
        );
        tiles.push({
          png,
          caption: `box ${box + 1}: ${r.labels.reduce((a, b) => a + b, 0)}/${r.labels.length}`,
        });
      }
      const sheet = await contactSheet(tiles, { columns: 3, tileSize: 240 });
      await writeFile(values.overlay, sheet);
      console.log(`${ex.identifier} "${ex.sentence}" (${ex.label}) → ${values.overlay}`);
    }
    return 0;
  },
};
