/**
 * Parameter initialisation shared by the models: a seeded generator, so a model's initial
 * weights are a pure function of (config, seed), and the usual init schemes.
 */
import { HostTensor, sizeOf } from '../engine/index.ts';

/** mulberry32: small, fast, seeded uniform generator on [0, 1). */
export function uniformSource(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Builds named parameters; each tensor draws from its own stream derived from (seed, name). */
export class ParamInit {
  readonly params = new Map<string, HostTensor>();

  constructor(private readonly seed: number) {}

  private stream(name: string): () => number {
    let h = this.seed >>> 0;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
    return uniformSource(h);
  }

  normal(name: string, shape: number[], std = 0.02): HostTensor {
    const rand = this.stream(name);
    const data = new Float32Array(sizeOf(shape));
    for (let i = 0; i < data.length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12)));
      const theta = 2 * Math.PI * rand();
      data[i] = std * r * Math.cos(theta);
      if (i + 1 < data.length) data[i + 1] = std * r * Math.sin(theta);
    }
    return this.set(name, new HostTensor('float32', shape, data));
  }

  constant(name: string, shape: number[], value: number): HostTensor {
    return this.set(name, new HostTensor('float32', shape, new Float32Array(sizeOf(shape)).fill(value)));
  }

  zeros(name: string, shape: number[]): HostTensor {
    return this.constant(name, shape, 0);
  }

  ones(name: string, shape: number[]): HostTensor {
    return this.constant(name, shape, 1);
  }

  private set(name: string, t: HostTensor): HostTensor {
    if (this.params.has(name)) throw new Error(`ParamInit: "${name}" initialised twice`);
    this.params.set(name, t);
    return t;
  }
}
