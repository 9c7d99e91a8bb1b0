/**
 * Mutation check: do our tests fail when the code they name is broken? For each known mutation of
 * the optimizer, the loss, the metrics and the statistics, copy src/ and test/ to a scratch folder,
 * apply the mutation there (the working tree is never touched), run the test files that should
 * catch it, and expect them to fail. The unmutated copy runs first and must pass.
 *
 *   npx tsx scripts/mutation-check.ts            # every mutation (a few minutes on 2 cores)
 *   npx tsx scripts/mutation-check.ts adamw      # those whose name contains "adamw"
 *
 * Exit code 1 when a mutation survives (its tests still pass) or the baseline fails.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Mutation {
  name: string;
  file: string;
  /** Exact text to replace (must occur exactly once). */
  find: string;
  replace: string;
  /** Test files expected to fail. */
  tests: string[];
}

const MUTATIONS: Mutation[] = [
  {
    name: 'adamw: no gradient clipping',
    file: 'src/engine/optim.ts',
    find: 'const clip = cfg.clipNorm > 0 ?',
    replace: 'const clip = cfg.clipNorm < 0 ?',
    tests: ['test/engine/trainer.test.ts'],
  },
  {
    name: 'adamw: no bias correction',
    file: 'src/engine/optim.ts',
    find: 'stepSize: lr / bc1, invSqrtBc2: 1 / Math.sqrt(bc2)',
    replace: 'stepSize: lr + 0 * bc1, invSqrtBc2: 1 + 0 * bc2',
    tests: ['test/engine/trainer.test.ts'],
  },
  {
    name: 'adamw: no weight decay',
    file: 'src/engine/optim.ts',
    find: 'decayFactor: 1 - lr * cfg.weightDecay',
    replace: 'decayFactor: 1 + 0 * lr * cfg.weightDecay',
    tests: ['test/engine/trainer.test.ts'],
  },
  {
    name: 'adamw: m update with β2',
    file: 'src/engine/optim.ts',
    find: 'const m = add(mul(s.m, cfg.beta1), mul(s.grad, c1));',
    replace: 'const m = add(mul(s.m, cfg.beta2), mul(s.grad, c1));',
    tests: ['test/engine/trainer.test.ts'],
  },
  {
    name: 'cross-entropy: ignored targets counted',
    file: 'src/engine/ops/loss.ts',
    find: 'const count = maximum(sum(weight), 1);',
    replace: 'const count = maximum(sum(cast(equal(targets, targets), logits.dtype)), 1);',
    tests: ['test/engine/forward.test.ts', 'test/engine/trainer.test.ts'],
  },
  {
    name: 'rouge-l: recall computed over the candidate',
    file: 'src/eval/metrics.ts',
    find: 'const recall = lcs / r.length;',
    replace: 'const recall = lcs / c.length;',
    tests: ['test/eval/metrics.test.ts'],
  },
  {
    name: 'statistics: NLVR orders counted as independent samples',
    file: 'src/eval/benchmarks.ts',
    find: 'predictions.map((p) => ({ cluster: p.identifier, correct: p.predicted === p.label })),',
    replace:
      'predictions.map((p, k) => ({ cluster: p.identifier + String(k), correct: p.predicted === p.label })),',
    tests: ['test/eval/statistics.test.ts'],
  },
  {
    name: 'statistics: NLVR chance fixed at 0.5',
    file: 'src/eval/benchmarks.ts',
    find: 'chance: mostCommon(predictions.map((p) => String(p.label))).share,',
    replace: 'chance: 0.5,',
    tests: ['test/eval/statistics.test.ts'],
  },
  {
    name: 'statistics: unpaired comparison of paired questions',
    file: 'src/eval/statistics.ts',
    find: 'const shared = a.length === b.length',
    replace: 'const shared = a.length < 0 && a.length === b.length',
    tests: ['test/eval/statistics.test.ts', 'test/eval/experiments.test.ts'],
  },
  {
    name: 'statistics: a column of equal scores not flagged',
    file: 'src/eval/statistics.ts',
    find: 'if (scores.length > 1 && scores.every((s) => s === scores[0]))',
    replace: 'if (scores.length < 0 && scores.every((s) => s === scores[0]))',
    tests: ['test/eval/statistics.test.ts'],
  },
];

const root = fileURLToPath(new URL('../', import.meta.url));
const filter = process.argv[2]?.toLowerCase();
const chosen = MUTATIONS.filter((m) => !filter || m.name.toLowerCase().includes(filter));
if (chosen.length === 0) {
  console.error(
    `no mutation matches "${process.argv[2]}"; names:\n  ${MUTATIONS.map((m) => m.name).join('\n  ')}`,
  );
  process.exit(2);
}

function scratchCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'maven-mutation-'));
  for (const p of ['src', 'test', 'bench', 'scripts', 'package.json', 'tsconfig.json', 'models', 'assets'])
    cpSync(join(root, p), join(dir, p), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

function runTests(dir: string, tests: readonly string[]): { ok: boolean; summary: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...tests], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, NODE_ENV: 'test' },
  });
  const out = `${r.stdout}\n${r.stderr}`;
  const count = (k: string) => out.match(new RegExp(`^# ${k} (\\d+)`, 'm'))?.[1] ?? '?';
  return { ok: r.status === 0, summary: `${count('pass')} passed, ${count('fail')} failed` };
}

const allTests = [...new Set(chosen.flatMap((m) => m.tests))];
const base = scratchCopy();
let failures = 0;
try {
  const b = runTests(base, allTests);
  console.log(`baseline (unmutated) ${allTests.join(' ')}: ${b.summary}`);
  if (!b.ok) {
    console.log('the unmutated tests fail: fix them first');
    process.exit(1);
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}

for (const m of chosen) {
  const dir = scratchCopy();
  try {
    const path = join(dir, m.file);
    const text = readFileSync(path, 'utf8');
    const at = text.indexOf(m.find);
    if (at < 0 || text.indexOf(m.find, at + 1) >= 0)
      throw new Error(`${m.name}: "${m.find}" must occur exactly once in ${m.file}`);
    writeFileSync(path, text.replace(m.find, m.replace));
    const r = runTests(dir, m.tests);
    const caught = !r.ok;
    if (!caught) failures++;
    console.log(
      `${caught ? 'caught  ' : 'SURVIVED'} ${m.name} (${m.file}) — ${m.tests.join(' ')}: ${r.summary}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(
  failures === 0
    ? `all ${chosen.length} mutations caught`
    : `${failures} of ${chosen.length} mutations survived`,
);
process.exit(failures === 0 ? 0 : 1);
