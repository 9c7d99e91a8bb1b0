/** Loss-curve SVG: series, legend, round ticks, point placement, log axis, thinning; PNG decoding. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import {
  formatTick,
  logTicks,
  lossCurveSvg,
  niceTicks,
  type PlotSeries,
  smooth,
  svgToPng,
} from '../../src/train/plot.ts';

const options = { title: 'stage <1> & loss', xLabel: 'step', yLabel: 'loss' };

/** Attributes of every `<tag …/>` inside the series group named `name`. */
function seriesElements(svg: string, name: string, tag: string): Record<string, string>[] {
  const start = svg.indexOf(`<g class="series" data-name="${name}">`);
  assert.ok(start >= 0, `no series group for ${name}`);
  const group = svg.slice(start, svg.indexOf('</g>', start));
  return [...group.matchAll(new RegExp(`<${tag} ([^>]*)/>`, 'g'))].map((m) =>
    Object.fromEntries([...m[1].matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])),
  );
}

function tickLabels(svg: string, axis: 'x' | 'y'): string[] {
  const start = svg.indexOf(`<g class="${axis}-ticks"`);
  const group = svg.slice(start, svg.indexOf('</g>', start));
  return [...group.matchAll(/>([^<]+)<\/text>/g)].map((m) => m[1]);
}

/** The plot frame: the `<rect … fill="none" stroke="#444"/>` drawn around the data area. */
function frame(svg: string): { x0: number; x1: number; y0: number; y1: number } {
  const m = svg.match(
    /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="none" stroke="#444"\/>/,
  );
  assert.ok(m, 'no plot frame');
  const [x, y, w, h] = m.slice(1).map(Number);
  return { x0: x, x1: x + w, y0: y, y1: y + h };
}

function decaying(n: number): [number, number][] {
  return Array.from({ length: n }, (_, i) => [i + 1, 2.5 * Math.exp(-i / 20) + 0.1 + 0.05 * Math.sin(i)]);
}

describe('lossCurveSvg', () => {
  const train: PlotSeries = { name: 'train loss', points: decaying(60) };
  const evalSeries: PlotSeries = {
    name: 'eval <held-out>',
    points: [
      [20, 1.1],
      [40, 0.5],
      [60, 0.3],
    ],
  };
  const svg = lossCurveSvg([train, evalSeries], options);

  it('is one SVG document with the escaped title, axis labels and a legend entry per series', () => {
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"') && svg.endsWith('</svg>'));
    assert.ok(svg.includes('stage &#60;1&#62; &#38; loss'));
    assert.ok(!svg.includes('<1>'));
    const legend = svg.slice(svg.indexOf('<g class="legend"'));
    assert.ok(legend.includes('>train loss</text>'));
    assert.ok(legend.includes('>eval &#60;held-out&#62;</text>'));
    assert.ok(svg.includes('>step</text>') && svg.includes('>loss</text>'));
  });

  it('draws every raw point and a smoothed line for each series', () => {
    assert.equal(seriesElements(svg, 'train loss', 'circle').length, 60);
    assert.equal(seriesElements(svg, 'eval &#60;held-out&#62;', 'circle').length, 3);
    for (const name of ['train loss', 'eval &#60;held-out&#62;']) {
      const lines = seriesElements(svg, name, 'polyline');
      assert.equal(lines.length, 1);
      assert.equal(lines[0].points.split(' ').length, name === 'train loss' ? 60 : 3);
    }
  });

  it('places points inside the frame, in data order (x right, y up), linearly', () => {
    const f = frame(svg);
    const circles = seriesElements(svg, 'train loss', 'circle').map((c) => [Number(c.cx), Number(c.cy)]);
    for (const [cx, cy] of circles) {
      assert.ok(cx >= f.x0 && cx <= f.x1 && cy >= f.y0 && cy <= f.y1, `(${cx}, ${cy}) outside the frame`);
    }
    // Pixel x is linear in step; pixel y linear in loss with a negative slope.
    const px = (i: number) => circles[i][0];
    const py = (i: number) => circles[i][1];
    const slopeX = (px(59) - px(0)) / 59;
    assert.ok(Math.abs(px(30) - (px(0) + 30 * slopeX)) < 0.11);
    const [y0, y30, y59] = [0, 30, 59].map((i) => train.points[i][1]);
    const slopeY = (py(59) - py(0)) / (y59 - y0);
    assert.ok(slopeY < 0);
    assert.ok(Math.abs(py(30) - (py(0) + (y30 - y0) * slopeY)) < 0.11);
  });

  it('labels ticks with round numbers that cover the data', () => {
    for (const [axis, values] of [
      ['x', train.points.map(([x]) => x)],
      ['y', [...train.points, ...evalSeries.points].map(([, y]) => y)],
    ] as const) {
      const ticks = tickLabels(svg, axis).map(Number);
      assert.ok(ticks.length >= 3, `${axis}: ${ticks}`);
      const step = ticks[1] - ticks[0];
      const mantissa = step / 10 ** Math.floor(Math.log10(step));
      assert.ok(
        [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9),
        `${axis} tick step ${step}`,
      );
      ticks.forEach((t, i) => {
        assert.ok(Math.abs(t - (ticks[0] + i * step)) < 1e-9, `${axis} ticks ${ticks}`);
      });
      assert.ok(ticks[0] <= Math.min(...values) && ticks[ticks.length - 1] >= Math.max(...values));
    }
  });

  it('on a log axis, uses 1-2-5 decade ticks and skips non-positive values', () => {
    const points: [number, number][] = [
      [1, 3],
      [2, 0],
      [3, 0.3],
      [4, -1],
      [5, 0.04],
      [6, Number.NaN],
    ];
    const log = lossCurveSvg([{ name: 'l', points }], { ...options, logY: true });
    assert.equal(seriesElements(log, 'l', 'circle').length, 3);
    const ticks = tickLabels(log, 'y').map(Number);
    for (const t of ticks) {
      const mantissa = t / 10 ** Math.floor(Math.log10(t) + 1e-12);
      assert.ok(
        [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9),
        `tick ${t}`,
      );
    }
    assert.ok(ticks[0] <= 0.04 && ticks[ticks.length - 1] >= 3);
    assert.ok(log.includes('loss (log scale)'));
    // Equal ratios, equal distances: 0.3 sits midway (in pixels) between 3 and 0.03's positions.
    const cy = seriesElements(log, 'l', 'circle').map((c) => Number(c.cy));
    const perDecade = cy[1] - cy[0]; // 3 → 0.3
    assert.ok(Math.abs(cy[2] - cy[1] - perDecade * Math.log10(0.3 / 0.04)) < 0.15);
  });

  it('thins long series to a bounded number of elements', () => {
    const long = lossCurveSvg([{ name: 'long', points: decaying(20_000) }], options);
    const circles = seriesElements(long, 'long', 'circle');
    assert.ok(circles.length <= 1500 && circles.length >= 1000, `${circles.length} circles`);
    assert.ok(seriesElements(long, 'long', 'polyline')[0].points.split(' ').length <= 1000);
    assert.ok(long.length < 300_000, `${long.length} characters`);
  });

  it('renders an empty plot instead of failing', () => {
    const empty = lossCurveSvg([{ name: 'train loss', points: [] }], options);
    assert.ok(empty.includes('no data yet') && empty.endsWith('</svg>'));
  });
});

describe('plot helpers', () => {
  it('niceTicks steps by 1, 2 or 5 × 10^k and rounds away float noise', () => {
    // (0.07 + 0.03) / 6 = 0.0167 → step 0.02; floor(-1.5) = -2, ceil(3.5) = 4.
    assert.deepEqual(niceTicks(-0.03, 0.07).ticks, [-0.04, -0.02, 0, 0.02, 0.04, 0.06, 0.08]);
    // 599 / 8 = 75 → step 100.
    assert.deepEqual(niceTicks(1, 600, 8).ticks, [0, 100, 200, 300, 400, 500, 600]);
    // (3.41 - 0.213) / 6 = 0.53 → step 1.
    assert.deepEqual(niceTicks(0.213, 3.41), { ticks: [0, 1, 2, 3, 4], lo: 0, hi: 4 });
    // A single value gets ±10 % around it: [1.8, 2.2] / 6 = 0.067 → step 0.1.
    assert.deepEqual(niceTicks(2, 2).ticks, [1.8, 1.9, 2, 2.1, 2.2]);
    assert.throws(() => niceTicks(1, Number.NaN), /niceTicks: need finite lo <= hi, got \[1, NaN\]/);
  });

  it('logTicks adds 2× and 5× over short ranges and keeps decades over long ones', () => {
    assert.deepEqual(logTicks(0.213, 3.41).ticks, [0.2, 0.5, 1, 2, 5]);
    assert.deepEqual(logTicks(1e-4, 5).ticks, [1e-4, 1e-3, 1e-2, 0.1, 1, 10]);
    assert.throws(() => logTicks(0, 1), /need 0 < lo <= hi/);
  });

  it('smooth is a debiased EMA', () => {
    assert.deepEqual(smooth([2, 2, 2], 0.9), [2, 2, 2]);
    // Weights 0.5 (new) and 0.25 (old), normalised by 0.75: (0.25·0 + 0.5·10) / 0.75.
    const [a, b] = smooth([0, 10], 0.5);
    assert.equal(a, 0);
    assert.ok(Math.abs(b - 5 / 0.75) < 1e-12);
    assert.throws(() => smooth([1], 1), /weight must be in \[0, 1\)/);
  });

  it('formats tick labels compactly', () => {
    assert.equal(formatTick(0), '0');
    assert.equal(formatTick(0.5), '0.5');
    assert.equal(formatTick(0.0001), '1e-4');
    assert.equal(formatTick(20_000), '20k');
    assert.equal(formatTick(1_500_000), '1.5M');
    assert.equal(formatTick(0.30000000000000004), '0.3');
  });
});

describe('svgToPng', () => {
  it('renders a PNG of the SVG size with the series colour and dark text on white', async () => {
    const svg = lossCurveSvg([{ name: 'train loss', points: decaying(60) }], options);
    const png = await svgToPng(svg);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.width, 720);
    assert.equal(info.height, 420);
    let white = 0;
    let blue = 0;
    let dark = 0;
    for (let i = 0; i < data.length; i += 3) {
      const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
      if (r > 250 && g > 250 && b > 250) white++;
      // The first series colour, #1f77b4, where the line is drawn at full opacity.
      if (Math.abs(r - 0x1f) < 20 && Math.abs(g - 0x77) < 20 && Math.abs(b - 0xb4) < 20) blue++;
      if (r < 80 && g < 80 && b < 80) dark++;
    }
    const pixels = info.width * info.height;
    assert.ok(white > pixels * 0.7, `white ${white}`);
    assert.ok(blue > 300, `line pixels ${blue}`);
    assert.ok(dark > 300, `text and frame pixels ${dark}`);
  });

  it('names the problem when the SVG is not valid', async () => {
    await assert.rejects(svgToPng('<svg'), /svgToPng: cannot render the SVG/);
  });
});
