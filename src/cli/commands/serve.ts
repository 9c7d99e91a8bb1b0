/** `maven serve`: the OpenAI-compatible multi-image chat API and the web page (src/serve). */
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { loadMaven } from '../../node/model-directory.ts';
import { CHAT_TEMPLATES, type ChatTemplate } from '../../serve/chat-template.ts';
import { startServer } from '../../serve/server.ts';
import { type Command, numberOption, UsageError } from '../command.ts';
import { DEFAULT_MODEL_DIR } from '../default-model.ts';

const MiB = 2 ** 20;

const usage = `usage: maven serve [--model DIR] [--host 127.0.0.1] [--port 8080] [options]

Serves the model over HTTP: POST /v1/chat/completions (OpenAI format, any number of images per
request as image_url parts, SSE streaming), GET /v1/models, GET /health, a web page at /, and at
/local/ a page that downloads the model and runs it in the browser (nothing computed here).

options:
  --model DIR              model directory (default: the embedded models/maven-tiny)
  --host H, --port P       where to listen (default 127.0.0.1:8080; port 0 picks a free one)
  --api-key KEY            require "Authorization: Bearer KEY" on /v1/* (or MAVEN_API_KEY)
  --image-root DIR         allow local image paths (and file: URLs), only inside DIR
  --allow-remote-images    allow http(s) image URLs, fetched by the server (off by default;
                           public addresses only, never loopback or private networks)
  --template T             plain (default; the tiny recipe's format) | vicuna (USER:/ASSISTANT:)
  --keep-ratio R           ρ for images in hybrid mode (default: the model's)
  --max-tokens N           default max_tokens (64); --max-tokens-limit N caps requests (1024)
  --temperature T          temperature when a request gives none (default 0, greedy)
  --concurrency N          requests using the model at once (default 1; the rest wait in order)
  --max-waiting N          requests allowed to wait before 429s (default 64)
  --timeout S              per-request deadline in seconds, everything included (default 120)
  --max-body-mb M          request body limit (default 32)
  --max-text-chars N       characters of text per request, checked before tokenizing
                           (default 32 per position of the model's context)
  --max-image-mb M         per-image limit (default 20)
  --max-images N           images per request (default: the model's maximum)
  --cache-mb M             image-encoding cache size (default 256)
  --no-warmup              skip the start-up request that compiles the model's programs
  --quiet                  no per-request log lines`;

export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve an OpenAI-compatible multi-image chat API and a web page of kept patches',
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        'api-key': { type: 'string' },
        'image-root': { type: 'string' },
        'allow-remote-images': { type: 'boolean' },
        template: { type: 'string' },
        'keep-ratio': { type: 'string' },
        'max-tokens': { type: 'string' },
        'max-tokens-limit': { type: 'string' },
        temperature: { type: 'string' },
        concurrency: { type: 'string' },
        'max-waiting': { type: 'string' },
        timeout: { type: 'string' },
        'max-body-mb': { type: 'string' },
        'max-text-chars': { type: 'string' },
        'max-image-mb': { type: 'string' },
        'max-images': { type: 'string' },
        'cache-mb': { type: 'string' },
        'no-warmup': { type: 'boolean' },
        quiet: { type: 'boolean' },
      },
    });
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'\n\n${usage}`);
    const template = (values.template ?? 'plain') as ChatTemplate;
    if (!CHAT_TEMPLATES.includes(template))
      throw new UsageError(`--template must be one of ${CHAT_TEMPLATES.join(', ')}`);
    const positiveInt = (n: number) => Number.isInteger(n) && n >= 1;
    const positive = (n: number) => n > 0;
    const port = numberOption(values.port, 'port', (n) => Number.isInteger(n) && n >= 0 && n < 65536) ?? 8080;
    const mb = (v: string | undefined, name: string) => {
      const n = numberOption(v, name, positive);
      return n === undefined ? undefined : Math.round(n * MiB);
    };
    const timeout = numberOption(values.timeout, 'timeout', positive);
    let ready = false;
    const options = {
      host: values.host ?? '127.0.0.1',
      port,
      apiKey: values['api-key'] ?? process.env.MAVEN_API_KEY ?? null,
      template,
      keepRatio: numberOption(values['keep-ratio'], 'keep-ratio', (n) => n > 0 && n <= 1),
      defaultMaxTokens: numberOption(values['max-tokens'], 'max-tokens', positiveInt),
      maxTokens: numberOption(values['max-tokens-limit'], 'max-tokens-limit', positiveInt),
      defaultTemperature: numberOption(values.temperature, 'temperature', (n) => n >= 0 && n <= 2),
      concurrency: numberOption(values.concurrency, 'concurrency', positiveInt),
      maxWaiting: numberOption(values['max-waiting'], 'max-waiting', (n) => Number.isInteger(n) && n >= 0),
      requestTimeoutMs: timeout === undefined ? undefined : Math.round(timeout * 1000),
      maxBodyBytes: mb(values['max-body-mb'], 'max-body-mb'),
      maxPromptChars: numberOption(values['max-text-chars'], 'max-text-chars', positiveInt),
      maxImages: numberOption(values['max-images'], 'max-images', positiveInt),
      cacheBytes: mb(values['cache-mb'], 'cache-mb'),
      images: {
        imageRoot: values['image-root'] ?? null,
        allowRemote: values['allow-remote-images'] ?? false,
        ...(values['max-image-mb'] ? { maxImageBytes: mb(values['max-image-mb'], 'max-image-mb') } : {}),
      },
      // Request lines start after the banner: the warm-up request is not traffic.
      log: values.quiet
        ? undefined
        : (line: string) => {
            if (ready) console.error(`[${new Date().toISOString()}] ${line}`);
          },
    };
    const dir = values.model ?? DEFAULT_MODEL_DIR;
    const model = await loadMaven(dir, {}, { weightsOnDisk: true });
    const handle = await startServer(model, { ...options, localPageModelDir: dir });
    if (!values['no-warmup']) {
      // One small request through the public path compiles every program before real traffic.
      const t0 = performance.now();
      const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
        .png()
        .toBuffer();
      const url = `data:image/png;base64,${png.toString('base64')}`;
      const warm = await fetch(`${handle.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
        },
        body: JSON.stringify({
          messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }],
          max_tokens: 2,
        }),
      });
      if (!warm.ok) throw new Error(`warm-up request failed: ${warm.status} ${await warm.text()}`);
      console.error(`warmed up in ${(performance.now() - t0).toFixed(0)} ms`);
    }
    console.log(`maven serve: ${model.config.name} from ${dir}`);
    console.log(`  web page:  ${handle.url}/`);
    console.log(`  in-browser page (the model runs in your browser): ${handle.url}/local/`);
    console.log(
      `  API:       ${handle.url}/v1/chat/completions (OpenAI format)${options.apiKey ? ', API key required' : ''}`,
    );
    if (options.images.imageRoot) console.log(`  local images under ${options.images.imageRoot}`);
    if (options.images.allowRemote) console.log('  remote image URLs enabled (public addresses only)');
    ready = true;
    await new Promise<void>((resolve) => {
      const stop = () => {
        console.error('shutting down');
        handle.close().then(resolve);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
