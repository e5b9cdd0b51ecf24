// What every HTTP route needs: the backend, the authorizer, the limits, a log,
// and the two steps each request takes in this order: authorize (before any
// body is read or anything is sent to a node), then call the backend within
// the request's deadline.
import { ErrorCode, WeftError } from '@weft/core'
import { type Logger, silentLogger } from '@weft/protocol'
import type { Access, Authorizer, Principal } from '../auth/Authorizer.ts'
import type { GatewayBackend, RequestContext } from '../GatewayBackend.ts'
import type { HttpExchange, HttpLimits } from './HttpExchange.ts'

/** The logging surface the handler takes: the one every room shares. */
export type HttpLogger = Logger
export const silentHttpLogger: HttpLogger = silentLogger

/** One backend op answered (or not) for an HTTP request: for the gateway's request metrics. */
export interface HttpOpSample {
  readonly op: string
  /** `OK`, or the error code. */
  readonly code: string
  readonly seconds: number
}

export type HttpOpObserver = (sample: HttpOpSample) => void

/** A backend answer that does not come by the deadline (plus this) is TIMEOUT here, whatever the backend does. */
const DEADLINE_GRACE_MS = 250

export class HttpContext {
  readonly backend: GatewayBackend
  readonly authorizer: Authorizer
  readonly limits: HttpLimits
  readonly logger: HttpLogger
  readonly #observe: HttpOpObserver | undefined
  /** Server-sent-event watches open now. */
  openWatches = 0

  constructor(backend: GatewayBackend, authorizer: Authorizer, limits: HttpLimits, logger: HttpLogger, observe?: HttpOpObserver) {
    this.backend = backend
    this.authorizer = authorizer
    this.limits = limits
    this.logger = logger
    this.#observe = observe
  }

  /**
   * Who asks, and whether they may: UNAUTHORIZED (401) without a valid token,
   * FORBIDDEN (403) outside the grants. `scope` is the key, or the prefix every
   * touched key starts with ('' for all keys); no `access`: a valid token is enough.
   */
  authorize(exchange: HttpExchange, access: Access | undefined, scope: string, token = exchange.bearerToken()): Principal {
    let principal: Principal
    try {
      principal = this.authorizer.authenticate(token)
      if (access !== undefined) this.authorizer.authorize(principal, access, scope)
    } catch (err) {
      if (err instanceof WeftError) {
        this.logger.info({ method: exchange.method, path: exchange.path.slice(0, 256), code: err.code }, 'http request refused')
        throw err
      }
      throw new WeftError(ErrorCode.INTERNAL, 'internal error')
    }
    return principal
  }

  requestContext(exchange: HttpExchange, principal: Principal): RequestContext {
    return { deadline: exchange.deadline, principal: principal.name }
  }

  /** One backend op, answered by the deadline (TIMEOUT otherwise). */
  async call(exchange: HttpExchange, principal: Principal, op: string, params: Record<string, unknown>, deadline = exchange.deadline): Promise<unknown> {
    const context = { ...this.requestContext(exchange, principal), deadline }
    const started = performance.now()
    let code = 'OK'
    try {
      // A backend that throws instead of rejecting is caught the same way.
      return await withDeadline((async () => this.backend.request(op, params, context))(), deadline)
    } catch (err) {
      code = err instanceof WeftError ? err.code : ErrorCode.INTERNAL
      throw err
    } finally {
      this.#observe?.({ op, code, seconds: (performance.now() - started) / 1000 })
    }
  }
}

export async function withDeadline<T>(work: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new WeftError(ErrorCode.TIMEOUT, 'no answer in time (a write may or may not have been applied)')),
      Math.max(0, deadline - Date.now()) + DEADLINE_GRACE_MS,
    )
  })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
    // The losing promise may still reject later: nobody else listens to it.
    work.catch(() => {})
  }
}
