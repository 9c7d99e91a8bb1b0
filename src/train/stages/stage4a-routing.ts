/**
 * Stages 4a–4b (ours; the paper has no such steps): before stage 4's task mix, the LLM learns to
 * find "image k" among several images, then to compare them, on the Fashion-MNIST multi-image
 * tasks alone with every image discrete-only (8 tokens each); the rest exactly as stage 4 trains.
 *
 * Why: a question about several images first has to route from "image 2" to the second image's
 * tokens. With hybrid images (44 tokens each) the tiny LLM did not learn that: fashion-name ("what
 * is in image 2?") trained alone from stage 3 for 1,500 steps stayed at 32 % (each photo alone:
 * ~85 %), and in the task mix fashion-same answered "yes" to every pair. With 8 tokens per image it
 * did (600 steps: 61 %), and 300 hybrid steps after that gave 73 % in hybrid: learned on short
 * images, routing carries over. Comparing needs routing first: fashion-which ("which image shows a
 * sneaker?") trained alone stayed at chance from stage 3 (400 steps, discrete-only: 35 %), and
 * began to learn after 4a (45 %).
 */
import type { TaskName } from '../../data/tasks/types.ts';
import type { StageDefinition } from '../stage.ts';
import type { MavenStageOptions } from './common.ts';
import { instructionStage } from './stage4-instruction.ts';

export interface RoutingPhase {
  /** Stage name, also its folder in the recipe. */
  name: string;
  tasks: Partial<Record<TaskName, number>>;
  what: string;
}

/** 4a: find image k (one photo named among three); 4b: compare photos, 4a's task kept in the mix. */
export const ROUTING_PHASES = {
  find: { name: 'stage4a-find-image', tasks: { 'fashion-name': 1 }, what: '"what is in image k?"' },
  compare: {
    name: 'stage4b-compare-images',
    tasks: { 'fashion-name': 1, 'fashion-which': 1, 'fashion-same': 1, 'fashion-count': 1 },
    what: 'the Fashion-MNIST multi-image tasks',
  },
} as const satisfies Record<string, RoutingPhase>;

/**
 * `mode` (default discrete-only, the recipe's) replaces the encoding only for the encoding
 * ablation, whose retrained single-encoding models read no other.
 */
export function routingStage(
  o: Omit<MavenStageOptions, 'taskWeights'>,
  phase: RoutingPhase,
): StageDefinition {
  if (o.fashion === undefined)
    throw new Error(`${phase.name}: needs Fashion-MNIST photos (the fashion option)`);
  // Its own examples, not the first ones stage 4 draws again (stage 4 keys its examples on the seed);
  // the name's length only makes 4a's and 4b's differ (the committed model was trained with it).
  const seed = (o.seed ?? 0) + 1000 + phase.name.length;
  const mode = o.mode ?? 'discrete-only';
  const def = instructionStage({ ...o, seed, mode, taskWeights: phase.tasks });
  return {
    ...def,
    name: phase.name,
    description: `LLM + projector on ${phase.what} alone, every image ${mode} (before the task mix)`,
  };
}
