/**
 * The two chart kinds the experiments need, as hand-written SVG (same look and tick rules as the
 * loss curves in src/train/plot.ts): lines with a marker and a label at every measured point
 * (accuracy against visual tokens, Figure 4's analogue), and grouped bars (one group per
 * benchmark, one bar per variant) with the value on each bar. Render to PNG with `svgToPng`.
 */
import { formatTick, niceTicks } from '../train/plot.ts';

export { svgToPng } from '../train/plot.ts';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const FONT = 'DejaVu Sans, Arial, Helvetica, sans-serif';
const MARGIN = { left: 72, right: 24, top: 44, bottom: 88 };

export interface LineSeries {
  name: string;
  /** [x, y] in drawing order; a point's `labels[i]` is written beside it when given. */
  points: [number, number][];
  labels?: string[];
  /** Dashed line without markers: a reference level such as chance. */
  reference?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel?: string;
  yLabel: string;
  /** Fixed y range (e.g. [0, 1] for accuracies); default: fitted to the data. */
  yRange?: [number, number];
  /** Format y tick labels (default formatTick; e.g. percentages). */
  yFormat?: (v: number) => string;
  width?: number;
  height?: number;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const f1 = (x: number) => x.toFixed(1);

interface Frame {
  parts: string[];
  plot: { x0: number; x1: number; y0: number; y1: number };
  ty: (y: number) => number;
}

/** Canvas, title, y grid and axis label shared by both chart kinds. */
function frame(options: ChartOptions, ys: readonly number[]): Frame {
  const width = options.width ?? 720;
  const height = options.height ?? 420;
  if (!(width >= 200 && height >= 150))
    throw new Error(`chart: width × height must be at least 200 × 150, got ${width} × ${height}`);
  const plot = { x0: MARGIN.left, x1: width - MARGIN.right, y0: MARGIN.top, y1: height - MARGIN.bottom };
  const finite = ys.filter(Number.isFinite);
  const [lo, hi] = options.yRange ?? [Math.min(0, ...finite), finite.length ? Math.max(...finite) : 1];
  const axis = options.yRange
    ? { ticks: niceTicks(lo, hi, 5).ticks.filter((t) => t >= lo - 1e-12 && t <= hi + 1e-12), lo, hi }
    : niceTicks(lo, hi, 5);
  const ty = (y: number) => plot.y1 - ((y - axis.lo) / (axis.hi - axis.lo)) * (plot.y1 - plot.y0);
  const format = options.yFormat ?? formatTick;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="26" text-anchor="middle" font-size="16" font-weight="bold" fill="#222">${escapeXml(options.title)}</text>`,
    '<g class="grid" stroke="#e5e5e5" stroke-width="1">',
    ...axis.ticks.map((t) => `<line x1="${plot.x0}" y1="${f1(ty(t))}" x2="${plot.x1}" y2="${f1(ty(t))}"/>`),
    '</g>',
    '<g class="y-ticks" font-size="12" fill="#333" text-anchor="end">',
    ...axis.ticks.map((t) => `<text x="${plot.x0 - 6}" y="${f1(ty(t) + 4)}">${escapeXml(format(t))}</text>`),
    '</g>',
    `<rect x="${plot.x0}" y="${plot.y0}" width="${plot.x1 - plot.x0}" height="${plot.y1 - plot.y0}" fill="none" stroke="#444"/>`,
    `<text transform="translate(18 ${(plot.y0 + plot.y1) / 2}) rotate(-90)" text-anchor="middle" font-size="13" fill="#222">${escapeXml(options.yLabel)}</text>`,
  ];
  if (options.xLabel)
    parts.push(
      `<text x="${(plot.x0 + plot.x1) / 2}" y="${plot.y1 + 40}" text-anchor="middle" font-size="13" fill="#222">${escapeXml(options.xLabel)}</text>`,
    );
  return { parts, plot, ty };
}

/** One row of swatches under the x axis: never covers data, whatever the values. */
function legend(
  parts: string[],
  plot: Frame['plot'],
  names: readonly string[],
  colors: readonly string[],
): void {
  const y = plot.y1 + 66;
  const widths = names.map((n) => 30 + n.length * 7);
  let x = (plot.x0 + plot.x1) / 2 - widths.reduce((a, b) => a + b, 0) / 2;
  parts.push('<g class="legend" font-size="12" fill="#222">');
  names.forEach((name, i) => {
    parts.push(
      `<rect x="${f1(x)}" y="${y - 9}" width="16" height="10" fill="${colors[i]}"/>`,
      `<text x="${f1(x + 20)}" y="${y}">${escapeXml(name)}</text>`,
    );
    x += widths[i];
  });
  parts.push('</g>');
}

const seriesColor = (s: LineSeries, i: number) => (s.reference ? '#888' : COLORS[i % COLORS.length]);

/** Lines through measured points, each point marked (and labelled when `labels` are given). */
export function linePlotSvg(series: readonly LineSeries[], options: ChartOptions): string {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const { parts, plot, ty } = frame(
    options,
    all.map(([, y]) => y),
  );
  if (all.length === 0) {
    parts.push(
      `<text x="${(plot.x0 + plot.x1) / 2}" y="${(plot.y0 + plot.y1) / 2}" text-anchor="middle" font-size="14" fill="#888">no data</text>`,
      '</svg>',
    );
    return parts.join('\n');
  }
  const xs = all.map(([x]) => x);
  const xAxis = niceTicks(Math.min(...xs), Math.max(...xs), 8);
  const tx = (x: number) => plot.x0 + ((x - xAxis.lo) / (xAxis.hi - xAxis.lo)) * (plot.x1 - plot.x0);
  parts.push(
    '<g class="x-ticks" font-size="12" fill="#333" text-anchor="middle">',
    ...xAxis.ticks.map((t) => `<text x="${f1(tx(t))}" y="${plot.y1 + 18}">${formatTick(t)}</text>`),
    '</g>',
  );
  series.forEach((s, i) => {
    const color = seriesColor(s, i);
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    parts.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    if (pts.length > 1)
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2"${s.reference ? ' stroke-dasharray="6 4"' : ''} points="${pts.map(([x, y]) => `${f1(tx(x))},${f1(ty(y))}`).join(' ')}"/>`,
      );
    if (!s.reference) {
      s.points.forEach(([x, y], k) => {
        if (!(Number.isFinite(x) && Number.isFinite(y))) return;
        parts.push(`<circle cx="${f1(tx(x))}" cy="${f1(ty(y))}" r="4" fill="${color}"/>`);
        const label = s.labels?.[k];
        // Near the right edge the label goes left of its point, so it is never cut off.
        const right = tx(x) > plot.x1 - 60;
        if (label)
          parts.push(
            `<text x="${f1(tx(x) + (right ? -6 : 6))}" y="${f1(ty(y) - 7)}" font-size="11" fill="${color}"${right ? ' text-anchor="end"' : ''}>${escapeXml(label)}</text>`,
          );
      });
    }
    parts.push('</g>');
  });
  legend(
    parts,
    plot,
    series.map((s) => (s.reference ? `${s.name} (dashed)` : s.name)),
    series.map(seriesColor),
  );
  parts.push('</svg>');
  return parts.join('\n');
}

export interface BarGroup {
  /** Group label under the x axis (e.g. a benchmark). */
  label: string;
  /** One value per series, in series order; NaN leaves a gap. */
  values: number[];
}

/** Grouped bars: groups along x, one coloured bar per series in each, the value printed on top. */
export function barChartSvg(
  seriesNames: readonly string[],
  groups: readonly BarGroup[],
  options: ChartOptions & { valueFormat?: (v: number) => string },
): string {
  for (const g of groups) {
    if (g.values.length !== seriesNames.length)
      throw new Error(
        `barChartSvg: group ${JSON.stringify(g.label)} has ${g.values.length} values for ${seriesNames.length} series`,
      );
  }
  const { parts, plot, ty } = frame(
    options,
    groups.flatMap((g) => g.values),
  );
  const groupWidth = (plot.x1 - plot.x0) / Math.max(1, groups.length);
  const barWidth = (groupWidth * 0.8) / Math.max(1, seriesNames.length);
  const format = options.valueFormat ?? options.yFormat ?? formatTick;
  const base = ty(Math.max(0, Math.min(...(options.yRange ?? [0]))));
  groups.forEach((g, gi) => {
    const left = plot.x0 + gi * groupWidth + groupWidth * 0.1;
    parts.push(
      `<text x="${f1(plot.x0 + (gi + 0.5) * groupWidth)}" y="${plot.y1 + 18}" text-anchor="middle" font-size="12" fill="#333">${escapeXml(g.label)}</text>`,
    );
    g.values.forEach((v, si) => {
      if (!Number.isFinite(v)) return;
      const x = left + si * barWidth;
      const top = Math.min(ty(v), base);
      const h = Math.abs(base - ty(v));
      parts.push(
        `<rect class="bar" x="${f1(x + 1)}" y="${f1(top)}" width="${f1(barWidth - 2)}" height="${f1(h)}" fill="${COLORS[si % COLORS.length]}"/>`,
        `<text x="${f1(x + barWidth / 2)}" y="${f1(top - 4)}" text-anchor="middle" font-size="10" fill="#333">${escapeXml(format(v))}</text>`,
      );
    });
  });
  legend(
    parts,
    plot,
    seriesNames,
    seriesNames.map((_, i) => COLORS[i % COLORS.length]),
  );
  parts.push('</svg>');
  return parts.join('\n');
}
