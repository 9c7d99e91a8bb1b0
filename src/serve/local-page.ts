/**
 * The in-browser page (src/browser/): bundled with esbuild, then either served by `maven serve`
 * at /local/ or written out as plain static files (scripts/build-page.ts). Either way the page is
 * index.html, page.js (plus the chunks that load one onnxruntime-web build on demand), the
 * runtime's .mjs and .wasm files under ort/, and a model directory under models/NAME/, which the
 * page fetches and runs; no request ever carries an image or asks the server to compute.
 *
 * Served, the page gets the headers that make it cross-origin isolated (COOP same-origin, COEP
 * require-corp), so onnxruntime-web may use wasm threads; a static host that does not send them
 * still works, on one thread.
 */
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';

const BROWSER_SRC = fileURLToPath(new URL('../browser/', import.meta.url));
const require = createRequire(import.meta.url);

/** The runtime files the page's two onnxruntime-web builds load (WebGPU+wasm "jsep", and wasm alone). */
const RUNTIME_FILES = [
  'ort-wasm-simd-threaded.jsep.mjs',
  'ort-wasm-simd-threaded.jsep.wasm',
  'ort-wasm-simd-threaded.mjs',
  'ort-wasm-simd-threaded.wasm',
];

/** A page file: bytes made by the build, or a file on disk served as it is. */
export type PageFile = { bytes: Uint8Array } | { path: string };

/** What a model directory may hold that the page fetches. */
const MODEL_FILES =
  /^(config\.json|tokenizer\.json|model\.safetensors|model\.safetensors\.index\.json|model-\d{5}-of-\d{5}\.safetensors)$/;

function runtimeDir(): string {
  return dirname(require.resolve('onnxruntime-web')); // dist/, where the .wasm files are
}

/**
 * Bundles the page. `modelPath` is the model directory's URL relative to the page, written into
 * index.html as the default the page loads (a `?model=` query overrides it).
 */
export async function buildLocalPage(modelPath = 'models/maven-tiny/'): Promise<Map<string, PageFile>> {
  // Loaded here, not at the top: a server whose page nobody opens never starts esbuild.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: { page: join(BROWSER_SRC, 'page.ts') },
    bundle: true,
    write: false,
    format: 'esm',
    splitting: true, // each onnxruntime-web build in its own chunk, loaded only when chosen
    platform: 'browser',
    target: 'es2022',
    // onnxruntime-web's "extern wasm" builds load their .mjs/.wasm from env.wasm.wasmPaths (ort/)
    // rather than from the bundle's own URL, which a bundled copy would get wrong.
    conditions: ['onnxruntime-web-use-extern-wasm'],
    minify: true,
    sourcemap: 'linked',
    outdir: '/',
    chunkNames: '[name]-[hash]',
    logLevel: 'silent',
    legalComments: 'none',
  });
  const files = new Map<string, PageFile>();
  for (const out of result.outputFiles) files.set(out.path.replace(/^\//, ''), { bytes: out.contents });
  const html = (await readFile(join(BROWSER_SRC, 'index.html'), 'utf8')).replace(
    /(<meta name="maven-model" content=")[^"]*(")/,
    (_, a: string, b: string) => `${a}${modelPath.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)}${b}`,
  );
  files.set('index.html', { bytes: new TextEncoder().encode(html) });
  for (const name of RUNTIME_FILES) files.set(`ort/${name}`, { path: join(runtimeDir(), name) });
  return files;
}

/** The files of the model directory `dir` the page fetches, by name. */
async function modelFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => MODEL_FILES.test(name)).sort();
}

/**
 * Writes the page as static files under `outDir`, with the model directory `modelDir` copied to
 * `models/<its folder name>/` and set as the page's default.
 */
export async function writeLocalPage(outDir: string, modelDir: string): Promise<string[]> {
  const name = basename(modelDir.replace(/[\\/]+$/, ''));
  const files = await buildLocalPage(`models/${name}/`);
  const written: string[] = [];
  for (const [path, file] of files) {
    const target = join(outDir, path);
    await mkdir(dirname(target), { recursive: true });
    if ('bytes' in file) await writeFile(target, file.bytes);
    else await copyFile(file.path, target);
    written.push(path);
  }
  for (const file of await modelFiles(modelDir)) {
    const target = join(outDir, 'models', name, file);
    await mkdir(dirname(target), { recursive: true });
    await copyFile(join(modelDir, file), target);
    written.push(`models/${name}/${file}`);
  }
  return written;
}

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  map: 'application/json',
  json: 'application/json',
  wasm: 'application/wasm',
  safetensors: 'application/octet-stream',
};

/** Headers that make the page cross-origin isolated, so onnxruntime-web gets SharedArrayBuffer and threads. */
export const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

export interface LocalPageRoutes {
  /** Where the page lives, e.g. '/local'. */
  prefix: string;
  /** The model directory served under `<prefix>/models/<name>/`, the page's default. */
  modelDir: string;
  /** Its name in the URL (the model's config name). */
  modelName: string;
}

/**
 * Adds the page to `app` under `prefix`. It is bundled on the first request (about a second),
 * not at start-up, and kept; model files are read from `modelDir` on each request.
 */
export function mountLocalPage(app: Hono, routes: LocalPageRoutes): void {
  const { prefix, modelDir, modelName } = routes;
  let page: Promise<Map<string, PageFile>> | null = null;
  const bytesOf = new Map<string, Promise<Uint8Array>>();
  const send = (bytes: Uint8Array, name: string) =>
    new Response(bytes as Uint8Array<ArrayBuffer>, {
      headers: {
        'content-type': CONTENT_TYPES[name.split('.').pop() ?? ''] ?? 'application/octet-stream',
        'cache-control': 'no-cache',
        ...ISOLATION_HEADERS,
      },
    });
  app.get(prefix, (c) => c.redirect(`${prefix}/`, 301));
  app.get(`${prefix}/models/${encodeURIComponent(modelName)}/:file`, async (c) => {
    const file = c.req.param('file');
    if (!MODEL_FILES.test(file)) return c.notFound();
    const path = join(modelDir, file);
    let etag: string;
    try {
      const info = await stat(path);
      if (!info.isFile()) return c.notFound();
      // The page keeps model files in the Cache API and revalidates them with this: a retrained
      // model in the same directory gets a new tag, so the page downloads it again.
      etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    } catch {
      return c.notFound();
    }
    if (c.req.header('if-none-match') === etag) {
      return new Response(null, { status: 304, headers: { etag, ...ISOLATION_HEADERS } });
    }
    const response = send(await readFile(path), file);
    response.headers.set('etag', etag);
    return response;
  });
  app.get(`${prefix}/*`, async (c) => {
    page ??= buildLocalPage(`models/${encodeURIComponent(modelName)}/`).catch((e: unknown) => {
      page = null;
      throw e;
    });
    const files = await page;
    const path = c.req.path.slice(prefix.length + 1) || 'index.html';
    const file = files.get(path);
    if (!file) return c.notFound();
    if ('bytes' in file) return send(file.bytes, path);
    let bytes = bytesOf.get(path);
    if (!bytes) {
      bytes = readFile(file.path);
      bytesOf.set(path, bytes);
    }
    return send(await bytes, path);
  });
}
