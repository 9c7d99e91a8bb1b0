/**
 * Inference for autoregressive decoders with a KV cache, as a pair of compiled graphs:
 * `prefill` runs the prompt and returns every layer's keys/values; `decode` takes new tokens
 * plus that cache and returns logits and the grown cache. The model supplies one build function
 * used for both (with and without past keys/values), so the two paths cannot drift apart.
 * Weights are baked in as initializers (small models) or bound once as resident inputs; weights
 * stored block-quantized run with MatMulNBits.
 */
import { Graph } from './graph.ts';
import type { HostTensor } from './host-tensor.ts';
import { compile, type Program, type RuntimeOptions } from './session.ts';
import type { Tensor } from './tensor.ts';

export interface LayerCache<T> {
  key: T;
  value: T;
}

export interface DecoderStep {
  /** [B, T, V] logits. */
  logits: Tensor;
  /** Per layer, keys/values over all positions so far: [B, kvHeads, past + T, headDim]. */
  present: LayerCache<Tensor>[];
}

export interface DecoderSpec {
  layers: number;
  kvHeads: number;
  headDim: number;
  /** Width of input embeddings; needed only when prefilling from embeddings. */
  hiddenSize?: number;
  /**
   * Trace one forward step. `input` is token ids (int64 [B, T]) or, for a multimodal prefill,
   * input embeddings (float [B, T, hiddenSize]); `positions` [B, T] int64 absolute positions;
   * `past` null for prefill, else per-layer [B, kvHeads, P, headDim] caches to attend over.
   */
  build(g: Graph, input: Tensor, positions: Tensor, past: LayerCache<Tensor>[] | null): DecoderStep;
}

export interface DecoderOptions {
  /** Bake weights into the graphs (default) or feed them as resident inputs (large models). */
  embedWeights?: boolean;
  /** What `prefill` takes: token ids (default) or input embeddings [B, T, hiddenSize]. */
  prefillInput?: 'ids' | 'embeds';
  /**
   * Intra-op threads for the one-token decode step. Default: 1 below width 1024, where handing
   * each small op to a second thread costs more than it saves (measured on the tiny preset, 2
   * cores: ~2,800 vs ~2,000 tokens/s); otherwise the runtime's setting.
   */
  decodeThreads?: number;
  runtime?: RuntimeOptions;
}

export interface DecoderOutput {
  logits: HostTensor;
  cache: LayerCache<HostTensor>[];
}

export class KVCacheDecoder {
  private constructor(
    private readonly spec: DecoderSpec,
    private readonly prefillProgram: Program,
    private readonly decodeProgram: Program,
  ) {}

  static async create(
    spec: DecoderSpec,
    weights: ReadonlyMap<string, HostTensor>,
    options: DecoderOptions = {},
  ): Promise<KVCacheDecoder> {
    const embed = options.embedWeights ?? true;
    const fromEmbeds = options.prefillInput === 'embeds';
    if (fromEmbeds && !spec.hiddenSize)
      throw new Error('KVCacheDecoder: prefill from embeddings needs spec.hiddenSize');
    const decodeThreads =
      options.decodeThreads ?? ((spec.hiddenSize ?? 0) < 1024 ? 1 : options.runtime?.threads);
    const trace = async (withPast: boolean, label: string) => {
      // Weights stored block-quantized are traced as such (Graph, QuantizedWeight).
      const g = new Graph('float32', { weights });
      const ids =
        !withPast && fromEmbeds
          ? g.input('embeds', 'float32', ['B', 'T', spec.hiddenSize!])
          : g.input('ids', 'int64', ['B', 'T']);
      const positions = g.input('positions', 'int64', ['B', 'T']);
      const past = withPast
        ? Array.from({ length: spec.layers }, (_, i) => ({
            key: g.input(`past.${i}.key`, g.floatType, ['B', spec.kvHeads, 'P', spec.headDim]),
            value: g.input(`past.${i}.value`, g.floatType, ['B', spec.kvHeads, 'P', spec.headDim]),
          }))
        : null;
      const step = spec.build(g, ids, positions, past);
      const outputs: Record<string, Tensor> = { logits: step.logits };
      step.present.forEach((c, i) => {
        outputs[`present.${i}.key`] = c.key;
        outputs[`present.${i}.value`] = c.value;
      });
      const missing = [...g.params.keys()].filter((n) => !weights.has(n));
      if (missing.length) throw new Error(`KVCacheDecoder: no weights for ${missing.join(', ')}`);
      const program = await compile(g, outputs, {
        ...options.runtime,
        ...(withPast && decodeThreads ? { threads: decodeThreads } : {}),
        label,
        embed: embed ? new Map([...g.params.keys()].map((n) => [n, weights.get(n)!])) : undefined,
      });
      if (!embed) for (const n of g.params.keys()) program.bind(n, weights.get(n)!);
      return program;
    };
    return new KVCacheDecoder(spec, await trace(false, 'prefill'), await trace(true, 'decode'));
  }

  /** Run the prompt — ids [B, T], or embeddings [B, T, D] when so created — at `positions` [B, T]. */
  async prefill(input: HostTensor, positions: HostTensor): Promise<DecoderOutput> {
    const name = input.dtype === 'int64' ? 'ids' : 'embeds';
    return this.collect(
      await this.prefillProgram.run(only(this.prefillProgram, { [name]: input, positions })),
    );
  }

  /** Run new tokens `ids` [B, T] (usually T = 1) after `cache`. */
  async decode(
    ids: HostTensor,
    positions: HostTensor,
    cache: LayerCache<HostTensor>[],
  ): Promise<DecoderOutput> {
    const feeds: Record<string, HostTensor> = { ids, positions };
    cache.forEach((c, i) => {
      feeds[`past.${i}.key`] = c.key;
      feeds[`past.${i}.value`] = c.value;
    });
    return this.collect(await this.decodeProgram.run(only(this.decodeProgram, feeds)));
  }

  private collect(r: Record<string, HostTensor>): DecoderOutput {
    return {
      logits: r.logits,
      cache: Array.from({ length: this.spec.layers }, (_, i) => ({
        key: r[`present.${i}.key`],
        value: r[`present.${i}.value`],
      })),
    };
  }
}

/** The feeds a program reads (a model may ignore positions, for instance). */
function only(program: Program, feeds: Record<string, HostTensor>): Record<string, HostTensor> {
  return Object.fromEntries(Object.entries(feeds).filter(([name]) => program.reads(name)));
}
