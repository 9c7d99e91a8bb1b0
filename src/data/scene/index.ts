/**
 * NLVR-style scenes: the scene model, a seeded generator, exact captions, true/false statements
 * with structured queries and their evaluator, and rendering to images and object masks.
 */
export { captionBox, captionScene, listPhrase } from './captions.ts';
export {
  applyEdit,
  type Change,
  type ChangeKind,
  changeText,
  DIRECTION_STEP,
  DIRECTIONS,
  type Direction,
  diffBoxes,
  directionOf,
  EDIT_KINDS,
  type EditKind,
  type EditOptions,
  fits,
} from './changes.ts';
export {
  countMatching,
  evaluate,
  matchesFilter,
  measureBox,
  relevantObjects,
  satisfiesCount,
} from './evaluate.ts';
export {
  addRandomObject,
  DEFAULT_SCENE_CONFIG,
  generateScene,
  randomTowerBox,
  type SceneGeneratorConfig,
  type SceneOptions,
  scatteredBox,
} from './generator.ts';
export type {
  AgreeClaim,
  BoxMeasure,
  BoxPredicate,
  BoxQuantifier,
  Count,
  CountOp,
  ObjectFilter,
  Query,
  QueryKind,
  SpatialRelation,
  TowerPredicate,
  WallFilter,
} from './query.ts';
export { QUERY_KINDS } from './query.ts';
export {
  maskOf,
  NLVR_BOX_OFFSETS,
  NLVR_PICTURE_WIDTH,
  type RenderedSceneBox,
  type RgbImage,
  renderSceneBox,
  renderScenePicture,
} from './render.ts';
export { hash32, Rng } from './rng.ts';
export {
  BOX_SIZE,
  BOXES_PER_SCENE,
  type Box,
  boxKey,
  COLORS,
  type Color,
  checkBox,
  checkScene,
  isAbove,
  type Layout,
  type ObjectSize,
  objectKey,
  overlaps,
  restsOn,
  type Scene,
  type SceneObject,
  SHAPES,
  type Shape,
  SIZES,
  sceneFromStructuredRep,
  sceneKey,
  type Tower,
  towerBox,
  towersOf,
  WALLS,
  type Wall,
  wallsTouched,
} from './scene.ts';
export {
  generateStatement,
  type Statement,
  type StatementOptions,
  statementText,
  TEMPLATE_WEIGHTS,
} from './statements.ts';
export {
  COLOR_WORD,
  filterPhrase,
  numberWord,
  objectPhrase,
  SCATTERED_WORDS,
  SIZE_WORD,
  TOWER_WORDS,
  type Vocabulary,
} from './words.ts';
