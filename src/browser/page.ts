/**
 * The page's script (bundled to page.js): loads the model named by `?model=` or the page's
 * `maven-model` meta tag, then answers questions about dropped images entirely in the browser —
 * the answer streamed, each image shown with the patches the selector kept and its discrete ids,
 * the visual-token count, optional candidate scores and the timings. Images are decoded when they
 * are added, so a file the browser cannot read is named at once, in the page.
 *
 * For tests, the benchmark and the console: `window.maven` resolves to the loaded LocalMaven, and
 * `window.mavenDecodeImage` is the page's decoder.
 */
import type { EncodingMode } from '../maven/sequence.ts';
import type { DecodedImage } from '../models/image.ts';
import { decodeImageBlob } from './decode-image.ts';
import { clearModelCache } from './fetch-model.ts';
import { type Answer, type ImageReport, LocalMaven, rgbaPixels } from './local-maven.ts';
import type { ProviderPreference } from './onnx-runtime.ts';

declare global {
  interface Window {
    maven: Promise<LocalMaven>;
    mavenDecodeImage: typeof decodeImageBlob;
  }
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function canvasOf(image: {
  width: number;
  height: number;
  rgba: Uint8ClampedArray<ArrayBuffer>;
}): HTMLCanvasElement {
  const canvas = el('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d')?.putImageData(new ImageData(image.rgba, image.width, image.height), 0, 0);
  return canvas;
}

const params = new URLSearchParams(location.search);
const modelUrl =
  params.get('model') ??
  document.querySelector<HTMLMetaElement>('meta[name="maven-model"]')?.content ??
  'models/maven-tiny/';
const preference = (params.get('ep') ?? 'auto') as ProviderPreference;
const ms = (x: number) => `${x < 10 ? x.toFixed(1) : x.toFixed(0)} ms`;
const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;

const loadLine = $('load');
window.mavenDecodeImage = decodeImageBlob;
window.maven = LocalMaven.load(modelUrl, preference, (p) => {
  const of = p.total ? ` of ${MiB(p.total)}` : '';
  loadLine.textContent = `Loading ${p.file}${p.fromCache ? ' from the browser cache' : ''}: ${MiB(p.loaded)}${of}…`;
});
window.maven.then(
  (local) => {
    const t = local.loadTimings;
    const bytes = local.fetched.reduce((n, f) => n + f.bytes, 0);
    const cached = local.fetched.every((f) => f.fromCache);
    $('model-name').textContent = local.name;
    loadLine.className = 'ready';
    loadLine.textContent =
      `${local.name} ready in ${ms(t.totalMs)} (${MiB(bytes)} ${cached ? 'from the browser cache' : 'downloaded, now cached'} in ${ms(t.fetchMs)}, ` +
      `warm-up ${ms(t.warmupMs)}); ${local.runtime.description}. Nothing leaves this page from now on.`;
    $<HTMLButtonElement>('send').disabled = false;
  },
  (e: unknown) => {
    loadLine.className = 'error';
    loadLine.textContent = `Could not load the model from ${modelUrl}: ${e instanceof Error ? e.message : String(e)}`;
  },
);

interface Attached {
  name: string;
  image: DecodedImage;
}
let attached: Attached[] = [];

function showThumbs(): void {
  $('thumbs').replaceChildren(
    ...attached.map((a, i) => {
      const fig = el('figure');
      const canvas = canvasOf({ width: a.image.width, height: a.image.height, rgba: rgbaPixels(a.image) });
      canvas.title = a.name;
      const remove = el('button', '', '×');
      remove.title = 'remove';
      remove.onclick = () => {
        attached.splice(i, 1);
        showThumbs();
      };
      fig.append(canvas, remove);
      return fig;
    }),
  );
}

async function addFiles(files: FileList | null): Promise<void> {
  const errors = $('image-errors');
  errors.replaceChildren();
  for (const file of Array.from(files ?? [])) {
    try {
      attached.push({ name: file.name, image: await decodeImageBlob(file, file.name) });
    } catch (e) {
      errors.append(el('div', 'error', `${e instanceof Error ? e.message : String(e)} — not added`));
    }
  }
  showThumbs();
}

const drop = $('drop');
const fileInput = $<HTMLInputElement>('files');
drop.onclick = () => fileInput.click();
fileInput.onchange = () => {
  addFiles(fileInput.files).finally(() => {
    fileInput.value = '';
  });
};
drop.ondragover = (e) => {
  e.preventDefault();
  drop.classList.add('over');
};
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  void addFiles(e.dataTransfer?.files ?? null);
};
$<HTMLTextAreaElement>('prompt').onkeydown = (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    void ask();
  }
};
$('send').onclick = () => void ask();
$('clear').onclick = () => {
  attached = [];
  showThumbs();
  $('image-errors').replaceChildren();
};
$('forget').onclick = async () => {
  const removed = await clearModelCache();
  $('status').textContent = removed
    ? 'Downloaded model files deleted; the next visit downloads them again.'
    : 'Nothing was cached.';
};

function showImages(container: HTMLElement, images: readonly ImageReport[], names: readonly string[]): void {
  container.replaceChildren(
    ...images.map((im, i) => {
      const fig = el('figure');
      const canvas = canvasOf(im.overlay);
      canvas.className = 'overlay';
      canvas.title = `${names[i]} with the kept patches`;
      const caption = el('figcaption');
      caption.append(
        `image ${i + 1}: ${im.keptPatches.length}/${im.totalPatches} patches kept, ${im.discreteIds.length} discrete tokens`,
        el('br'),
        el('code', 'ids', im.discreteIds.length ? im.discreteIds.join(' ') : '(no discrete ids)'),
      );
      fig.append(canvas, caption);
      return fig;
    }),
  );
}

function showScores(list: HTMLElement, scores: Answer['scores']): void {
  list.replaceChildren(
    ...scores.map(({ candidate, score }) => {
      const item = el(
        'li',
        'score',
        `${candidate}: log-likelihood ${score.logLikelihood.toFixed(4)} (${score.tokens} token${score.tokens === 1 ? '' : 's'})`,
      );
      item.dataset.candidate = candidate;
      item.dataset.logLikelihood = String(score.logLikelihood);
      return item;
    }),
  );
}

let busy = false;
async function ask(): Promise<void> {
  const question = $<HTMLTextAreaElement>('prompt').value.trim();
  if (busy || (!question && attached.length === 0)) return;
  busy = true;
  const images = [...attached];
  const turn = el('div', 'turn');
  const user = el('div', 'user');
  user.append(el('b', '', 'You'), `${images.length ? `[${images.length} image(s)] ` : ''}${question}`);
  const bot = el('div', 'bot');
  const answer = el('span', 'answer streaming');
  bot.append(el('b', '', 'MaVEn'), answer);
  const note = el('div', 'note unknown');
  note.hidden = true;
  const scores = el('ul', 'scores');
  const imageBox = el('div', 'images');
  const usage = el('div', 'usage');
  turn.append(user, bot, note, scores, imageBox, usage);
  $('log').prepend(turn);
  $<HTMLButtonElement>('send').disabled = true;
  $('status').textContent = 'encoding…';
  const ratio = $<HTMLInputElement>('ratio').value;
  const candidates = $<HTMLInputElement>('candidates')
    .value.split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  let text = '';
  try {
    const local = await window.maven;
    const result = await local.ask(
      images.map((a) => a.image),
      question,
      {
        mode: $<HTMLSelectElement>('mode').value as EncodingMode,
        keepRatio: ratio ? Number(ratio) : undefined,
        maxNewTokens: Number($<HTMLInputElement>('maxTokens').value) || 32,
        candidates,
        onImages: (reports) => {
          showImages(
            imageBox,
            reports,
            images.map((a) => a.name),
          );
          $('status').textContent = 'answering…';
        },
        onPiece: (piece) => {
          text += piece.text;
          answer.textContent = text;
        },
      },
    );
    answer.textContent = result.text || '(empty answer)';
    showScores(scores, result.scores);
    if (result.unknownWords.length) {
      note.hidden = false;
      note.textContent = `The model does not know ${result.unknownWords.length === 1 ? 'this word' : 'these words'} and read ${result.unknownWords.length === 1 ? 'it' : 'them'} as <unk>: ${result.unknownWords.join(', ')}`;
    }
    const t = result.timings;
    usage.dataset.visualTokens = String(result.visualTokens);
    usage.textContent =
      `${result.visualTokens} visual tokens of ${result.promptTokens} prompt tokens, ${result.generatedTokens} generated; ` +
      `encode ${ms(t.encodeMs)}, prefill ${ms(t.prefillMs)}` +
      (t.tokensPerSecond ? `, ${t.tokensPerSecond.toFixed(0)} tokens/s` : '');
  } catch (e) {
    answer.replaceWith(el('span', 'error', e instanceof Error ? e.message : String(e)));
  } finally {
    answer.classList.remove('streaming');
    $('status').textContent = '';
    $<HTMLButtonElement>('send').disabled = false;
    $<HTMLTextAreaElement>('prompt').value = '';
    busy = false;
  }
}
