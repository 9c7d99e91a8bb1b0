/**
 * Multi-image conversation data in the two common instruction-tuning formats, normalised to one:
 *  - Mantis: `{id, images: [paths], conversation: [{role: 'user'|'assistant', content}]}`
 *  - LLaVA:  `{id, image?: path | [paths], conversations: [{from: 'human'|'gpt', value}]}`
 * as a JSON array or JSON lines. Each `<image>` placeholder in the text stands for the next image,
 * so their count must equal the number of images; a mismatch is an error naming the record.
 */
import { access, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';

export const IMAGE_PLACEHOLDER = '<image>';

export interface ConversationTurn {
  role: 'user' | 'assistant';
  content: string;
}

export interface Conversation {
  id: string;
  /** Absolute paths, in placeholder order. */
  images: string[];
  turns: ConversationTurn[];
}

export interface ConversationError {
  /** Record id when it has one, else undefined. */
  id: string | undefined;
  /** Where the record is: "line N" (JSON lines) or "record N" (0-based index in a JSON array). */
  position: string;
  message: string;
}

export interface ConversationParseResult {
  conversations: Conversation[];
  errors: ConversationError[];
}

export interface ConversationLoadOptions {
  /** Folder image paths are relative to. Default: the JSON file's folder. */
  imageRoot?: string;
  /** Check that every image file exists (default true). */
  checkImages?: boolean;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function countPlaceholders(text: string): number {
  return text.split(IMAGE_PLACEHOLDER).length - 1;
}

const LLAVA_ROLES: Record<string, ConversationTurn['role']> = { human: 'user', gpt: 'assistant' };

function toTurns(raw: Record<string, unknown>): ConversationTurn[] {
  if (Array.isArray(raw.conversation)) {
    return raw.conversation.map((turn: unknown, i) => {
      if (!isRecord(turn)) throw new Error(`conversation[${i}] is not an object`);
      if (turn.role !== 'user' && turn.role !== 'assistant') {
        throw new Error(
          `conversation[${i}].role must be "user" or "assistant", got ${JSON.stringify(turn.role)}`,
        );
      }
      if (typeof turn.content !== 'string') throw new Error(`conversation[${i}].content must be a string`);
      return { role: turn.role, content: turn.content };
    });
  }
  if (Array.isArray(raw.conversations)) {
    return raw.conversations.map((turn: unknown, i) => {
      if (!isRecord(turn)) throw new Error(`conversations[${i}] is not an object`);
      const role =
        typeof turn.from === 'string' && Object.hasOwn(LLAVA_ROLES, turn.from)
          ? LLAVA_ROLES[turn.from]
          : undefined;
      if (role === undefined) {
        throw new Error(
          `conversations[${i}].from must be "human" or "gpt", got ${JSON.stringify(turn.from)}`,
        );
      }
      if (typeof turn.value !== 'string') throw new Error(`conversations[${i}].value must be a string`);
      return { role, content: turn.value };
    });
  }
  throw new Error('has neither "conversation" (Mantis) nor "conversations" (LLaVA)');
}

function toImagePaths(raw: Record<string, unknown>, imageRoot: string): string[] {
  const listed = raw.images ?? raw.image;
  const list = listed === undefined ? [] : Array.isArray(listed) ? listed : [listed];
  return list.map((p: unknown, i) => {
    if (typeof p !== 'string' || p === '') throw new Error(`image ${i} must be a non-empty path string`);
    return isAbsolute(p) ? p : resolve(imageRoot, p);
  });
}

/** Normalises one record; throws an Error naming what is wrong (the caller adds id/position). */
function toConversation(raw: unknown, imageRoot: string): Conversation {
  if (!isRecord(raw)) throw new Error('record is not a JSON object');
  if (typeof raw.id !== 'string' && typeof raw.id !== 'number') throw new Error('id is missing');
  const turns = toTurns(raw);
  if (turns.length === 0) throw new Error('has no turns');
  const images = toImagePaths(raw, imageRoot);
  const placeholders = turns.reduce((n, t) => n + countPlaceholders(t.content), 0);
  if (placeholders !== images.length) {
    throw new Error(`has ${placeholders} ${IMAGE_PLACEHOLDER} placeholders but ${images.length} images`);
  }
  return { id: String(raw.id), images, turns };
}

/**
 * Parses conversation records from text (JSON array or JSON lines). Bad records are collected in
 * `errors` (id, position, message) and skipped. `source` names the file in messages.
 */
export function parseConversations(
  text: string,
  imageRoot: string,
  source = 'conversations',
): ConversationParseResult {
  // Each record in file order, either parsed or with the JSON error of its line.
  const records: { raw?: unknown; position: string; invalid?: string }[] = [];
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`${source}: not valid JSON (${(err as Error).message})`);
    }
    (parsed as unknown[]).forEach((raw, i) => {
      records.push({ raw, position: `record ${i}` });
    });
  } else {
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() === '') continue;
      const position = `line ${i + 1}`;
      try {
        records.push({ raw: JSON.parse(lines[i]), position });
      } catch (err) {
        records.push({ position, invalid: (err as Error).message });
      }
    }
  }
  const conversations: Conversation[] = [];
  const errors: ConversationError[] = [];
  for (const { raw, position, invalid } of records) {
    if (invalid !== undefined) {
      errors.push({ id: undefined, position, message: `${source} ${position}: invalid JSON (${invalid})` });
      continue;
    }
    const id =
      isRecord(raw) && (typeof raw.id === 'string' || typeof raw.id === 'number')
        ? String(raw.id)
        : undefined;
    try {
      conversations.push(toConversation(raw, imageRoot));
    } catch (err) {
      const who = id === undefined ? position : `${position} (id ${JSON.stringify(id)})`;
      errors.push({ id, position, message: `${source} ${who}: ${(err as Error).message}` });
    }
  }
  return { conversations, errors };
}

/**
 * Reads a conversation file, keeping going past bad records (returned in `errors`). With
 * `checkImages` (default), a record whose image file is missing is an error naming the path.
 */
export async function readConversations(
  path: string,
  options: ConversationLoadOptions = {},
): Promise<ConversationParseResult> {
  const text = await readFile(path, 'utf8');
  const imageRoot = options.imageRoot ?? dirname(resolve(path));
  const result = parseConversations(text, imageRoot, path);
  if (options.checkImages === false) return result;
  const kept: Conversation[] = [];
  for (const conv of result.conversations) {
    const missing: string[] = [];
    await Promise.all(
      conv.images.map((p) =>
        access(p).catch(() => {
          missing.push(p);
        }),
      ),
    );
    if (missing.length === 0) kept.push(conv);
    else {
      result.errors.push({
        id: conv.id,
        position: `id ${conv.id}`,
        message: `${path} (id ${JSON.stringify(conv.id)}): image file not found: ${missing.join(', ')}`,
      });
    }
  }
  return { conversations: kept, errors: result.errors };
}

/** Reads a conversation file strictly: the first bad record throws, naming it. */
export async function loadConversations(
  path: string,
  options: ConversationLoadOptions = {},
): Promise<Conversation[]> {
  const { conversations, errors } = await readConversations(path, options);
  if (errors.length > 0) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more bad records)` : '';
    throw new Error(`${errors[0].message}${more}`);
  }
  return conversations;
}
