/**
 * Load test of `maven serve` on loopback: requests/s and p50/p95 latency of two-image chat
 * completions with 1 and 4 concurrent clients, for repeated images (a conversation's steady
 * state: encodings come from the cache) and for new images on every request (cache misses).
 * The server runs as its own process (`maven serve`, as deployed); request bodies are built
 * before the clock starts, so the clients cost little. Bounded: at most --requests per case and
 * --seconds per case, whichever ends first.
 *
 *   npm run bench:serve [-- --write] [-- --model DIR] [-- --requests N] [-- --seconds S]
 *
 * Then a soak (--soak-seconds, default 120; 0 skips it): 8 requests in flight for that long, a
 * mix of valid ones (cached and new images), hostile ones (an SVG, an over-long text, broken
 * JSON) and ones the client cancels; it reports requests by outcome, p95 of the valid ones, and
 * the server's resident memory before and after — nothing may be lost (every request not
 * cancelled gets an HTTP answer) and memory should not grow.
 *
 * Without --model it uses randomly initialised tiny weights: speed does not depend on training.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { tinyConfig } from '../src/maven/config.ts';
import { buildComponents, initMavenParams, MavenModel } from '../src/maven/model.ts';
import { WordTokenizer } from '../src/models/tokenizer.ts';
import { saveMaven } from '../src/node/model-directory.ts';
import { writeBenchSection } from './write-section.ts';

const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const modelDir = option('--model');
const maxRequests = Number(option('--requests') ?? 60);
const maxSeconds = Number(option('--seconds') ?? 15);
const soakSeconds = Number(option('--soak-seconds') ?? 120);
const MAX_TOKENS = 16;
const lines: string[] = [];
const say = (s = '') => {
  lines.push(s);
  console.log(s);
};

/** A model directory: the one given, or random tiny weights saved to a temporary one. */
async function modelDirectory(): Promise<{ dir: string; cleanup: () => void }> {
  if (modelDir) return { dir: modelDir, cleanup: () => {} };
  const words =
    'how many yellow blue black squares circles triangles are there in the image is it true false yes no'.split(
      ' ',
    );
  const tokenizer = WordTokenizer.build([words.join(' ')], { minCount: 1 });
  tokenizer.addSpecialTokens(['<img>', '</img>']);
  const config = tinyConfig(tokenizer.vocabSize);
  const dir = mkdtempSync(join(os.tmpdir(), 'maven-bench-serve-'));
  await saveMaven(dir, new MavenModel(config, initMavenParams(buildComponents(config), 1), tokenizer));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `maven serve` in its own process on a free loopback port (it warms up before printing its URL). */
async function startServer(dir: string) {
  const bin = fileURLToPath(new URL('../bin/maven.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'serve', '--model', dir, '--port', '0', '--quiet'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /web page: +(http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`maven serve exited with ${code}`)));
  });
  return { url, pid: child.pid as number, stop: () => child.kill('SIGTERM') };
}

/** A 96×96 PNG unlike any other (for the cache-miss case). */
async function newImage(n: number): Promise<string> {
  const raw = Buffer.alloc(96 * 96 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + n * 97 + (i >> 5) * n) & 255;
  const png = await sharp(raw, { raw: { width: 96, height: 96, channels: 3 } })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

const sample = (file: string) =>
  `data:image/png;base64,${readFileSync(new URL(`../assets/samples/${file}`, import.meta.url)).toString('base64')}`;
const fixed = [sample('fashion-test-0.png'), sample('fashion-test-2.png')];

function body(images: string[]): string {
  return JSON.stringify({
    messages: [
      {
        role: 'user',
        content: [
          ...images.map((url) => ({ type: 'image_url', image_url: { url } })),
          { type: 'text', text: 'how many yellow squares are there in the image ?' },
        ],
      },
    ],
    max_tokens: MAX_TOKENS,
    temperature: 0,
  });
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/** The server process's resident memory in MiB (Linux /proc), or NaN elsewhere. */
function serverRssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

const SVG = `data:image/svg+xml;base64,${Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4900" height="4900"><filter id="f"><feGaussianBlur stdDeviation="500"/></filter><rect width="4900" height="4900" fill="red" filter="url(#f)"/></svg>').toString('base64')}`;

type SoakKind = 'cached' | 'new image' | 'svg' | 'long text' | 'broken json' | 'cancelled';
/** The soak's mix, in tenths: mostly valid requests, a steady share of hostile and abandoned ones. */
const SOAK_MIX: [SoakKind, number][] = [
  ['cached', 4],
  ['new image', 1],
  ['svg', 1],
  ['long text', 1],
  ['broken json', 1],
  ['cancelled', 2],
];

async function soak(): Promise<void> {
  const inFlight = 8;
  const kinds = SOAK_MIX.flatMap(([k, n]) => Array<SoakKind>(n).fill(k));
  const longText = JSON.stringify({
    messages: [{ role: 'user', content: 'the '.repeat(250_000) }],
    max_tokens: MAX_TOKENS,
  });
  const outcomes = new Map<string, number>();
  const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  const validMs: number[] = [];
  let lost = 0;
  let serial = 0;
  await new Promise((r) => setTimeout(r, 500));
  const rssStart = serverRssMiB(server.pid);
  const end = performance.now() + soakSeconds * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const kind = kinds[serial++ % kinds.length];
        const requestBody =
          kind === 'cached' || kind === 'cancelled'
            ? body(fixed)
            : kind === 'new image'
              ? body([await newImage(imageSerial++), fixed[0]])
              : kind === 'svg'
                ? body([SVG])
                : kind === 'long text'
                  ? longText
                  : '{"messages": [';
        const controller = new AbortController();
        if (kind === 'cancelled') setTimeout(() => controller.abort(), 20);
        const t0 = performance.now();
        try {
          const res = await fetch(endpoint, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: requestBody,
            signal: controller.signal,
          });
          const json = (await res.json()) as { error?: { code?: string; type?: string } };
          if (res.ok && (kind === 'cached' || kind === 'new image' || kind === 'cancelled'))
            validMs.push(performance.now() - t0);
          count(
            `${kind}: ${res.status}${res.ok ? '' : ` ${json.error?.code ?? json.error?.type ?? ''}`}`.trim(),
          );
        } catch (e) {
          if (kind === 'cancelled' && controller.signal.aborted) count('cancelled: aborted by the client');
          else {
            lost++;
            count(`${kind}: no answer (${e instanceof Error ? e.message : String(e)})`);
          }
        }
      }
    }),
  );
  await new Promise((r) => setTimeout(r, 1000));
  const rssEnd = serverRssMiB(server.pid);
  const health = await fetch(`${server.url}/health`);
  const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
  say(`### Soak: ${soakSeconds} s, ${inFlight} requests in flight`);
  say('');
  say(
    `Mix (in turn): ${SOAK_MIX.map(([k, n]) => `${n}/10 ${k}`).join(', ')}. "svg": the 4900 px blur SVG as a data URL; "long text": a 1 MB prompt; "cancelled": the client aborts after 20 ms.`,
  );
  say('');
  say('| outcome | requests |');
  say('|---|---:|');
  for (const [k, n] of [...outcomes].sort()) say(`| ${k} | ${n} |`);
  say('');
  say(
    `${total} requests; ${validMs.length} valid answers, p50 ${percentile(validMs, 50)?.toFixed(0) ?? '–'} ms, p95 ${percentile(validMs, 95)?.toFixed(0) ?? '–'} ms; lost (no HTTP answer, not cancelled): ${lost}; /health after: ${health.status}. Server RSS ${rssStart.toFixed(0)} MiB at the start, ${rssEnd.toFixed(0)} MiB at the end (${((rssEnd / rssStart - 1) * 100).toFixed(0)} %).`,
  );
  say('');
}

const { dir, cleanup } = await modelDirectory();
const server = await startServer(dir);
const endpoint = `${server.url}/v1/chat/completions`;
let imageSerial = 0;

async function one(requestBody: string): Promise<{ ms: number; tokens: number }> {
  const t0 = performance.now();
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: requestBody,
  });
  const json = (await res.json()) as { usage?: { completion_tokens: number }; error?: { message: string } };
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${json.error?.message}`);
  return { ms: performance.now() - t0, tokens: json.usage!.completion_tokens };
}

async function run(clients: number, fresh: boolean) {
  // Every body is built before the clock starts.
  const bodies: string[] = [];
  for (let i = 0; i < maxRequests; i++)
    bodies.push(fresh ? body([await newImage(imageSerial++), await newImage(imageSerial++)]) : body(fixed));
  const latencies: number[] = [];
  let tokens = 0;
  let next = 0;
  const deadline = performance.now() + maxSeconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < bodies.length && performance.now() < deadline) {
        const r = await one(bodies[next++]);
        latencies.push(r.ms);
        tokens += r.tokens;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return {
    requests: latencies.length,
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    tokens: tokens / latencies.length,
  };
}

try {
  await one(body(fixed)); // puts the fixed images in the cache
  say('## Serving (`npm run bench:serve`)');
  say('');
  say(
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores; node ${process.version}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Model: ${modelDir ?? 'maven-tiny, random weights'}. \`maven serve\` in its own process on 127.0.0.1 with the defaults (one request at a time, FIFO queue); the clients in this process.`,
  );
  say('');
  say(
    `Each request: two images as base64 data URLs plus a question, non-streaming, greedy, at most ${MAX_TOKENS} new tokens. At most ${maxRequests} requests or ${maxSeconds} s per row. "Repeated" re-sends the same two Fashion-MNIST photos (encodings from the cache); "new" sends two never-seen 96 px images each time (decode + ViT + tokenizer + h_EOS + selector per image).`,
  );
  say('');
  say('| images | clients | requests | requests/s | p50 ms | p95 ms | new tokens / request |');
  say('|---|---:|---:|---:|---:|---:|---:|');
  for (const fresh of [false, true]) {
    for (const clients of [1, 4]) {
      const r = await run(clients, fresh);
      say(
        `| ${fresh ? 'new' : 'repeated'} | ${clients} | ${r.requests} | ${r.rps.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.tokens.toFixed(1)} |`,
      );
    }
  }
  const health = (await (await fetch(`${server.url}/health`)).json()) as {
    encoder: { encoded_images: number; encode_ms: number };
    cache: { hits: number; misses: number };
  };
  say('');
  say(
    `Server counters after the run (warm-up included): ${health.encoder.encoded_images} images encoded in ${health.encoder.encode_ms} ms (${(health.encoder.encode_ms / Math.max(1, health.encoder.encoded_images)).toFixed(1)} ms each); encoding cache ${health.cache.hits} hits, ${health.cache.misses} misses.`,
  );
  say('');
  if (soakSeconds > 0) await soak();
} finally {
  server.stop();
  cleanup();
}

if (args.includes('--write')) writeBenchSection('serve', lines);
