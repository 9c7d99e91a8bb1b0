/**
 * Stage 3: only the projector, captioning from the selected continuous tokens: per image
 * `<img>` + the patches the (frozen) selector keeps + `</img>`, then the caption. The frozen
 * encoders and selector run on the host to pick the patches; the projector runs in the graph.
 */

import { captionPair } from '../../data/tasks/stage-datasets.ts';
import { warmupCosine } from '../../engine/index.ts';
import { buildComponents } from '../../maven/model.ts';
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

export function projectorStage(o: MavenStageOptions): StageDefinition {
  const c = buildComponents(o.config);
  const encoder = frozenEncoder(o);
  const layout = sequenceLayout(encoder, o);
  const collate = async (pairs: ReturnType<typeof captionPair>[]) => {
    const encoded = await encoder.encodeImages(
      pixelsOf(
        encoder,
        pairs.map((p) => p.image),
      ),
      // Continuous-only trains the projector on every patch; otherwise on the selected ones.
      { mode: o.mode === 'continuous-only' ? 'continuous-only' : 'hybrid', rawFeatures: true },
    );
    const examples: MultimodalExample[] = pairs.map((pair, i) => ({
      pieces: [[o.tokenizer.bosId], []],
      images: [{ ...encoded[i], discreteIds: [] }], // continuous tokens only
      answer: [...o.tokenizer.encode(` ${pair.caption}`), o.tokenizer.eosId],
    }));
    return collateMultimodal(examples, layout);
  };
  return {
    name: 'stage3-projector',
    description: 'projector only: captions from the selected continuous patches',
    params: o.weights,
    build: (g) => ({ loss: traceMultimodalLoss(g, c, true).loss }),
    trainable: (name) => name.startsWith('model.mm_projector.'),
    optimizer: { lr: warmupCosine(schedule(o)), weightDecay: 0 },
    steps: o.steps,
    batches: (from) =>
      batchedFrom(
        from,
        o.batchSize,
        (i) => captionPair(i, { seed: (o.seed ?? 0) + 1, split: 'train', fashion: o.fashion }),
        collate,
      ),
    batchSize: (feeds) => feeds.ids.shape[0] * feeds.ids.shape[1],
  };
}
