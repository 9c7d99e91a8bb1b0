/**
 * The web page at `/`: drop several images, ask, and watch the answer stream in; under the
 * answer, each image of the conversation with the patches the selector kept highlighted and its
 * discrete ids listed (MaVEn's Figure 5, for your own images). It is a plain client of the
 * public API: a streamed POST /v1/chat/completions with `maven_overlays: true`, the overlays
 * arriving in the first chunk. Follow-up questions re-send the earlier images, which the server
 * serves from its encoding cache (marked "cached").
 */

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

export interface PageOptions {
  model: string;
  apiKeyRequired: boolean;
}

export function servePage(options: PageOptions): string {
  const model = escapeHtml(options.model);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MaVEn — ${model}</title>
<style>
:root { --accent: #1f5fbf; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1040px; margin: 1.5em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.35em; margin: 0 0 .2em; } h1 small { color: var(--muted); font-weight: normal; font-size: .7em; }
p.lead { color: var(--muted); margin: 0 0 1em; }
#drop { border: 2px dashed #aab; border-radius: 8px; padding: 14px; text-align: center; color: var(--muted); cursor: pointer; }
#drop.over { background: #eef3ff; border-color: var(--accent); }
#thumbs { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
#thumbs figure { margin: 0; position: relative; } #thumbs img { width: 72px; height: 72px; object-fit: cover; border: 1px solid var(--line); border-radius: 4px; }
#thumbs button { position: absolute; top: -6px; right: -6px; border: 0; border-radius: 50%; width: 20px; height: 20px; background: #333; color: #fff; cursor: pointer; font-size: 12px; line-height: 20px; padding: 0; }
#ask { display: flex; gap: 8px; } #prompt { flex: 1; font: inherit; padding: 8px; min-height: 44px; resize: vertical; }
button.primary { background: var(--accent); color: #fff; border: 0; border-radius: 6px; padding: 0 18px; font: inherit; cursor: pointer; }
button.primary:disabled { opacity: .5; cursor: default; }
#settings { display: flex; flex-wrap: wrap; gap: 14px; margin: 10px 0; font-size: 13px; color: #444; align-items: center; }
#settings input[type=number] { width: 5em; }
.turn { border-top: 1px solid var(--line); padding: 12px 0; }
.user { white-space: pre-wrap; } .user b, .bot b { color: var(--muted); font-weight: 600; margin-right: 6px; }
.answer { white-space: pre-wrap; font-size: 1.1em; }
.answer.streaming::after { content: '▍'; color: var(--accent); }
.images { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 10px; }
.images figure { margin: 0; width: 200px; } .images img { width: 200px; height: 200px; image-rendering: pixelated; border: 1px solid #ccc; }
figcaption { font-size: 12px; color: #555; }
/* ids wrap between numbers, never inside one */
figcaption code { font-size: 11px; word-break: normal; overflow-wrap: normal; white-space: normal; }
.badge { display: inline-block; background: #e6f4ea; color: #0a6b2e; border-radius: 3px; padding: 0 4px; margin-left: 4px; }
.usage { color: var(--muted); font-size: 12px; margin-top: 6px; }
.note { color: #8a5a00; font-size: 12px; margin-top: 4px; }
.error { color: #a01818; white-space: pre-wrap; }
</style></head>
<body>
<h1>MaVEn <small>${model}</small></h1>
<p class="lead">Drop several images, ask about them, and see which patches the model kept of each (bright, outlined) beside the few discrete tokens that summarise it.</p>
<div id="drop" tabindex="0">Drop images here or click to choose <input id="files" type="file" accept="image/*" multiple hidden></div>
<div id="thumbs"></div>
<div id="ask"><textarea id="prompt" placeholder="Ask about the images… (Enter to send, Shift+Enter for a new line)"></textarea><button id="send" class="primary">Ask</button></div>
<div id="settings">
  <label>Encoding <select id="mode"><option value="hybrid">hybrid (discrete + kept patches)</option><option value="discrete-only">discrete only (detail: low)</option><option value="continuous-only">all patches (LLaVA-style)</option></select></label>
  <label>Keep ratio ρ <input id="ratio" type="number" min="0.01" max="1" step="0.05" placeholder="server"></label>
  <label>Max tokens <input id="maxTokens" type="number" min="1" max="1024" value="32"></label>
  <label${options.apiKeyRequired ? '' : ' hidden'}>API key <input id="apiKey" type="password" size="16"></label>
  <button id="reset" type="button">New conversation</button>
  <span id="status"></span>
</div>
<div id="log"></div>
<script type="module">
const $ = (id) => document.getElementById(id);
const MODEL = ${JSON.stringify(options.model)};
let attached = []; // [{name, url}] for the next question
const messages = []; // the conversation so far, in OpenAI format

function addFiles(files) {
  for (const file of files) {
    if (!file.type.startsWith('image/')) continue;
    const reader = new FileReader();
    reader.onload = () => { attached.push({ name: file.name, url: reader.result }); showThumbs(); };
    reader.readAsDataURL(file);
  }
}
function showThumbs() {
  const box = $('thumbs');
  box.replaceChildren(...attached.map((a, i) => {
    const fig = document.createElement('figure');
    const img = document.createElement('img'); img.src = a.url; img.alt = a.name; img.title = a.name;
    const x = document.createElement('button'); x.textContent = '×'; x.title = 'remove';
    x.onclick = () => { attached.splice(i, 1); showThumbs(); };
    fig.append(img, x); return fig;
  }));
}
const drop = $('drop');
drop.onclick = () => $('files').click();
$('files').onchange = (e) => { addFiles(e.target.files); e.target.value = ''; };
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove('over'); addFiles(e.dataTransfer.files); };
$('prompt').onkeydown = (e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); ask(); } };
$('send').onclick = () => ask();
$('reset').onclick = () => { messages.length = 0; attached = []; showThumbs(); $('log').replaceChildren(); };

function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }

function showImages(container, images) {
  container.replaceChildren(...images.map((im, i) => {
    const fig = el('figure');
    const img = el('img'); img.className = 'overlay'; img.src = im.overlay; img.alt = 'image ' + (i + 1) + ' with kept patches';
    const cap = el('figcaption');
    cap.append('image ' + (i + 1) + ': ' + im.kept_patches + '/' + im.total_patches + ' patches kept, ' + im.discrete_tokens + ' discrete tokens');
    if (im.cached) cap.append(el('span', 'badge', 'cached'));
    cap.append(document.createElement('br'));
    const ids = el('code', 'ids', im.discrete_ids.length ? im.discrete_ids.join(' ') : '(no discrete ids)');
    cap.append(ids);
    fig.append(img, cap); return fig;
  }));
}

async function ask() {
  const text = $('prompt').value.trim();
  if (!text && attached.length === 0) return;
  const content = [...attached.map((a) => ({ type: 'image_url', image_url: { url: a.url, detail: $('mode').value === 'discrete-only' ? 'low' : 'auto' } }))];
  if (text) content.push({ type: 'text', text });
  messages.push({ role: 'user', content });
  const turn = el('div', 'turn');
  const user = el('div', 'user'); user.append(el('b', '', 'You'), (attached.length ? '[' + attached.length + ' image(s)] ' : '') + text);
  const bot = el('div', 'bot'); const answer = el('span', 'answer streaming'); bot.append(el('b', '', 'MaVEn'), answer);
  const images = el('div', 'images'); const usage = el('div', 'usage'); const note = el('div', 'note unknown'); note.hidden = true;
  turn.append(user, bot, note, images, usage); $('log').prepend(turn);
  attached = []; showThumbs(); $('prompt').value = '';
  $('send').disabled = true; $('status').textContent = 'waiting…';
  const body = { model: MODEL, messages, stream: true, stream_options: { include_usage: true }, maven_overlays: true,
    max_tokens: Number($('maxTokens').value) || 32 };
  if ($('mode').value === 'continuous-only') body.maven_mode = 'continuous-only';
  if ($('ratio').value) body.maven_keep_ratio = Number($('ratio').value);
  const headers = { 'content-type': 'application/json' };
  if ($('apiKey').value) headers.authorization = 'Bearer ' + $('apiKey').value;
  let reply = '';
  try {
    const res = await fetch('/v1/chat/completions', { method: 'POST', headers, body: JSON.stringify(body) });
    if (!res.ok) throw new Error((await res.json()).error.message);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf('\\n\\n')) >= 0) {
        const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const data = event.replace(/^data: /, '');
        if (data === '[DONE]') continue;
        const msg = JSON.parse(data);
        if (msg.error) throw new Error(msg.error.message);
        if (msg.maven) {
          showImages(images, msg.maven.images); $('status').textContent = 'answering…';
          const unknown = msg.maven.unknown_words || [];
          if (unknown.length) { note.hidden = false; note.textContent = 'The model does not know ' + (unknown.length === 1 ? 'this word' : 'these words') + ' and read ' + (unknown.length === 1 ? 'it' : 'them') + ' as <unk>: ' + unknown.map((w) => /^[\\p{L}\\p{N}]+$/u.test(w) ? w : JSON.stringify(w)).join(', '); }
        }
        const delta = msg.choices?.[0]?.delta?.content;
        if (delta) { reply += delta; answer.textContent = reply; }
        if (msg.usage) usage.textContent = msg.usage.prompt_tokens + ' prompt tokens (' + msg.usage.prompt_tokens_details.image_tokens + ' for images), ' + msg.usage.completion_tokens + ' generated';
      }
    }
    if (!reply) answer.textContent = '(empty answer)';
    messages.push({ role: 'assistant', content: reply });
    $('status').textContent = '';
  } catch (e) {
    messages.pop();
    answer.replaceWith(el('span', 'error', String(e.message ?? e)));
    $('status').textContent = '';
  } finally {
    answer.classList.remove('streaming');
    $('send').disabled = false;
  }
}
</script>
</body></html>
`;
}
