// The gateway's backend: routes each request to a node and survives node
// failures. A key (or a prefix) goes to the node that owns it on a consistent
// hash ring over the connected nodes, so a client reads its own writes; ops
// without a key go to any node in turn. A request whose node fails in a way
// another node might not (connection lost, timeout, UNAVAILABLE, CLOSED, ...)
// moves to the next node on the ring after an exponential backoff with full
// jitter, for as long as the request's deadline allows. Errors about the
// request itself (KEY_NOT_FOUND, HEAD_MISMATCH, INVALID_*, ...) are answered
// at once.
//
// Writes always carry a requestId (one is made when the client gave none):
// the node records it in the revision it makes and replicates it, so a write
// retried on another node after the first one took it is answered, not
// applied twice. A write waits at least `writeRetryFloorMs` before its retry,
// so the first node's gossip has time to arrive.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { ErrorCode, WeftError } from '@weft/core'
import { Op, WRITE_OPS } from '@weft/protocol'
import type { GatewayBackend, RequestContext, WatchCallbacks, WatchHandle } from './GatewayBackend.ts'
import type { GatewayMetrics } from './GatewayMetrics.ts'
import { type BackoffOptions, fullJitter } from './backoff.ts'
import { DEFAULT_VIRTUAL_NODES, HashRing } from './HashRing.ts'
import { type Logger, silentLogger } from './Logger.ts'
import type { NodeDirectory, NodeHandle } from './NodeDirectory.ts'
import type { RecentIdsOptions } from './RecentIds.ts'
import { RETRYABLE_CODES, asWeftError } from './retryable.ts'
import { RoutedWatch, type WatchRouting } from './RoutedWatch.ts'

export interface RouterOptions {
  readonly nodes: NodeDirectory
  readonly metrics?: GatewayMetrics
  readonly logger?: Logger
  /** Waits between attempts: full jitter under base * 2^attempt, at most max. */
  readonly backoff?: BackoffOptions
  /** A write's retry waits at least this (ms) on top of the jitter. */
  readonly writeRetryFloorMs?: number
  /** Longest wait for one node's answer (the request's deadline may cut it shorter). */
  readonly attemptTimeoutMs?: number
  readonly virtualNodes?: number
  readonly watch?: {
    /** How long a watch that lost its node looks for another before it ends. */
    readonly failoverTimeoutMs?: number
    readonly dedup?: Partial<RecentIdsOptions>
  }
  readonly now?: () => number
  readonly sleep?: (ms: number) => Promise<void>
  readonly random?: () => number
  readonly newRequestId?: () => string
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 50, maxMs: 1000 }
export const DEFAULT_DEDUP: RecentIdsOptions = { windowMs: 30_000, maxIds: 65_536 }

export class Router implements GatewayBackend {
  readonly #nodes: NodeDirectory
  readonly #metrics: GatewayMetrics | undefined
  readonly #logger: Logger
  readonly #backoff: BackoffOptions
  readonly #writeRetryFloorMs: number
  readonly #attemptTimeoutMs: number
  readonly #virtualNodes: number
  readonly #now: () => number
  readonly #sleep: (ms: number) => Promise<void>
  readonly #random: () => number
  readonly #newRequestId: () => string
  readonly #watchOptions: RouterOptions['watch']
  readonly #epochs = new Map<string, string>()
  readonly #watches = new Set<RoutedWatch>()
  #ring = new HashRing([])
  #byPeer = new Map<string, NodeHandle>()
  #ringVersion = -1
  #turn = 0

  constructor(options: RouterOptions) {
    this.#nodes = options.nodes
    this.#metrics = options.metrics
    this.#logger = options.logger ?? silentLogger
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF
    this.#writeRetryFloorMs = options.writeRetryFloorMs ?? 100
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? 5000
    this.#virtualNodes = options.virtualNodes ?? DEFAULT_VIRTUAL_NODES
    this.#now = options.now ?? Date.now
    this.#sleep = options.sleep ?? ((ms) => sleep(ms))
    this.#random = options.random ?? Math.random
    this.#newRequestId = options.newRequestId ?? randomUUID
    this.#watchOptions = options.watch
  }

  /** Open watches (for metrics and health). */
  get watchCount(): number {
    return this.#watches.size
  }

  members(): unknown[] {
    return this.#nodes.members()
  }

  /** The node a key (or prefix) routes to now. */
  ownerOf(key: string): string | undefined {
    return this.#currentRing().lookup(key)
  }

  async request(op: string, params: Record<string, unknown>, context: RequestContext): Promise<unknown> {
    if (op === Op.watch || op === Op.unwatch) throw new WeftError(ErrorCode.INVALID_ARGUMENT, `${op} is not a request: use watch()`)
    const write = WRITE_OPS.has(op as Op)
    const sent = write && params.requestId === undefined ? { ...params, requestId: this.#newRequestId() } : params
    const route = routeOf(params)
    const tried = new Set<string>()
    let lastError: WeftError | undefined
    let reachedNode = false
    let previous: string | undefined
    let attempts = 0
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        // A write that may have reached a node waits for that node's gossip before trying another.
        const wait = (write && reachedNode ? this.#writeRetryFloorMs : 0) + fullJitter(attempt, this.#backoff, this.#random)
        if (this.#now() + wait >= context.deadline) break
        this.#metrics?.retries.inc({ op })
        await this.#sleep(wait)
      }
      const remaining = context.deadline - this.#now()
      if (remaining <= 0) break
      const node = this.#pick(route, tried)
      if (!node) continue
      if (previous !== undefined && previous !== node.peerId) this.#metrics?.failovers.inc({ kind: 'request' })
      previous = node.peerId
      attempts++
      try {
        return await node.request(op, sent, Math.min(remaining, this.#attemptTimeoutMs))
      } catch (err) {
        const error = asWeftError(err)
        if (!RETRYABLE_CODES.has(error.code)) throw error
        lastError = error
        reachedNode = true
        tried.add(node.peerId)
        this.#logger.debug({ op, node: node.peerId, code: error.code, err: error.message }, 'attempt failed; retrying')
      }
    }
    if (!lastError) throw new WeftError(ErrorCode.UNAVAILABLE, 'no node is reachable')
    const code = lastError.code === ErrorCode.CLOSED ? ErrorCode.UNAVAILABLE : lastError.code
    throw new WeftError(code, `gave up after ${attempts} attempt(s): ${lastError.message}`, lastError.details as Record<string, unknown> | undefined)
  }

  async watch(params: Record<string, unknown>, callbacks: WatchCallbacks, context: RequestContext): Promise<WatchHandle> {
    const watch = new RoutedWatch(
      params,
      {
        onEvent: (event) => callbacks.onEvent(event),
        onEnd: (error) => {
          this.#watches.delete(watch)
          callbacks.onEnd(error)
        },
      },
      this.#watchRouting,
      {
        backoff: this.#backoff,
        attemptTimeoutMs: this.#attemptTimeoutMs,
        failoverTimeoutMs: this.#watchOptions?.failoverTimeoutMs ?? 30_000,
        dedup: { ...DEFAULT_DEDUP, ...this.#watchOptions?.dedup },
        ...(this.#metrics && { metrics: this.#metrics }),
        logger: this.#logger,
        now: this.#now,
        sleep: this.#sleep,
        random: this.#random,
      },
    )
    this.#watches.add(watch)
    try {
      await watch.start(context.deadline)
    } catch (err) {
      this.#watches.delete(watch)
      watch.close()
      throw err
    }
    return {
      cursor: watch.cursor,
      close: () => {
        this.#watches.delete(watch)
        watch.close()
      },
    }
  }

  /** Closes every watch (the gateway is stopping). */
  closeWatches(): void {
    for (const watch of this.#watches) watch.close()
    this.#watches.clear()
  }

  readonly #watchRouting: WatchRouting = {
    pick: (route, tried) => this.#pick(route, tried),
    nodeWithEpoch: (epoch) => {
      this.#currentRing()
      for (const [peerId, known] of this.#epochs) if (known === epoch) return this.#byPeer.get(peerId)
      return undefined
    },
    learnEpoch: (peerId, epoch) => {
      this.#epochs.set(peerId, epoch)
    },
  }

  /** The first node in `route`'s ring order not yet tried; all tried: start over. */
  #pick(route: string | undefined, tried: Set<string>): NodeHandle | undefined {
    const ring = this.#currentRing()
    if (ring.size === 0) return undefined
    let order: readonly string[]
    if (route !== undefined) order = ring.preference(route)
    else {
      // No key: any node, in turn.
      const start = this.#turn++ % ring.size
      order = [...ring.peers.slice(start), ...ring.peers.slice(0, start)]
    }
    let peer = order.find((p) => !tried.has(p))
    if (peer === undefined) {
      tried.clear()
      peer = order[0]
    }
    return peer === undefined ? undefined : this.#byPeer.get(peer)
  }

  #currentRing(): HashRing {
    if (this.#ringVersion !== this.#nodes.version) {
      const nodes = this.#nodes.nodes()
      this.#ringVersion = this.#nodes.version
      this.#byPeer = new Map(nodes.map((n) => [n.peerId, n]))
      this.#ring = new HashRing(this.#byPeer.keys(), this.#virtualNodes)
      this.#logger.debug({ nodes: this.#ring.peers }, 'ring rebuilt')
    }
    return this.#ring
  }
}

/** What a request routes by: its key, else its prefix, else nothing (any node). */
export function routeOf(params: Record<string, unknown>): string | undefined {
  if (typeof params.key === 'string') return params.key
  if (typeof params.prefix === 'string') return params.prefix
  return undefined
}
