/**
 * The projector: a 2-layer MLP with GELU from ViT patch features to the LLM embedding space,
 * named as LLaVA-1.5's `mlp2x_gelu` (`model.mm_projector.0` / `.2`) so its weights load by name.
 */
import { type Graph, type HostTensor, ops, type Tensor } from '../engine/index.ts';
import { ParamInit } from '../models/init.ts';

export interface ProjectorConfig {
  visionWidth: number;
  llmWidth: number;
}

export class Projector {
  constructor(
    readonly config: ProjectorConfig,
    readonly prefix = 'model.mm_projector',
  ) {}

  paramShapes(): Map<string, number[]> {
    const { visionWidth: dv, llmWidth: dl } = this.config;
    return new Map([
      [`${this.prefix}.0.weight`, [dl, dv]],
      [`${this.prefix}.0.bias`, [dl]],
      [`${this.prefix}.2.weight`, [dl, dl]],
      [`${this.prefix}.2.bias`, [dl]],
    ]);
  }

  init(seed: number): Map<string, HostTensor> {
    const init = new ParamInit(seed);
    for (const [name, shape] of this.paramShapes()) {
      if (name.endsWith('.bias')) init.zeros(name, shape);
      else init.normal(name, shape, 1 / Math.sqrt(shape[1]));
    }
    return init.params;
  }

  /** [..., Dv] → [..., Dl] */
  forward(g: Graph, features: Tensor): Tensor {
    const { visionWidth: dv, llmWidth: dl } = this.config;
    const p = this.prefix;
    const h = ops.gelu(
      ops.linear(features, g.param(`${p}.0.weight`, [dl, dv]), g.param(`${p}.0.bias`, [dl])),
    );
    return ops.linear(h, g.param(`${p}.2.weight`, [dl, dl]), g.param(`${p}.2.bias`, [dl]));
  }
}
