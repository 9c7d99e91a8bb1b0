/** The caption oracle: exact captions in place of images, an LLM-only stage, likelihood scoring. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { captionBox } from '../../src/data/scene/captions.ts';
import type { Box } from '../../src/data/scene/scene.ts';
import type { LabelledNlvrExample } from '../../src/data/tasks/nlvr-dev.ts';
import { generateExample } from '../../src/data/tasks/registry.ts';
import { Trainer } from '../../src/engine/index.ts';
import {
  BOX_ORDERS,
  captionOraclePrompt,
  captionOracleStage,
  captionOracleTrainable,
  generatedOracleItem,
  mentionsPositions,
  nlvrOracleItem,
  scoreCaptionOracle,
} from '../../src/eval/caption-oracle.ts';
import { MavenModel } from '../../src/maven/model.ts';
import { smallModel } from '../maven/small-model.ts';

const yellowCircle: Box = [{ x_loc: 10, y_loc: 10, size: 20, type: 'circle', color: 'Yellow' }];
const blackSquare: Box = [{ x_loc: 40, y_loc: 40, size: 10, type: 'square', color: 'Black' }];
const blueTriangle: Box = [{ x_loc: 70, y_loc: 5, size: 30, type: 'triangle', color: '#0099ff' }];
const example: LabelledNlvrExample = {
  identifier: '0-0',
  sentence: 'There is a yellow circle.',
  label: true,
  boxes: [yellowCircle, blackSquare, blueTriangle],
};

describe('caption oracle', () => {
  it('puts the three exact captions in box order, then the statement', () => {
    const prompt = captionOraclePrompt([yellowCircle, blackSquare, blueTriangle], 'scattered', 'Hi.');
    const lines = prompt.split('\n');
    assert.equal(lines[0], `The first box: ${captionBox(yellowCircle)}`);
    assert.equal(lines[1], `The second box: ${captionBox(blackSquare)}`);
    assert.equal(lines[2], `The third box: ${captionBox(blueTriangle)}`);
    assert.equal(lines.at(-1), 'Hi.');
    assert.throws(() => captionOraclePrompt([yellowCircle], 'scattered', 'x'), /expected 3 boxes/);
  });

  it('reads real examples in all six box orders, each a different permutation', () => {
    const prompts = BOX_ORDERS.map((_, order) => nlvrOracleItem(example, order).prompt);
    assert.equal(new Set(prompts).size, 6);
    assert.ok(prompts[0].startsWith(`The first box: ${captionBox(yellowCircle)}`));
    assert.ok(prompts[5].startsWith(`The first box: ${captionBox(blueTriangle)}`));
    assert.equal(nlvrOracleItem(example).answerIndex, 0);
    assert.equal(nlvrOracleItem({ ...example, label: false }).answerIndex, 1);
  });

  it('tells sentences about positions (which captions leave out) from the others', () => {
    assert.ok(mentionsPositions('There is a yellow circle above a black square.'));
    assert.ok(mentionsPositions('There are two triangles closely touching each other.'));
    assert.ok(mentionsPositions('There is a blue item in the left corner.'));
    assert.ok(!mentionsPositions('There are exactly two black squares touching the wall.'));
    assert.ok(!mentionsPositions('There is a tower with a yellow block at the top.'));
    assert.ok(!mentionsPositions('Each box has at least 1 black item.'));
  });

  it('gives generated statements the task’s own label and statement', () => {
    for (let i = 0; i < 5; i++) {
      const item = generatedOracleItem('heldout', i);
      const ex = generateExample('nlvr-statement', 'heldout', i);
      assert.equal(item.answerIndex, ex.answerIndex);
      assert.ok(item.prompt.endsWith(ex.prompt.slice(ex.prompt.lastIndexOf('\n') + 1)));
      assert.match(item.rule, /^(scattered|towers)\//);
      assert.ok(!item.prompt.includes('<image>'));
    }
  });

  it('trains only the LLM, and learns a repeated batch', async () => {
    const model = smallModel();
    const def = captionOracleStage({
      config: model.config,
      weights: model.hostWeights(),
      tokenizer: model.tokenizer,
      steps: 10,
      batchSize: 4,
      lr: 3e-3,
      dev: { examples: [example], share: 0.5 },
    });
    const trainer = await Trainer.create({
      params: def.params,
      build: def.build,
      optimizer: def.optimizer,
      trainable: def.trainable,
    });
    const batch = (await def.batches(0).next()).value;
    const losses: number[] = [];
    for (let i = 0; i < 12; i++) losses.push((await trainer.trainStep(batch)).loss);
    assert.ok(losses[11] < losses[0] * 0.8, `${losses[0]} → ${losses[11]}`);
    for (const [name, value] of trainer.parameters()) {
      const same = Buffer.from((value.data as Float32Array).buffer).equals(
        Buffer.from((model.hostWeights().get(name)!.data as Float32Array).buffer),
      );
      if (!captionOracleTrainable(name)) assert.ok(same, `frozen ${name} changed`);
    }
    assert.ok(captionOracleTrainable('model.layers.0.self_attn.q_proj.weight'));
    assert.ok(!captionOracleTrainable('model.mm_projector.linear_1.weight'));
    assert.ok(!captionOracleTrainable('vision_tower.vision_model.post_layernorm.weight'));
    assert.throws(
      () =>
        captionOracleStage({
          ...def,
          config: model.config,
          weights: model.hostWeights(),
          tokenizer: model.tokenizer,
          batchSize: 4,
          lr: 1e-3,
          steps: 1,
          dev: { examples: [example], share: 2 },
        }),
      /share must be in \[0, 1\]/,
    );

    const trained = new MavenModel(
      model.config,
      new Map([...model.weights, ...trainer.parameters()]),
      model.tokenizer,
    );
    const items = [
      nlvrOracleItem(example),
      generatedOracleItem('heldout', 0),
      generatedOracleItem('heldout', 1),
    ];
    const score = await scoreCaptionOracle(trained, items);
    assert.equal(score.examples, 3);
    assert.equal(score.correct.length, 3);
    assert.equal(score.accuracy, score.correct.filter(Boolean).length / 3);
    assert.equal(
      Object.values(score.perRule).reduce((n, r) => n + r.examples, 0),
      3,
    );
    assert.ok(score.trueRate >= 0 && score.trueRate <= 1);
  });
});
