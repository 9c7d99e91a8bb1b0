/**
 * Stage 4c (ours; the paper has no such step): before stage 4's task mix, the LLM answers
 * questions about one box — the colour of the only circle, the shape of the only yellow object,
 * how many objects, whether one touches the wall — several about the same box in one sequence
 * (`boxQuizExample`), the loss on every answer. The rest as stage 4 trains (every weight but the
 * vision encoders and the selector), single images in the stage's mix of encodings.
 *
 * Why: naming the colour of "the circle" means finding the circle's patches among the others,
 * and the tiny LLM learns that look-up slowly. Measured on box-color (r17's weights, 100 held-out
 * questions, hybrid): stage 4's mix asks ~1,300 colour questions and its model answered 52 %; 1,000
 * steps of colour questions alone from stage 4b (16,000) reached 57 %. The frozen ViT features are
 * not the limit: a linear probe on one patch names its object's colour on 100 % of object patches,
 * and in PyTorch a 4-layer, 128-wide transformer trained from scratch on those features with the
 * image first (4,000 training boxes, batch 64) answered 81 % of held-out questions after 32,000
 * examples and 94 % after 64,000. Several questions per box give several look-ups per image
 * encoding and per sequence: 800 steps of this stage from r17's stage 4b answered colour / shape /
 * count 62 / 66 / 45 % (hybrid), against 61 / 52 / 42 % for 800 steps of one question per box.
 *
 * Not in the tiny recipe: its 4 min 50 s do not fit the recipe's 60 minutes beside stage 4's
 * 1,800 steps. With stage 4 cut to 1,400 (run r19: r17's stages 0a–4b, this stage, stage 4;
 * 59 min 34 s), the final model answered colour / shape / count 62 / 67 / 48 % (r17: 52 / 47 / 39)
 * and box captions paired colours with shapes better (pair precision 76 against 70 %), but
 * fashion-same fell from 80 to 73 %, NLVR test answered "true" to 78 % of the pairs (r17: 56 %;
 * accuracy 56.6 against 56.3 %) and the demo got 2 of 8 (r17: 4). With stage 4 at 1,800 (run r18,
 * over 60 min) colour / shape / count were 61 / 62 / 45 % and fashion-same stayed at 80 %. With 600
 * steps of this stage, every box hybrid (2 min 11 s), and stage 4 at 1,700 (run r20, 59 min 19 s):
 * 59 / 75 / 37 %, fashion-same 70 %, the demo 3 of 8. Each of these is 100 questions (about ±10
 * points at 95 %), but fashion-same and the demo fell in both runs that fit the 60 minutes. The
 * recipe asks the same quizzes inside stage 4 instead, in place of its one-question box examples
 * (`boxQuizShare`), which costs no steps.
 */
import type { StageDefinition } from '../stage.ts';
import type { MavenStageOptions } from './common.ts';
import { boxQuizItem, instructionTuningStage } from './stage4-instruction.ts';

export const READ_BOXES_STAGE = 'stage4c-read-boxes';

export function readBoxesStage(o: Omit<MavenStageOptions, 'taskWeights'>): StageDefinition {
  // Its own boxes, not the ones stage 4 (seed + 2, its quizzes seed + 7) or 4a–4b (seed + 1000 + …) draw.
  const seed = (o.seed ?? 0) + 3000;
  const encoding = o.mode ?? (o.singleImageModes ? 'a mix of encodings' : 'hybrid');
  return instructionTuningStage(
    o,
    READ_BOXES_STAGE,
    `LLM + projector on every question one box answers (colour, shape, count, wall), every image ${encoding} (before the task mix)`,
    (index) => boxQuizItem(index, seed),
  );
}
