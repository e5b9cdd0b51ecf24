// The node's client API: one HTTP server carrying the WebSocket protocol at
// /v1/ws (docs/PROTOCOL.md), GET /healthz and GET /metrics. A thin binding:
// requests go to the VersionedStore, watches to the WatchRegistry.
import { ErrorCode } from '@weft/core'
import { closeCodeOf, closeReason } from '@weft/protocol'
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { Registry } from 'prom-client'
import { type WebSocket, WebSocketServer } from 'ws'
import { type Logger, silentLogger } from '../Logger.ts'
import type { VersionedStore } from '../store/VersionedStore.ts'
import { ApiSession } from './ApiSession.ts'
import { ApiMetrics } from './metrics.ts'
import { RequestDedup, type RequestDedupOptions } from './RequestDedup.ts'
import { WatchRegistry } from './WatchRegistry.ts'

export const WS_PATH = '/v1/ws'

export interface ApiLimits {
  /** Largest frame a client may send; a bigger one closes the connection with 1009 (FRAME_TOO_LARGE). */
  readonly maxFrameBytes: number
  /** Requests a connection may have unanswered; more get TOO_MANY_REQUESTS. */
  readonly maxInflightPerConnection: number
  readonly maxConnections: number
  readonly maxWatchesPerConnection: number
  /** Bytes queued for a connection past which a watch event closes it as a slow consumer. */
  readonly maxBufferedBytes: number
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  maxFrameBytes: 2 * 1024 * 1024,
  maxInflightPerConnection: 256,
  maxConnections: 1024,
  maxWatchesPerConnection: 64,
  maxBufferedBytes: 16 * 1024 * 1024,
}

export interface ApiServerOptions {
  readonly store: VersionedStore
  readonly host?: string
  /** 0 picks a free port; start() tells which. */
  readonly port: number
  /** The cluster's members as this node sees them. */
  readonly members: () => unknown[]
  /** More fields for /healthz (e.g. cluster state). */
  readonly health?: () => Record<string, unknown>
  /** Where the API's metrics go; the node may register its own there too. */
  readonly registry?: Registry
  readonly limits?: Partial<ApiLimits>
  readonly dedup?: RequestDedupOptions
  /** Feed entries a resuming watch reads per step (small in tests, to cross many steps). */
  readonly watchReplayPage?: number
  readonly logger?: Logger
}

export interface ApiAddress {
  readonly host: string
  readonly port: number
}

export class ApiServer {
  readonly registry: Registry
  readonly limits: ApiLimits
  readonly #options: ApiServerOptions
  readonly #logger: Logger
  readonly #http: Server
  readonly #wss: WebSocketServer
  readonly #sessions = new Set<ApiSession>()
  readonly #watches: WatchRegistry
  readonly #dedup: RequestDedup
  readonly #metrics: ApiMetrics
  #startedAt = 0
  #stopping: Promise<void> | undefined

  constructor(options: ApiServerOptions) {
    this.#options = options
    this.#logger = options.logger ?? silentLogger
    this.limits = { ...DEFAULT_API_LIMITS, ...options.limits }
    this.registry = options.registry ?? new Registry()
    this.#watches = new WatchRegistry({
      store: options.store,
      logger: this.#logger,
      maxBufferedBytes: this.limits.maxBufferedBytes,
      ...(options.watchReplayPage !== undefined && { replayPage: options.watchReplayPage }),
    })
    this.#dedup = new RequestDedup(options.dedup)
    this.#metrics = new ApiMetrics(this.registry, options.store, { connections: () => this.#sessions.size, watches: () => this.#watches.size })
    this.#http = createServer((req, res) => void this.#onHttp(req, res))
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head))
    this.#http.on('error', (err) => this.#logger.error({ err: String(err) }, 'api server error'))
    // No per-message deflate: a zlib context per connection costs memory, and msgpack is compact.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: this.limits.maxFrameBytes, perMessageDeflate: false })
  }

  /** Listens; resolves with the address bound (the port chosen when given 0). */
  async start(): Promise<ApiAddress> {
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

  /** Closes every connection and watch, then the server. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  async #stop(): Promise<void> {
    this.#watches.stop()
    const sessions = [...this.#sessions]
    for (const session of sessions) session.close(ErrorCode.CLOSED, 'server stopping')
    // A client that does not answer the close handshake is cut off.
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
    this.#metrics.remove()
    this.#dedup.clear()
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.#logger.debug({ err: String(err) }, 'upgrade socket error'))
    if (this.#stopping || pathOf(req) !== WS_PATH) {
      socket.end(`HTTP/1.1 ${this.#stopping ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      return
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws))
  }

  #onConnection(ws: WebSocket): void {
    // An 'error' event without a listener would crash the process.
    ws.on('error', (err) => this.#logger.debug({ err: String(err) }, 'client socket error'))
    if (this.#stopping) {
      ws.close(closeCodeOf(ErrorCode.CLOSED), closeReason(ErrorCode.CLOSED, 'server stopping'))
      return
    }
    if (this.#sessions.size >= this.limits.maxConnections) {
      // Accepted then closed, so that browsers too see why.
      ws.close(closeCodeOf(ErrorCode.TOO_MANY_REQUESTS), closeReason(ErrorCode.TOO_MANY_REQUESTS, `this node takes at most ${this.limits.maxConnections} connections`))
      return
    }
    const session = new ApiSession(ws, {
      store: this.#options.store,
      watches: this.#watches,
      dedup: this.#dedup,
      metrics: this.#metrics,
      members: this.#options.members,
      logger: this.#logger,
      limits: this.limits,
    })
    this.#sessions.add(session)
    void session.closed.then(() => this.#sessions.delete(session))
  }

  async #onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = pathOf(req)
      if (path !== '/healthz' && path !== '/metrics') return reply(res, 404, { error: `no route ${path}` })
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD')
        return reply(res, 405, { error: `${path} answers GET` })
      }
      if (path === '/metrics') {
        const text = await this.registry.metrics()
        res.writeHead(200, { 'Content-Type': this.registry.contentType })
        res.end(req.method === 'HEAD' ? undefined : text)
        return
      }
      const { store } = this.#options
      reply(res, 200, {
        status: 'ok',
        node: store.nodeId,
        uptime: (Date.now() - this.#startedAt) / 1000,
        keys: store.keyCount(),
        feed: store.feedHead(),
        connections: this.#sessions.size,
        watches: this.#watches.size,
        ...this.#options.health?.(),
      })
    } catch (err) {
      this.#logger.error({ err: String(err) }, 'http request failed')
      if (!res.headersSent) reply(res, 500, { status: 'error', error: 'internal error' })
      else res.destroy()
    }
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
