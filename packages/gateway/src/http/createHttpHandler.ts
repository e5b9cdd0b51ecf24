// The gateway's HTTP front end, minus the server: the gateway core's
// node:http server calls this for every request that is not a WebSocket
// upgrade. Route precedence (docs/HTTP.md#routes):
//   1. `passThrough` paths (default /healthz, /metrics, /v1/ws): answered false, the caller serves them;
//   2. `/v1` and everything under it: the REST API (unknown → 404 JSON);
//   3. everything else: crush's routes (`GET /keys`, `/:key…`; unknown → 404 JSON).
import { ErrorCode, WeftError } from '@weft/core'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Authorizer } from '../auth/Authorizer.ts'
import type { GatewayBackend } from '../GatewayBackend.ts'
import { serveCrush } from './crushRoutes.ts'
import { HttpContext, type HttpLogger, type HttpOpObserver, silentHttpLogger } from './HttpContext.ts'
import { DEFAULT_HTTP_LIMITS, HttpExchange, type HttpLimits, splitTarget } from './HttpExchange.ts'
import { serveRest } from './restRoutes.ts'
import { MethodNotAllowed } from './routeErrors.ts'

export { DEFAULT_HTTP_LIMITS, type HttpLimits } from './HttpExchange.ts'
export type { HttpLogger, HttpOpObserver, HttpOpSample } from './HttpContext.ts'

export interface HttpHandlerOptions {
  readonly backend: GatewayBackend
  readonly authorizer: Authorizer
  readonly limits?: Partial<HttpLimits>
  readonly logger?: HttpLogger
  /** Exact paths (query ignored) this handler leaves to its caller. */
  readonly passThrough?: readonly string[]
  /** Told about every backend op an HTTP request ran (e.g. to count it in the gateway's metrics). */
  readonly observe?: HttpOpObserver
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

export const DEFAULT_PASS_THROUGH: readonly string[] = ['/healthz', '/metrics', '/v1/ws']

/** Resolves true when it answered the request, false when the caller should (never rejects). */
export function createHttpHandler(options: HttpHandlerOptions): HttpHandler {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...options.limits }
  const logger = options.logger ?? silentHttpLogger
  const ctx = new HttpContext(options.backend, options.authorizer, limits, logger, options.observe)
  const passThrough = new Set(options.passThrough ?? DEFAULT_PASS_THROUGH)
  let inflight = 0

  return async (req, res) => {
    if (passThrough.has(splitTarget(req.url ?? '/').path)) return false
    const started = Date.now()
    const exchange = new HttpExchange(req, res, limits, logger, started)
    const streaming = exchange.path === '/v1/watch'
    // Watches are counted (and limited) on their own: they stay open.
    if (!streaming) inflight++
    try {
      if (!streaming && inflight > limits.maxInflightRequests) {
        throw new WeftError(ErrorCode.TOO_MANY_REQUESTS, `too many HTTP requests in flight (${limits.maxInflightRequests})`)
      }
      if (exchange.path === '/v1' || exchange.path.startsWith('/v1/')) await serveRest(ctx, exchange)
      else await serveCrush(ctx, exchange)
    } catch (err) {
      try {
        if (err instanceof MethodNotAllowed) exchange.sendError(err, 405, { Allow: err.allow.join(', ') })
        else exchange.sendError(err)
      } catch (sendErr) {
        exchange.logInternal(sendErr)
        res.destroy()
      }
    } finally {
      if (!streaming) inflight--
      logger.debug({ method: exchange.method, path: exchange.path.slice(0, 256), status: res.statusCode, ms: Date.now() - started }, 'http request')
    }
    return true
  }
}
