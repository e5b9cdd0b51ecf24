// One client connection: decodes frames, answers each request, and carries the
// connection's watches. Nothing a client sends can throw out of here; every
// failure becomes an error frame and the connection stays open.
import { ErrorCode, WeftError } from '@weft/core'
import {
  type ErrorResponse,
  Op,
  type RequestId,
  type ServerFrame,
  type WatchRequest,
  type WatchResult,
  closeReason,
  closeCodeOf,
  decodeFrame,
  errorBody,
  pack,
  parseRequest,
  requestIdOf,
} from '@weft/protocol'
import type { Request, Results } from '@weft/protocol'
import { type RawData, WebSocket } from 'ws'
import type { Logger } from '../Logger.ts'
import type { VersionedStore } from '../store/VersionedStore.ts'
import { type ApiMetrics, INVALID_OP, OK_CODE } from './metrics.ts'
import type { RequestDedup } from './RequestDedup.ts'
import { isStoreRequest, runStoreOp } from './runStoreOp.ts'
import type { Watch, WatchRegistry, WatchSink } from './WatchRegistry.ts'

export interface SessionLimits {
  readonly maxInflightPerConnection: number
  readonly maxWatchesPerConnection: number
  readonly maxBufferedBytes: number
}

export interface SessionContext {
  readonly store: VersionedStore
  readonly watches: WatchRegistry
  readonly dedup: RequestDedup
  readonly metrics: ApiMetrics
  readonly members: () => unknown[]
  readonly logger: Logger
  readonly limits: SessionLimits
}

export class ApiSession implements WatchSink {
  readonly #ws: WebSocket
  readonly #ctx: SessionContext
  /** Watches by request id (typed, so 1 and "1" differ). */
  readonly #watches = new Map<string, Watch>()
  #inflight = 0
  /** Set while reading is paused because the client does not read its answers. */
  #drainTimer: NodeJS.Timeout | undefined
  /** Resolves once the socket has closed and the session let go of everything. */
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
    // Socket errors (e.g. a frame over maxPayload) are logged by the server; ws closes the socket itself.
  }

  isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN
  }

  bufferedAmount(): number {
    return this.#ws.bufferedAmount
  }

  overflow(): void {
    this.close(ErrorCode.TOO_MANY_REQUESTS, `slow consumer: over ${this.#ctx.limits.maxBufferedBytes} bytes unread`)
  }

  send(frame: ServerFrame): void {
    if (!this.isOpen()) return
    let bytes: Uint8Array
    try {
      bytes = pack(frame)
    } catch (err) {
      this.#ctx.logger.error({ err: String(err) }, 'could not encode a frame')
      if (!('ok' in frame)) return
      bytes = pack({ id: frame.id, ok: false, error: { code: ErrorCode.INTERNAL, message: 'could not encode the result' } } satisfies ErrorResponse)
    }
    this.#ws.send(bytes)
    if (this.#ws.bufferedAmount > this.#ctx.limits.maxBufferedBytes) this.#pauseUntilDrained()
  }

  /**
   * A client that sends requests but does not read the answers: stop reading its
   * requests until half the queue has gone out, so answers cannot pile up.
   */
  #pauseUntilDrained(): void {
    if (this.#drainTimer) return
    this.#ws.pause()
    this.#drainTimer = setInterval(() => {
      if (this.isOpen() && this.#ws.bufferedAmount > this.#ctx.limits.maxBufferedBytes / 2) return
      this.#stopDrainWait()
      if (this.isOpen()) this.#ws.resume()
    }, 10)
    this.#drainTimer.unref()
  }

  #stopDrainWait(): void {
    clearInterval(this.#drainTimer)
    this.#drainTimer = undefined
  }

  /** Ends the connection with an error code (and its close code). */
  close(code: ErrorCode, message: string): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
      this.#ws.close(closeCodeOf(code), closeReason(code, message))
    }
    // Read again, or the client's half of the close handshake is never seen.
    this.#stopDrainWait()
    if (this.#ws.isPaused) this.#ws.resume()
  }

  terminate(): void {
    this.#ws.terminate()
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
      if (request.op === Op.watch) {
        const watch = this.#openWatch(request)
        this.#respond(request.id, op, started, { watch: watch.id, cursor: watch.cursor } satisfies WatchResult)
        this.#ctx.watches.start(watch)
        return
      }
      this.#respond(request.id, op, started, await this.#execute(request))
    } catch (err) {
      if (!(err instanceof WeftError)) this.#ctx.logger.error({ err: String(err), stack: (err as Error)?.stack, op }, 'request failed')
      const error = errorBody(err)
      this.#ctx.metrics.requests.inc({ op, code: error.code })
      this.#ctx.metrics.latency.observe({ op }, (performance.now() - started) / 1000)
      this.send({ id, ok: false, error: error.details === undefined ? error : { ...error, details: dropUndefined(error.details) as Record<string, unknown> } })
    } finally {
      if (counted) this.#inflight--
    }
  }

  #respond(id: RequestId, op: string, started: number, result: unknown): void {
    this.#ctx.metrics.requests.inc({ op, code: OK_CODE })
    this.#ctx.metrics.latency.observe({ op }, (performance.now() - started) / 1000)
    this.send({ id, ok: true, result: (op === Op.merge ? dropUndefined(result) : result) as Results[Op] })
  }

  async #execute(request: Exclude<Request, WatchRequest>): Promise<Results[Op]> {
    if (isStoreRequest(request)) return runStoreOp(this.#ctx.store, this.#ctx.dedup, request)
    switch (request.op) {
      case Op.unwatch: {
        const watch = this.#watches.get(watchKey(request.watch))
        if (watch) this.#closeWatch(watch)
        return { watch: request.watch, removed: watch !== undefined }
      }
      case Op.members:
        return { node: this.#ctx.store.nodeId, members: this.#ctx.members() }
      case Op.ping:
        return { node: this.#ctx.store.nodeId, time: Date.now() }
    }
  }

  #openWatch(request: WatchRequest): Watch {
    const key = watchKey(request.id)
    if (this.#watches.has(key)) throw new WeftError(ErrorCode.INVALID_ARGUMENT, 'a watch with this id is already open on this connection', { field: 'id' })
    if (this.#watches.size >= this.#ctx.limits.maxWatchesPerConnection) {
      throw new WeftError(ErrorCode.TOO_MANY_REQUESTS, `at most ${this.#ctx.limits.maxWatchesPerConnection} watches per connection`)
    }
    const watch = this.#ctx.watches.open(this, request)
    watch.onEnd = () => this.#watches.delete(key)
    this.#watches.set(key, watch)
    return watch
  }

  #closeWatch(watch: Watch): void {
    this.#ctx.watches.close(watch)
    this.#watches.delete(watchKey(watch.id))
  }

  #dispose(): void {
    this.#stopDrainWait()
    for (const watch of this.#watches.values()) this.#ctx.watches.close(watch)
    this.#watches.clear()
  }
}

function watchKey(id: RequestId): string {
  return `${typeof id}:${id}`
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data)
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data
}

/**
 * A copy without undefined fields: msgpackr would send them as an extension
 * other clients cannot read (merge conflicts leave `ours` / `theirs` undefined).
 */
function dropUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropUndefined)
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value
  // fromEntries defines fields, so a user's "__proto__" field stays data.
  return Object.fromEntries(Object.entries(value).flatMap(([k, v]) => (v === undefined ? [] : [[k, dropUndefined(v)]])))
}
