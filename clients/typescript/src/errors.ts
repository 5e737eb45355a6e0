// Errors the client throws. Every answer of the server that is an error becomes a FieldsyncError
// carrying its stable `code` (docs/protocol.md §9): apps branch on the code, never on the message.

import type { ErrorCode } from './generated/spec.js';

export type { ErrorCode } from './generated/spec.js';

/** An error answer of the server, in the protocol's error shape. */
export class FieldsyncError extends Error {
  override readonly name = 'FieldsyncError';
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The stable code; a code this client does not know yet still arrives as a string. */
    readonly code: ErrorCode | (string & {}),
    message: string,
    readonly details: Record<string, unknown> = {},
    /** Retry-After, in milliseconds, on 429 and 503. */
    readonly retryAfterMs?: number,
    /** The server's X-Request-Id, to find the request in its logs. */
    readonly requestId?: string,
  ) {
    super(`${status} ${code}: ${message}`);
  }

  /** The request may succeed later unchanged: the network or the server, not the request, was at fault. */
  get retryable(): boolean {
    return this.status >= 500 || this.status === 429 || this.status === 408;
  }
}

/** The session is over (a 401 other than token_expired): sign in again. The outbox is kept. */
export class SessionEndedError extends FieldsyncError {}

/** The request never got an answer (connection refused, dropped, timed out). */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** 401 codes after which the session is over (docs/protocol.md §2). */
export const sessionEndingCodes: ReadonlySet<string> = new Set([
  'token_invalid', 'session_revoked', 'user_disabled', 'device_revoked', 'device_wiped',
  'refresh_token_invalid', 'refresh_token_expired', 'refresh_token_reused',
]);

/** Reads an error answer into a FieldsyncError. */
export async function errorFromResponse(res: Response): Promise<FieldsyncError> {
  let code = 'http_' + res.status;
  let message = res.statusText;
  let details: Record<string, unknown> = {};
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
    if (body.error?.details) details = body.error.details;
  } catch {
    // Not the protocol's shape (a proxy's page): the status stands for the code.
  }
  const ra = Number(res.headers.get('Retry-After'));
  const retryAfterMs = Number.isFinite(ra) && ra > 0 ? ra * 1000 : undefined;
  const requestId = res.headers.get('X-Request-Id') ?? undefined;
  const E = res.status === 401 && sessionEndingCodes.has(code) ? SessionEndedError : FieldsyncError;
  return new E(res.status, code, message, details, retryAfterMs, requestId);
}
