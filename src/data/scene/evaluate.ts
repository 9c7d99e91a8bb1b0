/**
 * The evaluator: the truth of a structured query over a scene graph. This is where every
 * statement's label comes from (labels are never written by hand). Also `relevantObjects`: which
 * objects of a box a query talks about, for text-guided patch labels.
 *
 * Pure math: no Node I/O.
 */
import type {
  AgreeClaim,
  BoxMeasure,
  BoxPredicate,
  BoxQuantifier,
  Count,
  ObjectFilter,
  Query,
  SpatialRelation,
  TowerPredicate,
} from './query.ts';
import {
  BOXES_PER_SCENE,
  isAbove,
  restsOn,
  type Scene,
  type SceneObject,
  type Tower,
  towersOf,
  wallsTouched,
} from './scene.ts';

function checkCount(count: Count, where: string): void {
  if (!Number.isInteger(count.n) || count.n < 0)
    throw new Error(`${where}: count n must be an integer ≥ 0, got ${count.n}`);
  if (count.op !== 'exactly' && count.op !== 'atLeast' && count.op !== 'atMost') {
    throw new Error(`${where}: count op must be exactly, atLeast or atMost, got ${JSON.stringify(count.op)}`);
  }
}

export function satisfiesCount(value: number, count: Count): boolean {
  checkCount(count, 'count');
  switch (count.op) {
    case 'exactly':
      return value === count.n;
    case 'atLeast':
      return value >= count.n;
    case 'atMost':
      return value <= count.n;
  }
}

export function matchesFilter(obj: SceneObject, filter: ObjectFilter): boolean {
  if (filter.color !== undefined && obj.color !== filter.color) return false;
  if (filter.shape !== undefined && obj.type !== filter.shape) return false;
  if (filter.size !== undefined && obj.size !== filter.size) return false;
  if (filter.wall !== undefined) {
    const walls = wallsTouched(obj);
    if (filter.wall === 'any') return walls.length > 0;
    if (filter.wall === 'none') return walls.length === 0;
    return walls.includes(filter.wall);
  }
  return true;
}

export function countMatching(objects: readonly SceneObject[], filter: ObjectFilter): number {
  let n = 0;
  for (const o of objects) if (matchesFilter(o, filter)) n++;
  return n;
}

function boxSatisfies(box: readonly SceneObject[], predicate: BoxPredicate): boolean {
  switch (predicate.kind) {
    case 'count':
      return satisfiesCount(countMatching(box, predicate.filter), predicate.count);
    case 'only':
      return box.length > 0 && box.every((o) => matchesFilter(o, predicate.filter));
    case 'uniform': {
      const values = new Set(box.map((o) => (predicate.attribute === 'color' ? o.color : o.type)));
      return values.size === 1;
    }
    default:
      throw new Error(`evaluate: unknown box predicate ${JSON.stringify(predicate)}`);
  }
}

function quantify(satisfied: number, total: number, quantifier: BoxQuantifier): boolean {
  switch (quantifier.kind) {
    case 'each':
      return satisfied === total;
    case 'none':
      return satisfied === 0;
    case 'count':
      return satisfiesCount(satisfied, quantifier.count);
    default:
      throw new Error(`evaluate: unknown box quantifier ${JSON.stringify(quantifier)}`);
  }
}

function related(s: SceneObject, relation: SpatialRelation, o: SceneObject): boolean {
  switch (relation) {
    case 'above':
      return isAbove(s, o);
    case 'below':
      return isAbove(o, s);
    case 'onTopOf':
      return restsOn(s, o);
    default:
      throw new Error(`evaluate: unknown spatial relation ${JSON.stringify(relation)}`);
  }
}

export function towerSatisfies(tower: Tower, p: TowerPredicate): boolean {
  const colors = tower.blocks.map((b) => b.color);
  if (p.height !== undefined && !satisfiesCount(colors.length, p.height)) return false;
  if (p.base !== undefined && colors[0] !== p.base) return false;
  if (p.top !== undefined && colors[colors.length - 1] !== p.top) return false;
  if (p.only !== undefined && !colors.every((c) => c === p.only)) return false;
  if (p.colorCount !== undefined) {
    const n = colors.filter((c) => c === p.colorCount?.color).length;
    if (!satisfiesCount(n, p.colorCount.count)) return false;
  }
  if (p.stack !== undefined) {
    const { upper, lower } = p.stack;
    if (!colors.some((c, i) => i > 0 && c === upper && colors[i - 1] === lower)) return false;
  }
  return true;
}

/** The per-box number a comparison uses. */
export function measureBox(box: readonly SceneObject[], measure: BoxMeasure): number {
  switch (measure.kind) {
    case 'count':
      return countMatching(box, measure.filter);
    case 'tallest':
      return Math.max(0, ...towersOf(box).map((t) => t.blocks.length));
    default:
      throw new Error(`evaluate: unknown box measure ${JSON.stringify(measure)}`);
  }
}

function agree<T>(values: readonly T[], claim: AgreeClaim): boolean {
  const distinct = new Set(values).size;
  switch (claim) {
    case 'allSame':
      return distinct <= 1;
    case 'allDifferent':
      return distinct === values.length;
    case 'someSame':
      return distinct < values.length;
    default:
      throw new Error(`evaluate: unknown agreement claim ${JSON.stringify(claim)}`);
  }
}

function checkBoxIndex(i: number, where: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= BOXES_PER_SCENE) {
    throw new Error(`${where}: box index must be 0..${BOXES_PER_SCENE - 1}, got ${i}`);
  }
}

/** Is `query` true of `scene`? */
export function evaluate(query: Query, scene: Scene): boolean {
  const boxes = scene.boxes;
  switch (query.kind) {
    case 'count':
      return satisfiesCount(countMatching(boxes.flat(), query.filter), query.count);
    case 'boxes': {
      const satisfied = boxes.filter((b) => boxSatisfies(b, query.predicate)).length;
      return quantify(satisfied, boxes.length, query.quantifier);
    }
    case 'relation': {
      const exists = boxes.some((box) =>
        box.some(
          (s) =>
            matchesFilter(s, query.subject) &&
            box.some((o) => o !== s && matchesFilter(o, query.object) && related(s, query.relation, o)),
        ),
      );
      return query.negated ? !exists : exists;
    }
    case 'towers': {
      const towers = boxes.flatMap((b) => towersOf(b));
      return satisfiesCount(towers.filter((t) => towerSatisfies(t, query.predicate)).length, query.count);
    }
    case 'compare': {
      checkBoxIndex(query.first, 'evaluate compare.first');
      checkBoxIndex(query.second, 'evaluate compare.second');
      const a = measureBox(boxes[query.first], query.measure);
      const b = measureBox(boxes[query.second], query.measure);
      if (query.relation === 'more') return a > b;
      if (query.relation === 'fewer') return a < b;
      if (query.relation === 'same') return a === b;
      throw new Error(`evaluate: unknown comparison ${JSON.stringify(query.relation)}`);
    }
    case 'boxesAgree':
      return agree(
        boxes.map((b) => countMatching(b, query.filter)),
        query.claim,
      );
    case 'towersAgree': {
      const towers = boxes.flatMap((b) => towersOf(b));
      const values = towers.map((t) => {
        if (query.attribute === 'height') return t.blocks.length;
        return query.attribute === 'base' ? t.blocks[0].color : t.blocks[t.blocks.length - 1].color;
      });
      return agree(values, query.claim);
    }
    default:
      throw new Error(`evaluate: unknown query kind in ${JSON.stringify(query)}`);
  }
}

/** The object filters a query mentions (tower colours become square filters). */
function mentionedFilters(query: Query): ObjectFilter[] {
  switch (query.kind) {
    case 'count':
    case 'boxesAgree':
      return [query.filter];
    case 'boxes':
      return query.predicate.kind === 'uniform' ? [{}] : [query.predicate.filter];
    case 'relation':
      return [query.subject, query.object];
    case 'compare':
      return query.measure.kind === 'count' ? [query.measure.filter] : [{ shape: 'square' }];
    case 'towers': {
      const p = query.predicate;
      const colors = [p.base, p.top, p.only, p.colorCount?.color, p.stack?.upper, p.stack?.lower].filter(
        (c) => c !== undefined,
      );
      return colors.length > 0 ? colors.map((color) => ({ shape: 'square', color })) : [{ shape: 'square' }];
    }
    case 'towersAgree':
      return [{ shape: 'square' }];
    default:
      throw new Error(`relevantObjects: unknown query kind in ${JSON.stringify(query)}`);
  }
}

/**
 * Indices of the objects in `box` that `query` is about (those matching any filter it mentions):
 * the text-guided positives for the patch selector. May be empty (e.g. "there are no circles").
 */
export function relevantObjects(query: Query, box: readonly SceneObject[]): number[] {
  const filters = mentionedFilters(query);
  const out: number[] = [];
  box.forEach((o, i) => {
    if (filters.some((f) => matchesFilter(o, f))) out.push(i);
  });
  return out;
}
