/**
 * The tracer. Model code calls ops on symbolic `Tensor`s; every op appends ONNX nodes to a
 * `Graph` and, when it can carry a gradient, a tape entry holding its vector-Jacobian product.
 * `autodiff.ts` walks that tape backwards, emitting the backward pass into the same graph, and
 * `onnx.ts` serialises the result. Nothing here runs numbers.
 */
import {
  blockQuantSpec,
  MATMULNBITS_ACCURACY_LEVEL,
  MATMULNBITS_BITS,
  type MatMulNBitsAccuracyLevel,
  QWEIGHT_SUFFIX,
  SCALES_SUFFIX,
} from './block-quantize.ts';
import type { DType, FloatDType } from './dtype.ts';
import { HostTensor } from './host-tensor.ts';
import { traceQuantizedWeight } from './quantized-weight.ts';
import { type Dim, formatShape, type Shape } from './shape.ts';
import { Tensor } from './tensor.ts';

export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'tensor'; value: HostTensor };

export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  string: (value: string): Attr => ({ kind: 'string', value }),
  ints: (value: number[]): Attr => ({ kind: 'ints', value }),
  floats: (value: number[]): Attr => ({ kind: 'floats', value }),
  tensor: (value: HostTensor): Attr => ({ kind: 'tensor', value }),
};

export interface GraphNode {
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
}

/** Given the gradients of an op's outputs (null where none flows), the gradients of its inputs. */
export type VJP = (outputGrads: (Tensor | null)[]) => (Tensor | null)[];

export interface TapeEntry {
  op: string;
  inputs: Tensor[];
  outputs: Tensor[];
  vjp: VJP;
}

export interface ParamInfo {
  tensor: Tensor;
  trainable: boolean;
}

export interface OutputSpec {
  dtype: DType;
  shape: Shape;
}

export interface GraphOptions {
  /**
   * The weights the graph will run with. A parameter stored there block-quantized
   * (`<name>.qweight`, `<name>.scales`, block-quantize.ts) is traced as a `QuantizedWeight`, which
   * `linear` runs with MatMulNBits; its two tensors become the graph's inputs, untrainable.
   */
  weights?: ReadonlyMap<string, { readonly shape: readonly number[]; readonly dtype: DType }>;
  /** Code widths whose weights `linear` runs with MatMulNBits (default MATMULNBITS_BITS, measured). */
  matMulNBitsBits?: readonly number[];
  /** MatMulNBits' accuracy_level (default MATMULNBITS_ACCURACY_LEVEL, measured). */
  matMulNBitsAccuracyLevel?: MatMulNBitsAccuracyLevel;
}

export class Graph {
  readonly nodes: GraphNode[] = [];
  readonly inputs: Tensor[] = [];
  readonly params = new Map<string, ParamInfo>();
  readonly initializers = new Map<string, HostTensor>();
  readonly tape: TapeEntry[] = [];
  readonly domains = new Set<string>();
  private readonly taken = new Set<string>();
  private readonly scalarCache = new Map<string, Tensor>();
  private counter = 0;
  private recordDepth = 0;
  private namePrefix = '';
  private readonly derived = new Map<string, Tensor>();

  /** `floatType` is the type of every float the model creates: float32 normally, float64 for gradient checks. */
  constructor(
    readonly floatType: FloatDType = 'float32',
    private readonly options: GraphOptions = {},
  ) {}

  /** A run-time input. Strings in `shape` are dynamic axes. */
  input(name: string, dtype: DType, shape: Shape): Tensor {
    this.claim(name, 'input');
    const t = new Tensor(this, name, dtype, [...shape]);
    this.inputs.push(t);
    return t;
  }

  /**
   * A named parameter (Hugging Face naming). Asking twice for the same name returns the same
   * tensor, so weight tying is just using one name twice. Frozen parameters get no gradient.
   */
  param(localName: string, shape: readonly number[], options: { trainable?: boolean } = {}): Tensor {
    const name = this.namePrefix + localName;
    const derived = this.derived.get(name);
    if (derived) {
      if (derived.rank !== shape.length || derived.shape.some((d, i) => d !== shape[i])) {
        throw new Error(
          `param "${name}": asked for shape ${formatShape(shape)} but it is derived as ${formatShape(derived.shape)}`,
        );
      }
      return derived;
    }
    const existing = this.params.get(name);
    if (existing) {
      const had = existing.tensor.shape;
      if (had.length !== shape.length || had.some((d, i) => d !== shape[i])) {
        throw new Error(
          `param "${name}": asked for shape ${formatShape(shape)} but it was declared ${formatShape(had)}`,
        );
      }
      return existing.tensor;
    }
    const weights = this.options.weights;
    if (weights && !weights.has(name) && weights.has(name + QWEIGHT_SUFFIX))
      return this.quantizedParam(name, shape);
    this.claim(name, 'param');
    const t = new Tensor(this, name, this.floatType, [...shape]);
    this.params.set(name, { tensor: t, trainable: options.trainable ?? true });
    this.inputs.push(t);
    return t;
  }

  private quantizedParam(name: string, shape: readonly number[]): Tensor {
    const weights = this.options.weights!;
    const stored = weights.get(name + QWEIGHT_SUFFIX)!;
    const spec = blockQuantSpec(name, shape, stored, weights.get(name + SCALES_SUFFIX));
    if (this.floatType !== 'float32')
      throw new Error(`param "${name}" is block-quantized; it runs in float32 graphs only`);
    const declare = (n: string, dtype: DType, s: readonly number[]) => {
      this.claim(n, 'param');
      const t = new Tensor(this, n, dtype, [...s]);
      this.params.set(n, { tensor: t, trainable: false });
      this.inputs.push(t);
      return t;
    };
    const qweight = declare(name + QWEIGHT_SUFFIX, 'uint8', stored.shape);
    const scales = declare(name + SCALES_SUFFIX, 'float32', weights.get(name + SCALES_SUFFIX)!.shape);
    const kernel = (this.options.matMulNBitsBits ?? MATMULNBITS_BITS).includes(spec.bits)
      ? { accuracyLevel: this.options.matMulNBitsAccuracyLevel ?? MATMULNBITS_ACCURACY_LEVEL }
      : null;
    const w = traceQuantizedWeight(this, [shape[0], shape[1]], qweight, scales, spec, kernel);
    this.derived.set(name, w);
    return w;
  }

  /**
   * Run `body` with `prefix` prepended to every parameter name it declares, so a component
   * keeps its own checkpoint names (`vision_model.…`) and still lives beside others in one
   * model (`vision_tower.vision_model.…`). Scopes nest.
   */
  scoped<T>(prefix: string, body: () => T): T {
    const saved = this.namePrefix;
    this.namePrefix = saved + prefix;
    try {
      return body();
    } finally {
      this.namePrefix = saved;
    }
  }

  /**
   * Make later requests for parameter `name` return `value`, a tensor computed from other
   * parameters. Training uses it to train part of a tensor: `model.embed_tokens.weight` becomes
   * concat(frozen text rows, trainable visual rows) while the model code still asks for it by name.
   */
  deriveParam(name: string, value: Tensor): void {
    if (this.params.has(name)) throw new Error(`deriveParam: "${name}" was already declared as a parameter`);
    if (value.graph !== this) throw new Error(`deriveParam: value for "${name}" belongs to another graph`);
    this.derived.set(name, value);
  }

  /** A constant baked into the graph. */
  constant(value: HostTensor, hint = 'const'): Tensor {
    const name = this.fresh(hint);
    this.initializers.set(name, value);
    return new Tensor(this, name, value.dtype, [...value.shape]);
  }

  /** A scalar constant (shape []), shared between uses. Floats take the graph's float type unless told. */
  scalar(value: number, dtype: DType = this.floatType): Tensor {
    const key = `${dtype}:${Object.is(value, -0) ? '-0' : value}`;
    let t = this.scalarCache.get(key);
    if (!t) {
      const host =
        dtype === 'int64'
          ? new HostTensor('int64', [], BigInt64Array.of(BigInt(value)))
          : dtype === 'float64'
            ? new HostTensor('float64', [], Float64Array.of(value))
            : dtype === 'int32'
              ? new HostTensor('int32', [], Int32Array.of(value))
              : dtype === 'bool'
                ? new HostTensor('bool', [], Uint8Array.of(value ? 1 : 0))
                : new HostTensor('float32', [], Float32Array.of(value));
      t = this.constant(host, 'scalar');
      this.scalarCache.set(key, t);
    }
    return t;
  }

  /** A 1-D int64 constant, for shapes, axes and indices. */
  ints(values: readonly number[]): Tensor {
    return this.constant(
      new HostTensor('int64', [values.length], BigInt64Array.from(values, BigInt)),
      'ints',
    );
  }

  /** Append one ONNX node; returns its outputs as symbolic tensors. */
  emit(
    opType: string,
    inputs: readonly (Tensor | null)[],
    outputs: readonly OutputSpec[],
    attrs: Record<string, Attr> = {},
    domain = '',
  ): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) throw new Error(`${opType}: input "${t.name}" belongs to another graph`);
    }
    if (domain) this.domains.add(domain);
    const outs = outputs.map((o) => new Tensor(this, this.fresh(opType), o.dtype, [...o.shape]));
    this.nodes.push({
      opType,
      domain,
      inputs: inputs.map((t) => (t ? t.name : '')),
      outputs: outs.map((t) => t.name),
      attrs,
    });
    return outs;
  }

  /** Record a differentiable op on the tape (skipped inside `untaped`, e.g. while building a backward pass). */
  record(op: string, inputs: Tensor[], outputs: Tensor[], vjp: VJP): void {
    if (this.recordDepth === 0) this.tape.push({ op, inputs, outputs, vjp });
  }

  /**
   * Run `body` without taping the ops it emits. Composite ops use this to replace the tape of
   * their parts by one entry with a fused, cheaper gradient.
   */
  untaped<T>(body: () => T): T {
    this.recordDepth++;
    try {
      return body();
    } finally {
      this.recordDepth--;
    }
  }

  get taping(): boolean {
    return this.recordDepth === 0;
  }

  fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.counter++}`;
    while (this.taken.has(name));
    this.taken.add(name);
    return name;
  }

  private claim(name: string, what: string): void {
    if (this.taken.has(name)) throw new Error(`${what} "${name}" is already defined in this graph`);
    this.taken.add(name);
  }
}

export type { Dim, Shape };
