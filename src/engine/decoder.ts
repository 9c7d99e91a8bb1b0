/**
 * Inference for autoregressive decoders with a KV cache: `prefill` runs the prompt into a new
 * cache; `decode` takes new tokens plus a cache and returns logits and the longer cache. The
 * model supplies one build function for both (a prompt is a step over an empty cache), so the
 * two paths cannot drift apart. The cache lives in fixed-size buffers on the host
 * (`DecoderCache`) that a step reads as inputs, without copying them (`ops.cachedAttention`); the
 * step returns only its own keys and values, which are copied into the buffers after it. The
 * buffers are never graph outputs, because onnxruntime-node 1.30 copies every fetched output back
 * out whole (bench/cached-attention.ts, docs/benchmarks.md).
 *
 * Large models run both through one compiled program (prefill is a step over an empty cache), so
 * onnxruntime holds one pre-packed copy of the weights instead of one per graph; small models get
 * two programs, because there a one-token step is fastest on one thread and the prompt on all
 * (and a second copy of a few MiB costs nothing). Weights are baked in as initializers or bound
 * once as resident inputs; weights stored block-quantized run with MatMulNBits.
 */
import type { StoredRows } from './block-quantize.ts';
import { allocate } from './dtype.ts';
import { FileTensor, type StoredTensor, storedByteLength } from './file-tensor.ts';
import { Graph } from './graph.ts';
import { HostTensor } from './host-tensor.ts';
import * as ops from './ops/index.ts';
import { compile, type Program, type RuntimeOptions } from './session.ts';
import type { Tensor } from './tensor.ts';

export interface LayerCache<T> {
  key: T;
  value: T;
}

/**
 * What a step reads of its KV cache, as graph inputs: per layer, key and value buffers
 * [B, kvHeads, 1, C, headDim] holding every earlier position (C is the cache's capacity, which
 * `DecoderCache` manages), and the mask [T, C + T] saying which of them, and of its own, each of
 * the step's T positions reads (`ops.cachedAttention`).
 */
export interface KVCacheInputs {
  layers: LayerCache<Tensor>[];
  mask: Tensor;
}

export interface DecoderStep {
  /** [B, T, D] hidden states after the last layer (and its norm), before the head. */
  hidden: Tensor;
  /**
   * Per layer, the step's keys and values [B, T, kvHeads·headDim], as attention read them (keys
   * after any rotary): the decoder appends them to the cache.
   */
  added: LayerCache<Tensor>[];
}

export interface DecoderSpec {
  layers: number;
  kvHeads: number;
  headDim: number;
  /** Width of input embeddings; needed only when prefilling from embeddings. */
  hiddenSize?: number;
  /**
   * Trace one forward step over a KV cache. `input` is token ids (int64 [B, T]) or, for a
   * multimodal prefill, input embeddings (float [B, T, hiddenSize]); `positions` [B, T] int64
   * absolute positions; `cache` the buffers to attend over. A prompt is a step over an empty
   * cache.
   */
  build(g: Graph, input: Tensor, positions: Tensor, cache: KVCacheInputs): DecoderStep;
  /** Hidden states [B, R, D] → logits [B, R, V]. Apart, so a step computes only the rows asked for. */
  head(g: Graph, hidden: Tensor): Tensor;
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
  /**
   * Bake weights into the graphs (default) or feed them as resident inputs (large models).
   * Weights left in their files (FileTensor) are always baked in: onnxruntime reads them there.
   */
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
   * The token table's rows on the host. Every step then takes embeddings — ids are embedded here —
   * so prefill and decode can share one program and no program holds a copy of the table (a
   * model that embeds its prompts on the host, as MaVEn does, would otherwise hold it twice:
   * 196 MiB at maven-7b's 8-bit table).
   */
  embedOnHost?: StoredRows;
  /**
   * Positions per prefill step: a longer prompt runs as several steps over its own cache. Default:
   * PREFILL_STEP_POSITIONS, or fewer where a step's new keys and values would pass
   * PREFILL_STEP_BYTES (they come back as outputs before they are copied into the cache).
   */
  prefillChunk?: number;
  /**
   * Intra-op threads for the one-token decode step when it has its own program. Default: 1 below
   * width 1024, where handing each small op to a second thread costs more than it saves
   * (measured on the tiny preset, 2 cores: ~2,800 vs ~2,000 tokens/s); otherwise the runtime's.
   */
  decodeThreads?: number;
  runtime?: RuntimeOptions;
}

export interface PrefillOptions {
  /** Positions the new cache holds before it grows (default: the prompt and 64 more). */
  capacity?: number;
  /** Logits of the last position (default) or of every position. */
  logits?: 'last' | 'all';
}

export interface DecoderOutput {
  logits: HostTensor;
  /** The hidden states the logits came from, [B, R, D]: after the last layer and its norm. */
  hidden: HostTensor;
  /** The cache after the step: pass it to `decode` to go on from here. */
  cache: DecoderCache;
}

/**
 * A prefill step's new keys and values, handed back as outputs and then copied into the cache,
 * are kept below this many bytes by running a long prompt in pieces (maven-7b: 1 MiB a position,
 * so a 382-position prompt in one step added 1.1 GiB to the process's peak, in pieces of 64
 * 0.4 GiB; the ~135M shape needs 46 KiB a position).
 */
export const PREFILL_STEP_BYTES = 64 * 2 ** 20;

/**
 * And a prefill step takes at most this many positions: its activations (attention scores grow
 * with its square) stay in onnxruntime's arena after it. The ~135M shape at 8 bits after a
 * 512-token prompt peaked at 533–561 MiB while decoding in steps of 256, 585–588 in one step of 512
 * (three and three runs, .scratch/rss135b.ts); the prefill took 782–956 against 731–855 ms, so
 * it may cost a few percent of prefill speed. llama.cpp's default micro-batch is 512.
 */
export const PREFILL_STEP_POSITIONS = 256;

/**
 * Positions a cache holds beyond those it needs when it is made (unless the caller sizes it) and
 * when it grows. Not large: a step scores every position of the buffers, filled or masked. Growing
 * costs one copy of the filled positions every 64 steps.
 */
const CACHE_HEADROOM = 64;

/**
 * The keys/values of one batch of sequences, in buffers [B, kvHeads, capacity, headDim] per layer
 * that each step appends its positions to. A cache is a length over those buffers: `decode` returns a new
 * cache over the same buffers, one step longer, and leaves the one it was given as it was, so
 * several continuations can start from one prompt (as scoring candidate answers does). Positions
 * past a cache's length are the next step's to overwrite, so once a step starts from a shorter
 * cache, a longer one over the same buffers is stale; decoding from it is refused.
 */
export class DecoderCache {
  private constructor(
    private readonly store: CacheStore,
    /** Positions filled. */
    readonly length: number,
    /** `store.writes.length` when this cache was made: later writes before `length` make it stale. */
    private readonly stamp: number,
  ) {}

  /** An empty cache for `batch` sequences with room for `capacity` positions. */
  static empty(
    spec: Pick<DecoderSpec, 'layers' | 'kvHeads' | 'headDim'>,
    batch: number,
    capacity: number,
  ): DecoderCache {
    if (!Number.isInteger(batch) || batch < 1)
      throw new Error(`DecoderCache: batch must be ≥ 1, got ${batch}`);
    return new DecoderCache(new CacheStore(spec, batch, Math.max(1, capacity)), 0, 0);
  }

  get batch(): number {
    return this.store.batch;
  }

  /** Positions the buffers hold before they must grow. */
  get capacity(): number {
    return this.store.capacity;
  }

  /**
   * A step adding `added` positions to this cache: its feeds (every layer's buffers, grown first
   * when too small, and the step's mask), and `append`, which copies the step's
   * `added.{layer}.key|value` outputs [B, added, kvHeads·headDim] into the buffers and returns the
   * longer cache. Marks the positions it will write.
   */
  step(added: number): {
    feeds: Record<string, HostTensor>;
    append(outputs: Record<string, HostTensor>): DecoderCache;
  } {
    const store = this.store;
    for (let w = this.stamp; w < store.writes.length; w++) {
      if (store.writes[w] < this.length)
        throw new Error(
          `DecoderCache: this cache of ${this.length} positions is stale: a later step over the same buffers rewrote position ${store.writes[w]}`,
        );
    }
    const total = this.length + added;
    if (total > store.capacity) store.grow(total + CACHE_HEADROOM, this.length);
    store.writes.push(this.length);
    // An empty cache has nothing to read: its step attends over its own positions alone, instead
    // of also scoring a whole buffer of masked ones (a 512-token prompt: 576 more per query).
    const empty = this.length === 0;
    const feeds: Record<string, HostTensor> = {
      'cache.mask': store.mask(this.length, added, empty ? 0 : store.capacity),
    };
    store.views(empty).forEach((c, i) => {
      feeds[`past.${i}.key`] = c.key;
      feeds[`past.${i}.value`] = c.value;
    });
    const stamp = store.writes.length;
    return {
      feeds,
      append: (outputs) => {
        store.write(this.length, added, outputs);
        return new DecoderCache(store, total, stamp);
      },
    };
  }

  /** Keys and values of the filled positions, per layer [B, kvHeads, length, headDim] (copies). */
  read(): LayerCache<HostTensor>[] {
    return this.store.read(this.length);
  }
}

/** The buffers behind the caches of one prompt. */
class CacheStore {
  private buffers: Float32Array[];
  /** Start position of every step written so far, in order. */
  readonly writes: number[] = [];

  constructor(
    private readonly spec: Pick<DecoderSpec, 'layers' | 'kvHeads' | 'headDim'>,
    readonly batch: number,
    public capacity: number,
  ) {
    this.buffers = this.allocate(capacity);
  }

  private allocate(capacity: number): Float32Array[] {
    const n = this.batch * this.spec.kvHeads * capacity * this.spec.headDim;
    return Array.from({ length: 2 * this.spec.layers }, () => new Float32Array(n));
  }

  /** Move the first `kept` positions of every row into buffers of `capacity` positions. */
  grow(capacity: number, kept: number): void {
    const hd = this.spec.headDim;
    const rows = this.batch * this.spec.kvHeads; // one row per (sequence, kv head)
    const next = this.allocate(capacity);
    this.buffers.forEach((old, i) => {
      for (let r = 0; r < rows; r++)
        next[i].set(old.subarray(r * this.capacity * hd, (r * this.capacity + kept) * hd), r * capacity * hd);
    });
    this.buffers = next;
    this.capacity = capacity;
  }

  /**
   * [T, C + T] for a step of `added` positions after `length` over C buffer positions: 0 where
   * its position t may look (the buffer's first `length` positions, and its own positions up to
   * t), -∞ elsewhere.
   */
  mask(length: number, added: number, C: number): HostTensor {
    const width = C + added;
    const m = new Float32Array(added * width).fill(Number.NEGATIVE_INFINITY);
    for (let t = 0; t < added; t++) {
      m.fill(0, t * width, t * width + length);
      m.fill(0, t * width + C, t * width + C + t + 1);
    }
    return new HostTensor('float32', [added, width], m);
  }

  /** Copy a step's `added.{layer}.key|value` [B, count, kvHeads·hd] to positions from…from+count-1. */
  write(from: number, count: number, outputs: Record<string, HostTensor>): void {
    const { kvHeads, headDim: hd } = this.spec;
    for (let i = 0; i < this.spec.layers; i++)
      for (const part of ['key', 'value'] as const) {
        const rows = outputs[`added.${i}.${part}`];
        const expected = [this.batch, count, kvHeads * hd];
        if (!rows || rows.shape.join() !== expected.join())
          throw new Error(
            `DecoderCache: a step's added.${i}.${part} must be [${expected.join(', ')}], got ${rows ? `[${rows.shape.join(', ')}]` : 'nothing'}`,
          );
        const src = rows.data as Float32Array; // [B, T, kvH, hd]
        const buffer = this.buffers[2 * i + (part === 'key' ? 0 : 1)]; // [B, kvH, C, hd]
        for (let b = 0; b < this.batch; b++)
          for (let t = 0; t < count; t++)
            for (let h = 0; h < kvHeads; h++) {
              const at = ((b * count + t) * kvHeads + h) * hd;
              buffer.set(src.subarray(at, at + hd), ((b * kvHeads + h) * this.capacity + from + t) * hd);
            }
      }
  }

  /** The buffers as a step's inputs (KVCacheInputs' layout), or tensors of no positions. */
  views(empty: boolean): LayerCache<HostTensor>[] {
    const shape = [this.batch, this.spec.kvHeads, 1, empty ? 0 : this.capacity, this.spec.headDim];
    const data = (i: number) => (empty ? new Float32Array(0) : this.buffers[i]);
    return Array.from({ length: this.spec.layers }, (_, i) => ({
      key: new HostTensor('float32', shape, data(2 * i)),
      value: new HostTensor('float32', shape, data(2 * i + 1)),
    }));
  }

  /** Copies of the first `length` positions, per layer [B, kvHeads, length, headDim] each. */
  read(length: number): LayerCache<HostTensor>[] {
    const hd = this.spec.headDim;
    const rows = this.batch * this.spec.kvHeads;
    const copy = (buffer: Float32Array) => {
      const out = new Float32Array(rows * length * hd);
      for (let r = 0; r < rows; r++)
        out.set(buffer.subarray(r * this.capacity * hd, (r * this.capacity + length) * hd), r * length * hd);
      return new HostTensor('float32', [this.batch, this.spec.kvHeads, length, hd], out);
    };
    return Array.from({ length: this.spec.layers }, (_, i) => ({
      key: copy(this.buffers[2 * i]),
      value: copy(this.buffers[2 * i + 1]),
    }));
  }
}

export class KVCacheDecoder {
  private constructor(
    private readonly spec: DecoderSpec,
    private readonly prefillProgram: Program,
    private readonly decodeProgram: Program,
    private readonly shared: boolean,
    private readonly hostRows: StoredRows | undefined,
    private readonly prefillChunk: number | undefined,
  ) {}

  static async create(
    spec: DecoderSpec,
    weights: ReadonlyMap<string, StoredTensor>,
    options: DecoderOptions = {},
  ): Promise<KVCacheDecoder> {
    const embed = options.embedWeights ?? true;
    const hostRows = options.embedOnHost;
    const fromEmbeds = options.prefillInput === 'embeds' || hostRows !== undefined;
    if (fromEmbeds && !spec.hiddenSize)
      throw new Error('KVCacheDecoder: prefill from embeddings needs spec.hiddenSize');
    if (hostRows && hostRows.shape[1] !== spec.hiddenSize)
      throw new Error(
        `KVCacheDecoder: host token rows are ${hostRows.shape[1]} wide, the model ${spec.hiddenSize}`,
      );
    const chunk = options.prefillChunk;
    if (chunk !== undefined && !(Number.isInteger(chunk) && chunk >= 1))
      throw new Error(`KVCacheDecoder: prefillChunk must be a whole number ≥ 1, got ${chunk}`);
    const decodeThreads =
      options.decodeThreads ?? ((spec.hiddenSize ?? 0) < 1024 ? 1 : options.runtime?.threads);
    const trace = (takesIds: boolean, takesEmbeds: boolean) => {
      // Weights stored block-quantized are traced as such (Graph, QuantizedWeight).
      const g = new Graph('float32', { weights });
      const D = spec.hiddenSize!;
      let input: Tensor;
      if (takesIds && takesEmbeds) {
        // One step for both: prefill feeds embeddings and no ids, decode ids and no embeddings.
        const ids = spec.embedIds!(g, g.input('ids', 'int64', ['B', 'I']));
        const embeds = g.input('embeds', 'float32', ['B', 'E', D]);
        // The tracer names the joined length I+E; the step's other inputs call it T.
        const joined = ops.concat([ids, embeds], 1);
        input = g.emit('Identity', [joined], [{ dtype: 'float32', shape: ['B', 'T', D] }])[0];
      } else if (takesEmbeds) input = g.input('embeds', 'float32', ['B', 'T', D]);
      else input = g.input('ids', 'int64', ['B', 'T']);
      const positions = g.input('positions', 'int64', ['B', 'T']);
      const cache: KVCacheInputs = {
        layers: Array.from({ length: spec.layers }, (_, i) => ({
          key: g.input(`past.${i}.key`, g.floatType, ['B', spec.kvHeads, 1, 'C', spec.headDim]),
          value: g.input(`past.${i}.value`, g.floatType, ['B', spec.kvHeads, 1, 'C', spec.headDim]),
        })),
        mask: g.input('cache.mask', g.floatType, ['T', 'C+T']),
      };
      const step = spec.build(g, input, positions, cache);
      // Logits of the last R positions only: a prompt's next token needs one row of them, and
      // every row of a large vocabulary costs a matrix product and V floats to hand back.
      const rows = g.input('logits.rows', 'int64', [1]);
      const [last] = g.emit(
        'Slice',
        [step.hidden, ops.neg(rows), g.ints([Number.MAX_SAFE_INTEGER]), g.ints([1])],
        [{ dtype: step.hidden.dtype, shape: [step.hidden.shape[0], 'R', step.hidden.shape[2]] }],
      );
      const outputs: Record<string, Tensor> = { logits: spec.head(g, last), hidden: last };
      step.added.forEach((c, i) => {
        outputs[`added.${i}.key`] = c.key;
        outputs[`added.${i}.value`] = c.value;
      });
      const missing = [...g.params.keys()].filter((n) => !weights.has(n));
      if (missing.length) throw new Error(`KVCacheDecoder: no weights for ${missing.join(', ')}`);
      return { g, outputs };
    };
    const load = async (traced: ReturnType<typeof trace>, label: string, threads?: number) => {
      const { g, outputs } = traced;
      const used = [...g.params.keys()].map((n): [string, StoredTensor] => [n, weights.get(n)!]);
      const program = await compile(g, outputs, {
        ...options.runtime,
        ...(threads ? { threads } : {}),
        label,
        embed: new Map(embed ? used : used.filter(([, w]) => w instanceof FileTensor)),
      });
      if (!embed) for (const [n, w] of used) if (!(w instanceof FileTensor)) program.bind(n, w);
      return program;
    };
    // With the table on the host every step takes embeddings; otherwise decode takes ids, and a
    // program shared with an embeddings prefill takes both (spec.embedIds).
    const canShare = !fromEmbeds || hostRows !== undefined || spec.embedIds !== undefined;
    const decodeGraph = hostRows
      ? trace(false, true)
      : trace(true, fromEmbeds && spec.embedIds !== undefined);
    const bytes = [...decodeGraph.g.params.keys()].reduce((n, k) => n + storedByteLength(weights.get(k)!), 0);
    const shared = canShare && (options.sharedProgram ?? bytes >= SHARED_PROGRAM_FROM_BYTES);
    if (options.sharedProgram && !canShare)
      throw new Error('KVCacheDecoder: a shared program that prefills from embeddings needs spec.embedIds');
    if (shared) {
      const step = await load(decodeGraph, 'decoder step');
      return new KVCacheDecoder(spec, step, step, true, hostRows, chunk);
    }
    const prefill = await load(trace(!fromEmbeds, fromEmbeds), 'prefill');
    const decode = await load(
      fromEmbeds && spec.embedIds && !hostRows ? trace(true, false) : decodeGraph,
      'decode',
      decodeThreads,
    );
    return new KVCacheDecoder(spec, prefill, decode, false, hostRows, chunk);
  }

  /** Whether prefill and decode run one program (and so one copy of the weights). */
  get sharesProgram(): boolean {
    return this.shared;
  }

  /**
   * Run the prompt — ids [B, T], or embeddings [B, T, D] when so created — at `positions` [B, T],
   * into a new cache. Returns the logits of its last position, [B, 1, V] (of all, [B, T, V], with
   * `logits: 'all'`). A long prompt runs as several steps (`DecoderOptions.prefillChunk`).
   */
  async prefill(
    input: HostTensor,
    positions: HostTensor,
    options: PrefillOptions = {},
  ): Promise<DecoderOutput> {
    const [B, T] = input.shape;
    const all = options.logits === 'all';
    let cache = DecoderCache.empty(this.spec, B, options.capacity ?? T + CACHE_HEADROOM);
    const { layers, kvHeads, headDim } = this.spec;
    const chunk =
      this.prefillChunk ??
      Math.min(
        PREFILL_STEP_POSITIONS,
        Math.max(16, Math.floor(PREFILL_STEP_BYTES / (B * layers * 2 * kvHeads * headDim * 4))),
      );
    const pieces: DecoderOutput[] = [];
    for (let from = 0; from < T; from += chunk) {
      const to = Math.min(T, from + chunk);
      const part = (t: HostTensor) => (from === 0 && to === T ? t : sliceAxis1(t, from, to));
      const out = await this.step(
        this.prefillProgram,
        this.inputFeeds(this.prefillProgram, part(input), part(positions)),
        cache,
        to - from,
        all ? to - from : 1,
      );
      cache = out.cache;
      if (all || to === T) pieces.push(out);
    }
    if (pieces.length === 1) return pieces[0];
    return {
      logits: concatAxis1(pieces.map((p) => p.logits)),
      hidden: concatAxis1(pieces.map((p) => p.hidden)),
      cache,
    };
  }

  /**
   * Run new tokens `ids` [B, T] (usually T = 1) at `positions` after `cache`; their logits,
   * [B, T, V]. Appends the new positions to the cache's buffers; `cache` itself stays valid for other
   * continuations until one of them is decoded further (see DecoderCache).
   */
  async decode(ids: HostTensor, positions: HostTensor, cache: DecoderCache): Promise<DecoderOutput> {
    const [B, T] = ids.shape;
    if (B !== cache.batch)
      throw new Error(`KVCacheDecoder.decode: ${B} sequences after a cache of ${cache.batch}`);
    return this.step(this.decodeProgram, this.inputFeeds(this.decodeProgram, ids, positions), cache, T);
  }

  /** A step's token feeds: ids or embeddings as `program` takes them (ids embedded on the host). */
  private inputFeeds(program: Program, input: HostTensor, positions: HostTensor): Record<string, HostTensor> {
    const B = input.shape[0];
    if (input.dtype === 'int64' && this.hostRows) input = embedRows(this.hostRows, input);
    const name = input.dtype === 'int64' ? 'ids' : 'embeds';
    const feeds: Record<string, HostTensor> = { [name]: input, positions };
    // A program that takes both (prefill from embeddings, decode from ids) gets the other empty.
    if (program.reads('ids') && program.reads('embeds')) {
      if (name === 'embeds') feeds.ids = new HostTensor('int64', [B, 0], new BigInt64Array(0));
      else feeds.embeds = this.noEmbeds(B);
    }
    return feeds;
  }

  /**
   * A sequence to extend token by token (see DecoderStream), for generation loops. `capacity` is
   * the most positions it is expected to reach; its cache starts at the prompt plus at most 64
   * more and grows as needed (past `capacity` too).
   */
  stream(capacity = 256): DecoderStream {
    return new DecoderStream(this, capacity);
  }

  private async step(
    program: Program,
    inputs: Record<string, HostTensor>,
    cache: DecoderCache,
    added: number,
    logitRows = added,
  ): Promise<DecoderOutput> {
    const { feeds, append } = cache.step(added);
    feeds['logits.rows'] = new HostTensor('int64', [1], BigInt64Array.of(BigInt(logitRows)));
    const r = await program.run(only(program, { ...inputs, ...feeds }));
    return { logits: r.logits, hidden: r.hidden, cache: append(r) };
  }

  private noEmbeds(batch: number): HostTensor {
    return new HostTensor('float32', [batch, 0, this.spec.hiddenSize!], new Float32Array(0));
  }
}

/** ids [B, T] → their rows [B, T, D]. */
function embedRows(rows: StoredRows, ids: HostTensor): HostTensor {
  const [B, T] = ids.shape;
  const [V, D] = rows.shape;
  const out = new Float32Array(B * T * D);
  (ids.data as BigInt64Array).forEach((id, i) => {
    const row = Number(id);
    if (row < 0 || row >= V) throw new Error(`KVCacheDecoder: token id ${row} outside the table's ${V} rows`);
    rows.read(row, out, i * D);
  });
  return new HostTensor('float32', [B, T, D], out);
}

/** Positions from…to-1 of t [B, T, ...]. */
function sliceAxis1(t: HostTensor, from: number, to: number): HostTensor {
  const [B, T, ...rest] = t.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const out = allocate(t.dtype, B * (to - from) * inner);
  for (let b = 0; b < B; b++)
    out.set(t.data.subarray((b * T + from) * inner, (b * T + to) * inner) as never, b * (to - from) * inner);
  return new HostTensor(t.dtype, [B, to - from, ...rest], out);
}

/** Tensors [B, Ti, ...] joined along axis 1. */
function concatAxis1(parts: HostTensor[]): HostTensor {
  const [B, , ...rest] = parts[0].shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const T = parts.reduce((n, p) => n + p.shape[1], 0);
  const out = allocate(parts[0].dtype, B * T * inner);
  for (let b = 0; b < B; b++) {
    let at = 0;
    for (const p of parts) {
      const n = p.shape[1] * inner;
      out.set(p.data.subarray(b * n, (b + 1) * n) as never, (b * T + at) * inner);
      at += p.shape[1];
    }
  }
  return new HostTensor(parts[0].dtype, [B, T, ...rest], out);
}

/** The feeds a program reads (a model may ignore positions, for instance). */
function only(program: Program, feeds: Record<string, HostTensor>): Record<string, HostTensor> {
  return Object.fromEntries(Object.entries(feeds).filter(([name]) => program.reads(name)));
}

/** One sequence extended token by token, its cache held here. */
export class DecoderStream {
  private cache: DecoderCache | null = null;

  constructor(
    private readonly decoder: KVCacheDecoder,
    private readonly capacity: number,
  ) {}

  /** Positions in the cache so far. */
  get positions(): number {
    return this.cache?.length ?? 0;
  }

  /**
   * Run the prompt (as KVCacheDecoder.prefill); starts the sequence over. Returns the logits of
   * its last position, [B, 1, V].
   */
  async prefill(input: HostTensor, positions: HostTensor): Promise<HostTensor> {
    const T = input.shape[1];
    const out = await this.decoder.prefill(input, positions, {
      capacity: Math.max(T, Math.min(this.capacity, T + CACHE_HEADROOM)),
    });
    this.cache = out.cache;
    return out.logits;
  }

  /** Run new tokens `ids` [B, T] at `positions` after the cache. Returns the logits. */
  async decode(ids: HostTensor, positions: HostTensor): Promise<HostTensor> {
    if (!this.cache) throw new Error('DecoderStream: decode before prefill');
    const out = await this.decoder.decode(ids, positions, this.cache);
    this.cache = out.cache;
    return out.logits;
  }
}
