/**
 * First-come, first-served admission for model work. onnxruntime runs each session on the main
 * thread, so requests cannot truly run side by side; letting them all in would only interleave
 * their tokens and make every answer late. A few (the concurrency limit, default 1) hold a slot
 * at a time, the rest wait in order, and past `maxWaiting` a request is refused at once (429)
 * rather than left to time out. Between session runs the event loop is free, so health checks
 * and new connections are answered while the queue is busy.
 */
import { ApiError } from './errors.ts';

export type Release = () => void;

interface Waiter {
  grant: (release: Release) => void;
}

export class RequestQueue {
  private active = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly concurrency = 1,
    readonly maxWaiting = 64,
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new Error(`RequestQueue: concurrency must be a positive integer, got ${concurrency}`);
    if (!Number.isInteger(maxWaiting) || maxWaiting < 0)
      throw new Error(`RequestQueue: maxWaiting must be a non-negative integer, got ${maxWaiting}`);
  }

  get running(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Wait for a slot. Resolves with a release function (idempotent; call it when done). Rejects
   * with a 429 ApiError when the queue is full, or with the signal's reason if it aborts first.
   */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.active < this.concurrency) return Promise.resolve(this.slot());
    if (this.waiters.length >= this.maxWaiting) {
      return Promise.reject(
        new ApiError(
          429,
          `the server is busy: ${this.active} request(s) running and ${this.waiters.length} waiting; try again shortly`,
          'queue_full',
        ),
      );
    }
    return new Promise<Release>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private slot(): Release {
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      const next = this.waiters.shift();
      if (next) next.grant(this.slot());
    };
  }
}
