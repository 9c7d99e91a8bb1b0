/**
 * Real-peer check: load the exported GGUF with node-llama-cpp (llama.cpp) and compare its
 * next-token distributions and greedy continuation with maven-ts's own LLaMA, on token ids.
 * Run from the repository root (see README.md here): node --import tsx tools/gguf-peer-check/peer.ts FILE-f32.gguf [FILE-q8_0.gguf ...]
 */
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { DEFAULT_MODEL_DIR } from '../../src/cli/default-model.ts';
import { HostTensor, KVCacheDecoder } from '../../src/engine/index.ts';
import { loadMaven } from '../../src/node/model-directory.ts';
import { forward } from './reference.ts';
import {
  dequantizeQ4_0,
  dequantizeQ8_0,
  f16ToF32,
  f32ToF16,
  type GgufExportType,
  quantizeQ4_0,
  quantizeQ8_0,
  tensorType,
} from '../../src/export/gguf.ts';

const files = process.argv.slice(2);
const model = await loadMaven(DEFAULT_MODEL_DIR);
const tok = model.tokenizer;
const V = model.config.llm.vocabSize;
const T0 = model.config.textVocabSize;
const img = tok.tokenToId('<img>')!;
const imgEnd = tok.tokenToId('</img>')!;
const text = 'is there a blue circle touching the wall ? answer with yes or no .';
const prompt = [
  tok.bosId,
  ...tok.encode('image 1 :'),
  img,
  ...[5, 17, 42, 99, 128, 200, 3, 255].map((c) => T0 + c),
  imgEnd,
  ...tok.encode(text),
];
console.log(`prompt: ${prompt.length} ids, ${prompt.filter((i) => i >= T0).length} visual`);

const decoder = await KVCacheDecoder.create(model.components.llm.decoderSpec(), model.weights);
const ids = (a: number[]) => new HostTensor('int64', [1, a.length], BigInt64Array.from(a, BigInt));
const range = (n: number) => ids(Array.from({ length: n }, (_, i) => i));
async function ourLogits(seq: number[]): Promise<Float32Array[]> {
  const out = await decoder.prefill(ids(seq), range(seq.length));
  const data = out.logits.data as Float32Array;
  return Array.from({ length: seq.length }, (_, t) => data.slice(t * V, (t + 1) * V));
}
function logSoftmax(x: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  const lse = m + Math.log(s);
  return Float64Array.from(x, (v) => v - lse);
}
const argmax = (x: ArrayLike<number>) => {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
  return b;
};

const ours = await ourLogits(prompt);
// Our greedy continuation (20 steps, no stop at EOS so both run the same length).
const ourGreedy: number[] = [];
const ourSteps: Float32Array[] = [];
{
  const seq = [...prompt];
  for (let s = 0; s < 20; s++) {
    const l = await ourLogits(seq);
    const last = l[l.length - 1].slice();
    last[tok.eosId] = -Infinity; // never stop: 20 steps of content on both sides
    const next = argmax(last);
    ourGreedy.push(next);
    ourSteps.push(l[l.length - 1]);
    seq.push(next);
  }
}
console.log(`ours greedy: ${ourGreedy.join(' ')} → "${tok.decode(ourGreedy.filter((i) => i < T0))}"`);

const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.warn, build: 'never' });
for (const file of files) {
  console.log(`\n=== ${file}`);
  const type = /-(f32|f16|q8_0|q4_0)\.gguf$/.exec(file)![1] as GgufExportType;
  // Our model again, on the weights as the file stores them (quantized, then dequantized).
  const stored = new Map(model.weights);
  for (const name of model.components.llm.paramShapes().keys()) {
    const w = model.weights.get(name)!;
    const x = w.data as Float32Array;
    const tt = tensorType(w.shape, type);
    const back =
      tt === 'Q8_0' ? dequantizeQ8_0(quantizeQ8_0(x), x.length)
      : tt === 'Q4_0' ? dequantizeQ4_0(quantizeQ4_0(x), x.length)
      : tt === 'F16' ? Float32Array.from(x, (v) => f16ToF32(f32ToF16(v)))
      : x;
    stored.set(name, new HostTensor('float32', w.shape, back));
  }
  const storedDecoder = await KVCacheDecoder.create(model.components.llm.decoderSpec(), stored);
  const storedOut = await storedDecoder.prefill(ids(prompt), range(prompt.length));
  const storedLogits = Array.from({ length: prompt.length }, (_, t) =>
    (storedOut.logits.data as Float32Array).slice(t * V, (t + 1) * V),
  );
  const m = await llama.loadModel({ modelPath: file });
  console.log(`loaded: vocab ${m.tokens.trainContextSize ?? ''} train ctx ${m.trainContextSize}, size ${m.size}`);
  // Tokenization and detokenization by llama.cpp itself.
  const theirs = m.tokenize(text, false);
  const mine = tok.encode(text);
  console.log(
    `llama.cpp tokenizes the text as ours: ${JSON.stringify(theirs) === JSON.stringify(mine)} (${theirs.length} vs ${mine.length} ids)`,
  );
  const sentences = [
    text,
    'Image 1: <img></img> Image 2: Is there a BLUE circle touching the wall? Answer: yes.',
    "The t-shirt's color (in image 3) is black, and 12 zebras are purple-ish!",
    'How many blocks are in the tower?  Answer with a number: 4',
    'what changed between the first and second frames? the red square was removed.',
  ];
  let same = 0;
  for (const s of sentences) {
    const a = m.tokenize(s, true);
    const b = tok.encode(s);
    if (JSON.stringify(a) === JSON.stringify(b)) same++;
    else console.log(`  differs: ${JSON.stringify(s)}\n    llama.cpp ${JSON.stringify(a)}\n    ours      ${JSON.stringify(b)}`);
  }
  console.log(`llama.cpp's tokenizer (special tokens parsed) gives our ids for ${same}/${sentences.length} sentences`);
  const special = m.tokenize('<img><visual_00042></img>', true);
  console.log(`"<img><visual_00042></img>" → ${JSON.stringify(special)} (expected [${img}, ${T0 + 42}, ${imgEnd}])`);
  console.log(`detokenize(ours text ids) = ${JSON.stringify(m.detokenize(mine))}`);

  const kv = process.env.KV ?? 'F32';
  const ctx = await m.createContext({
    contextSize: 256,
    batchSize: 256,
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: kv as 'F32',
    experimentalKvCacheValueType: kv as 'F32',
  });
  console.log(`KV cache ${kv}`);
  const seq = ctx.getSequence();
  // Next-token probabilities at every position of the prompt.
  const res = await seq.controlledEvaluate(
    prompt.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }] as const),
  );
  const stats = (ref: Float32Array[], label: string) => {
    let all = 0;
    let likely = 0;
    let sameTop = 0;
    for (let t = 0; t < prompt.length; t++) {
      const probs = res[t]?.next.probabilities;
      if (!probs || probs.size !== V) throw new Error(`position ${t}: ${probs?.size} probabilities, not ${V}`);
      const ls = logSoftmax(ref[t]);
      for (const [id, p] of probs) {
        const d = Math.abs(Math.log(p) - ls[id]);
        all = Math.max(all, d);
        if (ls[id] > Math.log(1e-3)) likely = Math.max(likely, d);
      }
      if (probs.keys().next().value === argmax(ref[t])) sameTop++;
      if (process.env.DETAIL && label.startsWith('our model (')) {
        let pd = 0;
        for (const [id, p] of probs) pd = Math.max(pd, Math.abs(Math.log(p) - ls[id]));
        const sorted = [...ref[t]].sort((a, b) => b - a);
        console.log(`  pos ${t} id ${prompt[t]}: max Δ ${pd.toFixed(3)}; logits top ${sorted[0].toFixed(1)}, median ${sorted[241].toFixed(1)}, min ${sorted[482].toFixed(1)}`);
      }
    }
    console.log(
      `vs ${label}: max |Δ log p| ${all.toExponential(2)} over all ${prompt.length}×${V}; ${likely.toExponential(2)} over tokens with p ≥ 1e-3; same top token ${sameTop}/${prompt.length}`,
    );
  };
  stats(ours, 'our model (its float32 weights)');
  if (type !== 'f32') stats(storedLogits, `our model on the ${type} weights dequantized`);
  // A float64 forward on the stored weights that also rounds each weight-matmul input as
  // llama.cpp's CPU backend does (f16 for F16 weights, Q8_0 blocks for Q8_0/Q4_0 weights).
  const emulated = forward(model.config.llm, stored, prompt, (name) => {
    const tt = tensorType(stored.get(name)!.shape, type);
    const only = process.env.F16_ONLY;
    if (tt === 'F16' && only && !new RegExp(only).test(name)) return 'none';
    return tt === 'F16' ? 'f16' : tt === 'Q8_0' || tt === 'Q4_0' ? 'q8_0' : 'none';
  }).map((r) => Float32Array.from(r));
  stats(emulated, `a float64 forward on the stored weights, inputs rounded as llama.cpp does`);
  await seq.clearHistory();
  const greedy: number[] = [];
  const probe = { generateNext: { probabilities: true, options: { temperature: 0 } } } as const;
  let step = await seq.controlledEvaluate([...prompt.slice(0, -1), [prompt[prompt.length - 1], probe]]);
  let stepDelta = 0;
  for (let s = 0; s < 20; s++) {
    const probs = step[step.length - 1]?.next.probabilities;
    if (!probs) throw new Error('no probabilities');
    let next = -1;
    for (const id of probs.keys()) if (id !== tok.eosId) { next = id; break; } // sorted, most likely first
    const ls = logSoftmax(ourSteps[s]);
    for (const [id, p] of probs) if (p >= 1e-30) stepDelta = Math.max(stepDelta, Math.abs(Math.log(p) - ls[id]));
    greedy.push(next);
    // Feed our choice, so a disagreement does not snowball into unrelated positions.
    if (s < 19) step = await seq.controlledEvaluate([[ourGreedy[s], probe]]);
  }
  const agree = greedy.filter((t, i) => t === ourGreedy[i]).length;
  console.log(`greedy (EOS excluded), llama.cpp: ${greedy.join(' ')}; agrees with ours at ${agree}/20 steps; max |Δ log p| over those steps ${stepDelta.toExponential(3)}`);
  await ctx.dispose();
  await m.dispose();
}
