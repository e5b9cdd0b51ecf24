// One client connection to the gateway: the node protocol (docs/PROTOCOL.md)
// over the frame handling a node shares (FrameSession), so validation, errors
// and limits are a node's; each request is authorized, then handed to the
// backend (which routes, retries and fails over). A watch's events that come
// before its answer wait for it.
import { ErrorCode, WeftError } from '@weft/core'
import { Op, type Request, type RequestId, type ServerFrame, type WatchRequest, errorBody } from '@weft/protocol'
import { type Answer, FrameSession, SessionWatches, type SessionLimits } from '@weft/protocol/server'
import type { WebSocket } from 'ws'
import type { Authorizer, Principal } from './auth/Authorizer.ts'
import { requiredAccess } from './auth/requiredAccess.ts'
import type { GatewayBackend, RequestContext, WatchHandle } from './GatewayBackend.ts'
import type { GatewayMetrics } from './GatewayMetrics.ts'
import type { Logger } from './Logger.ts'

export { INVALID_OP, OK_CODE } from '@weft/protocol/server'
export type { SessionLimits }

export interface SessionContext {
  readonly backend: GatewayBackend
  readonly metrics: GatewayMetrics
  readonly logger: Logger
  readonly limits: SessionLimits
  /** Deadline of each request, retries included. */
  readonly requestTimeoutMs: number
  readonly authorizer?: Authorizer
  /** Who this connection authenticated as (with an authorizer). */
  readonly principal?: Principal
  /** Open watches across sessions, for the gauge. */
  readonly watchCount: { value: number }
}

interface SessionWatch {
  handle?: WatchHandle
  /** The client has the watch's answer: events go straight out. */
  answered: boolean
  /** Events that came before the answer. */
  readonly early: Record<string, unknown>[]
  /** The watch ended before the answer went out. */
  ended?: WeftError
  /** Unwatched (or the connection closed) before the backend answered. */
  cancelled: boolean
}

export class GatewaySession {
  readonly #ctx: SessionContext
  readonly #frames: FrameSession
  readonly #watches: SessionWatches<SessionWatch>

  constructor(ws: WebSocket, ctx: SessionContext) {
    this.#ctx = ctx
    this.#watches = new SessionWatches(ctx.limits.maxWatchesPerConnection)
    this.#frames = new FrameSession(ws, {
      limits: ctx.limits,
      logger: ctx.logger,
      handle: (request, answer) => this.#handle(request, answer),
      observe: (op, code, seconds) => ctx.metrics.observeRequest(op, code, seconds),
      onClose: () => this.#watches.drain((watch) => this.#closeWatch(watch)),
      corked: true,
    })
  }

  /** Resolves once the socket has closed and the session let go of everything. */
  get closed(): Promise<void> {
    return this.#frames.closed
  }

  get isOpen(): boolean {
    return this.#frames.isOpen()
  }

  get watchCount(): number {
    return this.#watches.size
  }

  /** Ends the connection with an error code (and its close code). */
  close(code: ErrorCode, message: string): void {
    this.#frames.close(code, message)
  }

  terminate(): void {
    this.#frames.terminate()
  }

  send(frame: ServerFrame): void {
    this.#frames.send(frame)
  }

  async #handle(request: Request, answer: Answer): Promise<void> {
    this.#authorize(request)
    if (request.op === Op.watch) return this.#openWatch(request, answer)
    if (request.op === Op.unwatch) {
      const watch = this.#watches.get(request.watch)
      if (watch) this.#closeWatch(watch, request.watch)
      return answer({ watch: request.watch, removed: watch !== undefined })
    }
    const { id: _id, op: _op, ...params } = request
    answer(await this.#ctx.backend.request(request.op, params, this.#context()))
  }

  #context(): RequestContext {
    const principal = this.#ctx.principal?.name
    return { deadline: Date.now() + this.#ctx.requestTimeoutMs, ...(principal !== undefined && { principal }) }
  }

  /** Read on what a read touches, write on what a write touches, as the HTTP routes check (requiredAccess). */
  #authorize(request: Request): void {
    const authorizer = this.#ctx.authorizer
    if (!authorizer) return
    const principal = this.#ctx.principal
    if (!principal) throw new WeftError(ErrorCode.UNAUTHORIZED, 'not authenticated')
    const need = requiredAccess(request.op, request as unknown as Readonly<Record<string, unknown>>)
    if (need) authorizer.authorize(principal, need.access, need.scope)
  }

  async #openWatch(request: WatchRequest, answer: Answer): Promise<void> {
    const watch = this.#watches.add(request.id, () => ({ answered: false, early: [], cancelled: false }))
    this.#ctx.watchCount.value++
    const { id: _id, op: _op, ...params } = request
    let handle: WatchHandle
    try {
      handle = await this.#ctx.backend.watch(
        params,
        {
          onEvent: (event) => {
            if (watch.cancelled) return
            if (watch.answered) this.#frames.sendEvent(request.id, event)
            else watch.early.push(event)
          },
          onEnd: (error) => {
            if (watch.cancelled) return
            if (!watch.answered) {
              watch.ended = error
              return
            }
            this.#forget(watch, request.id)
            this.#frames.send({ id: request.id, ended: errorBody(error) })
          },
        },
        this.#context(),
      )
    } catch (err) {
      this.#forget(watch, request.id)
      throw err
    }
    watch.handle = handle
    if (watch.cancelled) {
      handle.close()
      return
    }
    answer({ watch: request.id, cursor: handle.cursor ?? '' })
    watch.answered = true
    for (const event of watch.early.splice(0)) this.#frames.sendEvent(request.id, event)
    if (watch.ended) {
      this.#forget(watch, request.id)
      this.#frames.send({ id: request.id, ended: errorBody(watch.ended) })
    }
  }

  #closeWatch(watch: SessionWatch, id?: RequestId): void {
    watch.handle?.close()
    this.#forget(watch, id)
  }

  /** Once per watch: off this connection's table (if `id` is given and it is still there) and off the gauge. */
  #forget(watch: SessionWatch, id?: RequestId): void {
    if (watch.cancelled) return
    watch.cancelled = true
    if (id !== undefined) this.#watches.delete(id, watch)
    this.#ctx.watchCount.value--
  }
}
