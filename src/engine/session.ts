/**
 * Running serialised graphs on onnxruntime. Sessions are created once per distinct model (keyed
 * by a SHA-256 of its bytes) and reused; dynamic axes mean one session serves every batch size
 * and sequence length. Feeds are checked against the declared inputs before the native call, so
 * a wrong shape is a readable error, never a native crash. Host arrays go to ORT without copies,
 * and outputs can be written straight into caller-owned buffers (`into`), which is how the
 * trainer keeps parameters resident.
 *
 * Execution providers: `cpu` (default) and `cuda` run on onnxruntime-node; `webgpu` and `wasm`
 * on onnxruntime-web (installed separately). Pick one with `MAVEN_EP` or `RuntimeOptions.ep`.
 * The runtime package is imported by name on first use; a bundled page, where a bare import by a
 * computed name cannot resolve, hands its own copy over with `provideOnnxRuntime` first.
 */
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';
import type { DType } from './dtype.ts';
import type { Graph } from './graph.ts';
import { HostTensor } from './host-tensor.ts';
import { type SerializedModel, type SerializeOptions, serialize, type ValueSpec } from './onnx.ts';
import { formatShape } from './shape.ts';
import type { Tensor } from './tensor.ts';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu' | 'wasm';

export interface RuntimeOptions {
  ep?: ExecutionProvider;
  /** Intra-op threads (default: `MAVEN_THREADS`, else every core the process may use). */
  threads?: number;
}

/** The part of an onnxruntime package (onnxruntime-node, onnxruntime-web) the engine uses. */
export interface OnnxRuntimeModule {
  /**
   * Whether outputs fetched into caller tensors land in those buffers. onnxruntime-node writes
   * them in place; onnxruntime-web (1.30, wasm) hands the tensor back unwritten, so there the
   * outputs are fetched normally and copied over.
   */
  writesIntoFetches?: boolean;
  InferenceSession: {
    create(bytes: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession>;
  };
  Tensor: new (type: DType, data: HostTensor['data'], dims: readonly number[]) => OrtTensor;
}

const EPS: readonly ExecutionProvider[] = ['cpu', 'cuda', 'webgpu', 'wasm'];

function envVar(name: string): string | undefined {
  const proc = (globalThis as { process?: { env: Record<string, string | undefined> } }).process;
  return proc?.env[name];
}

export function defaultProvider(): ExecutionProvider {
  const ep = (envVar('MAVEN_EP') ?? 'cpu').toLowerCase();
  if (!(EPS as readonly string[]).includes(ep)) {
    throw new Error(`MAVEN_EP=${ep} is not one of ${EPS.join(', ')}`);
  }
  return ep as ExecutionProvider;
}

const runtimes = new Map<string, Promise<OnnxRuntimeModule>>();

const packageFor = (ep: ExecutionProvider) =>
  ep === 'cpu' || ep === 'cuda' ? 'onnxruntime-node' : 'onnxruntime-web';

/**
 * Use `ort` for the execution providers of its package (`webgpu` and `wasm`: onnxruntime-web)
 * instead of importing the package by name. A browser bundle needs this: it imports
 * onnxruntime-web itself, by a name the bundler can see, configures it (where its .wasm files are
 * served, how many threads) and provides it before the first session. Sessions created before
 * stay as they are.
 */
export function provideOnnxRuntime(ep: ExecutionProvider, ort: OnnxRuntimeModule): void {
  runtimes.set(packageFor(ep), Promise.resolve(ort));
}

async function runtimeFor(ep: ExecutionProvider): Promise<OnnxRuntimeModule> {
  const pkg = packageFor(ep);
  let rt = runtimes.get(pkg);
  if (!rt) {
    rt = import(pkg).then(
      (m: { default?: OnnxRuntimeModule } & Partial<OnnxRuntimeModule>) =>
        m.InferenceSession ? (m as OnnxRuntimeModule) : (m.default as OnnxRuntimeModule),
      (e: unknown) => {
        throw new Error(
          `execution provider '${ep}' needs the package ${pkg}, which could not be loaded (${String(e)})`,
        );
      },
    );
    runtimes.set(pkg, rt);
  }
  return rt;
}

/**
 * A key for the session cache. SHA-256 where Web Crypto has it; a page served over plain http
 * from another host than localhost is not a secure context and has no `crypto.subtle`, so there
 * two independent 32-bit FNV-1a hashes and the length stand in (a cache key, not a security check).
 */
async function modelKey(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    const digest = await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  }
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < bytes.length; i++) {
    a = Math.imul(a ^ bytes[i], 0x01000193) >>> 0;
    b = Math.imul(b ^ bytes[bytes.length - 1 - i], 0x811c9dc5) >>> 0;
  }
  return `fnv:${bytes.length}:${a.toString(16)}:${b.toString(16)}`;
}

const sessions = new Map<string, Promise<InferenceSession>>();

/**
 * onnxruntime's own default thread count proved wrong on small VMs (2 vCPUs ran GEMMs at
 * 1-thread speed: 124 vs 324 GFLOP/s at n = 2048), so the engine always sets it.
 *
 * Browsers and Node 21+ report the cores through `navigator.hardwareConcurrency` (on Node that is
 * os.availableParallelism()). Node 20 has no `navigator`, so there the count comes from
 * `process.getBuiltinModule('node:os')` (Node 20.16+), looked up at run time: the engine imports
 * no Node module, so bundlers and browsers never see one, and Node 20 keeps using every core.
 */
function defaultThreads(): number {
  const fromEnv = Number(envVar('MAVEN_THREADS'));
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav?.hardwareConcurrency) return nav.hardwareConcurrency;
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const os = proc?.getBuiltinModule?.('node:os') as { availableParallelism?: () => number } | undefined;
  return os?.availableParallelism?.() ?? 1;
}

async function sessionFor(
  model: SerializedModel,
  options: RuntimeOptions,
): Promise<{ session: InferenceSession; ort: OnnxRuntimeModule }> {
  const ep = options.ep ?? defaultProvider();
  const ort = await runtimeFor(ep);
  const threads = options.threads ?? defaultThreads();
  // External data is part of the model: hash its contents too (weights updated in place by a
  // trainer must not find the session compiled from their old values).
  const hashes = [await modelKey(model.bytes)];
  for (const e of model.externalData) hashes.push(`${e.path}=${await modelKey(e.data)}`);
  // Weights left in files are named by file and offset in the model bytes; the folder completes them.
  if (model.externalFolder !== undefined) hashes.push(`folder=${model.externalFolder}`);
  const key = `${ep}:${threads}:${hashes.join(':')}`;
  let s = sessions.get(key);
  if (!s) {
    const sessionOptions: InferenceSession.SessionOptions = {
      executionProviders: [ep],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      // onnxruntime copies these bytes while creating the session; the caller's arrays stay its own.
      ...(model.externalData.length ? { externalData: model.externalData } : {}),
      // Where the files of FileTensors are: onnxruntime maps or reads them there, and refuses
      // locations that leave the folder (absolute paths, "..", symbolic links out of it).
      ...(model.externalFolder === undefined
        ? {}
        : { extra: { session: { model_external_initializers_file_folder_path: model.externalFolder } } }),
    };
    s = ort.InferenceSession.create(model.bytes, sessionOptions).catch((e: unknown) => {
      sessions.delete(key);
      const hint =
        ep === 'cuda'
          ? ' (the CUDA provider needs onnxruntime-node installed with its CUDA binaries: see README, "GPU")'
          : '';
      throw new Error(`onnxruntime could not create a session on '${ep}'${hint}: ${String(e)}`);
    });
    sessions.set(key, s);
  }
  return { session: await s, ort };
}

/** Number of sessions alive in the cache (for tests and diagnostics). */
export function cachedSessionCount(): number {
  return sessions.size;
}

export interface RunOptions {
  /** Caller-owned buffers to write outputs into (shapes must match the run's output shapes). */
  into?: Record<string, HostTensor>;
  /** Only fetch these outputs (default: all). */
  outputs?: readonly string[];
}

/** A compiled graph: an onnxruntime session plus the declared inputs and outputs. */
export class Program {
  private readonly bound = new Map<string, OrtTensor>();

  private constructor(
    private readonly session: InferenceSession,
    private readonly ort: OnnxRuntimeModule,
    readonly inputs: readonly ValueSpec[],
    readonly outputs: readonly ValueSpec[],
    readonly label: string,
  ) {}

  static async load(
    model: SerializedModel,
    options: RuntimeOptions & { label?: string } = {},
  ): Promise<Program> {
    const { session, ort } = await sessionFor(model, options);
    return new Program(session, ort, model.inputs, model.outputs, options.label ?? 'graph');
  }

  /** Whether the compiled graph reads input `name` (inputs nothing depends on are dropped). */
  reads(name: string): boolean {
    return this.inputs.some((i) => i.name === name);
  }

  /** Keep `value` fed to input `name` on every run (weights, frozen parameters); no copy is made. */
  bind(name: string, value: HostTensor): void {
    const spec = this.inputs.find((i) => i.name === name);
    if (!spec) return; // the graph does not read it
    this.checkFeed(spec, value, new Map());
    this.bound.set(name, this.toOrt(value));
  }

  async run(
    feeds: Record<string, HostTensor>,
    options: RunOptions = {},
  ): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, OrtTensor> = {};
    const dims = new Map<string, number>();
    for (const name of Object.keys(feeds)) {
      if (!this.inputs.some((i) => i.name === name)) {
        throw new Error(
          `${this.label}: unknown input "${name}"; inputs are ${this.inputs.map((i) => i.name).join(', ')}`,
        );
      }
    }
    for (const spec of this.inputs) {
      const value = feeds[spec.name];
      if (value) {
        this.checkFeed(spec, value, dims);
        ortFeeds[spec.name] = this.toOrt(value);
      } else {
        const b = this.bound.get(spec.name);
        if (!b)
          throw new Error(
            `${this.label}: missing input "${spec.name}" (${spec.dtype}${formatShape(spec.shape)})`,
          );
        ortFeeds[spec.name] = b;
      }
    }
    const wanted = options.outputs ?? this.outputs.map((o) => o.name);
    const fetches: Record<string, OrtTensor | null> = {};
    for (const name of wanted) {
      const target = options.into?.[name];
      fetches[name] = target && this.ort.writesIntoFetches ? this.toOrt(target) : null;
    }
    let results: InferenceSession.OnnxValueMapType;
    try {
      results = await this.session.run(ortFeeds, fetches);
    } catch (e) {
      throw new Error(`${this.label}: onnxruntime failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const out: Record<string, HostTensor> = {};
    for (const name of wanted) {
      const target = options.into?.[name];
      const r = results[name] as OrtTensor;
      if (target) {
        if (!this.ort.writesIntoFetches) target.data.set(r.data as never);
        out[name] = target;
        continue;
      }
      out[name] = new HostTensor(r.type as DType, [...r.dims], r.data as HostTensor['data']);
    }
    return out;
  }

  private toOrt(t: HostTensor): OrtTensor {
    return new this.ort.Tensor(t.dtype, t.data, t.shape);
  }

  private checkFeed(spec: ValueSpec, value: HostTensor, dims: Map<string, number>): void {
    const where = `${this.label}: input "${spec.name}"`;
    if (value.dtype !== spec.dtype) {
      throw new Error(
        `${where} must be ${spec.dtype}${formatShape(spec.shape)}, got ${value.dtype}${formatShape(value.shape)}`,
      );
    }
    if (value.shape.length !== spec.shape.length) {
      throw new Error(`${where} must have shape ${formatShape(spec.shape)}, got ${formatShape(value.shape)}`);
    }
    spec.shape.forEach((d, i) => {
      const got = value.shape[i];
      if (typeof d === 'number') {
        if (got !== d)
          throw new Error(
            `${where} must have shape ${formatShape(spec.shape)}, got ${formatShape(value.shape)}`,
          );
      } else {
        const seen = dims.get(d);
        if (seen !== undefined && seen !== got) {
          throw new Error(
            `${where}: dim '${d}' is ${got} here but ${seen} in another input (shape ${formatShape(value.shape)})`,
          );
        }
        dims.set(d, got);
      }
    });
  }
}

/** Serialise and load in one step. */
export async function compile(
  graph: Graph,
  outputs: Record<string, Tensor>,
  options: RuntimeOptions & SerializeOptions & { label?: string } = {},
): Promise<Program> {
  return Program.load(serialize(graph, outputs, options), options);
}
