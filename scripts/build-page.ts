/**
 * Writes the in-browser page (src/browser/) as plain static files: index.html, the bundle,
 * onnxruntime-web's .wasm files and a copy of the model directory. Host the folder anywhere
 * (`python3 -m http.server -d dist/page`); the page runs the model in the browser.
 *
 *   npx tsx scripts/build-page.ts [--out dist/page] [--model models/maven-tiny]
 *
 * A host that sends `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp` gives the page wasm threads; without them it runs
 * on one. `maven serve` serves the same page at /local/ with those headers.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../src/cli/default-model.ts';
import { writeLocalPage } from '../src/serve/local-page.ts';

const { values } = parseArgs({
  options: { out: { type: 'string', default: 'dist/page' }, model: { type: 'string' } },
});
const t0 = performance.now();
const written = await writeLocalPage(values.out!, values.model ?? DEFAULT_MODEL_DIR);
console.log(
  `wrote ${written.length} files to ${values.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${written.join(', ')}`,
);
