// Every failure the client reports: the shared error code (from the server, or
// one the client gives itself: TIMEOUT, UNAVAILABLE, CLOSED, FRAME_TOO_LARGE),
// the server's details, and which request it was.
import { type Conflict, ErrorCode, WeftError } from '@weft/core'

/** Codes after which the same request may succeed later or on another node (docs/PROTOCOL.md). */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.TOO_MANY_REQUESTS,
  ErrorCode.UNAVAILABLE,
  ErrorCode.TIMEOUT,
  ErrorCode.CLOSED,
  ErrorCode.STORAGE_FAILED,
])

export interface WeftClientErrorOptions {
  readonly details?: Readonly<Record<string, unknown>> | undefined
  /** The op of the request that failed. */
  readonly op?: string | undefined
  /** The write's idempotency key: retry with it and the write is applied once. */
  readonly requestId?: string | undefined
  /** True when the client made this error itself (no answer, no connection), not the server. */
  readonly local?: boolean | undefined
  readonly cause?: unknown
}

export class WeftClientError extends WeftError {
  readonly op: string | undefined
  readonly requestId: string | undefined
  readonly local: boolean

  constructor(code: ErrorCode, message: string, options: WeftClientErrorOptions = {}) {
    super(code, message, options.details === undefined ? undefined : { ...options.details })
    this.name = 'WeftClientError'
    this.op = options.op
    this.requestId = options.requestId
    this.local = options.local ?? false
    if (options.cause !== undefined) this.cause = options.cause
  }

  /** The error of an answer frame; codes this client does not know become INTERNAL. */
  static fromBody(body: unknown, options: Omit<WeftClientErrorOptions, 'details' | 'local'> = {}): WeftClientError {
    const error = (typeof body === 'object' && body !== null ? body : {}) as { code?: unknown; message?: unknown; details?: unknown }
    const message = typeof error.message === 'string' ? error.message : 'no message'
    const details = typeof error.details === 'object' && error.details !== null ? (error.details as Record<string, unknown>) : undefined
    if (typeof error.code === 'string' && Object.hasOwn(ErrorCode, error.code)) {
      return new WeftClientError(error.code as ErrorCode, message, { ...options, details })
    }
    return new WeftClientError(ErrorCode.INTERNAL, `${String(error.code)}: ${message}`, { ...options, details: { ...details, code: error.code } })
  }

  /** May succeed if tried again later or on another node (writes: with the same requestId). */
  get retryable(): boolean {
    return RETRYABLE.has(this.code)
  }

  /** MERGE_CONFLICT: the conflicts that stopped a merge with strategy `fail`. */
  get conflicts(): readonly Conflict[] | undefined {
    const conflicts = this.details?.conflicts
    return Array.isArray(conflicts) ? (conflicts as Conflict[]) : undefined
  }

  /** HEAD_MISMATCH: the fork's actual head revision id (null: the fork does not exist). */
  get head(): string | null | undefined {
    const head = this.details?.head
    return typeof head === 'string' || head === null ? head : undefined
  }
}

export function isWeftClientError(err: unknown, code?: ErrorCode): err is WeftClientError {
  return err instanceof WeftClientError && (code === undefined || err.code === code)
}
