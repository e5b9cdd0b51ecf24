// Which failures are worth another attempt, possibly on another node: the
// node is gone, shutting down, overloaded, out of disk, or did not answer.
// Anything else is about the request itself and would fail again.
import { ErrorCode, WeftError } from '@weft/core'

export const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.UNAVAILABLE,
  ErrorCode.CLOSED,
  ErrorCode.TIMEOUT,
  ErrorCode.TOO_MANY_REQUESTS,
  ErrorCode.STORAGE_FAILED,
])

export function isRetryable(err: unknown): boolean {
  return err instanceof WeftError && RETRYABLE_CODES.has(err.code)
}

/** Any failure as a WeftError (a bug is INTERNAL, its message not shown to clients). */
export function asWeftError(err: unknown): WeftError {
  return err instanceof WeftError ? err : new WeftError(ErrorCode.INTERNAL, 'internal error')
}
