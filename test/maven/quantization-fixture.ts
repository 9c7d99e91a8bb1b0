/** Shared by the quantization tests: the embedded model, quantized, and prompts over the sample images. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostTensor } from '../../src/engine/index.ts';
import { MavenModel } from '../../src/maven/model.ts';
import { type QuantizeOptions, quantizeMaven } from '../../src/maven/quantization.ts';
import { loadMaven } from '../../src/node/model-directory.ts';
import { preprocessImages } from '../../src/node/preprocess-images.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TINY_DIR = join(ROOT, 'models', 'maven-tiny');
const SAMPLES = join(ROOT, 'assets', 'samples');

/** Prompts in the layout the embedded model was trained on, over the repository's sample images. */
export const PROMPTS: { prompt: string; images: string[] }[] = [
  { prompt: 'Image 1: <image>\nWhat is in image 1?', images: ['fashion-test-0.png'] },
  {
    prompt: 'Image 1: <image>\nImage 2: <image>\nAre images 1 and 2 the same kind of item? Answer yes or no.',
    images: ['fashion-test-1.png', 'fashion-test-2.png'],
  },
  {
    prompt: 'Image 1: <image>\nthere is a black square touching the edge. True or false?',
    images: ['nlvr-test-1838-2.png'],
  },
  { prompt: 'Image 1: <image>\nHow many objects are there?', images: ['nlvr-test-3776-0.png'] },
];

export async function tinyPair(
  options: QuantizeOptions,
): Promise<{ float: MavenModel; quantized: MavenModel }> {
  const float = await loadMaven(TINY_DIR);
  const q = quantizeMaven(float.config, float.hostWeights(), options);
  return { float, quantized: new MavenModel(float.config, q.weights, float.tokenizer) };
}

export async function imagesFor(model: MavenModel, names: string[]) {
  return preprocessImages(
    model,
    names.map((n) => join(SAMPLES, n)),
  );
}

/** Logits of every prompt position, and the greedy answer. */
export async function run(model: MavenModel, p: { prompt: string; images: string[] }) {
  const prepared = await model.prepare(p.prompt, await imagesFor(model, p.images));
  const { logits } = await (await model.llmDecoder()).prefill(
    prepared.embeds,
    positionsFor(prepared.embeds),
    {
      logits: 'all',
    },
  );
  const { text } = await model.generate(p.prompt, await imagesFor(model, p.images), { maxNewTokens: 12 });
  return { logits: logits.data as Float32Array, text };
}

function positionsFor(embeds: HostTensor): HostTensor {
  const [b, t] = embeds.shape;
  const data = new BigInt64Array(b * t);
  for (let i = 0; i < b * t; i++) data[i] = BigInt(i % t);
  return new HostTensor('int64', [b, t], data);
}
