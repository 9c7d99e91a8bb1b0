/**
 * Copies a few real images for the demo into assets/samples/ (run once; the output is committed):
 * two NLVR test pictures (box order 0) with their sentences and labels, and six Fashion-MNIST
 * test photos with their classes. Licences: NLVR CC BY-SA 4.0, Fashion-MNIST MIT (see
 * assets/samples/README.md).
 *
 *   npx tsx scripts/make-demo-samples.ts
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { FASHION_CLASSES, idxImage, loadFashionMnist } from '../src/data/fashion-mnist.ts';
import { loadNlvr } from '../src/data/nlvr.ts';

const out = new URL('../assets/samples/', import.meta.url).pathname;
await mkdir(out, { recursive: true });
const { examples } = await loadNlvr('test');
const nlvr = [];
for (const ex of examples.slice(0, 2)) {
  const file = `nlvr-test-${ex.identifier}.png`;
  await copyFile(ex.imagePath(0), join(out, file));
  nlvr.push({ file, identifier: ex.identifier, sentence: ex.sentence, label: ex.label });
}
const fashion = await loadFashionMnist('test');
const photos = [];
for (const i of [0, 1, 2, 3, 4, 8]) {
  const file = `fashion-test-${i}.png`;
  const gray = idxImage(fashion.images, i);
  await sharp(gray, { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toFile(join(out, file));
  photos.push({ file, index: i, label: fashion.labels[i], className: FASHION_CLASSES[fashion.labels[i]] });
}
await writeFile(join(out, 'samples.json'), `${JSON.stringify({ nlvr, fashion: photos }, null, 2)}\n`);
console.log(`wrote ${nlvr.length} NLVR pictures and ${photos.length} Fashion-MNIST photos to ${out}`);
