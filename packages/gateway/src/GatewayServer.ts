// The gateway's front door: one HTTP server carrying the node protocol over
// WebSocket at /v1/ws (so a client can point at a node or a gateway alike),
// GET /healthz, GET /metrics and GET /v1/cluster/members. Other HTTP routes
// (the REST and crush-compatible APIs) plug in through `httpHandler`, which
// sees every non-WebSocket request first.
import { ErrorCode, WeftError } from '@weft/core'
import { closeCodeOf, closeReason, errorBody, httpStatusOf } from '@weft/protocol'
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { type WebSocket, WebSocketServer } from 'ws'
import { Access, type Authorizer, type Principal } from './auth/Authorizer.ts'
import type { GatewayBackend } from './GatewayBackend.ts'
import { GatewayMetrics } from './GatewayMetrics.ts'
import { GatewaySession } from './GatewaySession.ts'
import { type Logger, silentLogger } from './Logger.ts'

export const WS_PATH = '/v1/ws'

/** Handles an HTTP request if it is one of its routes; resolves true when it answered. */
export type GatewayHttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

export interface GatewayLimits {
  /** Largest frame a client may send; a bigger one closes the connection with 1009 (FRAME_TOO_LARGE). */
  readonly maxFrameBytes: number
  /** Requests a connection may have unanswered; more get TOO_MANY_REQUESTS. */
  readonly maxInflightPerConnection: number
  readonly maxConnections: number
  readonly maxWatchesPerConnection: number
  /** Bytes queued for a connection past which a watch event closes it as a slow consumer. */
  readonly maxBufferedBytes: number
}

/** The same defaults as a node's, so a client sees one set of limits. */
export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = {
  maxFrameBytes: 2 * 1024 * 1024,
  maxInflightPerConnection: 256,
  maxConnections: 1024,
  maxWatchesPerConnection: 64,
  maxBufferedBytes: 16 * 1024 * 1024,
}

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

export interface GatewayAddress {
  readonly host: string
  readonly port: number
}

export class GatewayServer {
  readonly metrics: GatewayMetrics
  readonly limits: GatewayLimits
  readonly #options: GatewayServerOptions
  readonly #logger: Logger
  readonly #http: Server
  readonly #wss: WebSocketServer
  readonly #sessions = new Set<GatewaySession>()
  readonly #watchCount = { value: 0 }
  #startedAt = 0
  #stopping: Promise<void> | undefined

  constructor(options: GatewayServerOptions) {
    this.#options = options
    this.#logger = options.logger ?? silentLogger
    this.limits = { ...DEFAULT_GATEWAY_LIMITS, ...options.limits }
    this.metrics = options.metrics ?? new GatewayMetrics()
    this.metrics.observe({
      connections: () => this.#sessions.size,
      watches: () => this.#watchCount.value,
      ...(options.nodeCount && { nodes: options.nodeCount }),
    })
    this.#http = createServer((req, res) => void this.#onHttp(req, res))
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head))
    this.#http.on('error', (err) => this.#logger.error({ err: String(err) }, 'gateway server error'))
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: this.limits.maxFrameBytes, perMessageDeflate: false })
  }

  get connectionCount(): number {
    return this.#sessions.size
  }

  get watchCount(): number {
    return this.#watchCount.value
  }

  async start(): Promise<GatewayAddress> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      this.#http.once('error', onError)
      this.#http.listen(this.#options.port, this.#options.host, () => {
        this.#http.off('error', onError)
        resolve()
      })
    })
    this.#startedAt = Date.now()
    const address = this.#http.address() as AddressInfo
    return { host: address.address, port: address.port }
  }

  /** Closes every client connection (1001, CLOSED), then the server. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  async #stop(): Promise<void> {
    const sessions = [...this.#sessions]
    for (const session of sessions) session.close(ErrorCode.CLOSED, 'gateway stopping')
    const closed = Promise.all(sessions.map((s) => s.closed))
    if ((await Promise.race([closed.then(() => true), sleep(2000, false)])) === false) {
      for (const session of sessions) session.terminate()
      await closed
    }
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()))
    await new Promise<void>((resolve) => {
      if (!this.#http.listening) return resolve()
      this.#http.close(() => resolve())
      this.#http.closeAllConnections()
    })
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.#logger.debug({ err: String(err) }, 'upgrade socket error'))
    if (this.#stopping || pathOf(req) !== WS_PATH) {
      socket.end(`HTTP/1.1 ${this.#stopping ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      return
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, req))
  }

  #onConnection(ws: WebSocket, req: IncomingMessage): void {
    ws.on('error', (err) => this.#logger.debug({ err: String(err) }, 'client socket error'))
    // Refusals are sent as closes after the handshake, so that browsers too can see why.
    const refuse = (code: ErrorCode, message: string) => ws.close(closeCodeOf(code), closeReason(code, message))
    if (this.#stopping) return refuse(ErrorCode.CLOSED, 'gateway stopping')
    if (this.#sessions.size >= this.limits.maxConnections) {
      return refuse(ErrorCode.TOO_MANY_REQUESTS, `this gateway takes at most ${this.limits.maxConnections} connections`)
    }
    let principal: Principal | undefined
    if (this.#options.authorizer) {
      try {
        principal = this.#options.authorizer.authenticate(bearerToken(req))
      } catch (err) {
        const error = errorBody(err)
        return refuse(error.code, error.message)
      }
    }
    const session = new GatewaySession(ws, {
      backend: this.#options.backend,
      metrics: this.metrics,
      logger: this.#logger,
      limits: this.limits,
      requestTimeoutMs: this.#options.requestTimeoutMs ?? 10_000,
      watchCount: this.#watchCount,
      ...(this.#options.authorizer && { authorizer: this.#options.authorizer }),
      ...(principal && { principal }),
    })
    this.#sessions.add(session)
    void session.closed.then(() => this.#sessions.delete(session))
  }

  async #onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (this.#options.httpHandler && (await this.#options.httpHandler(req, res))) return
      const path = pathOf(req)
      if (path !== '/healthz' && path !== '/metrics' && path !== '/v1/cluster/members') return reply(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${path}` } })
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD')
        return reply(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${path} answers GET` } })
      }
      if (path === '/metrics') {
        const text = await this.metrics.registry.metrics()
        res.writeHead(200, { 'Content-Type': this.metrics.registry.contentType })
        res.end(req.method === 'HEAD' ? undefined : text)
        return
      }
      if (path === '/v1/cluster/members') {
        this.#authorizeHttp(req)
        return reply(res, 200, { members: this.#options.backend.members() })
      }
      const nodes = this.#options.nodeCount?.() ?? 1
      reply(res, nodes > 0 ? 200 : 503, {
        status: nodes > 0 ? 'ok' : 'unavailable',
        role: 'gateway',
        uptime: (Date.now() - this.#startedAt) / 1000,
        nodes,
        connections: this.#sessions.size,
        watches: this.#watchCount.value,
        auth: this.#options.authorizer && !this.#options.authorizer.open ? 'tokens' : 'open',
        ...this.#options.health?.(),
      })
    } catch (err) {
      if (err instanceof WeftError) {
        if (!res.headersSent) return reply(res, httpStatusOf(err.code), { error: errorBody(err) })
      } else {
        this.#logger.error({ err: String(err), stack: (err as Error)?.stack }, 'http request failed')
      }
      if (!res.headersSent) reply(res, 500, { error: { code: ErrorCode.INTERNAL, message: 'internal error' } })
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

function pathOf(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname
  } catch {
    return ''
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) })
  res.end(res.req.method === 'HEAD' ? undefined : text)
}
