/**
 * Evaluation progress on stderr: on a terminal, one bar redrawn in place (label, done/total,
 * questions per second, ETA); in a log file, a plain line every 10 %, since carriage returns
 * there only make noise. Only ever writes to the stream it is given, never to stdout, so tables
 * and JSON on stdout stay clean.
 */
import { formatDuration } from '../train/progress.ts';

/** Redraw at most this often: scoring a question can take under a millisecond on small models. */
const REDRAW_MS = 100;

export interface EvalProgressOptions {
  /** Where the bar goes (default process.stderr). */
  stream?: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  /** Force the style; default: a bar on a TTY, lines otherwise. */
  mode?: 'bar' | 'lines' | 'off';
}

export class EvalProgress {
  private readonly stream: NonNullable<EvalProgressOptions['stream']>;
  private readonly mode: 'bar' | 'lines' | 'off';
  private start = performance.now();
  private lastDraw = 0;
  private lastTenth = -1;
  private shown = false;

  constructor(
    private label: string,
    options: EvalProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.mode = options.mode ?? (this.stream.isTTY ? 'bar' : 'lines');
  }

  /** Start a new phase (e.g. the next benchmark) with its own label and clock. */
  restart(label: string): void {
    this.finish();
    this.label = label;
    this.start = performance.now();
    this.lastTenth = -1;
  }

  /** Report `done` of `total` questions answered; usable directly as an `onProgress` callback. */
  readonly update = (done: number, total: number): void => {
    if (this.mode === 'off') return;
    const seconds = (performance.now() - this.start) / 1000;
    const rate = done / Math.max(seconds, 1e-9);
    const eta = formatDuration((total - done) / Math.max(rate, 1e-9));
    const stats = `${done}/${total} · ${rate.toFixed(1)}/s · ETA ${done === total ? '0s' : eta}`;
    if (this.mode === 'lines') {
      const tenth = total > 0 ? Math.floor((10 * done) / total) : 10;
      if (tenth !== this.lastTenth) {
        this.lastTenth = tenth;
        this.stream.write(`${this.label} ${stats}\n`);
      }
      return;
    }
    const now = performance.now();
    if (now - this.lastDraw < REDRAW_MS && done !== total) return;
    this.lastDraw = now;
    const cols = Math.max(40, this.stream.columns ?? 100);
    const width = Math.max(10, Math.min(30, cols - this.label.length - stats.length - 4));
    const filled = total > 0 ? Math.round((Math.min(done, total) / total) * width) : width;
    this.stream.write(`\r\x1b[K${this.label} ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${stats}`);
    this.shown = true;
  };

  /** End the bar's line (the last state stays visible). */
  finish(): void {
    if (this.shown) this.stream.write('\n');
    this.shown = false;
  }
}
