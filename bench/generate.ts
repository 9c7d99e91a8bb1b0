/**
 * Generation benchmark on the tiny preset: for 1, 2, 4 and 8 images, prompt length and time to
 * first token (image encoding incl. the h_EOS pass, then LLM prefill) in hybrid mode (ρ = 0.25)
 * vs continuous-only (LLaVA-style, all patches), same model, same run; then KV-cache decode speed
 * of the LLM, against the same weights in PyTorch eager where a Python with torch is available.
 *
 *   npm run bench:generate [-- --write] [-- --model DIR]
 *
 * Without --model it uses randomly initialised tiny weights: speed does not depend on training.
 */
import os from 'node:os';
import { HostTensor, KVCacheDecoder } from '../src/engine/index.ts';
import { tinyConfig } from '../src/maven/config.ts';
import { buildComponents, initMavenParams, MavenModel } from '../src/maven/model.ts';
import type { EncodingMode } from '../src/maven/sequence.ts';
import { WordTokenizer } from '../src/models/tokenizer.ts';
import { loadMaven } from '../src/node/model-directory.ts';
import { torchLlamaDecode } from './baselines/torch-llama.ts';
import { writeBenchSection } from './write-section.ts';

const args = process.argv.slice(2);
const modelDir = args.includes('--model') ? args[args.indexOf('--model') + 1] : undefined;
const lines: string[] = [];
const say = (s = '') => {
  lines.push(s);
  console.log(s);
};

async function tinyModel(): Promise<MavenModel> {
  if (modelDir) return loadMaven(modelDir);
  const words =
    'how many yellow blue black squares circles triangles are there in the image is it true false yes no'.split(
      ' ',
    );
  const tokenizer = WordTokenizer.build([words.join(' ')], { minCount: 1 });
  tokenizer.addSpecialTokens(['<img>', '</img>']);
  const config = tinyConfig(tokenizer.vocabSize);
  return new MavenModel(config, initMavenParams(buildComponents(config), 1), tokenizer);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const model = await tinyModel();
const size = model.config.vision.imageSize;
const pixels = (n: number) =>
  new HostTensor(
    'float32',
    [n, 3, size, size],
    Float32Array.from({ length: n * 3 * size * size }, (_, i) => Math.sin(i * 0.013)),
  );

interface Timing {
  length: number;
  encode: number[];
  prefill: number[];
  hEos: number[];
}

async function runOnce(n: number, mode: EncodingMode, into: Timing | null): Promise<void> {
  const prompt = `${'<image> '.repeat(n)}how many yellow squares are there ?`;
  const decoder = await model.llmDecoder();
  const t0 = performance.now();
  const prepared = await model.prepare(prompt, pixels(n), { mode });
  const t1 = performance.now();
  const T = prepared.embeds.shape[1];
  const positions = new HostTensor(
    'int64',
    [1, T],
    BigInt64Array.from({ length: T }, (_, i) => BigInt(i)),
  );
  await decoder.prefill(prepared.embeds, positions);
  const t2 = performance.now();
  // The h_EOS pass on its own (in hybrid mode it is part of encode), timed again separately.
  if (mode === 'hybrid') await model.hEos(prepared.images.map((i) => [...i.discreteIds]));
  const t3 = performance.now();
  if (!into) return;
  into.length = T;
  into.encode.push(t1 - t0);
  into.prefill.push(t2 - t1);
  into.hEos.push(t3 - t2);
}

/** Hybrid and continuous-only alternate, so both see the same machine noise. */
async function measure(n: number, reps: number) {
  const fresh = (): Timing => ({ length: 0, encode: [], prefill: [], hEos: [] });
  const h = fresh();
  const c = fresh();
  await runOnce(n, 'hybrid', null); // warm-up: compiles the programs
  await runOnce(n, 'continuous-only', null);
  for (let r = 0; r < reps; r++) {
    await runOnce(n, 'hybrid', h);
    await runOnce(n, 'continuous-only', c);
  }
  const med = (t: Timing) => ({
    length: t.length,
    encode: median(t.encode),
    prefill: median(t.prefill),
    hEos: median(t.hEos),
  });
  return { h: med(h), c: med(c) };
}

say(`## Generation (\`npm run bench:generate\`)`);
say('');
say(
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores; node ${process.version}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Model: ${modelDir ?? `${model.config.name}, random weights`} (${size} px, ${(size / model.config.vision.patchSize) ** 2} patches per image, ${model.config.seed.qformer.numQueryTokens} discrete ids, ρ = ${model.config.keepRatio}).`,
);
say('');
say(
  'Encode = ViT (+ tokenizer, h_EOS pass through the LLM, selector) + projector; prefill = the LLM over the assembled prompt.',
);
say('');
say(
  '| images | prompt tokens hybrid / cont. | ratio | h_EOS pass ms | prefill ms hybrid / cont. | (h_EOS + prefill) / prefill ratio | encode + prefill ms hybrid / cont. | ratio |',
);
say('|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const n of [1, 2, 4, 8]) {
  const { h, c } = await measure(n, 21);
  const r = (a: number, b: number) => (a / b).toFixed(2);
  say(
    `| ${n} | ${h.length} / ${c.length} | ${r(h.length, c.length)} | ${h.hEos.toFixed(1)} | ${h.prefill.toFixed(1)} / ${c.prefill.toFixed(1)} | ${r(h.hEos + h.prefill, c.prefill)} | ${(h.encode + h.prefill).toFixed(1)} / ${(c.encode + c.prefill).toFixed(1)} | ${r(h.encode + h.prefill, c.encode + c.prefill)} |`,
  );
}
say('');

// Decode speed of the LLM alone, the same work on both sides: prompt ids 0, 1, … 63, then 128
// greedy steps (each step's token is the argmax of the last logits) with a KV cache; per side
// one warm-up run, then the median of three; at 1 and at 2 intra-op threads each.
const promptLen = 64;
const steps = 128;
const vocab = model.config.llm.vocabSize;
const ids = (xs: number[]) => new HostTensor('int64', [1, xs.length], BigInt64Array.from(xs, BigInt));
const argmaxLast = (logits: HostTensor): number => {
  const V = logits.shape[logits.shape.length - 1];
  const data = logits.data as Float32Array;
  const row = data.subarray(data.length - V);
  let best = 0;
  for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
  return best;
};
async function oursTokensPerSecond(threads: number): Promise<number> {
  const decoder = await KVCacheDecoder.create(model.components.llm.decoderSpec(), model.weights, {
    decodeThreads: threads,
    runtime: { threads },
  });
  const run = async () => {
    const prompt = Array.from({ length: promptLen }, (_, i) => i % vocab);
    let out = await decoder.prefill(ids(prompt), ids(prompt.map((_, i) => i)));
    const t0 = performance.now();
    for (let s = 0; s < steps; s++)
      out = await decoder.decode(ids([argmaxLast(out.logits)]), ids([promptLen + s]), out.cache);
    return (steps / (performance.now() - t0)) * 1000;
  };
  await run();
  return median([await run(), await run(), await run()]);
}
say(
  `### LLM decode with KV cache (${model.config.llm.numHiddenLayers} layers, width ${model.config.llm.hiddenSize}, prompt ${promptLen} tokens, ${steps} greedy steps)`,
);
say('');
say(
  'Both sides: the same weights, prompt ids 0…63, each next token the argmax of the last logits; one warm-up run, then the median of three.',
);
say('');
say('| threads | maven-ts (onnxruntime-node, CPU) tokens/s | PyTorch eager tokens/s | maven-ts / PyTorch |');
say('|---:|---:|---:|---:|');
let torchVersion = '';
for (const threads of [1, 2]) {
  const ours = await oursTokensPerSecond(threads);
  const torch = await torchLlamaDecode(model.config.llm, model.hostWeights(), {
    promptLength: promptLen,
    steps,
    threads,
  });
  if ('skipped' in torch) {
    say(`| ${threads} | ${ours.toFixed(0)} | skipped: ${torch.skipped} | – |`);
  } else {
    torchVersion = `PyTorch ${torch.torch} (${torch.python})`;
    say(
      `| ${threads} | ${ours.toFixed(0)} | ${torch.tokensPerSecond.toFixed(0)} | ${(ours / torch.tokensPerSecond).toFixed(2)}× |`,
    );
  }
}
if (torchVersion) say(`\n${torchVersion}.`);
say('');

if (args.includes('--write')) writeBenchSection('generate', lines);
