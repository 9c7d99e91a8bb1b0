/**
 * Stage 3: the projector, captioning from the continuous tokens: per image `<img>` + the patches
 * the (frozen) selector keeps + `</img>`, then the caption. The frozen encoders and selector run
 * on the host to pick the patches; the projector runs in the graph.
 *
 * The paper trains the projector alone here, under a frozen Vicuna-7B. With `trainLlm` the LLM
 * trains too: a frozen tiny LLM that has only ever read text does not learn to read projected
 * patches from a projector alone — measured on the tiny recipe's model, 600 projector-only
 * steps on Fashion-MNIST captions left the photo → class test at 10 % (chance), against 57 %
 * with the LLM trainable for the same steps. With `singleImageModes` the captions are read in a
 * mix of encodings (hybrid: discrete ids + kept patches; continuous-only: every patch, no ids;
 * discrete-only: ids alone), so the LLM learns each view of an image, not only the paper's.
 */

import { captionPair } from '../../data/tasks/stage-datasets.ts';
import { warmupCosine } from '../../engine/index.ts';
import { buildComponents } from '../../maven/model.ts';
import { collateMultimodal, type MultimodalExample, traceMultimodalLoss } from '../multimodal.ts';
import type { StageDefinition } from '../stage.ts';
import {
  encodeInModes,
  frozenEncoder,
  imageSlotCount,
  lengthGroupedFrom,
  type MavenStageOptions,
  schedule,
  sequenceLayout,
  singleImageMode,
} from './common.ts';
import { STAGE4_FROZEN } from './stage4-instruction.ts';

export interface ProjectorStageOptions extends MavenStageOptions {
  /** Train the LLM (and its extended embeddings) with the projector; default false, the paper's stage 3. */
  trainLlm?: boolean;
}

const NAME = 'stage3-projector';

export function projectorStage(o: ProjectorStageOptions): StageDefinition {
  const c = buildComponents(o.config);
  const encoder = frozenEncoder(o);
  const layout = sequenceLayout(encoder, o);
  // The paper's stage 3 reads continuous tokens only: continuous-only trains the projector on every
  // patch, hybrid on the selected ones (without their discrete ids).
  const paperMode = o.mode === 'continuous-only' ? 'continuous-only' : 'hybrid';
  // Each caption tokenised, with its image's encoding, before any image is encoded: its length in
  // slots is then known, and batches are grouped by it (lengthGroupedFrom).
  const tokenized = (index: number) => {
    const pair = captionPair(index, { seed: (o.seed ?? 0) + 1, split: 'train', fashion: o.fashion });
    const mode = o.singleImageModes ? singleImageMode(o, NAME, index) : paperMode;
    const answer = [...o.tokenizer.encode(` ${pair.caption}`), o.tokenizer.eosId];
    // Without singleImageModes the image's discrete ids are dropped below: its patches and delimiters remain.
    const slots = o.singleImageModes
      ? imageSlotCount(o.config, mode)
      : imageSlotCount(o.config, mode) - (mode === 'hybrid' ? o.config.seed.qformer.numQueryTokens : 0);
    return { image: pair.image, mode, answer, length: 1 + slots + answer.length };
  };
  type Tokenized = ReturnType<typeof tokenized>;
  const collate = async (items: Tokenized[]) => {
    const encoded = await encodeInModes(
      encoder,
      items.map((t) => t.image),
      items.map((t) => t.mode),
    );
    const examples: MultimodalExample[] = items.map((t, i) => ({
      pieces: [[o.tokenizer.bosId], []],
      images: [o.singleImageModes ? encoded[i] : { ...encoded[i], discreteIds: [] }],
      answer: t.answer,
    }));
    return collateMultimodal(examples, layout);
  };
  return {
    name: NAME,
    description: o.trainLlm
      ? 'projector + LLM: captions from the image tokens (vision encoders and selector frozen)'
      : 'projector only: captions from the selected continuous patches',
    params: o.weights,
    build: (g) => ({ loss: traceMultimodalLoss(g, c, true).loss }),
    trainable: o.trainLlm
      ? (name) => !STAGE4_FROZEN.some((p) => name.startsWith(p))
      : (name) => name.startsWith('model.mm_projector.'),
    optimizer: { lr: warmupCosine(schedule(o)), weightDecay: o.trainLlm ? 0.01 : 0 },
    steps: o.steps,
    batches: (from) =>
      lengthGroupedFrom(from, o.batchSize, tokenized, (t) => t.length, collate, { seed: o.seed }),
    batchSize: (feeds) => feeds.ids.shape[0] * feeds.ids.shape[1],
  };
}
