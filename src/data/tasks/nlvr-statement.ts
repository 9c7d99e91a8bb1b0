/**
 * Multi-image reasoning, NLVR-style: three images (the three boxes of one picture, in order) and
 * a statement; is it true or false? The label is the evaluator's verdict on the scene graph.
 */
import { generateScene } from '../scene/generator.ts';
import { generateStatement } from '../scene/statements.ts';
import type { TaskDefinition } from './task.ts';
import { imageLines } from './types.ts';

export const NLVR_OPTIONS = ['true', 'false'];

/** The three boxes, then the question: the same words for generated statements and real NLVR. */
export function nlvrStatementPrompt(statement: string): string {
  return `${imageLines(3)}\nThe three images are the three boxes of one picture, from left to right. Is this statement true or false?\n${statement}`;
}

export const nlvrStatementTask: TaskDefinition = {
  name: 'nlvr-statement',
  category: 'multi-image-reasoning',
  splitBy: 'content',
  draw(rng, context) {
    // Draw scenes until one belongs to the split, before paying for a statement.
    let scene = generateScene(rng, { config: context.sceneConfig });
    while (!context.inSplit(scene.boxes.map((objects) => ({ kind: 'box', objects })))) {
      scene = generateScene(rng, { config: context.sceneConfig });
    }
    const statement = generateStatement(scene, rng);
    const answerIndex = statement.truth ? 0 : 1;
    return {
      visuals: scene.boxes.map((objects) => ({ kind: 'box', objects })),
      prompt: nlvrStatementPrompt(statement.text),
      answer: NLVR_OPTIONS[answerIndex],
      options: NLVR_OPTIONS,
      answerIndex,
      meta: { layout: scene.layout, query: statement.query, rule: statement.query.kind },
    };
  },
};
