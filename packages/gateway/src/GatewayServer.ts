// The gateway's front door: one HTTP server carrying the node protocol over
// WebSocket at /v1/ws (so a client can point at a node or a gateway alike),
// GET /healthz, GET /metrics and GET /v1/cluster/members. The server is the
// FrameServer a node runs too; other HTTP routes (the REST and
// crush-compatible APIs) plug in through `httpHandler`, which sees every
// non-WebSocket request first.
import { ErrorCode, WeftError } from '@weft/core'
import { errorBody, httpStatusOf } from '@weft/protocol'
import { DEFAULT_FRAME_LIMITS, type FrameLimits, FrameServer, type ServerAddress, pathOf, replyJson, replyMetrics } from '@weft/protocol/server'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { WebSocket } from 'ws'
import { Access, type Authorizer, type Principal } from './auth/Authorizer.ts'
import type { GatewayBackend } from './GatewayBackend.ts'
import { GatewayMetrics } from './GatewayMetrics.ts'
import { GatewaySession } from './GatewaySession.ts'
import { type Logger, silentLogger } from './Logger.ts'

export { WS_PATH } from '@weft/protocol/server'

/** Handles an HTTP request if it is one of its routes; resolves true when it answered. */
export type GatewayHttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

export type GatewayLimits = FrameLimits

/** The same defaults as a node's, so a client sees one set of limits. */
export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = DEFAULT_FRAME_LIMITS

export interface GatewayServerOptions {
  readonly backend: GatewayBackend
  readonly host?: string
  /** 0 picks a free port; start() tells which. */
  readonly port: number
  /** Without one, anyone may do anything. */
  readonly authorizer?: Authorizer
  /** Other HTTP routes (REST, crush-compatible), asked first for every non-WebSocket request. */
  readonly httpHandler?: GatewayHttpHandler
  readonly metrics?: GatewayMetrics
  readonly limits?: Partial<GatewayLimits>
  /** Deadline of each request, retries and failovers included. */
  readonly requestTimeoutMs?: number
  /** Nodes the gateway can route to now: /healthz answers 503 at 0. */
  readonly nodeCount?: () => number
  /** More fields for /healthz. */
  readonly health?: () => Record<string, unknown>
  readonly logger?: Logger
}

export type GatewayAddress = ServerAddress

export class GatewayServer {
  readonly metrics: GatewayMetrics
  readonly limits: GatewayLimits
  readonly #options: GatewayServerOptions
  readonly #logger: Logger
  readonly #server: FrameServer
  readonly #watchCount = { value: 0 }

  constructor(options: GatewayServerOptions) {
    this.#options = options
    const logger = (this.#logger = options.logger ?? silentLogger)
    this.limits = { ...DEFAULT_GATEWAY_LIMITS, ...options.limits }
    this.metrics = options.metrics ?? new GatewayMetrics()
    this.metrics.observe({
      connections: () => this.#server.connectionCount,
      watches: () => this.#watchCount.value,
      ...(options.nodeCount && { nodes: options.nodeCount }),
    })
    this.#server = new FrameServer({
      ...(options.host !== undefined && { host: options.host }),
      port: options.port,
      limits: this.limits,
      logger,
      role: 'gateway',
      stoppingMessage: 'gateway stopping',
      serverErrorMessage: 'gateway server error',
      openSession: (ws, req) => this.#openSession(ws, req),
      onHttp: (req, res) => this.#onHttp(req, res),
    })
  }

  get connectionCount(): number {
    return this.#server.connectionCount
  }

  get watchCount(): number {
    return this.#watchCount.value
  }

  start(): Promise<GatewayAddress> {
    return this.#server.start()
  }

  /** Closes every client connection (1001, CLOSED), then the server. */
  stop(): Promise<void> {
    return this.#server.stop()
  }

  /** Authenticates the connection (a failure refuses it), then serves it. */
  #openSession(ws: WebSocket, req: IncomingMessage): GatewaySession {
    const { authorizer } = this.#options
    const principal: Principal | undefined = authorizer?.authenticate(bearerToken(req))
    return new GatewaySession(ws, {
      backend: this.#options.backend,
      metrics: this.metrics,
      logger: this.#logger,
      limits: this.limits,
      requestTimeoutMs: this.#options.requestTimeoutMs ?? 10_000,
      watchCount: this.#watchCount,
      ...(authorizer && { authorizer }),
      ...(principal && { principal }),
    })
  }

  async #onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (this.#options.httpHandler && (await this.#options.httpHandler(req, res))) return
      const path = pathOf(req)
      if (path !== '/healthz' && path !== '/metrics' && path !== '/v1/cluster/members') return replyJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${path}` } })
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD')
        return replyJson(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${path} answers GET` } })
      }
      if (path === '/metrics') return await replyMetrics(res, this.metrics.registry)
      if (path === '/v1/cluster/members') {
        this.#authorizeHttp(req)
        return replyJson(res, 200, { members: this.#options.backend.members() })
      }
      const nodes = this.#options.nodeCount?.() ?? 1
      replyJson(res, nodes > 0 ? 200 : 503, {
        status: nodes > 0 ? 'ok' : 'unavailable',
        role: 'gateway',
        uptime: this.#server.uptime,
        nodes,
        connections: this.#server.connectionCount,
        watches: this.#watchCount.value,
        auth: this.#options.authorizer && !this.#options.authorizer.open ? 'tokens' : 'open',
        ...this.#options.health?.(),
      })
    } catch (err) {
      if (err instanceof WeftError) {
        if (!res.headersSent) return replyJson(res, httpStatusOf(err.code), { error: errorBody(err) })
      } else {
        this.#logger.error({ err: String(err), stack: (err as Error)?.stack }, 'http request failed')
      }
      if (!res.headersSent) replyJson(res, 500, { error: { code: ErrorCode.INTERNAL, message: 'internal error' } })
      else res.destroy()
    }
  }

  #authorizeHttp(req: IncomingMessage): void {
    const authorizer = this.#options.authorizer
    if (!authorizer) return
    authorizer.authorize(authorizer.authenticate(bearerToken(req)), Access.read, '')
  }
}

/** The bearer token of a request: `Authorization: Bearer <token>`, else `?token=`. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (match) return match[1]
  }
  try {
    return new URL(req.url ?? '/', 'http://localhost').searchParams.get('token') ?? undefined
  } catch {
    return undefined
  }
}
