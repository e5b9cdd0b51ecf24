// The node's client API: one HTTP server carrying the WebSocket protocol at
// /v1/ws (docs/PROTOCOL.md), GET /healthz and GET /metrics. A thin binding:
// the server is the FrameServer a gateway runs too; requests go to the
// VersionedStore, watches to the WatchRegistry.
import { DEFAULT_FRAME_LIMITS, type FrameLimits, FrameServer, type ServerAddress, pathOf, replyJson, replyMetrics } from '@weft/protocol/server'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Registry } from 'prom-client'
import { type Logger, silentLogger } from '../Logger.ts'
import type { VersionedStore } from '../store/VersionedStore.ts'
import { ApiSession } from './ApiSession.ts'
import { ApiMetrics } from './metrics.ts'
import { RequestDedup, type RequestDedupOptions } from './RequestDedup.ts'
import { WatchRegistry } from './WatchRegistry.ts'

export { WS_PATH } from '@weft/protocol/server'

export type ApiLimits = FrameLimits

export const DEFAULT_API_LIMITS: ApiLimits = DEFAULT_FRAME_LIMITS

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

export type ApiAddress = ServerAddress

export class ApiServer {
  readonly registry: Registry
  readonly limits: ApiLimits
  readonly #options: ApiServerOptions
  readonly #logger: Logger
  readonly #server: FrameServer
  readonly #watches: WatchRegistry
  readonly #dedup: RequestDedup
  readonly #metrics: ApiMetrics
  #stopping: Promise<void> | undefined

  constructor(options: ApiServerOptions) {
    this.#options = options
    const logger = (this.#logger = options.logger ?? silentLogger)
    this.limits = { ...DEFAULT_API_LIMITS, ...options.limits }
    this.registry = options.registry ?? new Registry()
    this.#watches = new WatchRegistry({
      store: options.store,
      logger,
      maxBufferedBytes: this.limits.maxBufferedBytes,
      ...(options.watchReplayPage !== undefined && { replayPage: options.watchReplayPage }),
    })
    this.#dedup = new RequestDedup(options.dedup)
    this.#metrics = new ApiMetrics(this.registry, options.store, { connections: () => this.#server.connectionCount, watches: () => this.#watches.size })
    this.#server = new FrameServer({
      ...(options.host !== undefined && { host: options.host }),
      port: options.port,
      limits: this.limits,
      logger,
      role: 'node',
      stoppingMessage: 'server stopping',
      serverErrorMessage: 'api server error',
      openSession: (ws) =>
        new ApiSession(ws, {
          store: options.store,
          watches: this.#watches,
          dedup: this.#dedup,
          metrics: this.#metrics,
          members: options.members,
          logger,
          limits: this.limits,
        }),
      onHttp: (req, res) => this.#onHttp(req, res),
    })
  }

  /** Listens; resolves with the address bound (the port chosen when given 0). */
  start(): Promise<ApiAddress> {
    return this.#server.start()
  }

  /** Closes every connection and watch, then the server. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  async #stop(): Promise<void> {
    this.#watches.stop()
    await this.#server.stop()
    this.#metrics.remove()
    this.#dedup.clear()
  }

  async #onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = pathOf(req)
      if (path !== '/healthz' && path !== '/metrics') return replyJson(res, 404, { error: `no route ${path}` })
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD')
        return replyJson(res, 405, { error: `${path} answers GET` })
      }
      if (path === '/metrics') return await replyMetrics(res, this.registry)
      const { store } = this.#options
      replyJson(res, 200, {
        status: 'ok',
        node: store.nodeId,
        uptime: this.#server.uptime,
        keys: store.keyCount(),
        feed: store.feedHead(),
        connections: this.#server.connectionCount,
        watches: this.#watches.size,
        ...this.#options.health?.(),
      })
    } catch (err) {
      this.#logger.error({ err: String(err) }, 'http request failed')
      if (!res.headersSent) replyJson(res, 500, { status: 'error', error: 'internal error' })
      else res.destroy()
    }
  }
}
