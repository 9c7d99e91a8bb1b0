/**
 * Loss curves as hand-written SVG (axes, round-number ticks, a legend, a smoothed line over faint
 * raw points) and its PNG rendering through sharp. No plotting dependency: a training run writes
 * `loss.svg`/`loss.png` at every checkpoint, and a few hundred lines of string building are easier
 * to keep exact and fast than a charting library.
 */
import sharp from 'sharp';

export interface PlotSeries {
  name: string;
  /** [x, y] pairs, e.g. [step, loss]; non-finite values (and y <= 0 on a log axis) are skipped. */
  points: [number, number][];
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Logarithmic y axis (losses that fall over several decades). */
  logY?: boolean;
  /** Pixels; 720×420 reads well in a README and as a PNG. */
  width?: number;
  height?: number;
  /**
   * EMA weight of the smoothed line in [0, 1), TensorBoard-style with bias correction. Default:
   * a window of about 1/40 of the series (0 for short series), so the shape survives long runs.
   */
  smoothing?: number;
}

/** Raw points drawn per series at most; longer series are thinned evenly (the line uses all). */
const MAX_DRAWN_POINTS = 1500;
/** Vertices of the smoothed line at most. */
const MAX_LINE_VERTICES = 1000;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const FONT = 'DejaVu Sans, Arial, Helvetica, sans-serif';
const MARGIN = { left: 72, right: 24, top: 44, bottom: 56 };

/** Debiased exponential moving average (TensorBoard's "smoothing"): no pull toward 0 at the start. */
export function smooth(values: readonly number[], weight: number): number[] {
  if (!(weight >= 0 && weight < 1)) throw new Error(`smooth: weight must be in [0, 1), got ${weight}`);
  const out: number[] = [];
  let ema = 0;
  let debias = 0;
  for (const v of values) {
    ema = weight * ema + (1 - weight) * v;
    debias = weight * debias + (1 - weight);
    out.push(ema / debias);
  }
  return out;
}

function autoSmoothing(n: number): number {
  const window = n / 40;
  return window <= 1 ? 0 : Math.min(0.999, 1 - 1 / window);
}

/** Round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi], and the rounded axis range. */
export function niceTicks(lo: number, hi: number, target = 6): { ticks: number[]; lo: number; hi: number } {
  if (!(Number.isFinite(lo) && Number.isFinite(hi)) || lo > hi)
    throw new Error(`niceTicks: need finite lo <= hi, got [${lo}, ${hi}]`);
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, target);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw * (1 - 1e-9))!;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const round = (x: number) => Number(x.toFixed(Math.min(20, decimals)));
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(round(k * step));
  return { ticks, lo: ticks[0], hi: ticks[ticks.length - 1] };
}

/** Decade ticks (adding 2× and 5× when the range spans under two decades) for a log axis. */
export function logTicks(lo: number, hi: number): { ticks: number[]; lo: number; hi: number } {
  if (!(lo > 0 && hi >= lo && Number.isFinite(hi)))
    throw new Error(`logTicks: need 0 < lo <= hi, got [${lo}, ${hi}]`);
  const e0 = Math.floor(Math.log10(lo) + 1e-9);
  let e1 = Math.ceil(Math.log10(hi) - 1e-9);
  if (e1 === e0) e1 = e0 + 1;
  const multiples = e1 - e0 <= 2 ? [1, 2, 5] : [1];
  const all: number[] = [];
  for (let e = e0; e <= e1; e++) {
    for (const m of multiples) all.push(Number((m * 10 ** e).toPrecision(1)));
  }
  // Tighten the range to the nearest ticks around the data instead of whole decades.
  const below = all.filter((t) => t <= lo * (1 + 1e-9));
  const above = all.filter((t) => t >= hi * (1 - 1e-9));
  const a = below.length ? below[below.length - 1] : all[0];
  const b = above.length ? above[0] : all[all.length - 1];
  return { ticks: all.filter((t) => t >= a && t <= b), lo: a, hi: b };
}

/** Tick label: `1.5`, `0.002`, `20k`, `1.5M`, `1e-5`. */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  if (a < 1e-3)
    return v
      .toExponential()
      .replace(/\.?0+e/, 'e')
      .replace('e+', 'e');
  return String(Number(v.toPrecision(6)));
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function thin<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  const out: T[] = [];
  for (let i = 0; i < max; i++) out.push(items[Math.round((i * (items.length - 1)) / (max - 1))]);
  return out;
}

const fmt = (x: number) => x.toFixed(1);

/** An SVG document plotting each series as faint raw points under a smoothed line. */
export function lossCurveSvg(series: readonly PlotSeries[], options: PlotOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 420;
  if (!(width >= 200 && height >= 150))
    throw new Error(`lossCurveSvg: width × height must be at least 200 × 150, got ${width} × ${height}`);
  const logY = options.logY ?? false;
  const clean = series.map((s) => ({
    name: s.name,
    points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0)) as [
      number,
      number,
    ][],
  }));
  const all = clean.flatMap((s) => s.points);

  const plot = {
    x0: MARGIN.left,
    x1: width - MARGIN.right,
    y0: MARGIN.top,
    y1: height - MARGIN.bottom,
  };
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="26" text-anchor="middle" font-size="16" font-weight="bold" fill="#222">${escapeXml(options.title)}</text>`,
  );

  if (all.length === 0) {
    parts.push(
      `<rect x="${plot.x0}" y="${plot.y0}" width="${plot.x1 - plot.x0}" height="${plot.y1 - plot.y0}" fill="none" stroke="#444"/>`,
      `<text x="${width / 2}" y="${height / 2}" text-anchor="middle" font-size="14" fill="#888">no data yet</text>`,
      '</svg>',
    );
    return parts.join('\n');
  }

  let xMin = Math.min(...all.map(([x]) => x));
  let xMax = Math.max(...all.map(([x]) => x));
  if (xMin === xMax) {
    xMin -= 1;
    xMax += 1;
  }
  const xAxis = niceTicks(xMin, xMax, 8);
  const ys = all.map(([, y]) => y);
  const yAxis = logY
    ? logTicks(Math.min(...ys), Math.max(...ys))
    : niceTicks(Math.min(...ys), Math.max(...ys), 6);
  const tx = (x: number) => plot.x0 + ((x - xAxis.lo) / (xAxis.hi - xAxis.lo)) * (plot.x1 - plot.x0);
  const yUnit = (y: number) =>
    logY
      ? (Math.log10(y) - Math.log10(yAxis.lo)) / (Math.log10(yAxis.hi) - Math.log10(yAxis.lo))
      : (y - yAxis.lo) / (yAxis.hi - yAxis.lo);
  const ty = (y: number) => plot.y1 - yUnit(y) * (plot.y1 - plot.y0);

  // Grid and ticks.
  parts.push('<g class="grid" stroke="#e5e5e5" stroke-width="1">');
  for (const t of xAxis.ticks)
    parts.push(`<line x1="${fmt(tx(t))}" y1="${plot.y0}" x2="${fmt(tx(t))}" y2="${plot.y1}"/>`);
  for (const t of yAxis.ticks)
    parts.push(`<line x1="${plot.x0}" y1="${fmt(ty(t))}" x2="${plot.x1}" y2="${fmt(ty(t))}"/>`);
  parts.push('</g>');
  parts.push('<g class="x-ticks" font-size="12" fill="#333" text-anchor="middle">');
  for (const t of xAxis.ticks)
    parts.push(`<text x="${fmt(tx(t))}" y="${plot.y1 + 18}">${formatTick(t)}</text>`);
  parts.push('</g>');
  parts.push('<g class="y-ticks" font-size="12" fill="#333" text-anchor="end">');
  for (const t of yAxis.ticks)
    parts.push(`<text x="${plot.x0 - 6}" y="${fmt(ty(t) + 4)}">${formatTick(t)}</text>`);
  parts.push('</g>');
  parts.push(
    `<rect x="${plot.x0}" y="${plot.y0}" width="${plot.x1 - plot.x0}" height="${plot.y1 - plot.y0}" fill="none" stroke="#444"/>`,
    `<text x="${(plot.x0 + plot.x1) / 2}" y="${height - 14}" text-anchor="middle" font-size="13" fill="#222">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(18 ${(plot.y0 + plot.y1) / 2}) rotate(-90)" text-anchor="middle" font-size="13" fill="#222">${escapeXml(options.yLabel)}${logY ? ' (log scale)' : ''}</text>`,
  );

  // Series: faint raw points, then the smoothed line on top.
  clean.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
    parts.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    const r = sorted.length > 200 ? 1.2 : 2;
    for (const [x, y] of thin(sorted, MAX_DRAWN_POINTS)) {
      parts.push(
        `<circle cx="${fmt(tx(x))}" cy="${fmt(ty(y))}" r="${r}" fill="${color}" fill-opacity="0.25"/>`,
      );
    }
    if (sorted.length > 1) {
      const weight = options.smoothing ?? autoSmoothing(sorted.length);
      const ySmooth = logY
        ? smooth(
            sorted.map(([, y]) => Math.log10(y)),
            weight,
          ).map((v) => 10 ** v)
        : smooth(
            sorted.map(([, y]) => y),
            weight,
          );
      const vertices = thin(
        sorted.map(([x], k) => [x, ySmooth[k]] as const),
        MAX_LINE_VERTICES,
      );
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round" points="${vertices.map(([x, y]) => `${fmt(tx(x))},${fmt(ty(y))}`).join(' ')}"/>`,
      );
    }
    parts.push('</g>');
  });

  // Legend, top right inside the plot area.
  const rowHeight = 18;
  const legendWidth = 28 + Math.max(...clean.map((s) => s.name.length)) * 7.2;
  const lx = plot.x1 - legendWidth - 8;
  const ly = plot.y0 + 8;
  parts.push(
    '<g class="legend" font-size="12" fill="#222">',
    `<rect x="${fmt(lx)}" y="${ly}" width="${fmt(legendWidth)}" height="${clean.length * rowHeight + 8}" fill="#ffffff" fill-opacity="0.85" stroke="#bbb"/>`,
  );
  clean.forEach((s, i) => {
    const y = ly + 4 + i * rowHeight + rowHeight / 2;
    parts.push(
      `<line x1="${fmt(lx + 6)}" y1="${y}" x2="${fmt(lx + 22)}" y2="${y}" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`,
      `<text x="${fmt(lx + 26)}" y="${y + 4}">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push('</g>', '</svg>');
  return parts.join('\n');
}

/** Renders an SVG document to PNG bytes (librsvg inside sharp). */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  try {
    const png = await sharp(Buffer.from(svg, 'utf8')).png().toBuffer();
    return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
  } catch (e) {
    throw new Error(`svgToPng: cannot render the SVG (${(e as Error).message})`);
  }
}
