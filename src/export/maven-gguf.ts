/**
 * A MaVEn model's language model as a GGUF file (see gguf.ts): the LLaMA decoder with the
 * unified vocabulary (text ids, then one token per visual code). The vision towers, the SEED
 * tokenizer, the patch selector and the projector are not part of it.
 */
import type { MavenModel } from '../maven/model.ts';
import { WordTokenizer } from '../models/tokenizer.ts';
import {
  type GgufExportType,
  type GgufFile,
  type GgufVocabulary,
  llamaGguf,
  wordVocabulary,
} from './gguf.ts';

/** Why a model's vocabulary cannot be exported, or null. */
export function unsupportedVocabulary(model: MavenModel): string | null {
  if (model.tokenizer instanceof WordTokenizer) return null;
  return `only models with the word-level tokenizer (the tiny preset) can be exported to GGUF for now; this one's tokenizer is ${model.tokenizer.constructor.name}`;
}

export function mavenVocabulary(model: MavenModel): GgufVocabulary {
  const why = unsupportedVocabulary(model);
  if (why) throw new Error(why);
  const tokenizer = model.tokenizer as WordTokenizer;
  const unknownId = tokenizer.tokenToId('<unk>');
  if (unknownId === undefined) throw new Error('mavenVocabulary: the word tokenizer has no <unk>');
  return wordVocabulary(tokenizer, {
    unknownId,
    specialTokens: tokenizer.toJSON().specialTokens,
    visualCodes: model.vocabulary.visualVocabSize,
  });
}

/** The GGUF file of `model`'s LLaMA, 2-D weights as `type`. */
export function mavenLlmGguf(model: MavenModel, type: GgufExportType): GgufFile {
  return llamaGguf(
    {
      name: model.config.name,
      llm: model.config.llm,
      weights: model.hostWeights(),
      vocabulary: mavenVocabulary(model),
    },
    type,
  );
}
