/**
 * The core — src/engine, src/models, src/maven — must run in a browser, so it imports no Node
 * module (`node:*` or a bare built-in like 'fs', statically or with `await import()`), no
 * Node-only package (sharp, onnxruntime-node, @hono/node-server), and nothing from the layers
 * built on it (src/node, the Node adapter, src/browser, the browser's, and data, train, eval,
 * serve, cli, export). Inside the core, imports point left only: engine ← models ← maven. The
 * browser adapter (src/browser, bundled into the in-browser page) obeys the same rules and
 * imports only the core and itself. This test reads every .ts file of both and lists each
 * offending import with its file and line; the matcher is checked first against sample sources,
 * so that a matcher that finds nothing cannot pass the scan vacuously.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** The core's layers, left to right: each may import only itself and the ones before it. */
const CORE_LAYERS = ['engine', 'models', 'maven'] as const;
/** Layers built on the core; the core must never import them. */
const OUTER_LAYERS = ['node', 'browser', 'data', 'train', 'eval', 'serve', 'cli', 'export'];
const NODE_ONLY_PACKAGES = ['sharp', 'onnxruntime-node', '@hono/node-server'];

/**
 * Deliberate exceptions, each with its reason. Every entry must still match a finding (checked
 * below), so one cannot outlive the code it excuses.
 */
const ALLOWED: readonly { file: string; reason: RegExp; why: string }[] = [
  {
    file: 'engine/session.ts',
    reason: /process\.getBuiltinModule/,
    why:
      'default thread count on Node 20, which has no navigator.hardwareConcurrency: a run-time ' +
      'lookup that is skipped in browsers, not an import a bundler sees',
  },
];

interface Finding {
  /** Path under src/, with forward slashes. */
  file: string;
  line: number;
  reason: string;
}

interface ModuleReference {
  specifier: string;
  line: number;
  how: 'import' | 'dynamic import()' | 'require()';
}

/** The source with comments blanked out (newlines kept, so line numbers stay); strings untouched. */
function withoutComments(source: string): string {
  return source.replace(
    /\/\*[\s\S]*?\*\/|\/\/[^\n]*|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`/g,
    (match) => (match.startsWith('/') ? match.replace(/[^\n]/g, ' ') : match),
  );
}

const lineAt = (source: string, index: number): number => source.slice(0, index).split('\n').length;

/** Every module specifier the source names in an import, export … from, import() or require(). */
function moduleReferences(source: string): ModuleReference[] {
  const code = withoutComments(source);
  const patterns: [RegExp, ModuleReference['how']][] = [
    // import x from '…', import { a, b } from '…' (over several lines), export … from '…'
    [/(?<![\w$.])(?:import|export)\s[^'"`;]*?\bfrom\s*(['"])([^'"\n]+)\1/g, 'import'],
    // import '…' (for its side effects)
    [/(?<![\w$.])import\s*(['"])([^'"\n]+)\1/g, 'import'],
    [/(?<![\w$.])import\s*\(\s*(['"`])([^'"`\n]+)\1/g, 'dynamic import()'],
    [/(?<![\w$.])require\s*\(\s*(['"`])([^'"`\n]+)\1/g, 'require()'],
  ];
  const found: ModuleReference[] = [];
  for (const [pattern, how] of patterns) {
    for (const m of code.matchAll(pattern)) {
      found.push({ specifier: m[2], line: lineAt(code, m.index), how });
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

const isNodeBuiltin = (specifier: string): boolean =>
  specifier.startsWith('node:') || builtinModules.includes(specifier);

const isNodeOnlyPackage = (specifier: string): boolean =>
  NODE_ONLY_PACKAGES.some((name) => specifier === name || specifier.startsWith(`${name}/`));

/**
 * What is wrong with the imports of one core file. `file` is its path under src/ with forward
 * slashes (e.g. 'maven/model.ts'): relative imports are resolved from there.
 */
function importFindings(file: string, source: string): Finding[] {
  const layer = file.split('/')[0];
  const rank = CORE_LAYERS.indexOf(layer as (typeof CORE_LAYERS)[number]);
  if (rank < 0) throw new Error(`${file} is not under ${CORE_LAYERS.join(', ')}`);
  const findings: Finding[] = [];
  const report = (line: number, reason: string) => findings.push({ file, line, reason });
  for (const { specifier, line, how } of moduleReferences(source)) {
    const what = `${how} '${specifier}'`;
    if (isNodeBuiltin(specifier)) report(line, `${what}: a Node built-in module`);
    else if (isNodeOnlyPackage(specifier)) report(line, `${what}: a Node-only package`);
    else if (specifier.startsWith('.')) {
      const target = posix.normalize(posix.join(posix.dirname(file), specifier));
      const targetLayer = target.split('/')[0];
      if (target.startsWith('../')) report(line, `${what}: outside src/`);
      else if (OUTER_LAYERS.includes(targetLayer)) {
        report(line, `${what}: src/${targetLayer} is built on the core, not part of it`);
      } else if (CORE_LAYERS.indexOf(targetLayer as (typeof CORE_LAYERS)[number]) > rank) {
        report(line, `${what}: ${layer} may not import ${targetLayer} (engine ← models ← maven)`);
      }
    }
  }
  const code = withoutComments(source);
  for (const m of code.matchAll(/\bgetBuiltinModule\b/g)) {
    report(lineAt(code, m.index), 'process.getBuiltinModule: loads a Node module at run time');
  }
  return findings;
}

/** What is wrong with the imports of one src/browser file (`file` under src/, e.g. 'browser/page.ts'). */
function browserFindings(file: string, source: string): Finding[] {
  const findings: Finding[] = [];
  const report = (line: number, reason: string) => findings.push({ file, line, reason });
  for (const { specifier, line, how } of moduleReferences(source)) {
    const what = `${how} '${specifier}'`;
    if (isNodeBuiltin(specifier)) report(line, `${what}: a Node built-in module`);
    else if (isNodeOnlyPackage(specifier)) report(line, `${what}: a Node-only package`);
    else if (specifier.startsWith('.')) {
      const target = posix.normalize(posix.join(posix.dirname(file), specifier));
      const targetLayer = target.split('/')[0];
      if (target.startsWith('../')) report(line, `${what}: outside src/`);
      else if (targetLayer !== 'browser' && !(CORE_LAYERS as readonly string[]).includes(targetLayer)) {
        report(
          line,
          `${what}: the browser adapter may import only the core and itself, not src/${targetLayer}`,
        );
      }
    }
  }
  const code = withoutComments(source);
  for (const m of code.matchAll(/\bgetBuiltinModule\b/g)) {
    report(lineAt(code, m.index), 'process.getBuiltinModule: loads a Node module at run time');
  }
  return findings;
}

function tsFilesUnder(layer: string): string[] {
  return readdirSync(join(SRC, layer), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => posix.join(layer, name.split(/[\\/]/).join('/')))
    .sort();
}

function coreFiles(): string[] {
  return CORE_LAYERS.flatMap((layer) =>
    readdirSync(join(SRC, layer), { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.ts'))
      .map((name) => posix.join(layer, name.split(/[\\/]/).join('/'))),
  ).sort();
}

const format = (f: Finding) => `src/${f.file}:${f.line}: ${f.reason}`;

describe('the matcher', () => {
  it('finds Node modules, Node-only packages and outer or later layers, static and dynamic', () => {
    const bad = [
      "import { readFile } from 'node:fs/promises';",
      "import sharp, { type Metadata } from 'sharp';",
      'import {',
      '  loadMaven,',
      '  saveMaven,',
      "} from '../node/model-directory.ts';",
      "export { serve } from '../serve/server.ts';",
      "import type { Example } from '../data/tasks/types.ts';",
      "import { join } from 'path';",
      'async function threads() {',
      "  const os = await import('node:os');",
      '  const fs = await import(`fs`);',
      "  const ort = require('onnxruntime-node');",
      '  return os.availableParallelism();',
      '}',
      "import '../cli/maven.ts';",
      "const os2 = process.getBuiltinModule('os');",
    ].join('\n');
    assert.deepEqual(
      importFindings('models/sample.ts', bad).map((f) => f.line),
      [1, 2, 3, 7, 8, 9, 11, 12, 13, 16, 17],
    );
    assert.deepEqual(
      importFindings('maven/sample.ts', "import { fetchMaven } from '../browser/fetch-model.ts';").map(
        format,
      ),
      [
        "src/maven/sample.ts:1: import '../browser/fetch-model.ts': src/browser is built on the core, not part of it",
      ],
    );
    const layering =
      "import { MavenModel } from '../maven/model.ts';\nimport { Llama } from '../models/llama.ts';";
    assert.deepEqual(importFindings('engine/sample.ts', layering).map(format), [
      "src/engine/sample.ts:1: import '../maven/model.ts': engine may not import maven (engine ← models ← maven)",
      "src/engine/sample.ts:2: import '../models/llama.ts': engine may not import models (engine ← models ← maven)",
    ]);
  });

  it('passes the core’s own imports and ignores comments', () => {
    const good = [
      '/**',
      " * Reading files was `await import('node:fs/promises')` here; now src/node does it.",
      ' */',
      "import { Tokenizer } from '@huggingface/tokenizers';",
      "import { HostTensor } from '../engine/index.ts';",
      "import { type DecodedImage, fitToSquare } from '../models/image.ts';",
      "import type { MavenConfig } from './config.ts';",
      "// import sharp from 'sharp';",
      "const nodeish = 'node:fs'; // a string, not an import",
      'const pkg = ep === "cpu" ? "onnxruntime-node" : "onnxruntime-web";',
    ].join('\n');
    assert.deepEqual(importFindings('maven/sample.ts', good), []);
  });
});

describe('the core (src/engine, src/models, src/maven) imports no Node module and no outer layer', () => {
  const files = coreFiles();
  const findings = files.flatMap((file) => importFindings(file, readFileSync(join(SRC, file), 'utf8')));
  const isAllowed = (f: Finding) => ALLOWED.some((a) => a.file === f.file && a.reason.test(f.reason));

  it('scans every core file', () => {
    for (const layer of CORE_LAYERS)
      assert.ok(
        files.some((f) => f.startsWith(`${layer}/`)),
        layer,
      );
    for (const expected of ['engine/session.ts', 'models/tokenizers/hf.ts', 'maven/model.ts']) {
      assert.ok(files.includes(expected), `${expected} is scanned`);
    }
  });

  it('has no offending import', () => {
    const offending = findings.filter((f) => !isAllowed(f));
    assert.deepEqual(offending.map(format), []);
  });

  it('every allowed exception is still needed', () => {
    for (const a of ALLOWED) {
      assert.ok(
        findings.some((f) => f.file === a.file && a.reason.test(f.reason)),
        `src/${a.file}: the exception for ${a.reason} matches nothing any more; remove it`,
      );
    }
  });
});

describe('the browser adapter (src/browser) imports no Node module and only the core', () => {
  it('the matcher finds Node modules and outer layers, and passes the core and itself', () => {
    const sample = [
      "import { readFile } from 'node:fs/promises';",
      "import sharp from 'sharp';",
      "import { decodeImage } from '../node/decode-image.ts';",
      "import { startServer } from '../serve/server.ts';",
      "import type * as OrtWeb from 'onnxruntime-web';",
      "import { MavenModel } from '../maven/model.ts';",
      "import { HostTensor } from '../engine/index.ts';",
      "import { decodeImageBlob } from './decode-image.ts';",
      "const ort = await import('onnxruntime-web/wasm');",
      "const os = await import('os');",
    ].join('\n');
    assert.deepEqual(
      browserFindings('browser/sample.ts', sample).map((f) => f.line),
      [1, 2, 3, 4, 10],
    );
  });

  it('has no offending import in any of its files', () => {
    const files = tsFilesUnder('browser');
    for (const expected of ['browser/page.ts', 'browser/fetch-model.ts', 'browser/decode-image.ts']) {
      assert.ok(files.includes(expected), `${expected} is scanned`);
    }
    const findings = files.flatMap((file) => browserFindings(file, readFileSync(join(SRC, file), 'utf8')));
    assert.deepEqual(findings.map(format), []);
  });
});
