// One client watch, carried by one node at a time. When that node's watch
// ends (the node died, its connection dropped, its replay failed) the watch
// opens again on another node and resumes:
//
// - on the node it was on (same feed epoch), exactly, from its last cursor;
// - on any other node, from `since`: the node replays what it stored from
//   that time (less its margin), and events already delivered are dropped by
//   revision id (RecentIds). No gap, no duplicate.
//
// `since` only moves forward, to the newest revision timestamp delivered
// (capped by the time it arrived). Events come in the node's feed order, so
// whatever is still undelivered was stored after the last event was made.
import { ErrorCode, WeftError } from '@weft/core'
import { type Cursor, parseCursor } from '@weft/protocol'
import type { WatchCallbacks, WatchHandle } from './GatewayBackend.ts'
import { formatGatewayCursor, parseGatewayCursor } from './GatewayCursor.ts'
import type { GatewayMetrics } from './GatewayMetrics.ts'
import { type BackoffOptions, fullJitter } from './backoff.ts'
import type { Logger } from './Logger.ts'
import type { NodeHandle, NodeWatch } from './NodeDirectory.ts'
import { RecentIds, type RecentIdsOptions } from './RecentIds.ts'
import { RETRYABLE_CODES, asWeftError } from './retryable.ts'

export interface WatchRouting {
  /** The next node to try for `route`, skipping `tried` (cleared when all were tried). */
  pick(route: string, tried: Set<string>): NodeHandle | undefined
  /** The connected node whose feed has this epoch, if known. */
  nodeWithEpoch(epoch: string): NodeHandle | undefined
  /** Records a node's feed epoch (learnt from its cursors). */
  learnEpoch(peerId: string, epoch: string): void
}

export interface RoutedWatchOptions {
  readonly backoff: BackoffOptions
  readonly attemptTimeoutMs: number
  /** How long a watch that lost its node keeps looking for another before it ends. */
  readonly failoverTimeoutMs: number
  readonly dedup: RecentIdsOptions
  readonly metrics?: GatewayMetrics
  readonly logger: Logger
  readonly now: () => number
  readonly sleep: (ms: number) => Promise<void>
  readonly random: () => number
}

/** Node end codes after which the watch moves on (anything else ends it for the client). */
const MOVE_ON = new Set<ErrorCode>([...RETRYABLE_CODES, ErrorCode.INTERNAL, ErrorCode.STORAGE_CORRUPT])

interface Current {
  readonly peerId: string
  readonly generation: number
  watch?: NodeWatch
}

export class RoutedWatch implements WatchHandle {
  cursor = ''
  readonly #target: Record<string, unknown>
  readonly #route: string
  readonly #callbacks: WatchCallbacks
  readonly #routing: WatchRouting
  readonly #options: RoutedWatchOptions
  readonly #seen: RecentIds
  /** Exact resume point on the node whose feed it names. */
  #node: (Cursor & { generation: number }) | undefined
  /** A node cursor the client gave (not a gateway one): tried once, as is. */
  #clientAfter: string | undefined
  /** Everything not yet delivered was stored at or after this (ms), modulo clock skew. */
  #since: number | undefined
  #generation = 0
  #current: Current | undefined
  #closed = false
  /** Node watches that ended since the last event delivered: each next one waits longer. */
  #restarts = 0

  constructor(params: Record<string, unknown>, callbacks: WatchCallbacks, routing: WatchRouting, options: RoutedWatchOptions) {
    const { after, since, ...target } = params
    this.#target = target
    this.#route = typeof target.key === 'string' ? target.key : String(target.prefix ?? '')
    this.#callbacks = callbacks
    this.#routing = routing
    this.#options = options
    this.#seen = new RecentIds(options.dedup)
    if (typeof after === 'string') {
      const resume = parseGatewayCursor(after)
      if (resume) {
        this.#node = { ...resume.node, generation: 0 }
        this.#since = resume.since
      } else {
        this.#clientAfter = after
      }
    } else if (typeof since === 'number') {
      this.#since = since
    }
  }

  /** Opens the watch on a node; rejects (and the watch is over) if none takes it before `deadline`. */
  async start(deadline: number): Promise<void> {
    await this.#establish(deadline)
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#current?.watch?.close()
    this.#current = undefined
  }

  get closed(): boolean {
    return this.#closed
  }

  /** `firstAttempt` > 0 waits before the first try (a watch that keeps ending is not reopened in a tight loop). */
  async #establish(deadline: number, firstAttempt = 0): Promise<void> {
    const { now, sleep, random } = this.#options
    const tried = new Set<string>()
    let lastError: WeftError | undefined
    for (let attempt = firstAttempt; ; attempt++) {
      if (this.#closed) return
      if (attempt > 0) {
        const wait = fullJitter(attempt, this.#options.backoff, random)
        if (now() + wait >= deadline) break
        await sleep(wait)
        if (this.#closed) return
      }
      const remaining = deadline - now()
      if (remaining <= 0) break
      const exact = this.#node ? this.#routing.nodeWithEpoch(this.#node.epoch) : undefined
      const node = exact && !tried.has(exact.peerId) ? exact : this.#routing.pick(this.#route, tried)
      if (!node) continue
      const params = this.#resumeParams(node)
      const generation = ++this.#generation
      const current: Current = { peerId: node.peerId, generation }
      this.#current = current
      const startedAt = now()
      try {
        const watch = await node.watch(params, this.#eventsFor(current), Math.min(remaining, this.#options.attemptTimeoutMs))
        if (this.#closed || this.#generation !== generation) {
          watch.close()
          return
        }
        current.watch = watch
        this.#opened(node.peerId, watch.cursor, generation, startedAt)
        return
      } catch (err) {
        const error = asWeftError(err)
        if (this.#generation === generation) this.#current = undefined
        if (error.code === ErrorCode.CURSOR_EXPIRED && params.after !== undefined && this.#since !== undefined) {
          // That node's feed is not the one the cursor names (wiped, or another node): resume by time.
          this.#node = undefined
          this.#clientAfter = undefined
          attempt--
          continue
        }
        if (!RETRYABLE_CODES.has(error.code)) throw error
        lastError = error
        tried.add(node.peerId)
        this.#options.logger.debug({ node: node.peerId, err: error.message }, 'watch attempt failed')
      }
    }
    if (!lastError) throw new WeftError(ErrorCode.UNAVAILABLE, 'no node is reachable')
    throw lastError.code === ErrorCode.CLOSED ? new WeftError(ErrorCode.UNAVAILABLE, lastError.message) : lastError
  }

  #resumeParams(node: NodeHandle): Record<string, unknown> {
    if (this.#clientAfter !== undefined) return { ...this.#target, after: this.#clientAfter }
    const exact = this.#node && this.#routing.nodeWithEpoch(this.#node.epoch)?.peerId === node.peerId
    if (exact) return { ...this.#target, after: `${this.#node!.epoch}:${this.#node!.seq}` }
    if (this.#since !== undefined) return { ...this.#target, since: this.#since }
    return this.#target
  }

  #opened(peerId: string, nodeCursor: string, generation: number, startedAt: number): void {
    this.#clientAfter = undefined
    let cursor: Cursor | undefined
    try {
      cursor = parseCursor(nodeCursor)
    } catch {
      cursor = undefined
    }
    if (cursor) {
      this.#routing.learnEpoch(peerId, cursor.epoch)
      // Events may have come before the answer: they are further along.
      if (this.#node?.generation !== generation) this.#node = { ...cursor, generation }
    }
    // A fresh watch: everything it must deliver was stored after it was asked for.
    this.#since ??= startedAt
    if (this.cursor === '' && this.#node) this.cursor = formatGatewayCursor({ node: this.#node, since: this.#since })
  }

  #eventsFor(current: Current) {
    return {
      onEvent: (event: Record<string, unknown>) => this.#onEvent(current, event),
      onEnd: (error: WeftError) => this.#onEnd(current, error),
    }
  }

  #onEvent(current: Current, event: Record<string, unknown>): void {
    if (this.#closed || this.#generation !== current.generation) return
    let cursor: Cursor
    try {
      cursor = parseCursor(event.cursor)
    } catch {
      this.#options.logger.warn({ node: current.peerId }, 'a node sent a watch event without a valid cursor')
      return
    }
    this.#node = { ...cursor, generation: current.generation }
    const revision = event.revision as { id?: unknown; ts?: unknown } | undefined
    const receivedAt = this.#options.now()
    if (typeof revision?.id === 'string') {
      if (!this.#seen.add(revision.id, receivedAt)) {
        this.#options.metrics?.duplicatesDropped.inc()
        return
      }
      this.#restarts = 0
      if (typeof revision.ts === 'number') this.#since = Math.max(this.#since ?? 0, Math.min(revision.ts, receivedAt))
    }
    this.#callbacks.onEvent({ ...event, cursor: formatGatewayCursor({ node: cursor, since: this.#since ?? receivedAt }) })
  }

  #onEnd(current: Current, error: WeftError): void {
    if (this.#closed || this.#generation !== current.generation) return
    this.#current = undefined
    if (!MOVE_ON.has(error.code)) {
      this.#end(error)
      return
    }
    this.#options.logger.info({ node: current.peerId, err: error.message }, 'watch lost its node: resuming on another')
    this.#options.metrics?.failovers.inc({ kind: 'watch' })
    this.#establish(this.#options.now() + this.#options.failoverTimeoutMs, this.#restarts++).catch((err: unknown) => this.#end(asWeftError(err)))
  }

  #end(error: WeftError): void {
    if (this.#closed) return
    this.#closed = true
    this.#callbacks.onEnd(error)
  }
}
