// Every error code mapped once to an HTTP status, and to a WebSocket close code
// for the errors that end a connection. Close codes 4000-4999 are private use:
// 4000 + the HTTP status. A server closing a socket puts `<CODE>: <message>` in
// the close reason, so a client can tell codes that share a close code apart.
import { ErrorCode } from '@weft/core'

export interface ErrorStatus {
  readonly http: number
  /** Present for codes a server may close a WebSocket with. */
  readonly close?: number
}

export const ErrorStatuses: { readonly [C in ErrorCode]: ErrorStatus } = {
  INVALID_KEY: { http: 400 },
  INVALID_FORK: { http: 400 },
  INVALID_VALUE: { http: 400 },
  VALUE_TOO_LARGE: { http: 413 },
  INVALID_ARGUMENT: { http: 400 },
  KEY_NOT_FOUND: { http: 404 },
  FORK_NOT_FOUND: { http: 404 },
  REVISION_NOT_FOUND: { http: 404 },
  FORK_EXISTS: { http: 409 },
  HEAD_MISMATCH: { http: 412 },
  MERGE_CONFLICT: { http: 409 },
  INVALID_UPDATE: { http: 400 },
  STORAGE_CORRUPT: { http: 500 },
  // The node refuses writes until restarted: another node can take them.
  STORAGE_FAILED: { http: 503 },
  // The node (or its store) is shutting down: 1001 "going away".
  CLOSED: { http: 503, close: 1001 },
  BAD_FRAME: { http: 400 },
  // 1009 "message too big": sent by the WebSocket layer itself, without a reason.
  FRAME_TOO_LARGE: { http: 413, close: 1009 },
  UNKNOWN_OP: { http: 400 },
  // Too many connections, or a consumer that reads its events too slowly.
  TOO_MANY_REQUESTS: { http: 429, close: 4429 },
  CURSOR_EXPIRED: { http: 410 },
  UNAUTHORIZED: { http: 401, close: 4401 },
  FORBIDDEN: { http: 403, close: 4403 },
  // 1013 "try again later".
  UNAVAILABLE: { http: 503, close: 1013 },
  TIMEOUT: { http: 504, close: 4408 },
  // 1011 "internal error".
  INTERNAL: { http: 500, close: 1011 },
}

export function httpStatusOf(code: ErrorCode): number {
  return ErrorStatuses[code].http
}

/** The close code for an error that ends a connection (1011 for codes that never should). */
export function closeCodeOf(code: ErrorCode): number {
  return ErrorStatuses[code].close ?? 1011
}

const byClose = new Map<number, ErrorCode>(
  (Object.entries(ErrorStatuses) as [ErrorCode, ErrorStatus][]).flatMap(([code, s]) => (s.close === undefined ? [] : [[s.close, code] as const])),
)

/**
 * The error a close tells a client about: the code at the start of the reason if
 * there is one, else the close code's; undefined for a normal close (1000).
 */
export function errorOfClose(closeCode: number, reason = ''): ErrorCode | undefined {
  const named = /^([A-Z_]+):/.exec(reason)?.[1]
  if (named !== undefined && Object.hasOwn(ErrorCode, named)) return named as ErrorCode
  return byClose.get(closeCode)
}

/** `<CODE>: <message>`, cut to the 123 bytes a close frame's reason can hold. */
export function closeReason(code: ErrorCode, message: string): string {
  const encoder = new TextEncoder()
  let reason = `${code}: ${message}`
  while (encoder.encode(reason).length > 123) reason = reason.slice(0, -1)
  return reason
}
