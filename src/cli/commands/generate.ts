/** `maven generate`: answer a prompt about one or more images. */
import { parseArgs } from 'node:util';
import { type MavenModel, summarize } from '../../maven/model.ts';
import { ENCODING_MODES, type EncodingMode, IMAGE_PLACEHOLDER } from '../../maven/sequence.ts';
import { loadMaven } from '../../node/model-directory.ts';
import { preprocessImages } from '../../node/preprocess-images.ts';
import { type Command, numberOption, UsageError } from '../command.ts';
import { DEFAULT_MODEL_DIR } from '../default-model.ts';

const usage = `usage: maven generate [--model DIR] [--image FILE]... [options] "prompt with one <image> per image"

options:
  --model DIR          model directory (config.json, tokenizer.json, model.safetensors);
                       default: the embedded models/maven-tiny
  --image FILE         an image (PNG, JPEG, WebP, …); repeat for several, in <image> order
  --mode MODE          hybrid (default) | discrete-only | continuous-only
  --keep-ratio R       share of patches kept per image, in (0, 1] (default: the model's, 0.25)
  --budget N           instead of a ratio: N continuous tokens for the whole prompt, by score
  --max-tokens N       at most N new tokens (default 64)
  --temperature T      0 = greedy (default); > 0 samples
  --top-k K, --top-p P sampling filters
  --seed S             sampling seed (default 0)
  --stop TEXT          stop at TEXT (repeatable)
  --stream             print tokens as they come
  --json               machine-readable output`;

export const generateCommand: Command = {
  name: 'generate',
  summary: 'answer a prompt about one or more images',
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        image: { type: 'string', multiple: true },
        mode: { type: 'string' },
        'keep-ratio': { type: 'string' },
        budget: { type: 'string' },
        'max-tokens': { type: 'string' },
        temperature: { type: 'string' },
        'top-k': { type: 'string' },
        'top-p': { type: 'string' },
        seed: { type: 'string' },
        stop: { type: 'string', multiple: true },
        stream: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    });
    if (positionals.length !== 1) throw new UsageError(`give exactly one prompt (quote it)\n\n${usage}`);
    const mode = (values.mode ?? 'hybrid') as EncodingMode;
    if (!ENCODING_MODES.includes(mode))
      throw new UsageError(`--mode must be one of ${ENCODING_MODES.join(', ')}`);
    const options = {
      mode,
      keepRatio: numberOption(values['keep-ratio'], 'keep-ratio', (n) => n > 0 && n <= 1),
      visualTokenBudget: numberOption(values.budget, 'budget', (n) => Number.isInteger(n) && n >= 0),
      maxNewTokens: numberOption(values['max-tokens'], 'max-tokens', (n) => Number.isInteger(n) && n >= 0),
      temperature: numberOption(values.temperature, 'temperature', (n) => n >= 0),
      topK: numberOption(values['top-k'], 'top-k', (n) => Number.isInteger(n) && n >= 0),
      topP: numberOption(values['top-p'], 'top-p', (n) => n > 0 && n <= 1),
      seed: numberOption(values.seed, 'seed', Number.isInteger),
      stop: values.stop,
    };
    const model = await loadMaven(values.model ?? DEFAULT_MODEL_DIR, {}, { weightsOnDisk: true });
    const unknownWords = unknownWordsOf(model, positionals[0]);
    const images = values.image ?? [];
    const t0 = performance.now();
    const prepared = await model.prepare(positionals[0], await preprocessImages(model, images), options);
    let answer = '';
    for await (const piece of model.stream(prepared, options)) {
      answer += piece.text;
      if (values.stream && !values.json) process.stdout.write(piece.text);
    }
    const ms = performance.now() - t0;
    const perImage = summarize(prepared.images);
    if (values.json) {
      console.log(
        JSON.stringify(
          {
            answer: answer.trim(),
            mode,
            prompt_tokens: prepared.sequence.slots.length,
            unknown_words: unknownWords,
            images: perImage.map((s, i) => ({ file: images[i], ...s, kept: prepared.images[i].keptPatches })),
            ms: Math.round(ms),
          },
          null,
          2,
        ),
      );
      return 0;
    }
    if (values.stream) process.stdout.write('\n');
    else console.log(answer.trim());
    console.log('');
    perImage.forEach((s, i) => {
      console.log(
        `image ${i + 1} (${images[i]}): ${s.discreteTokens} discrete tokens, ${s.keptPatches}/${s.totalPatches} patches kept (ρ = ${s.keepRatio.toFixed(2)})`,
      );
    });
    console.log(`prompt: ${prepared.sequence.slots.length} tokens (${mode}); ${ms.toFixed(0)} ms`);
    if (unknownWords.length) {
      console.log(
        `unknown words (not in the model's vocabulary, read as <unk>): ${unknownWords.map(shown).join(', ')}`,
      );
    }
    return 0;
  },
};

/** A word as listed: marks and anything that is not a plain word in quotes (`","`). */
const shown = (w: string) => (/^[\p{L}\p{N}]+$/u.test(w) ? w : JSON.stringify(w));

/** The prompt's words the tokenizer has no id for, each once, in order (placeholders left out). */
function unknownWordsOf(model: MavenModel, prompt: string): string[] {
  const tokenizer = model.tokenizer;
  if (!tokenizer.unknownWords) return [];
  return [...new Set(prompt.split(IMAGE_PLACEHOLDER).flatMap((piece) => tokenizer.unknownWords!(piece)))];
}
