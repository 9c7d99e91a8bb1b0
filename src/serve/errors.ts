/**
 * Errors as the OpenAI API reports them: an HTTP status and a JSON body
 * `{error: {message, type, param, code}}`. Every failure the server can foresee (bad JSON, bad
 * images, a full queue, a timeout) becomes one of these, so clients written for OpenAI show the
 * message instead of a parse error.
 */

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'timeout_error'
  | 'server_error';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** What went wrong in more detail, for the server's log only (never sent to the client). */
  detail?: string;
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly type: ApiErrorType = defaultType(status),
  ) {
    super(message);
  }

  toJSON(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

function defaultType(status: number): ApiErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 408 || status === 504) return 'timeout_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** A 400 about one request field (`param` is its JSON path, e.g. `messages[0].content[1]`). */
export function badRequest(message: string, param: string | null = null, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, code, param);
}
