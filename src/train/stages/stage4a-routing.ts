/**
 * Stage 4a (ours; the paper has no such step): before stage 4's task mix, the LLM learns to find
 * "image k" among several images — fashion-name ("what is in image 2?", three photos) alone, every
 * image discrete-only (8 tokens each), the rest exactly as stage 4 trains.
 *
 * Why: a question about several images first has to route from "image 2" to the second image's
 * tokens. With hybrid images (44 tokens each) the tiny LLM did not learn that: fashion-name trained
 * alone from stage 3 for 1,500 steps stayed at 32 % (each photo alone: ~85 %), and in the task mix
 * fashion-same answered "yes" to every pair. With 8 tokens per image it did (600 steps: 61 %), and
 * 300 hybrid steps after that gave 73 % in hybrid: learned on short images, routing carries over.
 * Stage 4 then trains the mix (fashion-name included) in hybrid from here.
 */
import type { StageDefinition } from '../stage.ts';
import type { MavenStageOptions } from './common.ts';
import { instructionStage } from './stage4-instruction.ts';

export function routingStage(o: Omit<MavenStageOptions, 'mode' | 'taskWeights'>): StageDefinition {
  if (o.fashion === undefined)
    throw new Error('stage4a-routing: needs Fashion-MNIST photos (the fashion option)');
  // Its own examples, not the first ones stage 4 draws again (stage 4 keys its examples on the seed).
  const seed = (o.seed ?? 0) + 1000;
  const def = instructionStage({ ...o, seed, mode: 'discrete-only', taskWeights: { 'fashion-name': 1 } });
  return {
    ...def,
    name: 'stage4a-routing',
    description:
      'LLM + projector on "what is in image k?" (fashion-name) alone, every image discrete-only: routing to image k before the task mix',
  };
}
