/**
 * MaVEn model configurations: which encoders, which LLM, and how images become tokens.
 *
 * Presets:
 * - `tiny`: trains on 2 CPU cores. 96 px images (NLVR boxes are 100 px) in 8 px patches: 144
 *   patches, of which ρ = 0.25 keeps 36; 8 discrete ids per image; a 4-layer 128-wide ViT shared
 *   by both encoders; a 4-layer 128-wide LLaMA with grouped-query attention. Per image 8 + 36
 *   tokens in hybrid mode vs 144 in continuous-only mode: about the paper's 32 + 144 vs 576.
 * - `maven-7b`: the paper's layout. CLIP ViT-L/14-336 (576 patches, features of the second-to-
 *   last layer as in LLaVA-1.5), the SEED tokenizer (EVA-ViT-g features → causal Q-Former → 32
 *   ids from 8,192 codes), LLaMA-2/Vicuna-7B with the 32,000-word vocabulary plus the two image
 *   delimiters plus 8,192 visual codes.
 */
import { CLIP_VIT_L_14_336, type ClipVisionConfig } from '../models/clip-vision.ts';
import type { LlamaConfig } from '../models/llama.ts';
import { SEED_TOKENIZER_CONFIG, type SeedTokenizerConfig } from '../models/seed-tokenizer.ts';
import type { EncodingMode } from './sequence.ts';

export interface MavenConfig {
  name: string;
  /** The continuous encoder (CLIP-style ViT). */
  vision: ClipVisionConfig;
  /** Which hidden state gives patch features (HF hidden_states index; −2 as LLaVA). */
  visionFeatureLayer: number;
  /** The ViT the discrete tokenizer reads: its own, or 'shared' with `vision` (cheaper; tiny). */
  tokenizerVision: ClipVisionConfig | 'shared';
  tokenizerVisionFeatureLayer: number;
  seed: SeedTokenizerConfig;
  /** The LLM; `vocabSize` is the unified size, text + visual codes. */
  llm: LlamaConfig;
  textVocabSize: number;
  selectorHiddenSize: number;
  keepRatio: number;
  defaultMode: EncodingMode;
  maxImages: number;
  sequenceOrder: 'discrete-first' | 'continuous-first';
  imageStartToken: string;
  imageEndToken: string;
  /** Image normalisation (CLIP's statistics unless the vision tower was trained otherwise). */
  imageMean: [number, number, number];
  imageStd: [number, number, number];
}

export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export function tinyConfig(textVocabSize: number): MavenConfig {
  const vision: ClipVisionConfig = {
    imageSize: 96,
    patchSize: 8,
    hiddenSize: 128,
    intermediateSize: 512,
    numHiddenLayers: 4,
    numAttentionHeads: 4,
    layerNormEps: 1e-5,
    hiddenAct: 'quick_gelu',
  };
  const codebookSize = 256;
  return {
    name: 'maven-tiny',
    vision,
    visionFeatureLayer: -2,
    tokenizerVision: 'shared',
    tokenizerVisionFeatureLayer: -1,
    seed: {
      qformer: {
        hiddenSize: 128,
        numHiddenLayers: 2,
        numAttentionHeads: 4,
        intermediateSize: 512,
        crossAttentionFrequency: 2,
        encoderHiddenSize: vision.hiddenSize,
        numQueryTokens: 8,
        layerNormEps: 1e-12,
        causal: true,
      },
      codebookSize,
      codebookDim: 16,
      commitmentBeta: 0.25,
    },
    llm: {
      vocabSize: textVocabSize + codebookSize,
      hiddenSize: 128,
      intermediateSize: 384,
      numHiddenLayers: 4,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      maxPositionEmbeddings: 2048,
      tieWordEmbeddings: true,
    },
    textVocabSize,
    selectorHiddenSize: 64,
    keepRatio: 0.25,
    defaultMode: 'hybrid',
    maxImages: 8,
    sequenceOrder: 'discrete-first',
    imageStartToken: '<img>',
    imageEndToken: '</img>',
    imageMean: CLIP_MEAN,
    imageStd: CLIP_STD,
  };
}

/** EVA-ViT-g as used by BLIP-2 and SEED (224 px, patch 14, 1408 wide, 39 layers), in ViT terms. */
export const EVA_VIT_G: ClipVisionConfig = {
  imageSize: 224,
  patchSize: 14,
  hiddenSize: 1408,
  intermediateSize: 6144,
  numHiddenLayers: 39,
  numAttentionHeads: 16,
  layerNormEps: 1e-6,
  hiddenAct: 'gelu',
};

export function maven7bConfig(): MavenConfig {
  const textVocabSize = 32000 + 2; // LLaMA's vocabulary + <img>, </img>
  return {
    name: 'maven-7b',
    vision: CLIP_VIT_L_14_336,
    visionFeatureLayer: -2,
    tokenizerVision: EVA_VIT_G,
    tokenizerVisionFeatureLayer: -2,
    seed: SEED_TOKENIZER_CONFIG,
    llm: {
      vocabSize: textVocabSize + SEED_TOKENIZER_CONFIG.codebookSize,
      hiddenSize: 4096,
      intermediateSize: 11008,
      numHiddenLayers: 32,
      numAttentionHeads: 32,
      numKeyValueHeads: 32,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      maxPositionEmbeddings: 4096,
      tieWordEmbeddings: false,
    },
    textVocabSize,
    selectorHiddenSize: 1024,
    keepRatio: 0.25,
    defaultMode: 'hybrid',
    maxImages: 8,
    sequenceOrder: 'discrete-first',
    imageStartToken: '<img>',
    imageEndToken: '</img>',
    imageMean: CLIP_MEAN,
    imageStd: CLIP_STD,
  };
}

export const PRESETS = { tiny: tinyConfig, 'maven-7b': maven7bConfig } as const;
