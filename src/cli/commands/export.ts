/**
 * `maven export`: the model's language model as a GGUF file for llama.cpp and the tools built on
 * it (see src/export/gguf.ts and docs/gguf.md).
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GGUF_EXPORT_TYPES, type GgufExportType, type GgufFile, ggufChunks } from '../../export/gguf.ts';
import { mavenLlmGguf, unsupportedVocabulary } from '../../export/maven-gguf.ts';
import { isQuantizedCheckpoint } from '../../maven/quantization.ts';
import { loadMaven, loadMavenConfig } from '../../node/model-directory.ts';
import { type Command, UsageError } from '../command.ts';
import { DEFAULT_MODEL_DIR } from '../default-model.ts';

const usage = `usage: maven export --format gguf [--model DIR] --out FILE.gguf [--type TYPE]

Writes the model's language model (the LLaMA decoder and its vocabulary: text tokens, then one
token per visual code) as a GGUF file that llama.cpp-based tools load. The vision towers, the
discrete image tokenizer and the projector are not exported.

options:
  --format gguf        the output format (only gguf for now; the default)
  --model DIR          model directory (default: the embedded models/maven-tiny)
  --out FILE           where to write (atomically: a temporary file, then a rename)
  --type TYPE          f32 (default, exact) | f16 | q8_0 | q4_0 for the 2-D weights; norms stay
                       f32, and a matrix whose rows are not a multiple of 32 falls back to f16
  --quiet              print nothing on success`;

/** Files a model directory is made of: `--out` may never replace one of them. */
function isModelFile(name: string): boolean {
  return (
    name === 'config.json' ||
    name === 'tokenizer.json' ||
    name.endsWith('.safetensors') ||
    name.endsWith('.safetensors.index.json') ||
    name === 'training-report.json'
  );
}

/** The real path of `path`'s folder joined with its name (the file itself may not exist yet). */
function realTarget(path: string): string {
  const abs = resolve(path);
  const dir = dirname(abs);
  return join(existsSync(dir) ? realpathSync(dir) : dir, basename(abs));
}

/** Write `file` to `out` through a temporary file in the same folder, renamed when complete. */
export async function writeGgufFile(file: GgufFile, out: string): Promise<number> {
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  let bytes = 0;
  const handle = await open(tmp, 'w');
  try {
    for (const chunk of ggufChunks(file)) {
      let at = 0;
      while (at < chunk.byteLength) at += (await handle.write(chunk, at)).bytesWritten;
      bytes += chunk.byteLength;
    }
    await handle.sync();
    await handle.close();
    await rename(tmp, out);
  } catch (e) {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  return bytes;
}

export const exportCommand: Command = {
  name: 'export',
  summary: "write the model's language model as GGUF (llama.cpp)",
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        format: { type: 'string' },
        model: { type: 'string' },
        out: { type: 'string' },
        type: { type: 'string' },
        quiet: { type: 'boolean' },
      },
    });
    const format = values.format ?? 'gguf';
    if (format !== 'gguf') throw new UsageError(`--format: unknown format '${format}' (only gguf)`);
    const type = (values.type ?? 'f32') as GgufExportType;
    if (!GGUF_EXPORT_TYPES.includes(type))
      throw new UsageError(`--type: unknown type '${type}' (one of ${GGUF_EXPORT_TYPES.join(', ')})`);
    if (!values.out) throw new UsageError(`--out is required\n\n${usage}`);
    const modelDir = values.model ?? DEFAULT_MODEL_DIR;
    if (!existsSync(modelDir) || !statSync(modelDir).isDirectory())
      throw new UsageError(`--model: ${modelDir} is not a model directory (it does not exist)`);
    const out = realTarget(values.out);
    if (!existsSync(dirname(out))) throw new UsageError(`--out: the folder ${dirname(out)} does not exist`);
    if (existsSync(out) && statSync(out).isDirectory())
      throw new UsageError(`--out: ${values.out} is a directory; give a file name`);
    if (dirname(out) === realpathSync(modelDir) && isModelFile(basename(out)))
      throw new UsageError(`--out: ${values.out} is one of the model directory's own files; write elsewhere`);

    const config = await loadMavenConfig(modelDir);
    if (!config.llm || typeof config.llm !== 'object')
      throw new Error(`${modelDir}: the model has no language model (config.json has no "llm")`);
    const model = await loadMaven(modelDir);
    if (isQuantizedCheckpoint(model.weights))
      throw new Error(
        `${modelDir} holds block-quantized weights (maven quantize); export its float32 original (--type q8_0 | q4_0 quantizes for llama.cpp)`,
      );
    const why = unsupportedVocabulary(model);
    if (why) throw new Error(`${modelDir}: ${why}`);
    const file = mavenLlmGguf(model, type);
    const t0 = performance.now();
    const bytes = await writeGgufFile(file, out);
    if (!values.quiet) {
      const counts = new Map<string, number>();
      for (const t of file.tensors) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
      const types = [...counts].map(([t, n]) => `${n} ${t}`).join(', ');
      console.log(
        `${config.name} LLM → ${values.out}: ${file.tensors.length} tensors (${types}), ${config.llm.vocabSize} tokens, ${(bytes / 2 ** 20).toFixed(2)} MiB, ${(performance.now() - t0).toFixed(0)} ms`,
      );
    }
    return 0;
  },
};
