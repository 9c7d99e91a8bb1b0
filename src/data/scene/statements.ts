/**
 * True/false statements about a scene, NLVR-style: a template draws parameters (guided by what is
 * in the scene, so questions are about things that are there as often as not), giving a
 * structured query; `statementText` turns the query into English; the evaluator decides the
 * label. To balance labels, a desired truth is drawn first (50 %) and parameters are re-drawn
 * until the evaluated truth matches — per template, so no template leaks the answer.
 *
 * Covered: counting (exactly / at least / at most), colour, shape and size, touching walls,
 * above / below / directly on top of, towers (height, base, top, colours, stacking), each /
 * every / no / at least one box, comparisons between boxes and "the same number / height".
 *
 * Pure math: no Node I/O.
 */
import { countMatching, evaluate, measureBox, towerSatisfies } from './evaluate.ts';
import type {
  AgreeClaim,
  BoxPredicate,
  BoxQuantifier,
  Count,
  ObjectFilter,
  Query,
  QueryKind,
  SpatialRelation,
  TowerPredicate,
} from './query.ts';
import type { Rng } from './rng.ts';
import {
  BOXES_PER_SCENE,
  COLORS,
  type Color,
  type Scene,
  type SceneObject,
  SHAPES,
  SIZES,
  towersOf,
  wallsTouched,
} from './scene.ts';
import {
  aFilterPhrase,
  COLOR_WORD,
  countedPhrase,
  countIsSingular,
  filterPhrase,
  numberWord,
  ordinal,
  SCATTERED_WORDS,
  sentence,
  TOWER_WORDS,
  type Vocabulary,
} from './words.ts';

export interface Statement {
  text: string;
  query: Query;
  /** The evaluator's verdict on the scene the statement was generated for. */
  truth: boolean;
}

// ---------------------------------------------------------------------------------------------
// Text

function vocabularyFor(scene: Scene): Vocabulary {
  return scene.layout === 'towers' ? TOWER_WORDS : SCATTERED_WORDS;
}

function countSentence(count: Count, noun: (plural: boolean) => string, rng: Rng): string {
  if (count.op === 'atLeast' && count.n === 1 && rng.chance(0.5)) {
    const phrase = noun(false);
    return `there is ${/^[aeiou]/i.test(phrase) ? 'an' : 'a'} ${phrase}`;
  }
  const be = countIsSingular(count) ? 'is' : 'are';
  return `there ${be} ${countedPhrase(count, noun)}`;
}

function boxVerbPhrase(predicate: BoxPredicate, plural: boolean, vocab: Vocabulary, rng: Rng): string {
  const contain = plural ? 'contain' : 'contains';
  switch (predicate.kind) {
    case 'count': {
      const { count, filter } = predicate;
      if (count.op === 'atLeast' && count.n === 1 && rng.chance(0.5))
        return `${contain} ${aFilterPhrase(filter, vocab)}`;
      return `${contain} ${countedPhrase(count, (pl) => filterPhrase(filter, pl, vocab))}`;
    }
    case 'only':
      return `${contain} only ${filterPhrase(predicate.filter, true, vocab)}`;
    case 'uniform': {
      const things = vocab.squareNoun === 'block' ? 'blocks' : 'objects';
      return `${plural ? 'have' : 'has'} ${things} of only one ${predicate.attribute}`;
    }
  }
}

function boxesSentence(
  quantifier: BoxQuantifier,
  predicate: BoxPredicate,
  vocab: Vocabulary,
  rng: Rng,
): string {
  const vp = (plural: boolean) => boxVerbPhrase(predicate, plural, vocab, rng);
  switch (quantifier.kind) {
    case 'each':
      return `${rng.pick(['each', 'every'])} box ${vp(false)}`;
    case 'none':
      return `no box ${vp(false)}`;
    case 'count': {
      const { op, n } = quantifier.count;
      if (op === 'exactly' && n === 0) return `no box ${vp(false)}`;
      if (op === 'atLeast' && n === 1 && rng.chance(0.5)) return `there is a box that ${vp(false)}`;
      const quantity = { exactly: 'exactly', atLeast: 'at least', atMost: 'at most' }[op];
      return `${quantity} ${numberWord(n)} ${n === 1 ? 'box' : 'boxes'} ${vp(n !== 1)}`;
    }
  }
}

const RELATION_WORDS: Record<SpatialRelation, string> = {
  above: 'above',
  below: 'below',
  onTopOf: 'directly on top of',
};

function towerPredicatePhrase(p: TowerPredicate): string {
  const parts: string[] = [];
  const blocks = (color: Color | undefined) => (plural: boolean) =>
    `${color === undefined ? '' : `${COLOR_WORD[color]} `}block${plural ? 's' : ''}`;
  if (p.height !== undefined) parts.push(`with ${countedPhrase(p.height, blocks(undefined))}`);
  if (p.base !== undefined) parts.push(`with a ${COLOR_WORD[p.base]} base`);
  if (p.top !== undefined) parts.push(`with a ${COLOR_WORD[p.top]} block at the top`);
  if (p.only !== undefined) parts.push(`made only of ${COLOR_WORD[p.only]} blocks`);
  if (p.colorCount !== undefined)
    parts.push(`with ${countedPhrase(p.colorCount.count, blocks(p.colorCount.color))}`);
  if (p.stack !== undefined) {
    parts.push(
      `with a ${COLOR_WORD[p.stack.upper]} block directly on top of a ${COLOR_WORD[p.stack.lower]} block`,
    );
  }
  if (parts.length === 0) throw new Error('statementText: a tower predicate needs at least one property');
  return parts.join(' and ');
}

const AGREE_OPENING: Record<AgreeClaim, (things: string) => string> = {
  allSame: (things) => `all ${things} have the same`,
  allDifferent: (things) => `no two ${things} have the same`,
  someSame: (things) => `at least two ${things} have the same`,
};

/** English for a query. `rng` picks among equivalent phrasings. */
export function statementText(query: Query, rng: Rng, vocab: Vocabulary = SCATTERED_WORDS): string {
  let text: string;
  switch (query.kind) {
    case 'count':
      text = countSentence(query.count, (pl) => filterPhrase(query.filter, pl, vocab), rng);
      break;
    case 'boxes':
      text = boxesSentence(query.quantifier, query.predicate, vocab, rng);
      break;
    case 'relation': {
      const rel = RELATION_WORDS[query.relation];
      text = query.negated
        ? `no ${filterPhrase(query.subject, false, vocab)} is ${rel} ${aFilterPhrase(query.object, vocab)}`
        : `there is ${aFilterPhrase(query.subject, vocab)} ${rel} ${aFilterPhrase(query.object, vocab)}`;
      break;
    }
    case 'towers':
      text = `${countSentence(query.count, (pl) => (pl ? 'towers' : 'tower'), rng)} ${towerPredicatePhrase(query.predicate)}`;
      break;
    case 'compare': {
      const [a, b] = [ordinal(query.first), ordinal(query.second)];
      if (query.measure.kind === 'count') {
        const things = filterPhrase(query.measure.filter, true, vocab);
        text =
          query.relation === 'same'
            ? `the ${a} box has as many ${things} as the ${b} box`
            : `the ${a} box has ${query.relation === 'more' ? 'more' : 'fewer'} ${things} than the ${b} box`;
      } else {
        text =
          query.relation === 'same'
            ? `the tallest towers in the ${a} and ${b} boxes are equally tall`
            : `the ${a} box has a ${query.relation === 'more' ? 'taller' : 'shorter'} tower than the ${b} box`;
      }
      break;
    }
    case 'boxesAgree':
      text = `${AGREE_OPENING[query.claim]('boxes')} number of ${filterPhrase(query.filter, true, vocab)}`;
      break;
    case 'towersAgree': {
      const what = { height: 'height', base: 'base color', top: 'top color' }[query.attribute];
      text = `${AGREE_OPENING[query.claim]('towers')} ${what}`;
      break;
    }
    default:
      throw new Error(`statementText: unknown query kind in ${JSON.stringify(query)}`);
  }
  return `${sentence(text)}.`;
}

// ---------------------------------------------------------------------------------------------
// Parameter sampling (guided by the scene; the label always comes from `evaluate`)

/** A count near `actual`: exactly / at least / at most, off by 0–2. */
function sampleCount(rng: Rng, actual: number, min = 0): Count {
  let op = rng.weighted<Count['op']>([
    ['exactly', 3],
    ['atLeast', 2],
    ['atMost', 1],
  ]);
  const delta = rng.weighted([
    [0, 3],
    [1, 2],
    [-1, 2],
    [2, 1],
    [-2, 1],
  ]);
  let n = Math.max(min, actual + delta);
  if (op === 'atLeast' && n === 0) n = 1; // "at least zero" is always true
  if (op === 'atMost' && n === 0) op = 'exactly'; // "at most zero" reads as "no"
  return { op, n };
}

function randomObject(rng: Rng, scene: Scene): SceneObject {
  const nonEmpty = scene.boxes.filter((b) => b.length > 0);
  if (nonEmpty.length === 0) throw new Error('generateStatement: the scene has no objects');
  return rng.pick(rng.pick(nonEmpty));
}

/** A filter built from the attributes of an object in the scene, sometimes perturbed. */
function sampleFilter(rng: Rng, scene: Scene): ObjectFilter {
  const ref = randomObject(rng, scene);
  if (scene.layout === 'towers') {
    return rng.chance(0.85)
      ? { shape: 'square', color: rng.chance(0.8) ? ref.color : rng.pick(COLORS) }
      : { shape: 'square' };
  }
  const filter: ObjectFilter = {};
  if (rng.chance(0.65)) filter.color = ref.color;
  if (rng.chance(0.6)) filter.shape = ref.type;
  if (rng.chance(0.2)) filter.size = ref.size as 10 | 20 | 30;
  if (rng.chance(0.25)) {
    const walls = wallsTouched(ref);
    filter.wall = walls.length === 0 ? 'none' : rng.chance(0.6) ? 'any' : rng.pick(walls);
  }
  if (rng.chance(0.25)) {
    // Ask about something that may be absent, too.
    const key = rng.pick(['color', 'shape', 'size'] as const);
    if (key === 'color') filter.color = rng.pick(COLORS);
    if (key === 'shape') filter.shape = rng.pick(SHAPES);
    if (key === 'size') filter.size = rng.pick(SIZES);
  }
  return filter;
}

/** A filter naming one attribute of `ref` (for "contains only …" and relations). */
function attributeFilter(rng: Rng, ref: SceneObject, scene: Scene): ObjectFilter {
  if (scene.layout === 'towers') return { shape: 'square', color: ref.color };
  const filter: ObjectFilter = {};
  const which = rng.weighted([
    ['color', 3],
    ['shape', 3],
    ['both', 3],
    ['size', 1],
  ] as const);
  if (which === 'color' || which === 'both') filter.color = ref.color;
  if (which === 'shape' || which === 'both') filter.shape = ref.type;
  if (which === 'size') filter.size = ref.size as 10 | 20 | 30;
  return filter;
}

function sampleCountQuery(rng: Rng, scene: Scene): Query {
  const filter = sampleFilter(rng, scene);
  return { kind: 'count', filter, count: sampleCount(rng, countMatching(scene.boxes.flat(), filter)) };
}

function sampleBoxesQuery(rng: Rng, scene: Scene): Query {
  const refBox = rng.pick(scene.boxes);
  const kind = rng.weighted<BoxPredicate['kind']>([
    ['count', 4],
    ['only', 1],
    ['uniform', 1],
  ]);
  let predicate: BoxPredicate;
  if (kind === 'count') {
    const filter = sampleFilter(rng, scene);
    predicate = { kind, filter, count: sampleCount(rng, countMatching(refBox, filter), 1) };
  } else if (kind === 'only') {
    predicate = { kind, filter: attributeFilter(rng, randomObject(rng, scene), scene) };
  } else {
    predicate = { kind, attribute: scene.layout === 'towers' || rng.chance(0.5) ? 'color' : 'shape' };
  }
  const quantifier = rng.weighted<BoxQuantifier>([
    [{ kind: 'each' }, 3],
    [{ kind: 'none' }, 1],
    [{ kind: 'count', count: { op: 'atLeast', n: 1 } }, 2],
    [{ kind: 'count', count: { op: 'exactly', n: rng.int(1, 2) } }, 1],
    [{ kind: 'count', count: { op: 'atLeast', n: 2 } }, 1],
    [{ kind: 'count', count: { op: 'atMost', n: 1 } }, 1],
  ]);
  return { kind: 'boxes', quantifier, predicate };
}

function sampleRelationQuery(rng: Rng, scene: Scene): Query {
  const boxes = scene.boxes.filter((b) => b.length >= 2);
  const box = boxes.length > 0 ? rng.pick(boxes) : rng.pick(scene.boxes);
  const subject = rng.pick(box);
  const object = rng.pick(box);
  const relation: SpatialRelation =
    scene.layout === 'towers'
      ? rng.chance(0.7)
        ? 'onTopOf'
        : 'above'
      : rng.pick(['above', 'below'] as const);
  const perturb = (f: ObjectFilter): ObjectFilter =>
    rng.chance(0.2) ? { ...f, color: rng.pick(COLORS) } : f;
  return {
    kind: 'relation',
    subject: perturb(attributeFilter(rng, subject, scene)),
    relation,
    object: perturb(attributeFilter(rng, object, scene)),
    negated: rng.chance(0.3),
  };
}

function sampleTowersQuery(rng: Rng, scene: Scene): Query {
  const towers = scene.boxes.flatMap((b) => towersOf(b));
  if (towers.length === 0) return sampleCountQuery(rng, scene);
  const ref = rng.pick(towers).blocks.map((b) => b.color);
  const maybeOther = (c: Color): Color => (rng.chance(0.25) ? rng.pick(COLORS) : c);
  const properties = rng.shuffled(['height', 'base', 'top', 'only', 'colorCount', 'stack'] as const);
  const predicate: TowerPredicate = {};
  for (const p of properties.slice(0, rng.chance(0.3) ? 2 : 1)) {
    if (p === 'height') predicate.height = sampleCount(rng, ref.length, 1);
    if (p === 'base') predicate.base = maybeOther(ref[0]);
    if (p === 'top') predicate.top = maybeOther(ref[ref.length - 1]);
    if (p === 'only') predicate.only = maybeOther(ref[0]);
    if (p === 'colorCount') {
      const color = maybeOther(rng.pick(ref));
      predicate.colorCount = { color, count: sampleCount(rng, ref.filter((c) => c === color).length, 1) };
    }
    if (p === 'stack') {
      const i = ref.length >= 2 ? rng.int(1, ref.length - 1) : 0;
      predicate.stack = { upper: maybeOther(ref[i]), lower: maybeOther(ref[Math.max(0, i - 1)]) };
    }
  }
  // "There is a tower …" often; otherwise a count near the actual number of such towers.
  const actual = towers.filter((t) => towerSatisfies(t, predicate)).length;
  const count: Count = rng.chance(0.4) ? { op: 'atLeast', n: 1 } : sampleCount(rng, actual);
  return { kind: 'towers', predicate, count };
}

function sampleCompareQuery(rng: Rng, scene: Scene): Query {
  const [first, second] = rng.shuffled([0, 1, 2]).slice(0, 2);
  const measure =
    scene.layout === 'towers' && rng.chance(0.6)
      ? ({ kind: 'tallest' } as const)
      : ({ kind: 'count', filter: sampleFilter(rng, scene) } as const);
  const a = measureBox(scene.boxes[first], measure);
  const b = measureBox(scene.boxes[second], measure);
  // "the same" only sometimes, and mostly when it is plausible.
  const relation = rng.chance(a === b ? 0.4 : 0.15) ? 'same' : rng.pick(['more', 'fewer'] as const);
  return { kind: 'compare', measure, first, second, relation };
}

function sampleBoxesAgreeQuery(rng: Rng, scene: Scene): Query {
  return {
    kind: 'boxesAgree',
    filter: sampleFilter(rng, scene),
    claim: rng.pick(['allSame', 'allDifferent', 'someSame']),
  };
}

function sampleTowersAgreeQuery(rng: Rng): Query {
  return {
    kind: 'towersAgree',
    attribute: rng.pick(['height', 'base', 'top'] as const),
    claim: rng.pick(['allSame', 'allDifferent', 'someSame'] as const),
  };
}

type Sampler = (rng: Rng, scene: Scene) => Query;

const SAMPLERS: Record<QueryKind, Sampler> = {
  count: sampleCountQuery,
  boxes: sampleBoxesQuery,
  relation: sampleRelationQuery,
  towers: sampleTowersQuery,
  compare: sampleCompareQuery,
  boxesAgree: sampleBoxesAgreeQuery,
  towersAgree: (rng) => sampleTowersAgreeQuery(rng),
};

/** How often each template is used, per layout (towers-only templates are off for scattered). */
export const TEMPLATE_WEIGHTS: Record<Scene['layout'], Record<QueryKind, number>> = {
  scattered: { count: 3, boxes: 3, relation: 2, towers: 0, compare: 1, boxesAgree: 1, towersAgree: 0 },
  towers: { count: 1, boxes: 2, relation: 2, towers: 4, compare: 1, boxesAgree: 0.5, towersAgree: 1 },
};

export interface StatementOptions {
  /** Desired label; drawn at 50 % when not given. The returned `truth` is the evaluator's. */
  truth?: boolean;
  /** Use only this template. */
  template?: QueryKind;
  /** Parameter draws per template before trying another template. */
  triesPerTemplate?: number;
}

/**
 * One statement about `scene`. The label is `evaluate(query, scene)`; it equals the desired truth
 * unless no template could produce it (rare; then the statement is still correctly labelled).
 */
export function generateStatement(scene: Scene, rng: Rng, options: StatementOptions = {}): Statement {
  if (scene.boxes.length !== BOXES_PER_SCENE) {
    throw new Error(`generateStatement: a scene has ${BOXES_PER_SCENE} boxes, got ${scene.boxes.length}`);
  }
  const desired = options.truth ?? rng.chance(0.5);
  const weights = Object.entries(TEMPLATE_WEIGHTS[scene.layout]).filter(([, w]) => w > 0) as [
    QueryKind,
    number,
  ][];
  const tries = options.triesPerTemplate ?? 30;
  let last: Query | undefined;
  for (let round = 0; round < 8; round++) {
    const template = options.template ?? rng.weighted(weights);
    for (let t = 0; t < tries; t++) {
      const query = SAMPLERS[template](rng, scene);
      last = query;
      if (evaluate(query, scene) === desired) {
        return { text: statementText(query, rng, vocabularyFor(scene)), query, truth: desired };
      }
    }
  }
  const query = last as Query;
  return { text: statementText(query, rng, vocabularyFor(scene)), query, truth: evaluate(query, scene) };
}
