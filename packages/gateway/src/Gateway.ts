// A whole gateway as a library: the node pool, the router over it, and the
// server in front. apps/gateway only reads config and calls Gateway.start.
import type { Authorizer } from './auth/Authorizer.ts'
import type { GatewayBackend } from './GatewayBackend.ts'
import { GatewayMetrics } from './GatewayMetrics.ts'
import type { HttpOpObserver } from './http/HttpContext.ts'
import { type GatewayAddress, type GatewayHttpHandler, type GatewayLimits, GatewayServer } from './GatewayServer.ts'
import { type Logger, silentLogger } from './Logger.ts'
import { NodePool, type NodePoolOptions } from './NodePool.ts'
import { Router, type RouterOptions } from './Router.ts'

export interface GatewayOptions {
  /** Node API URLs to start from (ws://host:port/v1/ws); the rest is learnt from the cluster. */
  readonly nodes: readonly string[]
  readonly host?: string
  /** 0 picks a free port. */
  readonly port: number
  /** Without one the gateway is open to anyone. */
  readonly authorizer?: Authorizer
  /**
   * Builds the other HTTP routes (REST, crush-compatible) over the backend;
   * `observe` counts each op they run in the gateway's request metrics.
   */
  readonly mountHttp?: (backend: GatewayBackend, observe: HttpOpObserver) => GatewayHttpHandler
  readonly requestTimeoutMs?: number
  readonly limits?: Partial<GatewayLimits>
  readonly pool?: Omit<NodePoolOptions, 'seeds' | 'logger'>
  readonly router?: Omit<RouterOptions, 'nodes' | 'metrics' | 'logger'>
  readonly logger?: Logger
}

export class Gateway {
  readonly pool: NodePool
  readonly router: Router
  readonly server: GatewayServer
  readonly metrics: GatewayMetrics
  address: GatewayAddress | undefined

  private constructor(pool: NodePool, router: Router, server: GatewayServer, metrics: GatewayMetrics) {
    this.pool = pool
    this.router = router
    this.server = server
    this.metrics = metrics
  }

  /** Starts dialling the nodes and listens; does not wait for a node (requests wait, within their deadline). */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const logger = options.logger ?? silentLogger
    const metrics = new GatewayMetrics()
    const pool = new NodePool({ ...options.pool, seeds: options.nodes, logger })
    const router = new Router({ ...options.router, nodes: pool, metrics, logger })
    const httpHandler = options.mountHttp?.(router, (sample) => metrics.observeRequest(sample.op, sample.code, sample.seconds))
    const server = new GatewayServer({
      backend: router,
      port: options.port,
      ...(options.host !== undefined && { host: options.host }),
      ...(options.authorizer && { authorizer: options.authorizer }),
      ...(httpHandler && { httpHandler }),
      ...(options.requestTimeoutMs !== undefined && { requestTimeoutMs: options.requestTimeoutMs }),
      ...(options.limits && { limits: options.limits }),
      metrics,
      nodeCount: () => pool.nodes().length,
      health: () => ({ pool: pool.links() }),
      logger,
    })
    const gateway = new Gateway(pool, router, server, metrics)
    pool.start()
    try {
      gateway.address = await server.start()
    } catch (err) {
      pool.stop()
      throw err
    }
    return gateway
  }

  async stop(): Promise<void> {
    await this.server.stop()
    this.router.closeWatches()
    this.pool.stop()
  }
}
