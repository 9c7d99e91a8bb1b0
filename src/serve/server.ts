/**
 * The HTTP server (Hono on Node): an OpenAI-compatible chat API for several images per request,
 * and a web page that shows what the model kept of each image.
 *
 *   POST /v1/chat/completions   chat with images (JSON or SSE streaming); see chat-request.ts
 *   GET  /v1/models             the one model served
 *   GET  /health                liveness, queue and cache counters (never queued, no API key)
 *   GET  /                      the web page (a client of this API)
 *   GET  /local/                the in-browser page: the model runs in the browser (local-page.ts)
 *
 * Every error is JSON in OpenAI's shape, `{error: {message, type, param, code}}`, with a 4xx
 * status for anything the client can fix. Bodies are capped (413), requests wait their turn in
 * a FIFO queue (429 when it is full) and are cut off after a deadline that includes the wait
 * (504); an optional API key guards /v1/*. Everything a request costs beyond reading it
 * (decoding its images, tokenizing, encoding, generating) runs while it holds its queue slot.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { realpath, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { MavenModel } from '../maven/model.ts';
import { type ChatRequest, parseChatRequest } from './chat-request.ts';
import { ChatService, type ChatServiceOptions, type PreparedChat } from './chat-service.ts';
import { Deadline, holdUntilSettled } from './deadline.ts';
import { ApiError } from './errors.ts';
import { mountLocalPage } from './local-page.ts';
import { servePage } from './page.ts';
import { type Release, RequestQueue } from './queue.ts';

export interface ServerOptions extends ChatServiceOptions {
  /** Required as `Authorization: Bearer KEY` on /v1/* when set. */
  apiKey?: string | null;
  /** Requests holding the model at once (1: one at a time, in arrival order). */
  concurrency?: number;
  /** Requests allowed to wait; beyond that a 429 at once. */
  maxWaiting?: number;
  /** Deadline per request, queue wait included; 2 minutes is far beyond a tiny-model answer. */
  requestTimeoutMs?: number;
  /** Largest request body; 32 MiB leaves room for a few base64 photos. */
  maxBodyBytes?: number;
  /** One line per request (method, status, time, images, tokens); default silent. */
  log?: (line: string) => void;
  /**
   * The model directory the in-browser page at /local/ loads (the served model's own directory);
   * without it there is no /local/.
   */
  localPageModelDir?: string;
}

export interface ServerHandle {
  url: string;
  port: number;
  service: ChatService;
  queue: RequestQueue;
  server: ServerType;
  close(): Promise<void>;
}

const ms = (t0: number) => Math.round((performance.now() - t0) * 10) / 10;
const unixTime = () => Math.floor(Date.now() / 1000);
const digest = (s: string) => createHash('sha256').update(s).digest();

function errorResponse(c: Context, e: ApiError): Response {
  // After a 413 the rest of the body may still be on the wire: close the connection rather
  // than let the client reuse a socket whose next bytes are the unread body.
  const headers = e.status === 413 ? { connection: 'close' } : undefined;
  return c.json(e.toJSON(), e.status as ContentfulStatusCode, headers);
}

/** Abort reasons (deadline, client gone) and stray errors as ApiErrors. */
function asApiError(e: unknown, timeoutMs: number): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof DOMException && e.name === 'TimeoutError') {
    return new ApiError(
      504,
      `the request took longer than this server's limit of ${timeoutMs} ms (waiting in the queue included)`,
      'request_timeout',
    );
  }
  return new ApiError(500, `internal error: ${e instanceof Error ? e.message : String(e)}`, 'internal_error');
}

function usageOf(chat: PreparedChat, completionTokens: number) {
  return {
    prompt_tokens: chat.promptTokens,
    completion_tokens: completionTokens,
    total_tokens: chat.promptTokens + completionTokens,
    prompt_tokens_details: { image_tokens: chat.imageTokens },
    maven: {
      images: chat.images.map((i) => ({
        discrete_tokens: i.discreteIds.length,
        kept_patches: i.kept.length,
        total_patches: i.totalPatches,
      })),
    },
  };
}

function mavenOf(chat: PreparedChat, timings: Record<string, number>) {
  return {
    images: chat.images.map((i, index) => ({
      index,
      mode: i.mode,
      discrete_tokens: i.discreteIds.length,
      kept_patches: i.kept.length,
      total_patches: i.totalPatches,
      grid: i.grid,
      cached: i.cached,
      encode_ms: Math.round(i.encodeMs * 10) / 10,
      kept: i.kept,
      discrete_ids: i.discreteIds,
      ...(i.overlay ? { overlay: i.overlay } : {}),
    })),
    // Words of the prompt the model's vocabulary does not have: it read each as <unk>.
    unknown_words: chat.unknownWords,
    timings_ms: timings,
  };
}

/** Tracks the answer: text with leading whitespace dropped, tokens, why it ended. */
class Answer {
  text = '';
  tokens = 0;
  private leading = true;

  /** The text to send for this piece ('' for none). */
  add(piece: { id: number; text: string }): string {
    if (piece.id >= 0) this.tokens++;
    let t = piece.text;
    if (this.leading) {
      t = t.trimStart();
      if (t) this.leading = false;
    }
    this.text += t;
    return t;
  }

  finishReason(maxTokens: number): 'stop' | 'length' {
    return this.tokens >= maxTokens ? 'length' : 'stop';
  }
}

export function createApp(service: ChatService, queue: RequestQueue, options: ServerOptions = {}): Hono {
  const timeoutMs = options.requestTimeoutMs ?? 120_000;
  const maxBody = options.maxBodyBytes ?? 32 * 2 ** 20;
  const log = options.log ?? (() => {});
  const key = options.apiKey ? digest(options.apiKey) : null;
  const created = unixTime();
  const app = new Hono();

  app.onError((e, c) => {
    // A client that left gets no answer; its abort reason is not a server error.
    const err = c.req.raw.signal.aborted
      ? new ApiError(499, 'the client closed the connection', 'client_closed')
      : asApiError(e, timeoutMs);
    log(
      `${c.req.method} ${c.req.path} ${err.status} ${err.code}: ${err.message}${err.detail ? ` [${err.detail}]` : ''}`,
    );
    if (err.status >= 500 && err.status !== 504 && e instanceof Error && e.stack) log(e.stack);
    return errorResponse(c, err);
  });
  app.notFound((c) =>
    errorResponse(c, new ApiError(404, `no route ${c.req.method} ${c.req.path}`, 'not_found')),
  );

  app.get('/health', (c) => {
    const s = service.encoder.stats();
    return c.json({
      status: 'ok',
      model: service.modelName,
      queue: { running: queue.running, waiting: queue.waiting, concurrency: queue.concurrency },
      encoder: { encoded_images: s.encoded, encode_ms: Math.round(s.encodeMs) },
      cache: {
        entries: s.cache.entries,
        bytes: s.cache.bytes,
        max_bytes: s.cache.maxBytes,
        hits: s.cache.hits,
        misses: s.cache.misses,
        evictions: s.cache.evictions,
      },
    });
  });

  app.get('/', (c) => c.html(servePage({ model: service.modelName, apiKeyRequired: key !== null })));
  app.get('/favicon.ico', (c) => c.body(null, 204)); // browsers ask; nothing to show
  if (options.localPageModelDir) {
    mountLocalPage(app, {
      prefix: '/local',
      modelDir: options.localPageModelDir,
      modelName: service.modelName,
    });
  }

  app.use('/v1/*', async (c, next) => {
    if (!key) return next();
    const header = c.req.header('authorization') ?? '';
    const given = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
    if (!given) {
      throw new ApiError(
        401,
        'missing API key: send it as "Authorization: Bearer <key>"',
        'missing_api_key',
        null,
        'authentication_error',
      );
    }
    if (!timingSafeEqual(digest(given), key)) {
      throw new ApiError(401, 'incorrect API key', 'invalid_api_key', null, 'authentication_error');
    }
    return next();
  });

  const model = () => ({ id: service.modelName, object: 'model', created, owned_by: 'maven-ts' });
  app.get('/v1/models', (c) => c.json({ object: 'list', data: [model()] }));
  app.get('/v1/models/:id', (c) => {
    if (c.req.param('id') !== service.modelName)
      throw new ApiError(404, `model "${c.req.param('id')}" is not served here`, 'model_not_found', 'model');
    return c.json(model());
  });

  const limit = bodyLimit({
    maxSize: maxBody,
    onError: () => {
      throw new ApiError(
        413,
        `the request body is larger than this server's limit of ${maxBody} bytes`,
        'request_too_large',
      );
    },
  });

  app.post('/v1/chat/completions', limit, async (c) => {
    const t0 = performance.now();
    const contentType = c.req.header('content-type') ?? '';
    if (!/^application\/json\s*(;|$)/i.test(contentType)) {
      throw new ApiError(
        415,
        `Content-Type must be application/json, got ${contentType ? `"${contentType}"` : 'none'}`,
        'unsupported_media_type',
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch (e) {
      throw new ApiError(400, `the request body is not valid JSON (${(e as Error).message})`, 'invalid_json');
    }
    const request = parseChatRequest(body, service.limits());
    if (request.model !== null && request.model !== service.modelName) {
      throw new ApiError(
        404,
        `model "${request.model}" is not served here; this server serves "${service.modelName}" (see GET /v1/models)`,
        'model_not_found',
        'model',
      );
    }
    // One deadline for the whole request, a timer owned here (not a combined AbortSignal).
    const deadline = new Deadline(timeoutMs, c.req.raw.signal);
    const signal = deadline.signal;
    let slot: Release;
    let chat: PreparedChat;
    let tRead: number;
    let tQueue: number;
    try {
      const pending = await deadline.race(service.gather(request, signal));
      tRead = performance.now();
      slot = await queue.acquire(signal); // rejects with the deadline's reason when it passes
      tQueue = performance.now();
      // Decoding, tokenizing and encoding run in the queue slot; at the deadline the response goes
      // out at once, and the slot stays taken until the abandoned work has really stopped.
      chat = await holdUntilSettled(deadline, service.prepare(request, pending, signal), slot);
    } catch (e) {
      deadline.clear();
      throw e;
    }
    const release: Release = () => {
      deadline.clear();
      slot();
    };
    const tEncode = performance.now();
    const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
    const done = (status: number, answer: Answer) => {
      const cached = chat.images.filter((i) => i.cached).length;
      log(
        `POST /v1/chat/completions ${status} ${ms(t0)} ms: ${chat.images.length} image(s) (${cached} cached), ${chat.promptTokens} prompt + ${answer.tokens} completion tokens${request.stream ? ', streamed' : ''}`,
      );
    };
    const timings = (tEnd: number) => ({
      read: Math.round(tRead - t0), // parse, image bytes (fetches included), hashes
      queue: Math.round(tQueue - tRead),
      encode: Math.round(tEncode - tQueue), // decoding of new images, encoding, tokenizing
      generate: Math.round(tEnd - tEncode),
      total: Math.round(tEnd - t0),
    });
    if (request.stream) return streamAnswer(c, { request, chat, id, signal, release, done, timings });

    const answer = new Answer();
    const generation = (async () => {
      for await (const piece of service.generate(chat, signal)) answer.add(piece);
    })();
    try {
      await deadline.race(generation);
    } finally {
      // The slot is free once generation has stopped (it stops at the next token after a deadline).
      generation.then(release, release);
    }
    done(200, answer);
    return c.json({
      id,
      object: 'chat.completion',
      created: unixTime(),
      model: service.modelName,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: answer.text },
          logprobs: null,
          finish_reason: answer.finishReason(chat.sampling.maxNewTokens!),
        },
      ],
      usage: usageOf(chat, answer.tokens),
      maven: mavenOf(chat, timings(performance.now())),
    });
  });

  interface StreamJob {
    request: ChatRequest;
    chat: PreparedChat;
    id: string;
    signal: AbortSignal;
    release: Release;
    done: (status: number, answer: Answer) => void;
    timings: (tEnd: number) => Record<string, number>;
  }

  /** Server-sent events: role chunk (+ maven), content deltas, finish chunk, usage chunk, [DONE]. */
  function streamAnswer(c: Context, job: StreamJob): Response {
    const { request, chat, id, signal } = job;
    const createdAt = unixTime();
    const answer = new Answer();
    const chunk = (
      delta: Record<string, string>,
      finish: string | null,
      extra: Record<string, unknown> = {},
    ) =>
      `data: ${JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created: createdAt,
        model: service.modelName,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        ...(request.includeUsage ? { usage: null } : {}),
        ...extra,
      })}\n\n`;
    async function* events(): AsyncGenerator<string> {
      try {
        try {
          yield chunk({ role: 'assistant', content: '' }, null, {
            maven: mavenOf(chat, job.timings(performance.now())),
          });
          for await (const piece of service.generate(chat, signal)) {
            const text = answer.add(piece);
            if (text) yield chunk({ content: text }, null);
          }
          yield chunk({}, answer.finishReason(chat.sampling.maxNewTokens!));
          if (request.includeUsage) {
            yield `data: ${JSON.stringify({
              id,
              object: 'chat.completion.chunk',
              created: createdAt,
              model: service.modelName,
              choices: [],
              usage: usageOf(chat, answer.tokens),
            })}\n\n`;
          }
          job.done(200, answer);
        } catch (e) {
          if (c.req.raw.signal.aborted) {
            job.done(499, answer);
            return;
          }
          const err = asApiError(e, timeoutMs);
          job.done(err.status, answer);
          yield `data: ${JSON.stringify(err.toJSON())}\n\n`;
        }
        yield 'data: [DONE]\n\n';
      } finally {
        job.release();
      }
    }
    const it = events();
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { value, done } = await it.next();
        if (done) controller.close();
        else controller.enqueue(encoder.encode(value));
      },
      async cancel() {
        job.release(); // the client went away: free the model now, whatever the generator is doing
        await it.return(undefined);
      },
    });
    return new Response(body, {
      headers: {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
      },
    });
  }

  return app;
}

/** Check the options that name files, so a typo fails at start-up, not on the first request. */
async function resolveImageRoot(root: string | null | undefined): Promise<string | null> {
  if (!root) return null;
  let real: string;
  try {
    real = await realpath(root);
  } catch {
    throw new Error(`--image-root ${root} does not exist`);
  }
  if (!(await stat(real)).isDirectory()) throw new Error(`--image-root ${root} is not a directory`);
  return real;
}

/** Serve `model` on host:port (port 0 picks a free one); resolves once listening. */
export async function startServer(
  model: MavenModel,
  options: ServerOptions & { host?: string; port?: number } = {},
): Promise<ServerHandle> {
  const imageRoot = await resolveImageRoot(options.images?.imageRoot);
  const concurrency = options.concurrency ?? 1;
  const service = new ChatService(model, {
    imageWorkers: concurrency, // one decoding worker per request that can hold the model
    ...options,
    images: { ...options.images, imageRoot },
  });
  const queue = new RequestQueue(concurrency, options.maxWaiting ?? 64);
  const app = createApp(service, queue, options);
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: app.fetch, hostname: host, port: options.port ?? 8080 },
      (info: AddressInfo) => {
        const shown = host.includes(':') ? `[${host}]` : host;
        resolve({
          url: `http://${shown}:${info.port}`,
          port: info.port,
          service,
          queue,
          server,
          close: async () => {
            await new Promise<void>((done) => {
              server.close(() => done());
              if ('closeAllConnections' in server) server.closeAllConnections();
            });
            await service.close();
          },
        });
      },
    );
    server.once('error', reject);
  });
}
