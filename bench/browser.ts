/**
 * The in-browser page (src/browser) in headless Chromium on onnxruntime-web (wasm), beside Node
 * on onnxruntime-node (CPU), in one run, on the same model and the same two images: load time
 * (files → model → every session compiled by the warm-up question), then for a two-image
 * question the encode time (preprocessing, both encoding steps, prompt assembly), the prefill,
 * and greedy decode speed with the KV cache (a fixed number of steps, end-of-sequence ignored).
 * Both sides run the same code (src/browser/local-maven.ts: warmUp, timeDecode); only the runtime
 * and the image decoder (canvas vs sharp, outside the timings) differ.
 *
 *   npm run bench:browser [-- --write] [-- --model DIR] [-- --reps N] [-- --steps N] [-- --loads N]
 *
 * The page is served by `maven serve`'s /local/ route, so it is cross-origin isolated and gets
 * wasm threads. Node loads are timed in fresh processes (onnxruntime keeps sessions per process).
 * The two sides take turns throughout, so that a machine that gets busier or quieter during the
 * run (a shared VM) weighs on both.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { type DecodeTiming, type LoadTimings, timeDecode, warmUp } from '../src/browser/local-maven.ts';
import { DEFAULT_MODEL_DIR } from '../src/cli/default-model.ts';
import { decodeImage } from '../src/node/decode-image.ts';
import { loadMaven } from '../src/node/model-directory.ts';
import { startServer } from '../src/serve/server.ts';
import { writeBenchSection } from './write-section.ts';

const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const modelDir = option('--model') ?? DEFAULT_MODEL_DIR;
const reps = Number(option('--reps') ?? 15);
const steps = Number(option('--steps') ?? 128);
const loads = Number(option('--loads') ?? 5);
/** Node / page turns for the encode, prefill and decode runs. */
const ROUNDS = 3;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SAMPLES = fileURLToPath(new URL('../assets/samples/', import.meta.url));
const IMAGES = ['fashion-test-0.png', 'fashion-test-2.png'].map((f) => join(SAMPLES, f));
const QUESTION = "Which image shows a pair of trousers? Answer with the image's number (1–2).";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// A child process that times one cold Node load and prints it: files → model → warm-up.
if (args.includes('--node-load')) {
  const t0 = performance.now();
  const model = await loadMaven(modelDir);
  const t1 = performance.now();
  await warmUp(model);
  const t2 = performance.now();
  console.log(JSON.stringify({ readMs: t1 - t0, warmupMs: t2 - t1, totalMs: t2 - t0 }));
  process.exit(0);
}

const lines: string[] = [];
const say = (s = '') => {
  lines.push(s);
  console.log(s);
};

interface Measures {
  load: { totalMs: number; detail: string };
  cachedLoad: { totalMs: number; detail: string } | null;
  decode: DecodeTiming;
  threads: string;
}

function summarize(runs: DecodeTiming[]): DecodeTiming {
  return {
    promptTokens: runs[0].promptTokens,
    encodeMs: median(runs.map((r) => r.encodeMs)),
    prefillMs: median(runs.map((r) => r.prefillMs)),
    tokensPerSecond: median(runs.map((r) => r.tokensPerSecond)),
  };
}

interface NodeLoad {
  readMs: number;
  warmupMs: number;
  totalMs: number;
}

/** One cold Node load, in a fresh process (onnxruntime keeps compiled sessions per process). */
function nodeLoad(): NodeLoad {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--node-load', '--model', modelDir],
    { encoding: 'utf8' },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as NodeLoad;
}

interface PageLoad extends LoadTimings {
  description: string;
  threads: number;
  fromCache: boolean;
}

async function pageLoad(page: Page, url: string): Promise<PageLoad> {
  await page.goto(url);
  return page.evaluate(async () => {
    const m = await window.maven;
    return {
      ...m.loadTimings,
      description: m.runtime.description,
      threads: m.runtime.threads,
      fromCache: m.fetched.every((f) => f.fromCache),
    };
  });
}

/** Decodes the sample images in the page, for `browserDecode`. */
async function decodeInPage(page: Page): Promise<void> {
  const pngs = IMAGES.map((f) => readFileSync(f).toString('base64'));
  await page.evaluate(async (pngs) => {
    const images = await Promise.all(
      pngs.map((b64, i) =>
        window.mavenDecodeImage(
          new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/png' }),
          `image ${i + 1}`,
        ),
      ),
    );
    (window as unknown as { benchImages: unknown }).benchImages = images;
  }, pngs);
}

function browserDecode(page: Page): Promise<DecodeTiming> {
  return page.evaluate(
    async ({ question, steps }) => {
      const images = (window as unknown as { benchImages: Parameters<typeof timeDecode>[1] }).benchImages;
      return (await window.maven).timeDecode(images, question, steps);
    },
    { question: QUESTION, steps },
  );
}

const started = new Date();
const model = await loadMaven(modelDir);
const server = await startServer(model, { port: 0, localPageModelDir: modelDir });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
let node: Measures;
let web: Measures & { version: string; description: string };
try {
  const url = `${server.url}/local/`;
  await fetch(url); // the page is bundled on its first request: not part of any load below
  const context = await browser.newContext();
  const page = await context.newPage();
  await pageLoad(page, url); // this context's Cache API now holds the model

  // Loads, alternating so that each side sees the same machine: a fresh Node process, a page in
  // a fresh browser context (empty Cache API: the model is downloaded), a reload of the page
  // whose context has the model cached.
  const nodeLoads: NodeLoad[] = [];
  const cold: PageLoad[] = [];
  const cached: PageLoad[] = [];
  for (let i = 0; i < loads; i++) {
    nodeLoads.push(nodeLoad());
    const fresh = await browser.newContext();
    cold.push(await pageLoad(await fresh.newPage(), url));
    await fresh.close();
    cached.push(await pageLoad(page, url));
  }
  if (cold.some((l) => l.fromCache) || cached.some((l) => !l.fromCache)) {
    throw new Error('the cold loads must download the model and the cached ones read it from the Cache API');
  }

  // Encode, prefill, decode: Node and page take turns in blocks (ROUNDS each), after a warm-up
  // each. Not run by run: onnxruntime's threads on either side spin for a while after a run, and
  // would slow the other side's next run on a small machine; a pause lets them sleep first.
  await warmUp(model);
  const images = await Promise.all(IMAGES.map((f) => decodeImage(f)));
  await decodeInPage(page);
  await timeDecode(model, images, QUESTION, steps);
  await browserDecode(page);
  const nodeRuns: DecodeTiming[] = [];
  const pageRuns: DecodeTiming[] = [];
  const pause = () => new Promise((done) => setTimeout(done, 250));
  for (let round = 0; round < ROUNDS; round++) {
    const block = Math.ceil(reps / ROUNDS);
    for (let r = 0; r < block; r++) nodeRuns.push(await timeDecode(model, images, QUESTION, steps));
    await pause();
    for (let r = 0; r < block; r++) pageRuns.push(await browserDecode(page));
    await pause();
  }
  const detail = (l: PageLoad[]) =>
    `runtime JS ${median(l.map((x) => x.runtimeMs)).toFixed(0)}, model files ${median(l.map((x) => x.fetchMs)).toFixed(0)}, build ${median(l.map((x) => x.buildMs)).toFixed(0)}, warm-up ${median(l.map((x) => x.warmupMs)).toFixed(0)}`;
  node = {
    load: {
      totalMs: median(nodeLoads.map((l) => l.totalMs)),
      detail: `read + build ${median(nodeLoads.map((l) => l.readMs)).toFixed(0)}, warm-up ${median(nodeLoads.map((l) => l.warmupMs)).toFixed(0)}`,
    },
    cachedLoad: null,
    decode: summarize(nodeRuns),
    threads: `${os.availableParallelism()} (intra-op)`,
  };
  web = {
    load: { totalMs: median(cold.map((l) => l.readyAtMs)), detail: detail(cold) },
    cachedLoad: { totalMs: median(cached.map((l) => l.readyAtMs)), detail: detail(cached) },
    decode: summarize(pageRuns),
    threads: `${cold[0].threads} (wasm)`,
    version: browser.version(),
    description: cold[0].description,
  };
} finally {
  await browser.close();
  await server.close();
}
const ortNode = (await import('onnxruntime-node')).env.versions.node;
const modelName = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')).name as string;

say('## In the browser (`npm run bench:browser`)');
say('');
say(
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; onnxruntime-node ${ortNode}; headless Chromium ${web.version} (${web.description}); ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
);
say(
  `Command: \`npm run bench:browser -- ${[...args.filter((a) => a !== '--write'), '--write'].join(' ')}\`. Model: ${modelName} (${modelDir.endsWith('maven-tiny') ? 'the embedded model' : modelDir}); the two Fashion-MNIST samples of the browser test, asked "${QUESTION}" (${node.decode.promptTokens} prompt tokens, hybrid, ρ = the model's).`,
);
say('');
say(
  `Load: from nothing to every session compiled by a warm-up question (page: from navigation start, the page served by \`maven serve\` at /local/, so cross-origin isolated; Node: a fresh process), median of ${loads}. Encode, prefill: medians of ${Math.ceil(reps / ROUNDS) * ROUNDS} runs after a warm-up; decode: ${steps} greedy steps with the KV cache, end-of-sequence ignored. Both sides run the same functions (src/browser/local-maven.ts), taking turns (load by load; runs in ${ROUNDS} blocks each) so that both see the same machine.`,
);
say('');
say(
  '| runtime | threads | load ms, model downloaded | load ms, model from the Cache API (each file revalidated: 304) | encode ms | prefill ms | decode tokens/s |',
);
say('|---|---:|---:|---:|---:|---:|---:|');
const row = (name: string, m: Measures) =>
  say(
    `| ${name} | ${m.threads} | ${m.load.totalMs.toFixed(0)} (${m.load.detail}) | ${m.cachedLoad ? `${m.cachedLoad.totalMs.toFixed(0)} (${m.cachedLoad.detail})` : '–'} | ${m.decode.encodeMs.toFixed(1)} | ${m.decode.prefillMs.toFixed(1)} | ${m.decode.tokensPerSecond.toFixed(0)} |`,
  );
row('Node, onnxruntime-node (CPU)', node);
row('headless Chromium, onnxruntime-web (wasm)', web);
say('');
say(
  `Browser / Node: encode ${(web.decode.encodeMs / node.decode.encodeMs).toFixed(2)}×, prefill ${(web.decode.prefillMs / node.decode.prefillMs).toFixed(2)}× the time; decode ${(web.decode.tokensPerSecond / node.decode.tokensPerSecond).toFixed(2)}× the tokens/s.`,
);
say('');

if (args.includes('--write')) writeBenchSection('browser', lines);
