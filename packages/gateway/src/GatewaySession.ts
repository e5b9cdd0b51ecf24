// One client connection to the gateway: the node protocol (docs/PROTOCOL.md)
// with the same validation, errors and limits as a node, each request handed
// to the backend (which routes, retries and fails over). Nothing a client
// sends can throw out of here; every failure becomes an error frame and the
// connection stays open.
import { ErrorCode, WeftError } from '@weft/core'
import {
  type ErrorResponse,
  Op,
  type Request,
  type RequestId,
  type ServerFrame,
  type WatchRequest,
  closeCodeOf,
  closeReason,
  decodeFrame,
  errorBody,
  pack,
  parseRequest,
  requestIdOf,
} from '@weft/protocol'
import { type RawData, WebSocket } from 'ws'
import type { Authorizer, Principal } from './auth/Authorizer.ts'
import { requiredAccess } from './auth/requiredAccess.ts'
import type { GatewayBackend, RequestContext, WatchHandle } from './GatewayBackend.ts'
import { corkedSend } from './corkedSend.ts'
import type { GatewayMetrics } from './GatewayMetrics.ts'
import type { Logger } from './Logger.ts'

/** Metric label for frames whose op could not be read. */
export const INVALID_OP = 'invalid'
export const OK_CODE = 'OK'

export interface SessionLimits {
  readonly maxInflightPerConnection: number
  readonly maxWatchesPerConnection: number
  readonly maxBufferedBytes: number
}

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
  readonly #ws: WebSocket
  readonly #ctx: SessionContext
  readonly #watches = new Map<string, SessionWatch>()
  #inflight = 0
  #drainTimer: NodeJS.Timeout | undefined
  #disposed = false
  readonly closed: Promise<void>

  constructor(ws: WebSocket, ctx: SessionContext) {
    this.#ws = ws
    this.#ctx = ctx
    this.closed = new Promise((resolve) => {
      ws.on('close', () => {
        this.#dispose()
        resolve()
      })
    })
    ws.on('message', (data, isBinary) => void this.#handle(data, isBinary))
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN
  }

  get watchCount(): number {
    return this.#watches.size
  }

  /** Ends the connection with an error code (and its close code). */
  close(code: ErrorCode, message: string): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
      this.#ws.close(closeCodeOf(code), closeReason(code, message))
    }
    this.#stopDrainWait()
    if (this.#ws.isPaused) this.#ws.resume()
  }

  terminate(): void {
    this.#ws.terminate()
  }

  send(frame: ServerFrame): void {
    if (!this.isOpen) return
    let bytes: Uint8Array
    try {
      bytes = pack(frame)
    } catch (err) {
      this.#ctx.logger.error({ err: String(err) }, 'could not encode a frame')
      if (!('ok' in frame)) return
      bytes = pack({ id: frame.id, ok: false, error: { code: ErrorCode.INTERNAL, message: 'could not encode the result' } } satisfies ErrorResponse)
    }
    corkedSend(this.#ws, bytes)
    if (this.#ws.bufferedAmount > this.#ctx.limits.maxBufferedBytes) this.#pauseUntilDrained()
  }

  async #handle(data: RawData, isBinary: boolean): Promise<void> {
    const started = performance.now()
    let id: RequestId | null = null
    let op: string = INVALID_OP
    let counted = false
    try {
      if (!isBinary) throw new WeftError(ErrorCode.BAD_FRAME, 'frames must be binary messages holding one msgpack map')
      const frame = decodeFrame(toBytes(data))
      id = requestIdOf(frame)
      if (typeof frame.op === 'string' && Object.hasOwn(Op, frame.op)) op = frame.op
      const request = parseRequest(frame)
      if (this.#inflight >= this.#ctx.limits.maxInflightPerConnection) {
        throw new WeftError(ErrorCode.TOO_MANY_REQUESTS, `more than ${this.#ctx.limits.maxInflightPerConnection} requests in flight on this connection`)
      }
      this.#inflight++
      counted = true
      this.#authorize(request)
      if (request.op === Op.watch) {
        await this.#openWatch(request, started)
        return
      }
      if (request.op === Op.unwatch) {
        const key = watchKey(request.watch)
        const watch = this.#watches.get(key)
        if (watch) this.#closeWatch(key, watch)
        this.#respond(request.id, op, started, { watch: request.watch, removed: watch !== undefined })
        return
      }
      const { id: _id, op: _op, ...params } = request
      const result = await this.#ctx.backend.request(request.op, params, this.#context())
      this.#respond(request.id, op, started, result)
    } catch (err) {
      if (!(err instanceof WeftError)) this.#ctx.logger.error({ err: String(err), stack: (err as Error)?.stack, op }, 'request failed')
      const error = errorBody(err)
      this.#ctx.metrics.requests.inc({ op, code: error.code })
      this.#ctx.metrics.latency.observe({ op }, (performance.now() - started) / 1000)
      this.send({ id, ok: false, error })
    } finally {
      if (counted) this.#inflight--
    }
  }

  #respond(id: RequestId, op: string, started: number, result: unknown): void {
    this.#ctx.metrics.requests.inc({ op, code: OK_CODE })
    this.#ctx.metrics.latency.observe({ op }, (performance.now() - started) / 1000)
    this.send({ id, ok: true, result } as ServerFrame)
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

  async #openWatch(request: WatchRequest, started: number): Promise<void> {
    const key = watchKey(request.id)
    if (this.#watches.has(key)) throw new WeftError(ErrorCode.INVALID_ARGUMENT, 'a watch with this id is already open on this connection', { field: 'id' })
    if (this.#watches.size >= this.#ctx.limits.maxWatchesPerConnection) {
      throw new WeftError(ErrorCode.TOO_MANY_REQUESTS, `at most ${this.#ctx.limits.maxWatchesPerConnection} watches per connection`)
    }
    const watch: SessionWatch = { answered: false, early: [], cancelled: false }
    this.#watches.set(key, watch)
    this.#ctx.watchCount.value++
    const { id: _id, op: _op, ...params } = request
    let handle: WatchHandle
    try {
      handle = await this.#ctx.backend.watch(
        params,
        {
          onEvent: (event) => {
            if (watch.cancelled) return
            if (watch.answered) this.#sendEvent(request.id, event)
            else watch.early.push(event)
          },
          onEnd: (error) => {
            if (watch.cancelled) return
            if (!watch.answered) {
              watch.ended = error
              return
            }
            this.#forget(key, watch)
            this.send({ id: request.id, ended: errorBody(error) })
          },
        },
        this.#context(),
      )
    } catch (err) {
      this.#forget(key, watch)
      throw err
    }
    watch.handle = handle
    if (watch.cancelled) {
      handle.close()
      return
    }
    this.#respond(request.id, Op.watch, started, { watch: request.id, cursor: handle.cursor ?? '' })
    watch.answered = true
    for (const event of watch.early.splice(0)) this.#sendEvent(request.id, event)
    if (watch.ended) {
      this.#forget(key, watch)
      this.send({ id: request.id, ended: errorBody(watch.ended) })
    }
  }

  #sendEvent(id: RequestId, event: Record<string, unknown>): void {
    if (!this.isOpen) return
    if (this.#ws.bufferedAmount > this.#ctx.limits.maxBufferedBytes) {
      this.close(ErrorCode.TOO_MANY_REQUESTS, `slow consumer: over ${this.#ctx.limits.maxBufferedBytes} bytes unread`)
      return
    }
    this.send({ id, event } as unknown as ServerFrame)
  }

  #closeWatch(key: string, watch: SessionWatch): void {
    watch.handle?.close()
    this.#forget(key, watch)
  }

  #forget(key: string, watch: SessionWatch): void {
    if (watch.cancelled) return
    watch.cancelled = true
    if (this.#watches.get(key) === watch) this.#watches.delete(key)
    this.#ctx.watchCount.value--
  }

  /** A client that sends requests but does not read the answers: stop reading until half the queue went out. */
  #pauseUntilDrained(): void {
    if (this.#drainTimer) return
    this.#ws.pause()
    this.#drainTimer = setInterval(() => {
      if (this.isOpen && this.#ws.bufferedAmount > this.#ctx.limits.maxBufferedBytes / 2) return
      this.#stopDrainWait()
      if (this.isOpen) this.#ws.resume()
    }, 10)
    this.#drainTimer.unref()
  }

  #stopDrainWait(): void {
    clearInterval(this.#drainTimer)
    this.#drainTimer = undefined
  }

  #dispose(): void {
    if (this.#disposed) return
    this.#disposed = true
    this.#stopDrainWait()
    for (const [key, watch] of [...this.#watches]) this.#closeWatch(key, watch)
  }
}

function watchKey(id: RequestId): string {
  return `${typeof id}:${id}`
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data)
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data
}
