/**
 * Benchmark results as text: a Markdown table per benchmark with one row per (category, task,
 * metric), which reads the same in a terminal and in docs/results.md, and the JSON record with
 * every prediction.
 */
import type { BenchResult, BenchRow } from './benchmarks.ts';
import { wilsonHalfWidth } from './statistics.ts';

/** `62.5 %`. */
export function pct(x: number, digits = 1): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(digits)} %` : '–';
}

/** A wall time in words: `51 s`, `1 min 51 s`, `46 min 16 s` (whole seconds; minutes never rounded up). */
export function minutesSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** A Markdown table from a header and rows (cells already formatted); numeric-looking columns right-aligned. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  for (const [i, r] of rows.entries()) {
    if (r.length !== header.length)
      throw new Error(`markdownTable: row ${i} has ${r.length} cells, the header ${header.length}`);
  }
  const numeric = header.map(
    (_, c) =>
      rows.length > 0 &&
      rows.some((r) => r[c] !== '') &&
      rows.every((r) => /^[-+]?[\d.,]+( %| ms| s)?$|^–$|^$/.test(r[c])),
  );
  const widths = header.map((h, c) => Math.max(h.length, 3, ...rows.map((r) => r[c].length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (numeric[c] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function rowCells(r: BenchRow): string[] {
  const isRate = r.metric !== 'rouge-l';
  const value = isRate ? pct(r.value) : r.value.toFixed(3);
  const interval =
    r.metric === 'accuracy' ? `± ${pct(r.interval?.halfWidth ?? wilsonHalfWidth(r.value, r.examples))}` : '';
  return [
    r.category,
    r.task,
    r.metric,
    String(r.examples),
    value,
    interval,
    r.chance === undefined ? '' : pct(r.chance),
    r.commonAnswer ? `${r.commonAnswer.answer || '(none)'} (${pct(r.commonAnswer.share, 0)})` : '',
  ];
}

/** One table for one benchmark, with its protocol and cost underneath. */
export function benchTable(result: BenchResult): string {
  const rows = result.rows.map(rowCells);
  const head =
    result.headline.metric === 'rouge-l' ? result.headline.value.toFixed(3) : pct(result.headline.value);
  return [
    `### ${result.bench}: ${head} ${result.headline.metric}`,
    '',
    markdownTable(
      ['category', 'task', 'metric', 'n', 'value', '95 % CI', 'chance', 'most common answer'],
      rows,
    ),
    '',
    `${result.protocol}. ${result.visualTokensPerImage.toFixed(1)} visual tokens per image, ${result.promptTokens.toFixed(0)} prompt slots per question on average; ${result.seconds.toFixed(1)} s.`,
  ].join('\n');
}

export interface EvalRecord {
  model: string;
  settings: Record<string, unknown>;
  results: BenchResult[];
}

/** The JSON record of a run: settings, every table row and every prediction. */
export function evalJson(record: EvalRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}
