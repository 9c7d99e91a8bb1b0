/**
 * The maven-7b preset: the paper's layout, by Hugging Face / LAVIS / LLaVA parameter names, and
 * a shrunken copy (same names and layer counts, tiny widths, random weights) saved as shards,
 * loaded by name and run end to end.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type MavenConfig, maven7bConfig, tinyConfig } from '../../src/maven/config.ts';
import { buildComponents, initMavenParams, MavenModel, mavenParamShapes } from '../../src/maven/model.ts';
import { LlamaTokenizer } from '../../src/models/tokenizer.ts';
import { loadMaven, saveMaven } from '../../src/node/model-directory.ts';
import { preprocessImages } from '../../src/node/preprocess-images.ts';

const IMAGES = fileURLToPath(new URL('../fixtures/images/', import.meta.url));

/** Same names and depths, widths cut to a few units. */
function shrink(c: MavenConfig): MavenConfig {
  const vit = (v: Exclude<MavenConfig['tokenizerVision'], 'shared'>) => ({
    ...v,
    hiddenSize: 8,
    intermediateSize: 16,
    numAttentionHeads: 2,
  });
  const tokenizerVision = c.tokenizerVision === 'shared' ? 'shared' : vit(c.tokenizerVision);
  return {
    ...c,
    vision: vit(c.vision),
    tokenizerVision,
    seed: {
      ...c.seed,
      codebookDim: 4,
      qformer: {
        ...c.seed.qformer,
        hiddenSize: 8,
        intermediateSize: 16,
        numAttentionHeads: 2,
        encoderHiddenSize: tokenizerVision === 'shared' ? 8 : tokenizerVision.hiddenSize,
      },
    },
    llm: { ...c.llm, hiddenSize: 16, intermediateSize: 32, numAttentionHeads: 2, numKeyValueHeads: 2 },
    selectorHiddenSize: 8,
  };
}

describe('presets', () => {
  it('maven-7b has the paper layout under the checkpoint names', () => {
    const c = maven7bConfig();
    const shapes = mavenParamShapes(buildComponents(c));
    const expect: [string, number[]][] = [
      ['vision_tower.vision_model.embeddings.patch_embedding.weight', [1024, 3, 14, 14]],
      ['vision_tower.vision_model.embeddings.position_embedding.weight', [577, 1024]], // 576 patches + CLS
      ['vision_tower.vision_model.encoder.layers.23.mlp.fc1.weight', [4096, 1024]],
      ['visual_tokenizer.query_tokens', [1, 32, 768]],
      ['visual_tokenizer.quantize.embedding.weight', [8192, 32]],
      ['visual_tokenizer.ln_vision.weight', [1408]],
      ['model.embed_tokens.weight', [32002 + 8192, 4096]],
      ['lm_head.weight', [32002 + 8192, 4096]],
      ['model.layers.31.mlp.down_proj.weight', [4096, 11008]],
      ['model.mm_projector.0.weight', [4096, 1024]],
      ['model.mm_projector.2.weight', [4096, 4096]],
      ['patch_selector.fc1.weight', [1024, 1024 + 4096]],
    ];
    for (const [name, shape] of expect) assert.deepEqual(shapes.get(name), shape, name);
    const count = (prefix: string) =>
      [...shapes]
        .filter(([n]) => prefix === '' || n.startsWith(prefix))
        .reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0);
    // LLaMA-2-7B is 6,738,415,616 parameters; the 8,192 visual rows add 8192·4096 to each of the two tables.
    const llm = [...shapes]
      .filter(
        ([n]) => (n.startsWith('model.') && !n.startsWith('model.mm_projector')) || n === 'lm_head.weight',
      )
      .reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0);
    assert.equal(llm, 6_738_415_616 + 2 * (2 + 8192) * 4096);
    assert.equal(count('vision_tower.'), 303_507_456); // CLIP ViT-L/14-336 vision tower
    const grid = c.vision.imageSize / c.vision.patchSize;
    assert.equal(grid * grid, 576);
  });

  it('a shrunken maven-7b saved as shards loads by name and answers', async () => {
    const config = shrink(maven7bConfig());
    const tokenizer = new LlamaTokenizer();
    tokenizer.addSpecialTokens([config.imageStartToken, config.imageEndToken]);
    assert.equal(tokenizer.vocabSize, config.textVocabSize);
    const model = new MavenModel(config, initMavenParams(buildComponents(config), 3), tokenizer);
    const dir = mkdtempSync(join(tmpdir(), 'maven-7b-shrunk-'));
    await saveMaven(dir, model, { maxShardBytes: 2_000_000 });
    const files = readdirSync(dir);
    assert.ok(files.includes('model.safetensors.index.json'));
    assert.ok(
      files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length >= 3,
      files.join(', '),
    );

    const loaded = await loadMaven(dir);
    const images = await preprocessImages(loaded, [join(IMAGES, 'blocks.jpg'), join(IMAGES, 'rgba.png')]);
    assert.deepEqual(images!.pixels.shape, [2, 3, 336, 336]);
    assert.deepEqual(images!.tokenizerPixels!.shape, [2, 3, 224, 224]);
    const r = await loaded.generate('USER: <image> and <image> what changed? ASSISTANT:', images, {
      maxNewTokens: 2,
    });
    assert.deepEqual(
      r.images.map((i) => [i.discreteTokens, i.keptPatches, i.totalPatches]),
      [
        [32, 144, 576],
        [32, 144, 576],
      ],
    );
  });

  it('the tiny preset is small enough to train here', () => {
    const c = tinyConfig(600);
    const total = [...mavenParamShapes(buildComponents(c)).values()].reduce(
      (s, sh) => s + sh.reduce((a, b) => a * b, 1),
      0,
    );
    assert.ok(total < 5_000_000, `${total} parameters`);
  });
});
