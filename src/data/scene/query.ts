/**
 * Structured queries: the meaning of a generated statement, as data. The statement generator
 * emits (text, query); the evaluator interprets the query over the scene graph to get the
 * label. Keeping the meaning explicit lets tests re-check every label with an independent
 * implementation, and lets other code (e.g. patch labels) ask which objects a statement is about.
 *
 * All object relations are within one box; counts without a box quantifier are over the whole
 * picture (all three boxes), as in NLVR ("there are exactly two black triangles").
 */
import type { Color, ObjectSize, Shape, Wall } from './scene.ts';

export type CountOp = 'exactly' | 'atLeast' | 'atMost';

/** A numeric constraint: exactly / at least / at most n. */
export interface Count {
  op: CountOp;
  n: number;
}

/** 'any' = touches some wall, 'none' = touches no wall, or one named wall. */
export type WallFilter = Wall | 'any' | 'none';

/** A conjunction of object attributes; an absent field matches everything. */
export interface ObjectFilter {
  color?: Color;
  shape?: Shape;
  size?: ObjectSize;
  wall?: WallFilter;
}

/** Something one box can satisfy. */
export type BoxPredicate =
  /** The box's number of matching objects satisfies `count`. */
  | { kind: 'count'; filter: ObjectFilter; count: Count }
  /** The box is not empty and every object in it matches. */
  | { kind: 'only'; filter: ObjectFilter }
  /** All the box's objects share one colour (or one shape). */
  | { kind: 'uniform'; attribute: 'color' | 'shape' };

/** How many boxes must satisfy a predicate: all, none, or a count of them. */
export type BoxQuantifier = { kind: 'each' } | { kind: 'none' } | { kind: 'count'; count: Count };

/** A conjunction of tower properties; an absent field matches every tower. */
export interface TowerPredicate {
  /** Number of blocks. */
  height?: Count;
  /** Colour of the bottom block. */
  base?: Color;
  /** Colour of the top block. */
  top?: Color;
  /** Every block has this colour. */
  only?: Color;
  /** The number of blocks of `color` satisfies `count`. */
  colorCount?: { color: Color; count: Count };
  /** Some block of colour `upper` rests directly on a block of colour `lower`. */
  stack?: { upper: Color; lower: Color };
}

/** A per-box number used to compare boxes. */
export type BoxMeasure = { kind: 'count'; filter: ObjectFilter } | { kind: 'tallest' };

/** For "same" claims: all equal, all pairwise different, or at least two equal. */
export type AgreeClaim = 'allSame' | 'allDifferent' | 'someSame';

export type SpatialRelation = 'above' | 'below' | 'onTopOf';

export type Query =
  /** The number of matching objects in the whole picture satisfies `count`. */
  | { kind: 'count'; filter: ObjectFilter; count: Count }
  /** The number of boxes satisfying `predicate` matches the quantifier. */
  | { kind: 'boxes'; quantifier: BoxQuantifier; predicate: BoxPredicate }
  /**
   * Some box holds two different objects s, o with s matching `subject`, o matching `object`
   * and `relation(s, o)`; `negated` claims that no such pair exists.
   */
  | {
      kind: 'relation';
      subject: ObjectFilter;
      relation: SpatialRelation;
      object: ObjectFilter;
      negated: boolean;
    }
  /** The number of towers (over all boxes) satisfying `predicate` satisfies `count`. */
  | { kind: 'towers'; predicate: TowerPredicate; count: Count }
  /** measure(box `first`) is more than / fewer than / the same as measure(box `second`). */
  | {
      kind: 'compare';
      measure: BoxMeasure;
      first: number;
      second: number;
      relation: 'more' | 'fewer' | 'same';
    }
  /** The three boxes' counts of matching objects agree as claimed. */
  | { kind: 'boxesAgree'; filter: ObjectFilter; claim: AgreeClaim }
  /** All towers' heights (base colours, top colours) agree as claimed. */
  | { kind: 'towersAgree'; attribute: 'height' | 'base' | 'top'; claim: AgreeClaim };

export type QueryKind = Query['kind'];
export const QUERY_KINDS: readonly QueryKind[] = [
  'count',
  'boxes',
  'relation',
  'towers',
  'compare',
  'boxesAgree',
  'towersAgree',
];
