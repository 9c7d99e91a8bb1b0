/**
 * The body of `POST /v1/chat/completions`, checked field by field and turned into a typed
 * request. Pure: no I/O, so every rule here is tested without a server.
 *
 * Accepted (OpenAI's Chat Completions format):
 *   model, messages[{role: system|developer|user|assistant, content: string | parts}],
 *   parts {type: 'text', text} and {type: 'image_url', image_url: {url, detail?}} (images in user
 *   messages only), max_tokens | max_completion_tokens, temperature, top_p, seed, stop, n (= 1),
 *   stream, stream_options.include_usage.
 * Extensions (prefixed, ignored by other servers): top_k, maven_keep_ratio,
 * maven_visual_token_budget, maven_mode, maven_overlays. Other OpenAI fields are ignored.
 */
import { ENCODING_MODES, type EncodingMode } from '../maven/sequence.ts';
import { badRequest } from './errors.ts';

/** OpenAI's image detail levels; here they pick the encoding (see `imageMode`). */
export type ImageDetail = 'low' | 'high' | 'auto';
const DETAILS: readonly ImageDetail[] = ['low', 'high', 'auto'];

export interface ImageRef {
  /** A `data:` URL, a local path (or file: URL), or an http(s) URL. */
  url: string;
  detail: ImageDetail;
  /** Where it is in the request, for error messages: `messages[0].content[1].image_url.url`. */
  param: string;
}

export type ChatRole = 'system' | 'user' | 'assistant';
export type MessagePart = { text: string } | { image: ImageRef };

export interface ChatMessage {
  role: ChatRole;
  parts: MessagePart[];
}

export interface ChatSampling {
  /** New tokens at most; undefined = the server's default. */
  maxTokens?: number;
  /** undefined = the server's default (greedy unless configured otherwise). */
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  stop: string[];
}

export interface MavenOptions {
  /** ρ for images encoded in hybrid mode; undefined = the server's. */
  keepRatio?: number;
  /** Instead of ρ: this many continuous tokens over all hybrid images of the prompt, by score. */
  visualTokenBudget?: number;
  /** One encoding for every image, overriding `detail`. */
  mode?: EncodingMode;
  /** Return each image with its kept patches drawn (PNG data URL) in `maven.images[].overlay`. */
  overlays: boolean;
}

export interface ChatRequest {
  model: string | null;
  messages: ChatMessage[];
  /** Every image of the conversation, in order of appearance. */
  images: ImageRef[];
  sampling: ChatSampling;
  stream: boolean;
  includeUsage: boolean;
  maven: MavenOptions;
}

export interface RequestLimits {
  /** Images per request (all turns together). */
  maxImages: number;
  /** Largest accepted max_tokens. */
  maxTokens: number;
  /** Strings that may not appear in text (the placeholder and the model's image delimiters). */
  reservedText: readonly string[];
  /**
   * Most characters of text (all messages together), checked before anything is tokenized, so
   * an oversized prompt costs a length count rather than a tokenizer pass; undefined = no limit.
   */
  maxTextChars?: number;
  /** The model's context in tokens, for the message of the text-length refusal. */
  context?: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const describe = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? 'a string' : typeof v;

function numberField(
  body: Record<string, unknown>,
  name: string,
  check: (n: number) => boolean,
  expected: string,
): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) {
    throw badRequest(`${name} must be ${expected}, got ${JSON.stringify(v)}`, name);
  }
  return v;
}

function booleanField(body: Record<string, unknown>, name: string, where = name): boolean {
  const v = body[name];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean')
    throw badRequest(`${where} must be true or false, got ${JSON.stringify(v)}`, where);
  return v;
}

const ROLES: Record<string, ChatRole> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  assistant: 'assistant',
};

/** Running total of text characters over a request, refused past the limit. */
class TextBudget {
  private used = 0;
  constructor(private readonly limits: RequestLimits) {}

  add(text: string, param: string): void {
    this.used += text.length;
    const max = this.limits.maxTextChars;
    if (max !== undefined && this.used > max) {
      const context = this.limits.context ? ` (its context is ${this.limits.context} tokens)` : '';
      throw badRequest(
        `the messages hold more than ${max} characters of text, more than this server accepts for the model${context}; send a shorter prompt`,
        param,
        'context_length_exceeded',
      );
    }
  }
}

function parseParts(
  content: unknown,
  role: ChatRole,
  at: string,
  limits: RequestLimits,
  images: ImageRef[],
  budget: TextBudget,
): MessagePart[] {
  const checkText = (text: string, param: string) => {
    budget.add(text, param);
    for (const reserved of limits.reservedText) {
      if (text.includes(reserved)) {
        throw badRequest(
          `${param} contains "${reserved}", which is reserved for images; send images as image_url parts`,
          param,
        );
      }
    }
    return { text };
  };
  if (typeof content === 'string') return [checkText(content, `${at}.content`)];
  if (content === null || content === undefined) {
    if (role === 'assistant') return [];
    throw badRequest(`${at}.content is missing`, `${at}.content`);
  }
  if (!Array.isArray(content)) {
    throw badRequest(
      `${at}.content must be a string or a list of parts, got ${describe(content)}`,
      `${at}.content`,
    );
  }
  return content.map((part: unknown, j): MessagePart => {
    const param = `${at}.content[${j}]`;
    if (!isRecord(part)) throw badRequest(`${param} must be an object, got ${describe(part)}`, param);
    if (part.type === 'text') {
      if (typeof part.text !== 'string')
        throw badRequest(`${param}.text must be a string, got ${describe(part.text)}`, `${param}.text`);
      return checkText(part.text, `${param}.text`);
    }
    if (part.type === 'image_url') {
      if (role !== 'user') {
        throw badRequest(`${param}: images are accepted in user messages only, not ${role}`, param);
      }
      const spec = part.image_url;
      // Some clients send the URL directly as a string.
      const url = typeof spec === 'string' ? spec : isRecord(spec) ? spec.url : undefined;
      if (typeof url !== 'string' || url === '') {
        throw badRequest(`${param}.image_url.url must be a non-empty string`, `${param}.image_url.url`);
      }
      const detail = (isRecord(spec) ? (spec.detail ?? 'auto') : 'auto') as ImageDetail;
      if (!DETAILS.includes(detail)) {
        throw badRequest(
          `${param}.image_url.detail must be one of ${DETAILS.join(', ')}, got ${JSON.stringify(detail)}`,
          `${param}.image_url.detail`,
        );
      }
      const image: ImageRef = { url, detail, param: `${param}.image_url.url` };
      images.push(image);
      if (images.length > limits.maxImages) {
        throw badRequest(
          `too many images: this server takes at most ${limits.maxImages} per request (all messages together)`,
          param,
          'too_many_images',
        );
      }
      return { image };
    }
    throw badRequest(
      `${param}.type must be "text" or "image_url", got ${JSON.stringify(part.type)}`,
      `${param}.type`,
      'unsupported_content_type',
    );
  });
}

/** Checks a parsed JSON body; throws an ApiError (400) naming the first bad field. */
export function parseChatRequest(body: unknown, limits: RequestLimits): ChatRequest {
  if (!isRecord(body)) throw badRequest(`the request body must be a JSON object, got ${describe(body)}`);
  if (body.model !== undefined && typeof body.model !== 'string')
    throw badRequest(`model must be a string, got ${describe(body.model)}`, 'model');
  const raw = body.messages;
  if (!Array.isArray(raw) || raw.length === 0)
    throw badRequest('messages must be a non-empty list', 'messages', 'missing_required_parameter');
  const images: ImageRef[] = [];
  const budget = new TextBudget(limits);
  const messages = raw.map((m: unknown, i): ChatMessage => {
    const at = `messages[${i}]`;
    if (!isRecord(m)) throw badRequest(`${at} must be an object, got ${describe(m)}`, at);
    const role = typeof m.role === 'string' && Object.hasOwn(ROLES, m.role) ? ROLES[m.role] : undefined;
    if (!role) {
      throw badRequest(
        `${at}.role must be one of ${Object.keys(ROLES).join(', ')}, got ${JSON.stringify(m.role)}`,
        `${at}.role`,
      );
    }
    return { role, parts: parseParts(m.content, role, at, limits, images, budget) };
  });
  if (messages[messages.length - 1].role !== 'user') {
    throw badRequest(
      `the last message must be the user's (the model answers it), got ${messages[messages.length - 1].role}`,
      `messages[${messages.length - 1}].role`,
    );
  }

  numberField(body, 'n', (v) => v === 1, '1 (one answer per request)'); // checked, nothing to keep
  const maxTokens =
    numberField(
      body,
      'max_completion_tokens',
      (v) => Number.isInteger(v) && v >= 1 && v <= limits.maxTokens,
      `an integer in 1..${limits.maxTokens}`,
    ) ??
    numberField(
      body,
      'max_tokens',
      (v) => Number.isInteger(v) && v >= 1 && v <= limits.maxTokens,
      `an integer in 1..${limits.maxTokens}`,
    );
  const stopRaw = body.stop;
  let stop: string[] = [];
  if (typeof stopRaw === 'string') stop = [stopRaw];
  else if (Array.isArray(stopRaw) && stopRaw.length <= 4 && stopRaw.every((s) => typeof s === 'string'))
    stop = stopRaw;
  else if (stopRaw !== undefined && stopRaw !== null)
    throw badRequest('stop must be a string or a list of at most 4 strings', 'stop');
  const sampling: ChatSampling = {
    maxTokens,
    temperature: numberField(body, 'temperature', (v) => v >= 0 && v <= 2, 'a number in [0, 2]'),
    topP: numberField(body, 'top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]'),
    topK: numberField(body, 'top_k', (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'),
    seed: numberField(body, 'seed', Number.isSafeInteger, 'an integer'),
    stop,
  };

  const stream = booleanField(body, 'stream');
  let includeUsage = false;
  if (body.stream_options !== undefined && body.stream_options !== null) {
    if (!isRecord(body.stream_options))
      throw badRequest('stream_options must be an object', 'stream_options');
    includeUsage = booleanField(body.stream_options, 'include_usage', 'stream_options.include_usage');
  }

  const keepRatio = numberField(body, 'maven_keep_ratio', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const visualTokenBudget = numberField(
    body,
    'maven_visual_token_budget',
    (v) => Number.isInteger(v) && v >= 0,
    'a non-negative integer',
  );
  if (keepRatio !== undefined && visualTokenBudget !== undefined) {
    throw badRequest(
      'give maven_keep_ratio or maven_visual_token_budget, not both',
      'maven_visual_token_budget',
    );
  }
  const mode = body.maven_mode;
  if (mode !== undefined && mode !== null && !ENCODING_MODES.includes(mode as EncodingMode)) {
    throw badRequest(
      `maven_mode must be one of ${ENCODING_MODES.join(', ')}, got ${JSON.stringify(mode)}`,
      'maven_mode',
    );
  }
  return {
    model: typeof body.model === 'string' ? body.model : null,
    messages,
    images,
    sampling,
    stream,
    includeUsage,
    maven: {
      keepRatio,
      visualTokenBudget,
      mode: (mode ?? undefined) as EncodingMode | undefined,
      overlays: booleanField(body, 'maven_overlays'),
    },
  };
}

/** The encoding of one image: `maven_mode` if given, else `detail` (low → discrete only). */
export function imageMode(image: ImageRef, override?: EncodingMode): EncodingMode {
  if (override) return override;
  return image.detail === 'low' ? 'discrete-only' : 'hybrid';
}
