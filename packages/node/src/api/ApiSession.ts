// One client connection to a node: what each request does, over the frame
// handling a gateway shares (FrameSession). Reads and writes go to the
// VersionedStore, watches to the WatchRegistry; the connection's watches end
// with it.
import { Op, type Request, type Results, type WatchRequest, type WatchResult } from '@weft/protocol'
import { type Answer, FrameSession, SessionWatches, type SessionLimits, dropUndefined } from '@weft/protocol/server'
import type { ErrorCode } from '@weft/core'
import type { WebSocket } from 'ws'
import type { Logger } from '../Logger.ts'
import type { VersionedStore } from '../store/VersionedStore.ts'
import type { ApiMetrics } from './metrics.ts'
import type { RequestDedup } from './RequestDedup.ts'
import { isStoreRequest, runStoreOp } from './runStoreOp.ts'
import type { Watch, WatchRegistry } from './WatchRegistry.ts'

export type { SessionLimits }

export interface SessionContext {
  readonly store: VersionedStore
  readonly watches: WatchRegistry
  readonly dedup: RequestDedup
  readonly metrics: ApiMetrics
  readonly members: () => unknown[]
  readonly logger: Logger
  readonly limits: SessionLimits
}

export class ApiSession {
  readonly #ctx: SessionContext
  readonly #frames: FrameSession
  readonly #watches: SessionWatches<Watch>

  constructor(ws: WebSocket, ctx: SessionContext) {
    this.#ctx = ctx
    this.#watches = new SessionWatches(ctx.limits.maxWatchesPerConnection)
    this.#frames = new FrameSession(ws, {
      limits: ctx.limits,
      logger: ctx.logger,
      handle: (request, answer) => this.#handle(request, answer),
      observe: (op, code, seconds) => {
        ctx.metrics.requests.inc({ op, code })
        ctx.metrics.latency.observe({ op }, seconds)
      },
      onClose: () => this.#watches.drain((watch) => ctx.watches.close(watch)),
    })
  }

  /** Resolves once the socket has closed and the session let go of everything. */
  get closed(): Promise<void> {
    return this.#frames.closed
  }

  /** Ends the connection with an error code (and its close code). */
  close(code: ErrorCode, message: string): void {
    this.#frames.close(code, message)
  }

  terminate(): void {
    this.#frames.terminate()
  }

  async #handle(request: Request, answer: Answer): Promise<void> {
    if (request.op === Op.watch) {
      const watch = this.#openWatch(request)
      answer({ watch: watch.id, cursor: watch.cursor } satisfies WatchResult)
      this.#ctx.watches.start(watch)
      return
    }
    const result = await this.#execute(request)
    answer(request.op === Op.merge ? dropUndefined(result) : result)
  }

  async #execute(request: Exclude<Request, WatchRequest>): Promise<Results[Op]> {
    if (isStoreRequest(request)) return runStoreOp(this.#ctx.store, this.#ctx.dedup, request)
    switch (request.op) {
      case Op.unwatch: {
        const watch = this.#watches.get(request.watch)
        if (watch) {
          this.#ctx.watches.close(watch)
          this.#watches.delete(request.watch)
        }
        return { watch: request.watch, removed: watch !== undefined }
      }
      case Op.members:
        return { node: this.#ctx.store.nodeId, members: this.#ctx.members() }
      case Op.ping:
        return { node: this.#ctx.store.nodeId, time: Date.now() }
    }
  }

  #openWatch(request: WatchRequest): Watch {
    return this.#watches.add(request.id, () => {
      // Its events go out through this connection's frames.
      const watch = this.#ctx.watches.open(this.#frames, request)
      watch.onEnd = () => this.#watches.delete(request.id)
      return watch
    })
  }
}
