/** A small random MaVEn (tiny preset, narrowed) shared by the model and CLI tests. */
import { HostTensor } from '../../src/engine/index.ts';
import { type MavenConfig, tinyConfig } from '../../src/maven/config.ts';
import { buildComponents, initMavenParams, MavenModel } from '../../src/maven/model.ts';
import { WordTokenizer } from '../../src/models/tokenizer.ts';

/** `extraCorpus`: more text for the word vocabulary (answer words a test scores, say). */
export function smallModel(extraCorpus: readonly string[] = []): MavenModel {
  const tokenizer = WordTokenizer.build(
    ['how many yellow squares are there ?', 'there is a black circle .', 'yes no', ...extraCorpus],
    { minCount: 1 },
  );
  tokenizer.addSpecialTokens(['<img>', '</img>']);
  const base = tinyConfig(tokenizer.vocabSize);
  // Narrower than the preset so the tests stay fast; same structure.
  const config: MavenConfig = {
    ...base,
    vision: {
      ...base.vision,
      imageSize: 32,
      patchSize: 8,
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 2,
    },
    seed: {
      ...base.seed,
      qformer: {
        ...base.seed.qformer,
        hiddenSize: 32,
        intermediateSize: 64,
        encoderHiddenSize: 32,
        numQueryTokens: 4,
      },
      codebookSize: 16,
      codebookDim: 8,
    },
    llm: {
      ...base.llm,
      vocabSize: tokenizer.vocabSize + 16,
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 2,
    },
    selectorHiddenSize: 16,
  };
  return new MavenModel(config, initMavenParams(buildComponents(config), 1), tokenizer);
}

export function pixels(n: number, seed = 0): HostTensor {
  const data = new Float32Array(n * 3 * 32 * 32);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37 + seed) * 1.5;
  return new HostTensor('float32', [n, 3, 32, 32], data);
}
