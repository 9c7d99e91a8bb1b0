/** Put a benchmark's printed report into docs/benchmarks.md, between its own begin/end markers. */
import { readFileSync, writeFileSync } from 'node:fs';

export function writeBenchSection(name: string, lines: readonly string[]): void {
  const path = new URL('../docs/benchmarks.md', import.meta.url);
  let doc = '# Benchmarks\n';
  try {
    doc = readFileSync(path, 'utf8');
  } catch {}
  const begin = `<!-- bench:${name}:begin -->`;
  const end = `<!-- bench:${name}:end -->`;
  const section = `${begin}\n${lines.join('\n')}\n${end}`;
  doc = doc.includes(begin)
    ? doc.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), () => section)
    : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(path, doc);
  console.log('(written to docs/benchmarks.md)');
}
