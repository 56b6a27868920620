/**
 * The auth service's single error type. `code` is stable (closed union), `status` is the HTTP status,
 * `safeMessage` may be shown to the user, `cause` is for logs only and never rendered.
 */
export type ErrorCode =
  | 'ERR_BAD_REQUEST'
  | 'ERR_CSRF'
  | 'ERR_INVALID_CREDENTIALS'
  | 'ERR_RATE_LIMITED'
  | 'ERR_LOGIN_BUSY'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_IDP_UNAVAILABLE'
  | 'ERR_IDP_MISCONFIGURED'
  | 'ERR_SESSION_TOO_LARGE'
  | 'ERR_USER_EXISTS'
  | 'ERR_USER_NOT_FOUND'
  | 'ERR_INVALID_INPUT'
  | 'ERR_CONFIG'
  | 'ERR_INTERNAL';

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly safeMessage: string;
  /** Seconds until the client may retry (ERR_RATE_LIMITED, ERR_LOGIN_BUSY): the Retry-After header. */
  readonly retryAfterSeconds?: number;

  constructor(
    code: ErrorCode,
    status: number,
    safeMessage: string,
    options: { cause?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(safeMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.safeMessage = safeMessage;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
