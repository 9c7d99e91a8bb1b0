/**
 * Stage 4: instruction tuning of everything except the vision encoders and the selector (the
 * LLM with its extended vocabulary, and the projector), on multi-image instructions in hybrid
 * encoding, loss on the answer tokens only. Image encodings (discrete ids, selected patches) come
 * from the weights at the start of the stage. With `realStatements`, a share of the examples are
 * real NLVR dev sentences (see data/tasks/nlvr-dev.ts); the rest come from the task mix.
 */

import { Rng } from '../../data/scene/rng.ts';
import { type LabelledNlvrExample, nlvrDevExample } from '../../data/tasks/nlvr-dev.ts';
import { instructionExample } from '../../data/tasks/stage-datasets.ts';
import type { TaskExample } from '../../data/tasks/types.ts';
import { warmupCosine } from '../../engine/index.ts';
import { buildComponents } from '../../maven/model.ts';
import { splitPrompt } from '../../maven/sequence.ts';
import { collateMultimodal, type MultimodalExample, traceMultimodalLoss } from '../multimodal.ts';
import type { StageDefinition } from '../stage.ts';
import {
  batchedFrom,
  frozenEncoder,
  type MavenStageOptions,
  pixelsOf,
  schedule,
  sequenceLayout,
} from './common.ts';

export const STAGE4_FROZEN = ['vision_tower.', 'visual_tokenizer.', 'patch_selector.'];

export interface InstructionStageOptions extends MavenStageOptions {
  /** Real NLVR examples (dev only) mixed in at `share` of the examples (0–1). */
  realStatements?: { examples: readonly LabelledNlvrExample[]; share: number };
}

export function instructionStage(o: InstructionStageOptions): StageDefinition {
  const real = o.realStatements;
  if (real && !(real.share >= 0 && real.share <= 1))
    throw new Error(`stage4-instruction: realStatements.share must be in [0, 1], got ${real.share}`);
  const seed = (o.seed ?? 0) + 2;
  const example = (i: number): TaskExample =>
    real && real.examples.length > 0 && Rng.fromKey('maven-real-share', seed, i).chance(real.share)
      ? nlvrDevExample(real.examples, i, { seed })
      : instructionExample(i, { seed, split: 'train', fashion: o.fashion, taskWeights: o.taskWeights });
  const c = buildComponents(o.config);
  const encoder = frozenEncoder(o);
  const layout = sequenceLayout(encoder, o);
  const collate = async (tasks: TaskExample[]) => {
    const all = tasks.flatMap((t) => t.images);
    const encoded = await encoder.encodeImages(pixelsOf(encoder, all), {
      mode: o.mode ?? 'hybrid',
      rawFeatures: true,
    });
    let next = 0;
    const examples: MultimodalExample[] = tasks.map((t) => {
      const pieces = splitPrompt(t.prompt, t.images.length, o.config.maxImages);
      const images = t.images.map(() => encoded[next++]);
      return {
        pieces: pieces.map((p, i) => o.tokenizer.encode(p, { bos: i === 0 })),
        images,
        answer: [...o.tokenizer.encode(` ${t.answer}`), o.tokenizer.eosId],
      };
    });
    return collateMultimodal(examples, layout);
  };
  return {
    name: 'stage4-instruction',
    description: `LLM + projector on multi-image instructions${real?.share ? ` (${Math.round(real.share * 100)} % real NLVR dev sentences)` : ''} (vision encoders and selector frozen), loss on answers`,
    params: o.weights,
    build: (g) => ({ loss: traceMultimodalLoss(g, c, true).loss }),
    trainable: (name) => !STAGE4_FROZEN.some((p) => name.startsWith(p)),
    optimizer: { lr: warmupCosine(schedule(o)), weightDecay: 0.01 },
    steps: o.steps,
    batches: (from) => batchedFrom(from, o.batchSize, example, collate),
    batchSize: (feeds) => feeds.ids.shape[0] * feeds.ids.shape[1],
  };
}
