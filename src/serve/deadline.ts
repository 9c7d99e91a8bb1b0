/**
 * One deadline per request, enforced by a timer this server owns.
 *
 * The deadline is an AbortController aborted by a plain `setTimeout` (reason: a `TimeoutError`
 * DOMException) or by the client going away (the request signal's reason). It is deliberately
 * not `AbortSignal.any([request, AbortSignal.timeout(ms)])`: on Node 20 such a combined signal
 * can stop aborting after a garbage collection (a known Node issue with AbortSignal.any and GC),
 * which is how `--timeout` silently stopped firing. Here the controller and the timer
 * are held by this object, which the request handler holds until the request ends.
 *
 * `race(work)` settles at the deadline even when `work` cannot be interrupted (a native image
 * decode, a session run): the response goes out on time, and `work` is left to finish on its
 * own. Callers that hold a queue slot keep it until `work` has settled (see `holdUntilSettled`),
 * so abandoned work still counts against `--concurrency` and cannot pile up.
 */

export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: ReturnType<typeof setTimeout>;
  private readonly onParentAbort: (() => void) | null = null;
  private readonly aborted: Promise<never>;

  constructor(
    readonly timeoutMs: number,
    private readonly parent?: AbortSignal,
  ) {
    if (!(timeoutMs > 0)) throw new Error(`Deadline: timeoutMs must be positive, got ${timeoutMs}`);
    this.aborted = new Promise<never>((_, reject) => {
      this.controller.signal.addEventListener('abort', () => reject(this.controller.signal.reason), {
        once: true,
      });
    });
    this.aborted.catch(() => {}); // observed by race(); never an unhandled rejection
    this.timer = setTimeout(() => {
      this.controller.abort(new DOMException(`the deadline of ${timeoutMs} ms has passed`, 'TimeoutError'));
    }, timeoutMs);
    if (parent) {
      if (parent.aborted) this.controller.abort(parent.reason);
      else {
        this.onParentAbort = () => this.controller.abort(parent.reason);
        parent.addEventListener('abort', this.onParentAbort, { once: true });
      }
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** True once the timer fired (not when only the client left). */
  get timedOut(): boolean {
    const r = this.controller.signal.reason;
    return this.controller.signal.aborted && r instanceof DOMException && r.name === 'TimeoutError';
  }

  /** Throws the abort reason if the deadline passed or the client left. */
  check(): void {
    this.controller.signal.throwIfAborted();
  }

  /** `work`'s result, or the abort reason as soon as the deadline passes (work goes on). */
  race<T>(work: Promise<T>): Promise<T> {
    if (this.controller.signal.aborted) {
      work.catch(() => {}); // abandoned: its failure is no longer anyone's to handle
      return Promise.reject(this.controller.signal.reason);
    }
    return Promise.race([work, this.aborted]);
  }

  /** Stop the timer and forget the request signal; call when the request is over. */
  clear(): void {
    clearTimeout(this.timer);
    if (this.parent && this.onParentAbort) this.parent.removeEventListener('abort', this.onParentAbort);
  }
}

/**
 * Run `work` under `deadline` while holding `release`'s slot: resolves with its result, or
 * rejects at the deadline; either way the slot is released only once `work` has settled, so
 * work the deadline abandoned still occupies its slot until it really stops. On success the slot
 * stays held (the caller releases it, e.g. after generating).
 */
export async function holdUntilSettled<T>(
  deadline: Deadline,
  work: Promise<T>,
  release: () => void,
): Promise<T> {
  let settled = false;
  const tracked = work.then(
    (v) => {
      settled = true;
      return v;
    },
    (e: unknown) => {
      settled = true;
      throw e;
    },
  );
  try {
    return await deadline.race(tracked);
  } catch (e) {
    if (settled) release();
    else tracked.then(release, release);
    throw e;
  }
}
