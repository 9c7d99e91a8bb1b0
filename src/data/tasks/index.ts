/**
 * Multi-image tasks built on generated scenes and Fashion-MNIST, train/held-out splits that never
 * share a scene, and streaming datasets for the four training stages.
 */

export {
  FASHION_NOUNS,
  fashionCountTask,
  fashionPhrase,
  fashionSameTask,
  fashionWhichTask,
} from './fashion.ts';
export { MOTION_OPTIONS, motionDirectionTask } from './motion-direction.ts';
export { NLVR_OPTIONS, nlvrStatementTask } from './nlvr-statement.ts';
export { COUNT_OPTIONS, type CountRule, MAX_COUNT, objectCountTask } from './object-count.ts';
export { procedureOrderTask } from './procedure-order.ts';
export {
  FASHION_TASK_NAMES,
  generateExample,
  grayToRgb,
  type PlanOptions,
  planExample,
  type RenderExampleOptions,
  renderExample,
  renderVisual,
  SCENE_TASK_NAMES,
  TASK_NAMES,
  TASKS,
  taskDefinition,
} from './registry.ts';
export { CLOZE_RULES, type ClozeRule, followsRule, sequenceCompletionTask } from './sequence-completion.ts';
export { checkSplit, contentKey, HELDOUT_SHARE, splitOfContent, visualKey } from './splits.ts';
export {
  batches,
  type CaptionOptions,
  type CaptionPair,
  captionPair,
  captionPairs,
  type InstructionOptions,
  instructionExample,
  instructionExamples,
  type SelectorExample,
  type Stage,
  type StageOptions,
  type StreamOptions,
  selectorExample,
  selectorExamples,
  shuffleBuffer,
  stageBatches,
} from './stage-datasets.ts';
export type {
  ImageSource,
  TaskContext,
  TaskDefinition,
  TaskDraw,
} from './task.ts';
export {
  type ExampleMeta,
  type ExamplePlan,
  IMAGE_TOKEN,
  imageLines,
  letteredOptions,
  OPTION_LETTERS,
  SPLITS,
  type Split,
  type TaskCategory,
  type TaskExample,
  type TaskName,
  type Visual,
} from './types.ts';
export { whatChangedTask } from './what-changed.ts';
