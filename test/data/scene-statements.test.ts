/**
 * Statements and their evaluator. Every generated statement's query is re-evaluated by a second,
 * deliberately naive implementation written here (plain loops over coordinates, its own tower
 * finder); hand-built scenes have answers worked out by hand; and queries transcribing real NLVR
 * dev sentences must agree with the human labels.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { dataPath, dataSkipReason } from '../../src/data/data-dir.ts';
import { evaluate, relevantObjects } from '../../src/data/scene/evaluate.ts';
import { generateScene } from '../../src/data/scene/generator.ts';
import type { Count, ObjectFilter, Query, TowerPredicate } from '../../src/data/scene/query.ts';
import { Rng } from '../../src/data/scene/rng.ts';
import {
  type Box,
  type Scene,
  type SceneObject,
  sceneFromStructuredRep,
  towerBox,
} from '../../src/data/scene/scene.ts';
import { generateStatement, statementText } from '../../src/data/scene/statements.ts';
import { TOWER_WORDS } from '../../src/data/scene/words.ts';

// ---------------------------------------------------------------------------------------------
// The naive evaluator

function naiveCount(value: number, c: Count): boolean {
  if (c.op === 'exactly') return value === c.n;
  if (c.op === 'atLeast') return value >= c.n;
  return value <= c.n;
}

function naiveMatches(o: SceneObject, f: ObjectFilter): boolean {
  if (f.color && o.color !== f.color) return false;
  if (f.shape && o.type !== f.shape) return false;
  if (f.size && o.size !== f.size) return false;
  if (f.wall) {
    const left = o.x_loc === 0;
    const top = o.y_loc === 0;
    const right = o.x_loc + o.size === 100;
    const bottom = o.y_loc + o.size === 100;
    const any = left || top || right || bottom;
    if (f.wall === 'any' && !any) return false;
    if (f.wall === 'none' && any) return false;
    if (f.wall === 'left' && !left) return false;
    if (f.wall === 'right' && !right) return false;
    if (f.wall === 'top' && !top) return false;
    if (f.wall === 'bottom' && !bottom) return false;
  }
  return true;
}

/** Towers by columns: squares of one (x, size) sorted bottom-up, chained while gaps are 0–1. */
function naiveTowers(box: Box): string[][] {
  const columns = new Map<string, SceneObject[]>();
  for (const o of box) {
    if (o.type !== 'square') continue;
    const key = `${o.x_loc}/${o.size}`;
    if (!columns.has(key)) columns.set(key, []);
    columns.get(key)?.push(o);
  }
  const towers: string[][] = [];
  for (const column of columns.values()) {
    column.sort((a, b) => b.y_loc - a.y_loc);
    if (column[0].y_loc + column[0].size !== 100) continue;
    const colors = [column[0].color as string];
    for (let i = 1; i < column.length; i++) {
      const gap = column[i - 1].y_loc - (column[i].y_loc + column[i].size);
      if (gap < 0 || gap > 1) break;
      colors.push(column[i].color);
    }
    towers.push(colors);
  }
  return towers;
}

function naiveTower(colors: string[], p: TowerPredicate): boolean {
  if (p.height && !naiveCount(colors.length, p.height)) return false;
  if (p.base && colors[0] !== p.base) return false;
  if (p.top && colors[colors.length - 1] !== p.top) return false;
  if (p.only) for (const c of colors) if (c !== p.only) return false;
  if (p.colorCount) {
    let n = 0;
    for (const c of colors) if (c === p.colorCount.color) n++;
    if (!naiveCount(n, p.colorCount.count)) return false;
  }
  if (p.stack) {
    let found = false;
    for (let i = 1; i < colors.length; i++)
      if (colors[i] === p.stack.upper && colors[i - 1] === p.stack.lower) found = true;
    if (!found) return false;
  }
  return true;
}

function naiveAgree(values: (string | number)[], claim: string): boolean {
  let equalPairs = 0;
  let pairs = 0;
  for (let i = 0; i < values.length; i++) {
    for (let j = i + 1; j < values.length; j++) {
      pairs++;
      if (values[i] === values[j]) equalPairs++;
    }
  }
  if (claim === 'allSame') return equalPairs === pairs;
  if (claim === 'allDifferent') return equalPairs === 0;
  return equalPairs > 0;
}

function naiveBoxCount(box: Box, f: ObjectFilter): number {
  let n = 0;
  for (const o of box) if (naiveMatches(o, f)) n++;
  return n;
}

function naiveEvaluate(q: Query, scene: Scene): boolean {
  const boxes = scene.boxes;
  if (q.kind === 'count') {
    let n = 0;
    for (const box of boxes) n += naiveBoxCount(box, q.filter);
    return naiveCount(n, q.count);
  }
  if (q.kind === 'boxes') {
    let satisfied = 0;
    for (const box of boxes) {
      let ok: boolean;
      const p = q.predicate;
      if (p.kind === 'count') ok = naiveCount(naiveBoxCount(box, p.filter), p.count);
      else if (p.kind === 'only') ok = box.length > 0 && naiveBoxCount(box, p.filter) === box.length;
      else {
        ok = true;
        for (const o of box) {
          const value = p.attribute === 'color' ? o.color : o.type;
          const first = p.attribute === 'color' ? box[0].color : box[0].type;
          if (value !== first) ok = false;
        }
      }
      if (ok) satisfied++;
    }
    if (q.quantifier.kind === 'each') return satisfied === 3;
    if (q.quantifier.kind === 'none') return satisfied === 0;
    return naiveCount(satisfied, q.quantifier.count);
  }
  if (q.kind === 'relation') {
    let found = false;
    for (const box of boxes) {
      for (let i = 0; i < box.length; i++) {
        for (let j = 0; j < box.length; j++) {
          if (i === j) continue;
          const s = box[i];
          const o = box[j];
          if (!naiveMatches(s, q.subject) || !naiveMatches(o, q.object)) continue;
          let holds = false;
          if (q.relation === 'above') holds = s.y_loc + s.size <= o.y_loc;
          if (q.relation === 'below') holds = o.y_loc + o.size <= s.y_loc;
          if (q.relation === 'onTopOf') {
            const gap = o.y_loc - s.y_loc - s.size;
            holds = s.x_loc === o.x_loc && s.size === o.size && gap >= 0 && gap <= 1;
          }
          if (holds) found = true;
        }
      }
    }
    return q.negated ? !found : found;
  }
  if (q.kind === 'towers') {
    let n = 0;
    for (const box of boxes) for (const t of naiveTowers(box)) if (naiveTower(t, q.predicate)) n++;
    return naiveCount(n, q.count);
  }
  if (q.kind === 'compare') {
    const measure = (box: Box) => {
      if (q.measure.kind === 'count') return naiveBoxCount(box, q.measure.filter);
      let tallest = 0;
      for (const t of naiveTowers(box)) if (t.length > tallest) tallest = t.length;
      return tallest;
    };
    const a = measure(boxes[q.first]);
    const b = measure(boxes[q.second]);
    return q.relation === 'more' ? a > b : q.relation === 'fewer' ? a < b : a === b;
  }
  if (q.kind === 'boxesAgree') {
    const filter = q.filter;
    return naiveAgree(
      boxes.map((b) => naiveBoxCount(b, filter)),
      q.claim,
    );
  }
  const values: (string | number)[] = [];
  for (const box of boxes) {
    for (const t of naiveTowers(box)) {
      values.push(q.attribute === 'height' ? t.length : q.attribute === 'base' ? t[0] : t[t.length - 1]);
    }
  }
  return naiveAgree(values, q.claim);
}

// ---------------------------------------------------------------------------------------------

const obj = (
  type: SceneObject['type'],
  color: SceneObject['color'],
  size: number,
  x_loc: number,
  y_loc: number,
): SceneObject => ({ type, color, size, x_loc, y_loc });

describe('generated statements', () => {
  const rng = Rng.fromKey('statements-test');
  const statements = Array.from({ length: 2500 }, () => {
    const scene = generateScene(rng);
    return { scene, statement: generateStatement(scene, rng) };
  });

  it('are labelled as the naive evaluator says', () => {
    for (const { scene, statement } of statements) {
      assert.equal(naiveEvaluate(statement.query, scene), statement.truth, statement.text);
      assert.equal(evaluate(statement.query, scene), statement.truth, statement.text);
    }
  });

  it('are balanced, overall and per template', () => {
    const truths = statements.filter((s) => s.statement.truth).length / statements.length;
    assert.ok(truths > 0.46 && truths < 0.54, `true share ${truths}`);
    const byKind = new Map<string, [number, number]>();
    for (const { scene, statement } of statements) {
      const key = `${scene.layout}/${statement.query.kind}`;
      const [n, t] = byKind.get(key) ?? [0, 0];
      byKind.set(key, [n + 1, t + (statement.truth ? 1 : 0)]);
    }
    for (const [key, [n, t]] of byKind)
      if (n >= 60) assert.ok(t / n > 0.35 && t / n < 0.65, `${key}: ${t}/${n} true`);
  });

  it('cover what NLVR asks about', () => {
    const queries = statements.map((s) => s.statement.query);
    const kinds = new Set(queries.map((q) => q.kind));
    assert.deepEqual([...kinds].sort(), [
      'boxes',
      'boxesAgree',
      'compare',
      'count',
      'relation',
      'towers',
      'towersAgree',
    ]);
    const text = statements.map((s) => s.statement.text).join('\n');
    for (const phrase of [
      'exactly',
      'at least',
      'at most',
      'touching the wall',
      'not touching any wall',
      'above',
      'below',
      'directly on top of',
      'tower',
      'Each box',
      'Every box',
      'No box',
      'There is a box that',
      'large',
      'small',
      'triangle',
      'circle',
      'blue',
      'more',
      'fewer',
      'the same',
    ]) {
      assert.ok(text.includes(phrase), `no statement says "${phrase}"`);
    }
  });

  it('read as sentences', () => {
    for (const { statement } of statements) {
      assert.match(statement.text, /^[A-Z][^.]*\.$/, statement.text);
      assert.doesNotMatch(statement.text, /undefined|NaN|\[object|#0099ff| {2}/, statement.text);
    }
  });

  it('are deterministic', () => {
    const scene = generateScene(Rng.fromKey('same'));
    assert.deepEqual(
      generateStatement(scene, Rng.fromKey('s', 1)),
      generateStatement(scene, Rng.fromKey('s', 1)),
    );
  });

  it('can be asked for a given truth and template', () => {
    const r = Rng.fromKey('ask');
    const scene = generateScene(r, { layout: 'towers' });
    for (const truth of [true, false]) {
      const s = generateStatement(scene, r, { truth, template: 'towers' });
      assert.equal(s.query.kind, 'towers');
      assert.equal(s.truth, truth);
      assert.equal(naiveEvaluate(s.query, scene), truth);
    }
  });
});

describe('hand-built scenes', () => {
  // box 0: a black triangle on the left wall, a yellow circle high above it;
  // box 1: a small black triangle, a large blue square in the bottom-right corner (below it);
  // box 2: one large yellow circle in the middle.
  const scattered: Scene = {
    layout: 'scattered',
    boxes: [
      [obj('triangle', 'Black', 20, 0, 50), obj('circle', 'Yellow', 10, 40, 10)],
      [obj('triangle', 'Black', 10, 50, 50), obj('square', '#0099ff', 30, 70, 70)],
      [obj('circle', 'Yellow', 30, 30, 30)],
    ],
  };
  const towers: Scene = {
    layout: 'towers',
    boxes: [
      towerBox(['Black', 'Yellow']),
      towerBox(['Yellow']),
      towerBox(['#0099ff', '#0099ff', 'Black', 'Yellow']),
    ],
  };
  const exactly = (n: number): Count => ({ op: 'exactly', n });
  const cases: [Scene, Query, boolean][] = [
    [scattered, { kind: 'count', filter: { color: 'Black', shape: 'triangle' }, count: exactly(2) }, true],
    [
      scattered,
      { kind: 'count', filter: { color: 'Black', shape: 'triangle' }, count: { op: 'atLeast', n: 3 } },
      false,
    ],
    [scattered, { kind: 'count', filter: { wall: 'any' }, count: exactly(2) }, true],
    [scattered, { kind: 'count', filter: { wall: 'left' }, count: exactly(1) }, true],
    [scattered, { kind: 'count', filter: { shape: 'circle', wall: 'none' }, count: exactly(2) }, true],
    [scattered, { kind: 'count', filter: { size: 30 }, count: { op: 'atMost', n: 1 } }, false],
    [
      scattered,
      {
        kind: 'boxes',
        quantifier: { kind: 'each' },
        predicate: { kind: 'count', filter: { color: 'Yellow' }, count: { op: 'atLeast', n: 1 } },
      },
      false,
    ],
    [
      scattered,
      {
        kind: 'boxes',
        quantifier: { kind: 'each' },
        predicate: { kind: 'count', filter: {}, count: { op: 'atLeast', n: 1 } },
      },
      true,
    ],
    [
      scattered,
      {
        kind: 'boxes',
        quantifier: { kind: 'none' },
        predicate: { kind: 'only', filter: { color: 'Yellow' } },
      },
      false,
    ],
    [
      scattered,
      {
        kind: 'boxes',
        quantifier: { kind: 'count', count: exactly(1) },
        predicate: { kind: 'only', filter: { color: 'Yellow' } },
      },
      true,
    ],
    [
      scattered,
      {
        kind: 'boxes',
        quantifier: { kind: 'count', count: exactly(1) },
        predicate: { kind: 'uniform', attribute: 'color' },
      },
      true,
    ],
    [
      scattered,
      {
        kind: 'relation',
        subject: { color: 'Yellow', shape: 'circle' },
        relation: 'above',
        object: { color: 'Black' },
        negated: false,
      },
      true,
    ],
    [
      scattered,
      {
        kind: 'relation',
        subject: { color: 'Yellow', shape: 'circle' },
        relation: 'above',
        object: { color: 'Black' },
        negated: true,
      },
      false,
    ],
    [
      scattered,
      {
        kind: 'relation',
        subject: { color: '#0099ff' },
        relation: 'above',
        object: { shape: 'triangle' },
        negated: false,
      },
      false,
    ],
    [
      scattered,
      {
        kind: 'relation',
        subject: { color: '#0099ff' },
        relation: 'below',
        object: { shape: 'triangle' },
        negated: false,
      },
      true,
    ],
    [
      scattered,
      {
        kind: 'relation',
        subject: { shape: 'circle' },
        relation: 'above',
        object: { shape: 'circle' },
        negated: false,
      },
      false,
    ],
    [
      scattered,
      { kind: 'compare', measure: { kind: 'count', filter: {} }, first: 0, second: 1, relation: 'same' },
      true,
    ],
    [
      scattered,
      { kind: 'compare', measure: { kind: 'count', filter: {} }, first: 2, second: 1, relation: 'fewer' },
      true,
    ],
    [scattered, { kind: 'boxesAgree', filter: { shape: 'circle' }, claim: 'someSame' }, true],
    [scattered, { kind: 'boxesAgree', filter: { shape: 'circle' }, claim: 'allSame' }, false],
    [scattered, { kind: 'boxesAgree', filter: { shape: 'circle' }, claim: 'allDifferent' }, false],
    [towers, { kind: 'towers', predicate: { height: exactly(2) }, count: exactly(1) }, true],
    [towers, { kind: 'towers', predicate: { base: 'Yellow' }, count: exactly(1) }, true],
    [towers, { kind: 'towers', predicate: { top: 'Yellow' }, count: exactly(3) }, true],
    [
      towers,
      { kind: 'towers', predicate: { stack: { upper: 'Yellow', lower: 'Black' } }, count: exactly(2) },
      true,
    ],
    [
      towers,
      {
        kind: 'towers',
        predicate: { stack: { upper: 'Black', lower: 'Yellow' } },
        count: { op: 'atLeast', n: 1 },
      },
      false,
    ],
    [towers, { kind: 'towers', predicate: { only: 'Yellow' }, count: exactly(1) }, true],
    [
      towers,
      {
        kind: 'towers',
        predicate: { colorCount: { color: '#0099ff', count: exactly(2) } },
        count: exactly(1),
      },
      true,
    ],
    [
      towers,
      { kind: 'towers', predicate: { height: { op: 'atLeast', n: 2 }, base: 'Black' }, count: exactly(1) },
      true,
    ],
    [
      towers,
      {
        kind: 'relation',
        subject: { shape: 'square', color: 'Black' },
        relation: 'onTopOf',
        object: { shape: 'square', color: '#0099ff' },
        negated: false,
      },
      true,
    ],
    [
      towers,
      {
        kind: 'relation',
        subject: { shape: 'square', color: '#0099ff' },
        relation: 'onTopOf',
        object: { shape: 'square', color: 'Black' },
        negated: false,
      },
      false,
    ],
    [
      towers,
      {
        kind: 'relation',
        subject: { color: 'Yellow' },
        relation: 'above',
        object: { color: '#0099ff' },
        negated: false,
      },
      true,
    ],
    [towers, { kind: 'compare', measure: { kind: 'tallest' }, first: 2, second: 0, relation: 'more' }, true],
    [towers, { kind: 'compare', measure: { kind: 'tallest' }, first: 1, second: 0, relation: 'more' }, false],
    [towers, { kind: 'towersAgree', attribute: 'height', claim: 'allDifferent' }, true],
    [towers, { kind: 'towersAgree', attribute: 'top', claim: 'allSame' }, true],
    [towers, { kind: 'towersAgree', attribute: 'base', claim: 'someSame' }, false],
    [
      towers,
      {
        kind: 'boxes',
        quantifier: { kind: 'count', count: exactly(1) },
        predicate: { kind: 'uniform', attribute: 'color' },
      },
      true,
    ],
  ];

  it('get the answers worked out by hand, from both evaluators', () => {
    for (const [scene, query, truth] of cases) {
      assert.equal(evaluate(query, scene), truth, JSON.stringify(query));
      assert.equal(naiveEvaluate(query, scene), truth, JSON.stringify(query));
    }
  });

  it('read as the query says', () => {
    const rng = Rng.fromKey('text');
    assert.equal(statementText(cases[0][1], rng), 'There are exactly two black triangles.');
    assert.equal(statementText(cases[4][1], rng), 'There are exactly two circles not touching any wall.');
    assert.equal(statementText(cases[5][1], rng), 'There is at most one large object.');
    assert.equal(statementText(cases[14][1], rng), 'There is a blue object below a triangle.');
    assert.equal(statementText(cases[12][1], rng), 'No yellow circle is above a black object.');
    assert.equal(statementText(cases[16][1], rng), 'The first box has as many objects as the second box.');
    assert.equal(statementText(cases[20][1], rng), 'No two boxes have the same number of circles.');
    assert.equal(
      statementText(cases[21][1], rng, TOWER_WORDS),
      'There is exactly one tower with exactly two blocks.',
    );
    assert.equal(
      statementText(cases[24][1], rng, TOWER_WORDS),
      'There are exactly two towers with a yellow block directly on top of a black block.',
    );
    assert.equal(
      statementText(cases[29][1], rng, TOWER_WORDS),
      'There is a black block directly on top of a blue block.',
    );
    assert.equal(
      statementText(cases[32][1], rng, TOWER_WORDS),
      'The third box has a taller tower than the first box.',
    );
    assert.equal(statementText(cases[34][1], rng, TOWER_WORDS), 'No two towers have the same height.');
    assert.equal(statementText(cases[9][1], rng), 'Exactly one box contains only yellow objects.');
  });

  it('say which objects they are about', () => {
    const q: Query = {
      kind: 'relation',
      subject: { color: 'Yellow' },
      relation: 'above',
      object: { shape: 'triangle' },
      negated: false,
    };
    assert.deepEqual(relevantObjects(q, scattered.boxes[0]), [0, 1]);
    assert.deepEqual(relevantObjects(q, scattered.boxes[1]), [0]);
    const t: Query = { kind: 'towers', predicate: { base: 'Black' }, count: exactly(1) };
    assert.deepEqual(relevantObjects(t, towers.boxes[2]), [2]);
  });

  it('reject malformed queries clearly', () => {
    assert.throws(
      () => evaluate({ kind: 'count', filter: {}, count: { op: 'exactly', n: -1 } }, scattered),
      /n must be an integer ≥ 0/,
    );
    assert.throws(
      () =>
        evaluate(
          { kind: 'compare', measure: { kind: 'tallest' }, first: 3, second: 0, relation: 'more' },
          towers,
        ),
      /box index must be 0..2, got 3/,
    );
    assert.throws(() => evaluate({ kind: 'nope' } as unknown as Query, towers), /unknown query kind/);
  });
});

describe('real NLVR dev sentences', { skip: dataSkipReason('nlvr/dev/dev.json') }, () => {
  // Sentences from dev.json, transcribed by hand into queries; the labels are the human ones.
  const exactly = (n: number): Count => ({ op: 'exactly', n });
  const atLeastOne: Count = { op: 'atLeast', n: 1 };
  const transcribed: [string, Query][] = [
    [
      'There is a tower with four blocks.',
      { kind: 'towers', predicate: { height: exactly(4) }, count: atLeastOne },
    ],
    [
      'there is exactly one tower with a blue block at the base',
      { kind: 'towers', predicate: { base: '#0099ff' }, count: exactly(1) },
    ],
    [
      'There is 1 tower with a blue block at the base',
      { kind: 'towers', predicate: { base: '#0099ff' }, count: exactly(1) },
    ],
    [
      'There are 2 towers with a black block at the base',
      { kind: 'towers', predicate: { base: 'Black' }, count: exactly(2) },
    ],
    [
      'there is a blue object touching the edge',
      { kind: 'count', filter: { color: '#0099ff', wall: 'any' }, count: atLeastOne },
    ],
    [
      'There is at least one black object above a blue object.',
      {
        kind: 'relation',
        subject: { color: 'Black' },
        relation: 'above',
        object: { color: '#0099ff' },
        negated: false,
      },
    ],
    [
      'There is exactly one black triangle not touching any edge',
      { kind: 'count', filter: { color: 'Black', shape: 'triangle', wall: 'none' }, count: exactly(1) },
    ],
    [
      'there are two black triangles not touching any edge',
      { kind: 'count', filter: { color: 'Black', shape: 'triangle', wall: 'none' }, count: exactly(2) },
    ],
    [
      'There is a box with items of only one color.',
      {
        kind: 'boxes',
        quantifier: { kind: 'count', count: atLeastOne },
        predicate: { kind: 'uniform', attribute: 'color' },
      },
    ],
    [
      'Each grey box contains atleast one yellow object touching the edge',
      {
        kind: 'boxes',
        quantifier: { kind: 'each' },
        predicate: { kind: 'count', filter: { color: 'Yellow', wall: 'any' }, count: atLeastOne },
      },
    ],
    [
      'one of the grey square has exactly four objects',
      {
        kind: 'boxes',
        quantifier: { kind: 'count', count: atLeastOne },
        predicate: { kind: 'count', filter: {}, count: exactly(4) },
      },
    ],
    [
      'There is a black block as the top of a tower with at least two blocks.',
      { kind: 'towers', predicate: { top: 'Black', height: { op: 'atLeast', n: 2 } }, count: atLeastOne },
    ],
    [
      'There is at least one black block on a blue block.',
      {
        kind: 'relation',
        subject: { color: 'Black', shape: 'square' },
        relation: 'onTopOf',
        object: { color: '#0099ff', shape: 'square' },
        negated: false,
      },
    ],
  ];

  it('agree with the human labels', () => {
    const rows: { sentence: string; label: string; identifier: string; structured_rep: unknown }[] =
      readFileSync(dataPath('nlvr/dev/dev.json'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    let checked = 0;
    for (const [sentence, query] of transcribed) {
      const hits = rows.filter((r) => r.sentence === sentence);
      assert.ok(hits.length > 0, `"${sentence}" is not in dev.json`);
      for (const row of hits) {
        const scene = sceneFromStructuredRep(row.structured_rep);
        assert.equal(evaluate(query, scene), row.label === 'true', `${row.identifier}: ${sentence}`);
        assert.equal(
          naiveEvaluate(query, scene),
          row.label === 'true',
          `${row.identifier}: ${sentence} (naive)`,
        );
        checked++;
      }
    }
    assert.ok(checked >= 70, `${checked} labelled pictures checked`);
  });
});
