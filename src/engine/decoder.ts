/**
 * Inference for autoregressive decoders with a KV cache: `prefill` runs the prompt and returns
 * every layer's keys/values; `decode` takes new tokens plus that cache and returns logits and the
 * grown cache. The model supplies one build function used for both (with and without past
 * keys/values), so the two paths cannot drift apart.
 *
 * Large models run both through one compiled program (prefill is a step over an empty cache), so
 * onnxruntime holds one pre-packed copy of the weights instead of one per graph; small models get
 * two programs, because there a one-token step is fastest on one thread and the prompt on all
 * (and a second copy of a few MiB costs nothing). Weights are baked in as initializers or bound
 * once as resident inputs; weights stored block-quantized run with MatMulNBits.
 */
import { Graph } from './graph.ts';
import { HostTensor } from './host-tensor.ts';
import * as ops from './ops/index.ts';
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
  /**
   * Token ids [B, T] → input embeddings [B, T, hiddenSize]. With it, a decoder that prefills from
   * embeddings can still share one program between prefill and decode (the step then takes ids
   * and embeddings side by side); without it, such a decoder compiles two.
   */
  embedIds?(g: Graph, ids: Tensor): Tensor;
}

/**
 * Stored weight bytes from which prefill and decode share one program by default. The f32
 * LLaMA of SmolLM-135M's shape (540 MB) held two 540 MB copies when compiled as two graphs
 * (../shared/notes/decode-vs-llamacpp.md) and decoded faster on 2 threads than on 1; the tiny
 * preset (8 MB) decodes faster on 1 thread (decodeThreads).
 */
export const SHARED_PROGRAM_FROM_BYTES = 64 * 2 ** 20;

export interface DecoderOptions {
  /** Bake weights into the graphs (default) or feed them as resident inputs (large models). */
  embedWeights?: boolean;
  /** What `prefill` takes: token ids (default) or input embeddings [B, T, hiddenSize]. */
  prefillInput?: 'ids' | 'embeds';
  /**
   * Run prefill and decode through one program, so the runtime holds the weights once (default:
   * when the weights the graph reads take SHARED_PROGRAM_FROM_BYTES or more). The program then
   * runs on the runtime's thread count, and `decodeThreads` does not apply.
   */
  sharedProgram?: boolean;
  /**
   * Intra-op threads for the one-token decode step when it has its own program. Default: 1 below
   * width 1024, where handing each small op to a second thread costs more than it saves
   * (measured on the tiny preset, 2 cores: ~2,800 vs ~2,000 tokens/s); otherwise the runtime's.
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
    private readonly shared: boolean,
    private readonly fromEmbeds: boolean,
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
    const trace = (withPast: boolean, withEmbeds: boolean) => {
      // Weights stored block-quantized are traced as such (Graph, QuantizedWeight).
      const g = new Graph('float32', { weights });
      const D = spec.hiddenSize!;
      let input: Tensor;
      if (withPast && withEmbeds) {
        // One step for both: prefill feeds embeddings and no ids, decode ids and no embeddings.
        const ids = spec.embedIds!(g, g.input('ids', 'int64', ['B', 'I']));
        const embeds = g.input('embeds', 'float32', ['B', 'E', D]);
        // The tracer names the joined length I+E; the step's other inputs call it T.
        const joined = ops.concat([ids, embeds], 1);
        input = g.emit('Identity', [joined], [{ dtype: 'float32', shape: ['B', 'T', D] }])[0];
      } else if (withEmbeds) input = g.input('embeds', 'float32', ['B', 'T', D]);
      else input = g.input('ids', 'int64', ['B', 'T']);
      const positions = g.input('positions', 'int64', ['B', 'T']);
      const past = withPast
        ? Array.from({ length: spec.layers }, (_, i) => ({
            key: g.input(`past.${i}.key`, g.floatType, ['B', spec.kvHeads, 'P', spec.headDim]),
            value: g.input(`past.${i}.value`, g.floatType, ['B', spec.kvHeads, 'P', spec.headDim]),
          }))
        : null;
      const step = spec.build(g, input, positions, past);
      const outputs: Record<string, Tensor> = { logits: step.logits };
      step.present.forEach((c, i) => {
        outputs[`present.${i}.key`] = c.key;
        outputs[`present.${i}.value`] = c.value;
      });
      const missing = [...g.params.keys()].filter((n) => !weights.has(n));
      if (missing.length) throw new Error(`KVCacheDecoder: no weights for ${missing.join(', ')}`);
      return { g, outputs };
    };
    const load = async (traced: ReturnType<typeof trace>, label: string, threads?: number) => {
      const { g, outputs } = traced;
      const program = await compile(g, outputs, {
        ...options.runtime,
        ...(threads ? { threads } : {}),
        label,
        embed: embed ? new Map([...g.params.keys()].map((n) => [n, weights.get(n)!])) : undefined,
      });
      if (!embed) for (const n of g.params.keys()) program.bind(n, weights.get(n)!);
      return program;
    };
    const decodeGraph = trace(true, fromEmbeds && spec.embedIds !== undefined);
    const canShare = !fromEmbeds || spec.embedIds !== undefined;
    const bytes = [...decodeGraph.g.params.keys()].reduce((n, k) => n + weights.get(k)!.data.byteLength, 0);
    const shared = canShare && (options.sharedProgram ?? bytes >= SHARED_PROGRAM_FROM_BYTES);
    if (options.sharedProgram && !canShare)
      throw new Error('KVCacheDecoder: a shared program that prefills from embeddings needs spec.embedIds');
    if (shared) {
      const step = await load(decodeGraph, 'decoder step');
      return new KVCacheDecoder(spec, step, step, true, fromEmbeds);
    }
    const prefill = await load(trace(false, fromEmbeds), 'prefill');
    const decode = await load(
      fromEmbeds && spec.embedIds ? trace(true, false) : decodeGraph,
      'decode',
      decodeThreads,
    );
    return new KVCacheDecoder(spec, prefill, decode, false, fromEmbeds);
  }

  /** Whether prefill and decode run one program (and so one copy of the weights). */
  get sharesProgram(): boolean {
    return this.shared;
  }

  /** Run the prompt — ids [B, T], or embeddings [B, T, D] when so created — at `positions` [B, T]. */
  async prefill(input: HostTensor, positions: HostTensor): Promise<DecoderOutput> {
    return this.collect(await this.prefillProgram.run(this.prefillFeeds(input, positions)));
  }

  /**
   * A sequence to extend token by token, keeping its own cache (see DecoderStream): for
   * generation loops, which never go back to an earlier cache. `capacity` is a first guess of
   * the positions it will reach; it grows past it when needed.
   */
  stream(capacity = 256): DecoderStream {
    return new DecoderStream(this.spec, capacity, {
      prefill: (input, positions, into) =>
        this.prefillProgram.run(this.prefillFeeds(input, positions), { into }),
      decode: (ids, positions, cache, into) =>
        this.decodeProgram.run(this.decodeFeeds(ids, positions, cache), { into }),
    });
  }

  private prefillFeeds(input: HostTensor, positions: HostTensor): Record<string, HostTensor> {
    const name = input.dtype === 'int64' ? 'ids' : 'embeds';
    const feeds: Record<string, HostTensor> = { [name]: input, positions };
    if (this.shared) {
      const [B] = input.shape;
      const empty = new HostTensor(
        'float32',
        [B, this.spec.kvHeads, 0, this.spec.headDim],
        new Float32Array(0),
      );
      for (let i = 0; i < this.spec.layers; i++) {
        feeds[`past.${i}.key`] = empty;
        feeds[`past.${i}.value`] = empty;
      }
      if (this.fromEmbeds) {
        if (name === 'embeds') feeds.ids = new HostTensor('int64', [B, 0], new BigInt64Array(0));
        else feeds.embeds = this.noEmbeds(B);
      }
    }
    return only(this.prefillProgram, feeds);
  }

  /** Run new tokens `ids` [B, T] (usually T = 1) after `cache`. */
  async decode(
    ids: HostTensor,
    positions: HostTensor,
    cache: LayerCache<HostTensor>[],
  ): Promise<DecoderOutput> {
    return this.collect(await this.decodeProgram.run(this.decodeFeeds(ids, positions, cache)));
  }

  private decodeFeeds(
    ids: HostTensor,
    positions: HostTensor,
    cache: LayerCache<HostTensor>[],
  ): Record<string, HostTensor> {
    const feeds: Record<string, HostTensor> = { ids, positions };
    if (this.fromEmbeds && this.decodeProgram.reads('embeds')) feeds.embeds = this.noEmbeds(ids.shape[0]);
    cache.forEach((c, i) => {
      feeds[`past.${i}.key`] = c.key;
      feeds[`past.${i}.value`] = c.value;
    });
    return only(this.decodeProgram, feeds);
  }

  private noEmbeds(batch: number): HostTensor {
    return new HostTensor('float32', [batch, 0, this.spec.hiddenSize!], new Float32Array(0));
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

type Run = Promise<Record<string, HostTensor>>;

interface StepRunners {
  prefill(input: HostTensor, positions: HostTensor, into: Record<string, HostTensor>): Run;
  decode(
    ids: HostTensor,
    positions: HostTensor,
    cache: LayerCache<HostTensor>[],
    into: Record<string, HostTensor>,
  ): Run;
}

/**
 * One sequence extended token by token, its KV cache held here. Every cache tensor has two
 * buffers sized for `capacity` positions that take turns: a step reads the cache from one and
 * onnxruntime writes the grown cache straight into the other. Without this each step returned
 * a freshly allocated cache that the binding copied out (for a 7B model at 640 positions, 670 MB
 * allocated, page-faulted and copied per token); with it a step allocates nothing and writes the
 * cache once.
 */
export class DecoderStream {
  private current: Float32Array[] = [];
  private spare: Float32Array[] = [];
  private length = 0;
  private batch = 0;

  constructor(
    private readonly spec: DecoderSpec,
    private capacity: number,
    private readonly runners: StepRunners,
  ) {}

  /** Positions in the cache so far. */
  get positions(): number {
    return this.length;
  }

  /** Run the prompt (as KVCacheDecoder.prefill); starts the sequence over. Returns the logits. */
  async prefill(input: HostTensor, positions: HostTensor): Promise<HostTensor> {
    const [B, T] = input.shape;
    this.batch = B;
    this.length = 0;
    const into = this.outputs(T);
    const r = await this.runners.prefill(input, positions, into);
    return this.advance(r, T);
  }

  /** Run new tokens `ids` [B, T] at `positions` after the cache. Returns the logits. */
  async decode(ids: HostTensor, positions: HostTensor): Promise<HostTensor> {
    if (this.batch === 0) throw new Error('DecoderStream: decode before prefill');
    const T = ids.shape[1];
    const past = this.views(this.current, this.length);
    const into = this.outputs(this.length + T);
    const r = await this.runners.decode(ids, positions, past, into);
    return this.advance(r, T);
  }

  private advance(r: Record<string, HostTensor>, added: number): HostTensor {
    [this.current, this.spare] = [this.spare, this.current];
    this.length += added;
    return r.logits;
  }

  /** Output views of `positions` over the spare buffers, grown first when they are too small. */
  private outputs(positions: number): Record<string, HostTensor> {
    const per = this.batch * this.spec.kvHeads * this.spec.headDim;
    if (positions > this.capacity) this.capacity = Math.max(positions, 2 * this.capacity);
    const needed = per * this.capacity;
    if (this.spare.length === 0 || this.spare[0].length < per * positions)
      this.spare = Array.from({ length: 2 * this.spec.layers }, () => new Float32Array(needed));
    const into: Record<string, HostTensor> = {};
    this.views(this.spare, positions).forEach((c, i) => {
      into[`present.${i}.key`] = c.key;
      into[`present.${i}.value`] = c.value;
    });
    return into;
  }

  private views(buffers: Float32Array[], positions: number): LayerCache<HostTensor>[] {
    const shape = [this.batch, this.spec.kvHeads, positions, this.spec.headDim];
    const n = this.batch * this.spec.kvHeads * positions * this.spec.headDim;
    return Array.from({ length: this.spec.layers }, (_, i) => ({
      key: new HostTensor('float32', shape, buffers[2 * i].subarray(0, n)),
      value: new HostTensor('float32', shape, buffers[2 * i + 1].subarray(0, n)),
    }));
  }
}
