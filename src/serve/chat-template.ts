/**
 * Chat messages → one MaVEn prompt: text with an `<image>` placeholder where each image part was,
 * returned already split at the placeholders (n images, n + 1 text pieces), so text that a user
 * types can never be mistaken for an image.
 *
 * Within a message, parts are joined with a newline. In the 'plain' template each image comes after
 * its number in the conversation: [image, image, "question"] becomes
 * "Image 1: <image>\nImage 2: <image>\nquestion", the layout the tiny recipe's tasks are trained on
 * (`imageLines` in src/data/tasks/types.ts), so "are images 1 and 2 …" can be answered.
 *
 * Templates for the turns:
 *  - 'plain' (default; what maven-tiny learned, `${prompt} ${answer}`):
 *      system text, newline; each user turn; each assistant answer after a space, then a newline.
 *      "Image 1: <image>\nwhat is it? a cat\nImage 2: <image>\nand this?"  → the model continues with " answer".
 *  - 'vicuna' (LLaVA-1.5 / MaVEn's Vicuna-7B conversation format, for models tuned on it):
 *      "[system ]USER: … ASSISTANT: … USER: … ASSISTANT:"
 */
import type { ChatMessage, ImageRef, MessagePart } from './chat-request.ts';

export type ChatTemplate = 'plain' | 'vicuna';
export const CHAT_TEMPLATES: readonly ChatTemplate[] = ['plain', 'vicuna'];

export interface RenderedPrompt {
  /** n + 1 text pieces around n images. */
  pieces: string[];
  images: ImageRef[];
}

/** A growing prompt: text appends to the last piece, an image starts a new one. */
class PromptBuilder {
  readonly pieces: string[] = [''];
  readonly images: ImageRef[] = [];

  /** @param numberImages write "Image k: " before the k-th image of the conversation. */
  constructor(private readonly numberImages: boolean) {}

  text(s: string): void {
    this.pieces[this.pieces.length - 1] += s;
  }

  parts(parts: readonly MessagePart[]): void {
    parts.forEach((p, i) => {
      if (i > 0) this.text('\n');
      if ('text' in p) this.text(p.text);
      else {
        if (this.numberImages) this.text(`Image ${this.images.length + 1}: `);
        this.images.push(p.image);
        this.pieces.push('');
      }
    });
  }
}

export function renderPrompt(
  messages: readonly ChatMessage[],
  template: ChatTemplate = 'plain',
): RenderedPrompt {
  const b = new PromptBuilder(template === 'plain');
  if (template === 'plain') {
    messages.forEach((m, i) => {
      b.parts(m.parts);
      if (m.role === 'system' && i + 1 < messages.length) b.text('\n');
      if (m.role === 'assistant') b.text('\n');
      if (m.role === 'user' && messages[i + 1]?.role === 'assistant') b.text(' ');
      if (m.role === 'user' && messages[i + 1]?.role === 'user') b.text('\n');
    });
  } else {
    messages.forEach((m, i) => {
      if (i > 0) b.text(' ');
      if (m.role === 'user') b.text('USER: ');
      if (m.role === 'assistant') b.text('ASSISTANT: ');
      b.parts(m.parts);
    });
    b.text(' ASSISTANT:');
  }
  return { pieces: b.pieces, images: b.images };
}

/** The prompt as one string with `<image>` placeholders (what `maven generate` would take). */
export function promptText(rendered: RenderedPrompt, placeholder = '<image>'): string {
  return rendered.pieces.join(placeholder);
}
