/**
 * Put a benchmark's printed report into docs/benchmarks.md, between its own begin/end markers. The
 * section it replaces is not lost: it goes to the top of docs/benchmarks-history.md, so a rerun
 * that comes out faster or slower sits beside the figures it replaced.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const HISTORY_HEAD = `# Benchmark history

Every section of [benchmarks.md](benchmarks.md) that a rerun replaced, newest first, verbatim
(written by \`bench/write-section.ts\`). Compare a row with its successor to see how much
timings on the same machine move between runs.
`;

export function writeBenchSection(name: string, lines: readonly string[]): void {
  const path = new URL('../docs/benchmarks.md', import.meta.url);
  const historyPath = new URL('../docs/benchmarks-history.md', import.meta.url);
  let doc = '# Benchmarks\n';
  try {
    doc = readFileSync(path, 'utf8');
  } catch {}
  const begin = `<!-- bench:${name}:begin -->`;
  const end = `<!-- bench:${name}:end -->`;
  const section = `${begin}\n${lines.join('\n')}\n${end}`;
  const old = doc.match(new RegExp(`${begin}\\n([\\s\\S]*?)\\n${end}`));
  if (old) {
    let history = HISTORY_HEAD;
    try {
      history = readFileSync(historyPath, 'utf8');
    } catch {}
    // Headings one level down, so the history reads as a list of replaced sections.
    const replaced = old[1].replace(/^(#+) /gm, '#$1 ');
    const at = history.indexOf('\n#');
    const entry = `\n${replaced.trim()}\n`;
    history =
      at < 0 ? `${history.trimEnd()}\n${entry}` : `${history.slice(0, at)}\n${entry}${history.slice(at)}`;
    writeFileSync(historyPath, history);
  }
  doc = old
    ? doc.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), () => section)
    : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(path, doc);
  console.log(
    `(written to docs/benchmarks.md${old ? '; the section it replaced to docs/benchmarks-history.md' : ''})`,
  );
}
