/**
 * Training progress for people: a one-line bar redrawn in place on a terminal (smoothed loss,
 * throughput, step/total, ETA), or a plain log line every N steps when output goes to a file or
 * CI log, where carriage returns would only make noise. No dependency: one line of text is all
 * the bar is, and owning it lets log lines interleave without garbling it.
 */

/** Debiased exponential moving average: the first values are not pulled toward 0. */
export class Smoother {
  private ema = 0;
  private weightSum = 0;

  constructor(private readonly beta: number) {
    if (!(beta >= 0 && beta < 1)) throw new Error(`Smoother: beta must be in [0, 1), got ${beta}`);
  }

  add(x: number): number {
    this.ema = this.beta * this.ema + (1 - this.beta) * x;
    this.weightSum = this.beta * this.weightSum + (1 - this.beta);
    return this.value;
  }

  get value(): number {
    return this.weightSum === 0 ? Number.NaN : this.ema / this.weightSum;
  }
}

/** `45s`, `3m05s`, `2h03m`, `1d02h`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** `950`, `12.3k`, `4.56M`, `7.00B`: three significant digits. */
export function formatCount(n: number): string {
  const a = Math.abs(n);
  if (a < 1000) return String(Number(n.toPrecision(3)));
  for (const [unit, size] of [
    ['B', 1e9],
    ['M', 1e6],
    ['k', 1e3],
  ] as const) {
    if (a >= size) return `${(n / size).toPrecision(3)}${unit}`;
  }
  return String(n);
}

export interface ProgressOptions {
  /** Shown first on every line, e.g. the stage name. */
  label: string;
  /** Last step of the run (the bar's 100%). */
  total: number;
  /** What `items` counts, e.g. 'tok' or 'ex'; throughput is shown as `<unit>/s`. */
  unit?: string;
  /** 'bar': redraw one line in place with `write`; 'lines': call `log` every `logEvery` steps. */
  mode: 'bar' | 'lines';
  /** Raw text output for the bar (default: process.stderr). */
  write?: (text: string) => void;
  /** Terminal width for the bar (default: stderr's columns, or 100). */
  columns?: () => number;
  /** Line output (for 'lines' mode, and for `print`). */
  log: (line: string) => void;
  logEvery?: number;
}

export interface ProgressStep {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  /** Wall time of this step, seconds. */
  seconds: number;
  /** Tokens or examples in this step's batch, when known. */
  items?: number;
}

/** Smoothing for the displayed loss and rates: about the last 20 steps. */
const BETA = 0.95;
/** Redraw the bar at most this often; a fast loop would otherwise spend its time on the terminal. */
const REDRAW_MS = 100;

export class Progress {
  private readonly loss = new Smoother(BETA);
  private readonly secondsPerStep = new Smoother(BETA);
  private readonly itemsPerSecond = new Smoother(BETA);
  private last: ProgressStep | null = null;
  private lastDraw = 0;
  private barShown = false;
  private readonly write: (text: string) => void;
  private readonly columns: () => number;

  constructor(private readonly options: ProgressOptions) {
    this.write = options.write ?? ((text) => process.stderr.write(text));
    this.columns = options.columns ?? (() => process.stderr.columns || 100);
  }

  get smoothedLoss(): number {
    return this.loss.value;
  }

  /** Items per second, smoothed (NaN when the batch size is unknown). */
  get throughput(): number {
    return this.itemsPerSecond.value;
  }

  update(s: ProgressStep): void {
    this.loss.add(s.loss);
    this.secondsPerStep.add(s.seconds);
    if (s.items !== undefined && s.seconds > 0) this.itemsPerSecond.add(s.items / s.seconds);
    this.last = s;
    if (this.options.mode === 'bar') {
      const now = Date.now();
      if (now - this.lastDraw >= REDRAW_MS || s.step === this.options.total) {
        this.lastDraw = now;
        this.draw();
      }
    } else {
      const every = this.options.logEvery ?? 10;
      if (s.step % every === 0 || s.step === this.options.total) this.options.log(this.line(s));
    }
  }

  /** Prints a line above the bar (clearing and redrawing it), or just logs it in 'lines' mode. */
  print(line: string): void {
    if (this.barShown) this.write('\r\x1b[K');
    this.options.log(line);
    if (this.barShown) this.draw();
  }

  /** Leaves the bar's last state on its own line. */
  finish(): void {
    if (this.barShown) this.write('\n');
    this.barShown = false;
  }

  private eta(step: number): string {
    return formatDuration((this.options.total - step) * this.secondsPerStep.value);
  }

  private rate(): string | null {
    const r = this.itemsPerSecond.value;
    return Number.isFinite(r) ? `${formatCount(r)} ${this.options.unit ?? 'items'}/s` : null;
  }

  /** The plain log line: everything the bar shows plus gradient norm and learning rate. */
  line(s: ProgressStep): string {
    const { label, total } = this.options;
    return [
      `${label} step ${s.step}/${total}`,
      `loss ${s.loss.toFixed(4)} (smoothed ${this.loss.value.toFixed(4)})`,
      `grad ${s.gradNorm.toPrecision(3)}`,
      `lr ${s.lr.toExponential(2)}`,
      this.rate(),
      `ETA ${this.eta(s.step)}`,
    ]
      .filter((p) => p !== null)
      .join(' | ');
  }

  private draw(): void {
    const s = this.last;
    if (!s) return;
    const { label, total } = this.options;
    const stats = [
      `${s.step}/${total}`,
      `loss ${this.loss.value.toFixed(4)}`,
      this.rate(),
      `ETA ${this.eta(s.step)}`,
    ]
      .filter((p) => p !== null)
      .join(' · ');
    const cols = Math.max(40, this.columns());
    const barWidth = Math.max(10, Math.min(40, cols - label.length - stats.length - 6));
    const done = total > 0 ? Math.min(1, s.step / total) : 1;
    const filled = Math.round(done * barWidth);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}`;
    this.write(`\r\x1b[K${label} ${bar} ${stats}`.slice(0, cols + 4));
    this.barShown = true;
  }
}
