/**
 * One compiled training step: forward, backward and AdamW in a single onnxruntime call.
 *
 * Parameters stay resident: each trainable tensor has two host buffers, the step reads one set
 * and writes the updated values straight into the other (no per-step allocation or copy), and
 * the sets swap only when the loss and gradient norm are finite. A NaN/Inf step therefore throws
 * `NonFiniteLossError` with the parameters and optimizer state left exactly at the last good step.
 * Frozen parameters get no gradient and no optimizer state; they are bound once, without a copy.
 */
import { grad } from './autodiff.ts';
import type { FloatDType } from './dtype.ts';
import { Graph } from './graph.ts';
import { HostTensor } from './host-tensor.ts';
import { type AdamWConfig, adamwScalars, emitAdamW, type ResolvedAdamW, resolveAdamW } from './optim.ts';
import { compile, type Program, type RuntimeOptions } from './session.ts';
import { formatShape } from './shape.ts';
import type { Tensor } from './tensor.ts';

export interface TrainGraph {
  loss: Tensor;
  /** Extra scalar or tensor outputs to report each step (accuracy, logits, ...). */
  metrics?: Record<string, Tensor>;
}

export interface TrainerOptions {
  /** Initial parameter values by name; every parameter the graph declares must be here. */
  params: ReadonlyMap<string, HostTensor>;
  /** Trace the model and its loss. Declare data with `g.input`, weights with `g.param`. */
  build: (g: Graph) => TrainGraph;
  optimizer: AdamWConfig;
  /** Which parameters train (default: all the graph declares trainable). */
  trainable?: (name: string) => boolean;
  /** Which parameters get weight decay (default: matrices and embeddings, not biases or norms). */
  decay?: (name: string, shape: readonly number[]) => boolean;
  /** Optimizer state to resume from (from `optimizerState()`), and the step it was saved at. */
  resume?: { state: ReadonlyMap<string, HostTensor>; step: number };
  floatType?: FloatDType;
  runtime?: RuntimeOptions;
}

export interface StepResult {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  metrics: Record<string, HostTensor>;
}

export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly loss: number,
    readonly gradNorm: number,
  ) {
    super(
      `step ${step}: loss is ${loss} and gradient norm ${gradNorm}; the update was discarded and parameters are unchanged from step ${step - 1}`,
    );
    this.name = 'NonFiniteLossError';
  }
}

interface Slot {
  name: string;
  cur: { p: HostTensor; m: HostTensor; v: HostTensor };
  next: { p: HostTensor; m: HostTensor; v: HostTensor };
}

const M = '@adam_m';
const V = '@adam_v';
const NEXT = '@next';

function copy(t: HostTensor): HostTensor {
  return new HostTensor(t.dtype, t.shape, t.data.slice() as HostTensor['data']);
}

export class Trainer {
  private stepCount: number;
  private evalProgram: Promise<Program> | null = null;

  private constructor(
    private readonly program: Program,
    private readonly graph: Graph,
    private readonly outputs: TrainGraph,
    private readonly slots: Slot[],
    private readonly frozen: Map<string, HostTensor>,
    private readonly cfg: ResolvedAdamW,
    private readonly runtime: RuntimeOptions,
    startStep: number,
  ) {
    this.stepCount = startStep;
  }

  static async create(options: TrainerOptions): Promise<Trainer> {
    const cfg = resolveAdamW(options.optimizer);
    const g = new Graph(options.floatType ?? 'float32');
    const built = options.build(g);
    if (built.loss.shape.some((d) => d !== 1)) {
      throw new Error(
        `Trainer: the loss must be a scalar, got ${built.loss.name}${formatShape(built.loss.shape)}`,
      );
    }

    // Check every declared parameter against the values, all at once.
    const problems: string[] = [];
    for (const [name, info] of g.params) {
      const value = options.params.get(name);
      const want = info.tensor.shape as number[];
      if (!value) problems.push(`missing "${name}" ${formatShape(want)}`);
      else if (
        value.dtype !== g.floatType ||
        value.shape.length !== want.length ||
        value.shape.some((d, i) => d !== want[i])
      ) {
        problems.push(
          `"${name}": graph wants ${g.floatType}${formatShape(want)}, got ${value.dtype}${formatShape(value.shape)}`,
        );
      }
    }
    if (problems.length)
      throw new Error(`Trainer: parameters do not match the model:\n  ${problems.join('\n  ')}`);

    const isTrainable = options.trainable ?? (() => true);
    const decays = options.decay ?? ((_: string, shape: readonly number[]) => shape.length >= 2);
    const trainable = [...g.params].filter(([name, info]) => info.trainable && isTrainable(name));
    if (trainable.length === 0) throw new Error('Trainer: no trainable parameters (all are frozen)');

    const params = trainable.map(([, info]) => info.tensor);
    const grads = grad(built.loss, params);
    const scalars = {
      stepSize: g.input('@stepSize', g.floatType, []),
      invSqrtBc2: g.input('@invSqrtBc2', g.floatType, []),
      decayFactor: g.input('@decayFactor', g.floatType, []),
    };
    const adamSlots = trainable.map(([name, info], i) => ({
      param: info.tensor,
      grad: grads[i],
      m: g.input(name + M, g.floatType, info.tensor.shape),
      v: g.input(name + V, g.floatType, info.tensor.shape),
      decay: decays(name, info.tensor.shape as number[]),
    }));
    const update = emitAdamW(g, adamSlots, scalars, cfg);

    const outputs: Record<string, Tensor> = { loss: built.loss, gradNorm: update.gradNorm };
    for (const [k, t] of Object.entries(built.metrics ?? {})) outputs[`metric:${k}`] = t;
    trainable.forEach(([name], i) => {
      outputs[name + NEXT] = update.params[i];
      outputs[name + M + NEXT] = update.m[i];
      outputs[name + V + NEXT] = update.v[i];
    });
    const runtime = options.runtime ?? {};
    const program = await compile(g, outputs, { ...runtime, label: 'train step' });

    const slots: Slot[] = trainable.map(([name]) => {
      const p = options.params.get(name)!;
      const state = options.resume?.state;
      const m = state?.get(name + M);
      const v = state?.get(name + V);
      if (state && (!m || !v))
        throw new Error(`Trainer: resume state has no optimizer moments for "${name}"`);
      const fresh = () => HostTensor.zeros(p.dtype, p.shape);
      return {
        name,
        cur: { p: copy(p), m: m ? copy(m) : fresh(), v: v ? copy(v) : fresh() },
        next: { p: fresh(), m: fresh(), v: fresh() },
      };
    });
    const frozen = new Map<string, HostTensor>();
    for (const name of g.params.keys()) {
      if (trainable.some(([n]) => n === name)) continue;
      const value = options.params.get(name)!;
      frozen.set(name, value);
      program.bind(name, value);
    }
    return new Trainer(program, g, built, slots, frozen, cfg, runtime, options.resume?.step ?? 0);
  }

  get step(): number {
    return this.stepCount;
  }

  /** Names of the parameters being trained and of those frozen, with element counts. */
  summary(): { trainable: [string, number][]; frozen: [string, number][] } {
    return {
      trainable: this.slots.map((s) => [s.name, s.cur.p.size]),
      frozen: [...this.frozen].map(([n, t]) => [n, t.size]),
    };
  }

  async trainStep(feeds: Record<string, HostTensor>): Promise<StepResult> {
    const t = this.stepCount + 1;
    const s = adamwScalars(this.cfg, t);
    const f = this.graph.floatType;
    const scalar = (x: number) =>
      new HostTensor(f, [], f === 'float64' ? Float64Array.of(x) : Float32Array.of(x));
    const all: Record<string, HostTensor> = { ...feeds };
    for (const [k, v] of Object.entries({
      stepSize: s.stepSize,
      invSqrtBc2: s.invSqrtBc2,
      decayFactor: s.decayFactor,
    })) {
      if (this.program.reads(`@${k}`)) all[`@${k}`] = scalar(v);
    }
    const into: Record<string, HostTensor> = {};
    for (const slot of this.slots) {
      all[slot.name] = slot.cur.p;
      all[slot.name + M] = slot.cur.m;
      all[slot.name + V] = slot.cur.v;
      into[slot.name + NEXT] = slot.next.p;
      into[slot.name + M + NEXT] = slot.next.m;
      into[slot.name + V + NEXT] = slot.next.v;
    }
    const r = await this.program.run(all, { into });
    const loss = Number(r.loss.data[0]);
    const gradNorm = Number(r.gradNorm.data[0]);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) throw new NonFiniteLossError(t, loss, gradNorm);
    for (const slot of this.slots) [slot.cur, slot.next] = [slot.next, slot.cur];
    this.stepCount = t;
    const metrics: Record<string, HostTensor> = {};
    for (const k of Object.keys(this.outputs.metrics ?? {})) metrics[k] = r[`metric:${k}`];
    return { step: t, loss, gradNorm, lr: s.lr, metrics };
  }

  /** Loss and metrics on a batch without updating anything. */
  async evaluate(
    feeds: Record<string, HostTensor>,
  ): Promise<{ loss: number; metrics: Record<string, HostTensor> }> {
    if (!this.evalProgram) {
      const outputs: Record<string, Tensor> = { loss: this.outputs.loss };
      for (const [k, t] of Object.entries(this.outputs.metrics ?? {})) outputs[`metric:${k}`] = t;
      this.evalProgram = compile(this.graph, outputs, { ...this.runtime, label: 'eval step' });
    }
    const program = await this.evalProgram;
    const all: Record<string, HostTensor> = { ...feeds };
    for (const slot of this.slots) all[slot.name] = slot.cur.p;
    for (const [name, value] of this.frozen) all[name] = value;
    const wanted = program.inputs.map((i) => i.name);
    const r = await program.run(Object.fromEntries(Object.entries(all).filter(([k]) => wanted.includes(k))));
    const metrics: Record<string, HostTensor> = {};
    for (const k of Object.keys(this.outputs.metrics ?? {})) metrics[k] = r[`metric:${k}`];
    return { loss: Number(r.loss.data[0]), metrics };
  }

  /** Current parameter values (trainable copies owned by the trainer, frozen ones as given). Live: copy to keep. */
  parameters(): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>(this.frozen);
    for (const s of this.slots) out.set(s.name, s.cur.p);
    return out;
  }

  /** AdamW moments by `<param>@adam_m` / `<param>@adam_v`, for checkpoints (pass back via `resume`). */
  optimizerState(): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const s of this.slots) {
      out.set(s.name + M, s.cur.m);
      out.set(s.name + V, s.cur.v);
    }
    return out;
  }
}
