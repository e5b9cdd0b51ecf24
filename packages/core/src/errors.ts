// The one list of error codes. Node, gateway, client and CLI all speak these;
// the protocol package maps them once to HTTP statuses and close codes.

export const ErrorCode = {
  INVALID_KEY: 'INVALID_KEY',
  INVALID_FORK: 'INVALID_FORK',
  INVALID_VALUE: 'INVALID_VALUE',
  VALUE_TOO_LARGE: 'VALUE_TOO_LARGE',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  KEY_NOT_FOUND: 'KEY_NOT_FOUND',
  FORK_NOT_FOUND: 'FORK_NOT_FOUND',
  REVISION_NOT_FOUND: 'REVISION_NOT_FOUND',
  FORK_EXISTS: 'FORK_EXISTS',
  HEAD_MISMATCH: 'HEAD_MISMATCH',
  MERGE_CONFLICT: 'MERGE_CONFLICT',
  INVALID_UPDATE: 'INVALID_UPDATE',
  STORAGE_CORRUPT: 'STORAGE_CORRUPT',
  STORAGE_FAILED: 'STORAGE_FAILED',
  CLOSED: 'CLOSED',
  BAD_FRAME: 'BAD_FRAME',
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  UNKNOWN_OP: 'UNKNOWN_OP',
  TOO_MANY_REQUESTS: 'TOO_MANY_REQUESTS',
  CURSOR_EXPIRED: 'CURSOR_EXPIRED',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  UNAVAILABLE: 'UNAVAILABLE',
  TIMEOUT: 'TIMEOUT',
  INTERNAL: 'INTERNAL',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

export class WeftError extends Error {
  readonly code: ErrorCode
  readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message)
    this.name = 'WeftError'
    this.code = code
    this.details = details
  }
}

export function isWeftError(err: unknown, code?: ErrorCode): err is WeftError {
  return err instanceof WeftError && (code === undefined || err.code === code)
}
