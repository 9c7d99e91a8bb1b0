/**
 * Weight quantization benchmark (`maven quantize`): which kernel runs a block-quantized linear
 * layer fastest, and what 8- and 4-bit weights do to the embedded model.
 *
 *   npx tsx bench/quantize.ts [-- --write] [-- --threads N] [-- --quick]
 *
 * Part 1 times one linear layer y = x·Wᵀ as the engine emits it: float32 MatMul on W against
 * MatMulNBits on W's 8- and 4-bit codes (blocks of 32) at accuracy_level 0 (float activations)
 * and 4 (activations rounded to int8 per block, the engine's default), and against 8-bit codes
 * dequantized into a float MatMul, all with weights as initializers (so onnxruntime pre-packs
 * them), for one row (decoding a token) and 64 rows (a prefill), with each kernel's relative RMS
 * error against float32 MatMul on the same float weight. Part 2 runs models/maven-tiny as
 * float32, 8 and 4 bits on the prompts of test/maven/quantization-fixture.ts: image encoding +
 * prefill, and decode tokens/s.
 * Every ratio is float32's median time over the quantized one's, measured in the same run.
 */
import os from 'node:os';
import {
  blockQuantize,
  compile,
  Graph,
  type GraphOptions,
  HostTensor,
  MATMULNBITS_ACCURACY_LEVEL,
  MATMULNBITS_BITS,
  ops,
  type Program,
} from '../src/engine/index.ts';
import { MavenModel } from '../src/maven/model.ts';
import { quantizeMaven } from '../src/maven/quantization.ts';
import { loadMaven } from '../src/node/model-directory.ts';
import { imagesFor, PROMPTS, TINY_DIR } from '../test/maven/quantization-fixture.ts';
import { writeBenchSection } from './write-section.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const threads = args.includes('--threads')
  ? Number(args[args.indexOf('--threads') + 1])
  : os.availableParallelism();
const lines: string[] = [];
const say = (s = '') => {
  lines.push(s);
  console.log(s);
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeRuns(run: () => Promise<unknown>, reps: number): Promise<number> {
  for (let i = 0; i < 3; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  return median(times);
}

function weight(n: number, k: number): HostTensor<'float32'> {
  let s = 12345;
  return new HostTensor(
    'float32',
    [n, k],
    Float32Array.from({ length: n * k }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return (s / 2 ** 32 - 0.5) * 0.04;
    }),
  );
}

async function linearProgram(
  stored: Map<string, HostTensor>,
  n: number,
  k: number,
  kernel: Pick<GraphOptions, 'matMulNBitsBits' | 'matMulNBitsAccuracyLevel'> = {},
): Promise<Program> {
  const g = new Graph('float32', { weights: stored, ...kernel });
  const y = ops.linear(g.input('x', 'float32', ['B', 'T', k]), g.param('w', [n, k]));
  return compile(
    g,
    { y },
    { threads, embed: new Map([...g.params.keys()].map((name) => [name, stored.get(name)!])) },
  );
}

const started = new Date();
say('## Weight quantization (`npx tsx bench/quantize.ts`)');
say('');
say(
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores; node ${process.version}; onnxruntime-node ${(await import('onnxruntime-node')).env.versions.node}; ${threads} thread(s); ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
);
say('');
say('### One linear layer, y = x·Wᵀ, W [N, K] (medians; ratio = float32 time / this time)');
say('');
// Each quantized kernel: its label, bits, and how the graph runs it; "(default)" marks what the
// engine picks for those bits (MATMULNBITS_BITS, MATMULNBITS_ACCURACY_LEVEL).
type Kernel = Required<Pick<GraphOptions, 'matMulNBitsBits'>> &
  Pick<GraphOptions, 'matMulNBitsAccuracyLevel'>;
const isDefault = (bits: number, k: Kernel) =>
  MATMULNBITS_BITS.includes(bits)
    ? k.matMulNBitsBits.includes(bits) && k.matMulNBitsAccuracyLevel === MATMULNBITS_ACCURACY_LEVEL
    : !k.matMulNBitsBits.includes(bits);
const kernels: [string, 4 | 8, Kernel][] = (
  [
    ['8-bit MatMulNBits, float activations', 8, { matMulNBitsBits: [8], matMulNBitsAccuracyLevel: 0 }],
    ['8-bit MatMulNBits, int8 activations', 8, { matMulNBitsBits: [8], matMulNBitsAccuracyLevel: 4 }],
    ['8-bit dequantized into MatMul', 8, { matMulNBitsBits: [] }],
    ['4-bit MatMulNBits, float activations', 4, { matMulNBitsBits: [4], matMulNBitsAccuracyLevel: 0 }],
    ['4-bit MatMulNBits, int8 activations', 4, { matMulNBitsBits: [4], matMulNBitsAccuracyLevel: 4 }],
  ] as [string, 4 | 8, Kernel][]
).map(([label, bits, k]) => [isDefault(bits, k) ? `${label} (default)` : label, bits, k]);
say(
  `| K × N | rows | float32 MatMul ms | ${kernels.map(([label]) => `${label} ms | ratio`).join(' | ')} | weight MiB f32 / 8-bit / 4-bit | RSS growth creating the session, MiB: f32 / ${kernels.map(([label]) => label.replace(' (default)', '')).join(' / ')} |`,
);
say(`|---|---:|---:|${kernels.map(() => '---:|---:|').join('')}---|---|`);
const shapes: [number, number][] = quick
  ? [[1024, 1024]]
  : [
      [576, 1536],
      [1024, 1024],
      [4096, 4096],
      [4096, 11008],
    ];
const relRms = (a: Float32Array, b: Float32Array) => {
  let e = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    e += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(e / n);
};
const errors = new Map<string, number[]>(kernels.map(([label]) => [label, []]));
// A first session pays for onnxruntime's own start-up; keep that out of the memory column.
await linearProgram(new Map([['w', weight(32, 32)]]), 32, 32);
for (const [k, n] of shapes) {
  const w = weight(n, k);
  // onnxruntime's own copy of the weights (and any pre-packed form), as the process sees it.
  const growth: number[] = [];
  const measured = async (make: () => Promise<Program>) => {
    const before = process.memoryUsage().rss;
    const p = await make();
    growth.push((process.memoryUsage().rss - before) / 2 ** 20);
    return p;
  };
  const programs: Program[] = [await measured(() => linearProgram(new Map([['w', w]]), n, k))];
  const sizes = new Map<number, number>([[32, w.data.byteLength]]);
  for (const [, bits, kernel] of kernels) {
    const q = blockQuantize(w, { bits, blockSize: 32 });
    const stored = new Map<string, HostTensor>([
      ['w.qweight', q.qweight],
      ['w.scales', q.scales],
    ]);
    programs.push(await measured(() => linearProgram(stored, n, k, kernel)));
    sizes.set(bits, q.qweight.data.byteLength + q.scales.data.byteLength);
  }
  for (const rows of [1, 64]) {
    const x = new HostTensor(
      'float32',
      [1, rows, k],
      Float32Array.from({ length: rows * k }, (_, i) => Math.sin(i)),
    );
    const reference = (await programs[0].run({ x })).y.data as Float32Array;
    for (const [i, [label]] of kernels.entries()) {
      const y = (await programs[i + 1].run({ x })).y.data as Float32Array;
      errors.get(label)!.push(relRms(y, reference));
    }
    const reps = quick ? 10 : n * k > 2e7 ? 15 : 40;
    const ms: number[] = [];
    for (const p of programs) ms.push(await timeRuns(() => p.run({ x }), reps));
    const cells = kernels.map((_, i) => `${ms[i + 1].toFixed(3)} | ${(ms[0] / ms[i + 1]).toFixed(2)}`);
    say(
      `| ${k} × ${n} | ${rows} | ${ms[0].toFixed(3)} | ${cells.join(' | ')} | ${[32, 8, 4].map((b) => (sizes.get(b)! / 2 ** 20).toFixed(1)).join(' / ')} | ${rows === 1 ? growth.map((m) => m.toFixed(0)).join(' / ') : ''} |`,
    );
  }
}
say('');
say(
  `Relative RMS error against float32 MatMul on the float weight, over every layer and row count above: ${kernels.map(([label]) => `${label.replace(' (default)', '')} ${Math.max(...errors.get(label)!).toExponential(1)}`).join('; ')} (the largest).`,
);

say('');
say(
  `### models/maven-tiny: float32 against \`maven quantize --bits 8|4\` (LLM projections + projector; blocks of 16 at 8 bits, 32 at 4 bits, the command's defaults)`,
);
say('');
const float = await loadMaven(TINY_DIR);
const variants: [string, MavenModel][] = [['float32', float]];
for (const bits of [8, 4] as const) {
  const q = quantizeMaven(float.config, float.hostWeights(), { bits, blockSize: bits === 8 ? 16 : 32 });
  variants.push([`${bits}-bit`, new MavenModel(float.config, q.weights, float.tokenizer, { threads })]);
}
variants[0][1] = new MavenModel(float.config, float.weights, float.tokenizer, { threads });
const bytes = (m: MavenModel) => [...m.hostWeights().values()].reduce((s, t) => s + t.data.byteLength, 0);
say(
  '| weights | stored MiB | encode + prefill ms, median over the prompts | ratio | decode tokens/s | ratio | greedy answers equal to float32 |',
);
say('|---|---:|---:|---:|---:|---:|---|');
const baseline: { prefill: number; decode: number; answers: string[] } = {
  prefill: 0,
  decode: 0,
  answers: [],
};
for (const [label, model] of variants) {
  const prefills: number[] = [];
  const answers: string[] = [];
  for (const p of PROMPTS) {
    const images = await imagesFor(model, p.images);
    prefills.push(
      await timeRuns(
        async () => {
          const prepared = await model.prepare(p.prompt, images);
          const decoder = await model.llmDecoder();
          const t = prepared.embeds.shape[1];
          await decoder.prefill(
            prepared.embeds,
            new HostTensor(
              'int64',
              [1, t],
              BigInt64Array.from({ length: t }, (_, i) => BigInt(i)),
            ),
          );
        },
        quick ? 5 : 15,
      ),
    );
    answers.push((await model.generate(p.prompt, images, { maxNewTokens: 12 })).text);
  }
  // Decode speed: 48 tokens after the first prompt, one at a time with the KV cache.
  const decoder = await model.llmDecoder();
  const prepared = await model.prepare(PROMPTS[0].prompt, await imagesFor(model, PROMPTS[0].images));
  const t0 = prepared.embeds.shape[1];
  const positions = (from: number, t: number) =>
    new HostTensor(
      'int64',
      [1, t],
      BigInt64Array.from({ length: t }, (_, i) => BigInt(from + i)),
    );
  const decodeTimes: number[] = [];
  for (let rep = 0; rep < (quick ? 3 : 9); rep++) {
    let { cache } = await decoder.prefill(prepared.embeds, positions(0, t0));
    const start = performance.now();
    for (let i = 0; i < 48; i++) {
      ({ cache } = await decoder.decode(
        new HostTensor('int64', [1, 1], BigInt64Array.of(5n)),
        positions(t0 + i, 1),
        cache,
      ));
    }
    decodeTimes.push(performance.now() - start);
  }
  const decodeMs = median(decodeTimes);
  const prefill = median(prefills);
  const tokensPerSecond = 48 / (decodeMs / 1000);
  if (label === 'float32') Object.assign(baseline, { prefill, decode: tokensPerSecond, answers });
  const same = answers.filter((a, i) => a === baseline.answers[i]).length;
  say(
    `| ${label} | ${(bytes(model) / 2 ** 20).toFixed(2)} | ${prefill.toFixed(1)} | ${(baseline.prefill / prefill).toFixed(2)} | ${tokensPerSecond.toFixed(0)} | ${(tokensPerSecond / baseline.decode).toFixed(2)} | ${same} of ${answers.length} |`,
  );
}
say('');
say('Decode: 48 tokens one at a time after the first prompt, median of the repeats.');
if (args.includes('--write')) writeBenchSection('quantize', lines);
