/**
 * Image decoding off the main thread, in worker threads that can be killed.
 *
 * A request's new images are decoded and resized (image-worker.ts) in a worker while the request
 * holds its queue slot, so the server's event loop stays free (`/health` answers at once) and at
 * most `--concurrency` decodes run at a time. When the request's deadline passes (or its client
 * leaves) the worker is terminated, which stops the work there and then; a fresh worker is
 * started for the next image. Idle workers are kept for reuse and do not keep the process alive.
 *
 * The workers load the TypeScript sources through tsx, as bin/maven.js does for the main thread.
 */
import { Worker } from 'node:worker_threads';
import { ImageError } from '../models/image.ts';
import type { DecodeJob, DecodeReply } from './image-worker.ts';

export type DecodedPixels = Extract<DecodeReply, { ok: true }>;

const WORKER_URL = new URL('./image-worker.ts', import.meta.url).href;
// An eval'd bootstrap registers tsx in the worker, then imports the worker's module: a .ts file
// cannot be a worker's entry point directly on Node 20, with or without `--import tsx`.
const BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL)}); })`;

export class ImageDecoderPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Set<Worker>();
  private closed = false;
  /** Workers started so far (a terminated one is replaced by a new one). */
  started = 0;

  constructor(readonly maxIdle = 1) {}

  /** Decode and prepare one image; rejects with ImageError for bad bytes, or `signal`'s reason. */
  async decode(job: DecodeJob, signal?: AbortSignal): Promise<DecodedPixels> {
    if (this.closed) throw new Error('the image decoder pool is closed');
    signal?.throwIfAborted();
    const worker = this.idle.pop() ?? this.spawn();
    this.busy.add(worker);
    // The bytes go over as a copy the worker owns (the request keeps its own for hashing).
    const bytes = job.bytes.slice();
    return new Promise<DecodedPixels>((resolve, reject) => {
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
        this.busy.delete(worker);
      };
      const kill = () => {
        cleanup();
        void worker.terminate();
      };
      const onAbort = () => {
        kill();
        reject(signal!.reason);
      };
      const onError = (e: Error) => {
        kill();
        reject(new Error(`image decoder worker failed: ${e.message}`));
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new Error(`image decoder worker exited (code ${code})`));
      };
      const onMessage = (reply: DecodeReply) => {
        cleanup();
        if (this.closed || this.idle.length >= this.maxIdle) void worker.terminate();
        else this.idle.push(worker);
        if (reply.ok) resolve(reply);
        else if (reply.imageError) reject(new ImageError(reply.label, reply.reason));
        else reject(new Error(reply.message));
      };
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.postMessage({ ...job, bytes }, [bytes.buffer as ArrayBuffer]);
    });
  }

  private spawn(): Worker {
    this.started++;
    const worker = new Worker(BOOTSTRAP, { eval: true });
    worker.unref(); // idle workers never keep the process alive
    // A busy worker's failure is its job's (see decode); an idle one that fails is dropped.
    worker.on('error', () => {});
    worker.on('exit', () => {
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
    });
    return worker;
  }

  /** Stop every worker, idle or busy (their decodes reject). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.idle, ...this.busy];
    this.idle.length = 0;
    await Promise.all(all.map((w) => w.terminate()));
  }
}
