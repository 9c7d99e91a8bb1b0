/**
 * Weight quantization of a MaVEn checkpoint for inference (`maven quantize`): the weights of the
 * linear layers that dominate the model's size and its per-token work — the LLM's attention and
 * MLP projections, the projector, and on request the vision side's (`vision`: both ViTs' encoder
 * layers and the SEED tokenizer's Q-Former, 400 MiB of float32 at maven-7b's size) — are stored
 * block-quantized (src/engine/block-quantize.ts) and run with MatMulNBits. The token tables —
 * the embedding and the LM head (one table when tied) — are quantized too, by default at 8 bits
 * beside 4-bit layers (`tables`, `defaultTableQuant`): the head is read whole every token (in a ~135M LLaMA,
 * 4 of its 27 ms per int4 step and 113 of its MB as float32), and its logits decide every
 * answer; embedding rows are dequantized as they are read (ops.gather, storedRows). Norms,
 * biases, the codebook and patch selector stay float32: they are small, and
 * activations stay float32 throughout. Training reads float weights only (isQuantizedCheckpoint).
 */
import {
  type BlockQuantSpec,
  blockQuantize,
  blockQuantSpec,
  type HostTensor,
  isBlockQuantized,
  QWEIGHT_SUFFIX,
  SCALES_SUFFIX,
} from '../engine/index.ts';
import { mavenWeightShapes } from './checkpoint.ts';
import type { MavenConfig } from './config.ts';
import { TOKENIZER_VISION_SCOPE, VISION_SCOPE } from './model.ts';

/** The safetensors metadata key that records how a checkpoint was quantized (JSON). */
export const QUANTIZATION_METADATA_KEY = 'maven.quantization';

export interface QuantizeOptions extends BlockQuantSpec {
  /** Also quantize the vision side: the ViTs' encoder layers and the Q-Former (default: only the LLM and projector). */
  vision?: boolean;
  /** How to store the token tables (TOKEN_TABLES): 'float' keeps them float32; default `defaultTableQuant`. */
  tables?: BlockQuantSpec | 'float';
}

/** The LLM's token tables: the input embedding and, when untied, the LM head. */
export const TOKEN_TABLES: readonly string[] = ['model.embed_tokens.weight', 'lm_head.weight'];

/**
 * Tables of at most this many weights (8 MiB as float32) stay float32 beside 8-bit layers: the
 * embedded model's holds 61,824 (483 × 128). A ~135M LLaMA's holds 28.3 M (113 MB as float32).
 */
export const SMALL_TABLE_WEIGHTS = 2 ** 21;

/** Weights in the LLM's token table (the embedding; the LM head, when untied, has as many). */
export function tokenTableWeights(config: MavenConfig): number {
  return config.llm.vocabSize * config.llm.hiddenSize;
}

/**
 * The token tables' default, for a table of `tableWeights` weights. Beside 4-bit layers: 8 bits in
 * blocks of 16 (llama.cpp's k-quant mixes likewise keep the output table wider than the layers: it
 * turns hidden states into the answer's logits). Beside 8-bit layers: float32 while the table is
 * small (≤ SMALL_TABLE_WEIGHTS), where it costs little to read and its exactness is worth keeping —
 * on the embedded model, 8-bit tables beside 8-bit layers changed 5 of 200 greedy NLVR answers with
 * plain rounding, 2 of 200 with the scale search, float32 tables none (docs/quantization.md); above
 * that 8 bits in blocks of 16, as llama.cpp's q8_0 files hold them: at ~135M the float32 head was
 * 113 of the ~250 MB an int8 step reads, and took int8 decoding from 0.99× llama.cpp's speed to
 * 0.84× and its memory from 1.41× to 1.57× (docs/benchmarks.md). `tables` overrides either way.
 */
export function defaultTableQuant(layerBits: 4 | 8, tableWeights: number): BlockQuantSpec | 'float' {
  if (layerBits === 4 || tableWeights > SMALL_TABLE_WEIGHTS) return { bits: 8, blockSize: 16 };
  return 'float';
}

export interface QuantizedCheckpoint {
  weights: Map<string, HostTensor>;
  /** Weights now stored as `.qweight` + `.scales`. */
  quantized: string[];
  /** Weights that were selected but left float32, with the reason. */
  skipped: { name: string; reason: string }[];
  /** The value to store under QUANTIZATION_METADATA_KEY. */
  metadata: string;
}

const LLM_LINEAR = /^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/;
const PROJECTOR = /^model\.mm_projector\.\d+\.weight$/;
const VISION_LINEAR = /\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight$/;
const QFORMER_LINEAR =
  /^visual_tokenizer\.Qformer\.bert\.encoder\.layer\.\d+\.((attention|crossattention)\.(self\.(query|key|value)|output\.dense)|(intermediate|output)_query\.dense)\.weight$/;

/** The weights `maven quantize` selects in a model of `config`. */
export function quantizableWeights(config: MavenConfig, options: { vision?: boolean } = {}): string[] {
  return [...mavenWeightShapes(config)]
    .filter(([name, shape]) => {
      if (shape.length !== 2) return false;
      if (LLM_LINEAR.test(name) || PROJECTOR.test(name)) return true;
      const inVision = name.startsWith(VISION_SCOPE) || name.startsWith(TOKENIZER_VISION_SCOPE);
      return options.vision === true && ((inVision && VISION_LINEAR.test(name)) || QFORMER_LINEAR.test(name));
    })
    .map(([name]) => name);
}

/** Whether a checkpoint's weights hold any block-quantized tensor. */
export function isQuantizedCheckpoint(weights: ReadonlyMap<string, unknown>): boolean {
  for (const name of weights.keys())
    if (name.endsWith(QWEIGHT_SUFFIX) || name.endsWith(SCALES_SUFFIX)) return true;
  return false;
}

/** How a model of `config` quantized with `options` stores its token tables. */
export function tableQuant(config: MavenConfig, options: QuantizeOptions): BlockQuantSpec | 'float' {
  return options.tables ?? defaultTableQuant(options.bits, tokenTableWeights(config));
}

/** Every weight `quantizeMaven` quantizes in a model of `config`, with its bits and block size. */
export function quantizationPlan(config: MavenConfig, options: QuantizeOptions): [string, BlockQuantSpec][] {
  const tables = tableQuant(config, options);
  const layers: BlockQuantSpec = { bits: options.bits, blockSize: options.blockSize };
  const shapes = mavenWeightShapes(config);
  return [
    ...quantizableWeights(config, options).map((n): [string, BlockQuantSpec] => [n, layers]),
    ...(tables === 'float'
      ? []
      : TOKEN_TABLES.filter((n) => shapes.has(n)).map((n): [string, BlockQuantSpec] => [n, tables])),
  ];
}

/** What a checkpoint quantized with `options` records under QUANTIZATION_METADATA_KEY (JSON). */
export function quantizationMetadata(config: MavenConfig, options: QuantizeOptions): string {
  const tables = tableQuant(config, options);
  return JSON.stringify({
    bits: options.bits,
    block_size: options.blockSize,
    tables: tables === 'float' ? null : { bits: tables.bits, block_size: tables.blockSize },
    symmetric: true,
    // The codes' layout, not the kernel (the engine picks it: docs/quantization.md).
    layout: 'com.microsoft.MatMulNBits',
  });
}

/** The float32 checkpoint `weights` with the selected linear weights block-quantized. */
export function quantizeMaven(
  config: MavenConfig,
  weights: ReadonlyMap<string, HostTensor>,
  options: QuantizeOptions,
): QuantizedCheckpoint {
  if (isQuantizedCheckpoint(weights)) {
    throw new Error('this checkpoint is already quantized; quantize its float32 original instead');
  }
  const out = new Map(weights);
  const quantized: string[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const [name, spec] of quantizationPlan(config, options)) {
    const w = weights.get(name);
    if (!w) throw new Error(`quantize: the checkpoint has no "${name}"`);
    const k = w.shape[1];
    if (k % spec.blockSize !== 0) {
      skipped.push({
        name,
        reason: `input width ${k} is not a multiple of the block size ${spec.blockSize}`,
      });
      continue;
    }
    const { qweight, scales } = blockQuantize(w, spec, name);
    out.delete(name);
    out.set(name + QWEIGHT_SUFFIX, qweight);
    out.set(name + SCALES_SUFFIX, scales);
    quantized.push(name);
  }
  const metadata = quantizationMetadata(config, options);
  return { weights: out, quantized, skipped, metadata };
}

/**
 * Checks the tensors of a quantized checkpoint against its recorded metadata (QUANTIZATION_METADATA_KEY):
 * every stored pair must have the bits and block size the file says, else the error names the tensor.
 */
export function checkQuantizationMetadata(
  source: string,
  config: MavenConfig,
  found: ReadonlyMap<string, { readonly shape: readonly number[]; readonly dtype?: string }>,
  metadata: string | undefined,
): void {
  const stored = [...mavenWeightShapes(config)].filter(([name]) => isBlockQuantized(found, name));
  if (!stored.length) return;
  if (metadata === undefined) {
    throw new Error(
      `${source}: holds block-quantized weights ("${stored[0][0]}${QWEIGHT_SUFFIX}") but no "${QUANTIZATION_METADATA_KEY}" metadata`,
    );
  }
  let recorded: {
    bits?: unknown;
    block_size?: unknown;
    tables?: { bits?: unknown; block_size?: unknown } | null;
  };
  try {
    recorded = JSON.parse(metadata) as typeof recorded;
  } catch {
    throw new Error(`${source}: "${QUANTIZATION_METADATA_KEY}" metadata is not JSON: ${metadata}`);
  }
  for (const [name, shape] of stored) {
    const spec = blockQuantSpec(
      name,
      shape,
      found.get(name + QWEIGHT_SUFFIX) ?? missing(name),
      found.get(name + SCALES_SUFFIX),
    );
    // Token tables have their own entry; files written before tables were quantized have none.
    const table = TOKEN_TABLES.includes(name);
    const expected = table ? (recorded.tables ?? {}) : recorded;
    const what = table ? 'tables.' : '';
    if (spec.blockSize !== expected.block_size) {
      throw new Error(
        `${source}: "${name}${QWEIGHT_SUFFIX}" has blocks of ${spec.blockSize} but the file's metadata says ${what}block_size ${String(expected.block_size)} (block size mismatch)`,
      );
    }
    if (spec.bits !== expected.bits) {
      throw new Error(
        `${source}: "${name}${QWEIGHT_SUFFIX}" holds ${spec.bits}-bit codes but the file's metadata says ${what}bits ${String(expected.bits)}`,
      );
    }
  }
}

function missing(name: string): never {
  throw new Error(`"${name}${QWEIGHT_SUFFIX}" is missing ("${name}${SCALES_SUFFIX}" is there)`);
}
