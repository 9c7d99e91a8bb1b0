/**
 * The tiny recipe's text: the words the generators use (captions, statements, task prompts and
 * answers), from which its word-level tokenizer is built, and on which its LLM is pretrained.
 * Text only: examples are planned without rendering pixels.
 */
import { captionBox } from '../data/scene/captions.ts';
import { generateScene } from '../data/scene/generator.ts';
import { Rng } from '../data/scene/rng.ts';
import { FASHION_NOUNS } from '../data/tasks/fashion.ts';
import { FASHION_TASK_NAMES, planExample, SCENE_TASK_NAMES } from '../data/tasks/registry.ts';
import { photoCaptions } from '../data/tasks/stage-datasets.ts';
import { WordTokenizer } from '../models/tokenizer.ts';

export const IMAGE_DELIMITERS = ['<img>', '</img>'];

export interface CorpusOptions {
  seed?: number;
  /** Planned examples per task (default 400). */
  perTask?: number;
  /** Scene captions (default 2000). */
  captions?: number;
  /** Include the Fashion-MNIST task wording (their text needs no images to plan when a stub source is given). */
  fashion?: boolean;
  /** Extra sentences, e.g. NLVR dev sentences for vocabulary coverage. */
  extra?: readonly string[];
}

export function trainingCorpus(options: CorpusOptions = {}): string[] {
  const seed = options.seed ?? 0;
  const texts: string[] = [];
  const rng = Rng.fromKey('maven-corpus', seed);
  for (let i = 0; i < (options.captions ?? 2000); i++) {
    const scene = generateScene(rng);
    texts.push(captionBox(scene.boxes[i % 3], scene.layout));
  }
  // Captions the scene stream draws only rarely or never (an empty box), and the photo captions.
  texts.push(captionBox([], 'scattered'));
  if (options.fashion) for (const label of FASHION_NOUNS.keys()) texts.push(...photoCaptions(label));
  const fashionStub = { count: 100, image: () => new Uint8Array(28 * 28), label: (i: number) => i % 10 };
  const tasks = [...SCENE_TASK_NAMES, ...(options.fashion ? FASHION_TASK_NAMES : [])];
  for (const task of tasks) {
    for (let i = 0; i < (options.perTask ?? 400); i++) {
      const plan = planExample(task, 'train', i, { seed, fashion: fashionStub });
      texts.push(plan.prompt.replaceAll('<image>', ' '), plan.answer, ...(plan.options ?? []));
    }
  }
  texts.push(...(options.extra ?? []));
  return texts;
}

/** Word-level tokenizer over the corpus, plus the image delimiters as special tokens. */
export function buildTokenizer(corpus: readonly string[]): WordTokenizer {
  const tokenizer = WordTokenizer.build(corpus, { minCount: 1 });
  tokenizer.addSpecialTokens(IMAGE_DELIMITERS);
  return tokenizer;
}
