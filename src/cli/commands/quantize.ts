/**
 * `maven quantize`: a model directory whose linear layers hold block-quantized weights
 * (src/maven/quantization.ts, format in docs/quantization.md), loaded by loadMaven like any other.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MavenModel } from '../../maven/model.ts';
import {
  QUANTIZATION_METADATA_KEY,
  quantizeMaven,
  TOKEN_TABLES,
  tableQuant,
} from '../../maven/quantization.ts';
import { loadMaven, saveMaven } from '../../node/model-directory.ts';
import { type Command, numberOption, UsageError } from '../command.ts';

const usage = `usage: maven quantize --bits 8|4 [--block-size N] [--tables 8|4|float] [--vision] MODEL_DIR OUT_DIR

Writes OUT_DIR, a copy of the float32 model in MODEL_DIR whose linear layers (the LLM's attention
and MLP projections and the projector; with --vision also the vision towers' encoder layers and
the SEED tokenizer's Q-Former)
and token tables (the LLM's embedding and LM head) hold block-quantized weights: uint8 codes and
one float32 scale per block, run with onnxruntime's MatMulNBits. Activations stay float32. loadMaven, generate, eval and serve take OUT_DIR as a
model; training does not (train the float32 original).

options:
  --bits 8|4         bits per weight
  --block-size N     weights per scale, a power of two ≥ 16 (default 16 at 8 bits, 32 at 4
                     bits); a layer whose input width it does not divide stays float32 and is listed.
                     At 4 bits onnxruntime holds a model in 1.45x its file at 32, 1.18x at 128 (the
                     group size GPTQ / AWQ use): maven-7b runs in 5.6 GiB at 128
  --tables 8|4|float the token tables' bits (8 in blocks of 16, 4 in blocks of 32), or float to
                     keep them float32 (default: 8 beside --bits 4; beside --bits 8, float for
                     a table of up to 2M weights, such as the default model's, which keeps its
                     greedy answers, and 8 above, where the float32 head slows decoding: ~135M,
                     49k words, 61 against 72 tokens/s)
  --vision           quantize the vision towers' encoder layers and the Q-Former too
  --quiet            print nothing on success

OUT_DIR must not exist; it is written in a temporary folder beside it and renamed when complete.`;

/**
 * Blocks of 16 at 8 bits: on an earlier embedded model (run r7) they kept 200 of 200 greedy NLVR
 * test answers where blocks of 32 kept 199 (scripts/quantization-greedy.ts), when 8-bit weights
 * still ran as a float MatMul. They now run MatMulNBits (docs/quantization.md), where 16 costs a
 * float32 scale per 16 codes (1.25 bytes a weight against 1.125 at 32); a one-off timing of one row
 * through three layers (576 × 1536, 4096 × 4096, 4096 × 11008) found neither block size faster on all
 * three. At 4 bits 16 did no better than 32 (184 vs 186).
 */
const DEFAULT_BLOCK_SIZE: Record<number, number> = { 8: 16, 4: 32 };

function real(path: string): string {
  const abs = resolve(path);
  const dir = dirname(abs);
  return join(existsSync(dir) ? realpathSync(dir) : dir, basename(abs));
}

export const quantizeCommand: Command = {
  name: 'quantize',
  summary: 'write a copy of a model with block-quantized linear weights (8 or 4 bits)',
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        bits: { type: 'string' },
        'block-size': { type: 'string' },
        tables: { type: 'string' },
        vision: { type: 'boolean' },
        quiet: { type: 'boolean' },
      },
    });
    if (positionals.length !== 2) throw new UsageError(`give MODEL_DIR and OUT_DIR\n\n${usage}`);
    const [modelDir, outDir] = positionals;
    const bits = numberOption(values.bits, 'bits', (n) => n === 4 || n === 8);
    if (bits === undefined) throw new UsageError(`--bits 8|4 is required\n\n${usage}`);
    const blockSize =
      numberOption(
        values['block-size'],
        'block-size',
        (n) => Number.isInteger(n) && n >= 16 && (n & (n - 1)) === 0,
      ) ?? DEFAULT_BLOCK_SIZE[bits];
    if (values.tables !== undefined && !['8', '4', 'float'].includes(values.tables))
      throw new UsageError(
        `--tables must be 8, 4 or float, got ${JSON.stringify(values.tables)}\n\n${usage}`,
      );
    const chosenTables =
      values.tables === undefined
        ? undefined
        : values.tables === 'float'
          ? ('float' as const)
          : {
              bits: Number(values.tables) as 4 | 8,
              blockSize: DEFAULT_BLOCK_SIZE[Number(values.tables) as 4 | 8],
            };
    if (!existsSync(modelDir) || !statSync(modelDir).isDirectory())
      throw new UsageError(`${modelDir} is not a model directory (it does not exist)`);
    const input = realpathSync(modelDir);
    const out = real(outDir);
    const inside = relative(input, out);
    if (out === input || (!inside.startsWith('..') && !inside.startsWith('/'))) {
      throw new UsageError(
        `OUT_DIR ${outDir} is the input model directory or inside it; maven quantize never writes over its input`,
      );
    }
    if (existsSync(out))
      throw new UsageError(`OUT_DIR ${outDir} already exists; remove it or choose another`);
    if (!existsSync(dirname(out)))
      throw new UsageError(`the folder ${dirname(out)} for OUT_DIR does not exist`);

    const model = await loadMaven(modelDir);
    const t0 = performance.now();
    const options = { bits: bits as 4 | 8, blockSize, vision: values.vision, tables: chosenTables };
    const tables = tableQuant(model.config, options);
    const result = quantizeMaven(model.config, model.hostWeights(), options);
    const quantized = new MavenModel(model.config, result.weights, model.tokenizer);
    const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
    try {
      await saveMaven(tmp, quantized, { metadata: { [QUANTIZATION_METADATA_KEY]: result.metadata } });
      await rename(tmp, out);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    if (!values.quiet) {
      const bytes = (w: ReadonlyMap<string, { data: { byteLength: number } }>) =>
        [...w.values()].reduce((n, t) => n + t.data.byteLength, 0);
      const tableCount = result.quantized.filter((n) => TOKEN_TABLES.includes(n)).length;
      const tablesSaid =
        tables === 'float'
          ? 'token tables float32'
          : `${tableCount} token table${tableCount === 1 ? '' : 's'} at ${tables.bits} bits (blocks of ${tables.blockSize})`;
      console.log(
        `${model.config.name} → ${outDir}: ${result.quantized.length - tableCount} weights at ${bits} bits (blocks of ${blockSize}), ${tablesSaid}, weights ${(bytes(model.hostWeights()) / 2 ** 20).toFixed(2)} → ${(bytes(result.weights) / 2 ** 20).toFixed(2)} MiB, ${(performance.now() - t0).toFixed(0)} ms`,
      );
      for (const s of result.skipped) console.log(`  kept float32: ${s.name} (${s.reason})`);
    }
    return 0;
  },
};
