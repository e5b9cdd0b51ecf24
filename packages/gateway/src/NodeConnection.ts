// One WebSocket to one node, speaking the node protocol (docs/PROTOCOL.md) as
// a client: numbered requests with a timeout each, and watches whose events
// go to handlers. Every way a request can fail is a WeftError: the node's own
// error, TIMEOUT when it does not answer in time, UNAVAILABLE when the
// connection is gone. A node that stops answering pings is cut off.
import { ErrorCode, WeftError } from '@weft/core'
import { pack, unpack } from '@weft/protocol'
import { corkedSend } from '@weft/protocol/server'
import { type RawData, WebSocket } from 'ws'
import { type Logger, silentLogger } from './Logger.ts'

export interface NodeConnectionOptions {
  readonly connectTimeoutMs?: number
  /** A ping every interval; a node silent for three intervals is cut off. */
  readonly pingIntervalMs?: number
  /** Largest frame taken from a node (results can be large: history pages with values). */
  readonly maxPayloadBytes?: number
  readonly logger?: Logger
}

export interface NodeWatchHandlers {
  /** One event, as the node sent it. */
  onEvent(event: Record<string, unknown>): void
  /** The node ended the watch, or the connection was lost. Never called after closeWatch(). */
  onEnd(error: WeftError): void
}

interface Pending {
  readonly resolve: (result: unknown) => void
  readonly reject: (error: WeftError) => void
  readonly timer: NodeJS.Timeout
}

export class NodeConnection {
  readonly url: string
  /** Resolves once the socket has closed (and every pending request failed). */
  readonly closed: Promise<void>
  readonly #ws: WebSocket
  readonly #logger: Logger
  readonly #pending = new Map<number, Pending>()
  readonly #watches = new Map<number, NodeWatchHandlers>()
  readonly #pingTimer: NodeJS.Timeout
  #nextId = 1
  #lastHeard = Date.now()
  #closeReason = 'connection closed'
  /** Closed by us for not answering pings (the reason says so). */
  #cutOff = false

  private constructor(url: string, ws: WebSocket, options: NodeConnectionOptions) {
    this.url = url
    this.#ws = ws
    this.#logger = options.logger ?? silentLogger
    const pingIntervalMs = options.pingIntervalMs ?? 2000
    ws.on('message', (data) => this.#receive(data))
    ws.on('pong', () => (this.#lastHeard = Date.now()))
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        if (!this.#cutOff) this.#closeReason = `connection to ${url} closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`
        this.#failAll()
        resolve()
      })
    })
    this.#pingTimer = setInterval(() => {
      if (Date.now() - this.#lastHeard > 3 * pingIntervalMs) {
        this.#cutOff = true
        this.#closeReason = `node at ${url} stopped answering`
        this.#logger.warn({ url }, 'node stopped answering pings: connection cut')
        ws.terminate()
        return
      }
      if (ws.readyState === WebSocket.OPEN) ws.ping()
    }, pingIntervalMs)
    this.#pingTimer.unref()
  }

  /** Opens a connection; rejects with UNAVAILABLE if the node cannot be reached in time. */
  static connect(url: string, options: NodeConnectionOptions = {}): Promise<NodeConnection> {
    const timeoutMs = options.connectTimeoutMs ?? 5000
    return new Promise((resolve, reject) => {
      let ws: WebSocket
      try {
        ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: options.maxPayloadBytes ?? 256 * 1024 * 1024, handshakeTimeout: timeoutMs })
      } catch (err) {
        reject(new WeftError(ErrorCode.UNAVAILABLE, `cannot connect to ${url}: ${(err as Error).message}`))
        return
      }
      // An 'error' without a listener would crash the process; a close follows it.
      let lastError = ''
      ws.on('error', (err) => (lastError = err.message))
      const timer = setTimeout(() => ws.terminate(), timeoutMs)
      const onClose = () => {
        clearTimeout(timer)
        reject(new WeftError(ErrorCode.UNAVAILABLE, `cannot connect to ${url}${lastError ? `: ${lastError}` : ''}`))
      }
      ws.once('close', onClose)
      ws.once('open', () => {
        clearTimeout(timer)
        ws.off('close', onClose)
        resolve(new NodeConnection(url, ws, options))
      })
    })
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN
  }

  /** Requests sent and not answered. */
  get inflight(): number {
    return this.#pending.size
  }

  get watchCount(): number {
    return this.#watches.size
  }

  /** One request; resolves with its result, rejects with a WeftError. */
  request(op: string, params: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    return this.#send(this.#nextId++, op, params, timeoutMs)
  }

  /** Opens a watch; its events flow to `handlers` (possibly before this resolves). */
  async openWatch(params: Record<string, unknown>, handlers: NodeWatchHandlers, timeoutMs: number): Promise<{ id: number; cursor: string }> {
    const id = this.#nextId++
    this.#watches.set(id, handlers)
    try {
      const result = (await this.#send(id, 'watch', params, timeoutMs)) as { cursor?: unknown }
      if (typeof result?.cursor !== 'string') throw new WeftError(ErrorCode.INTERNAL, 'the node answered a watch without a cursor')
      return { id, cursor: result.cursor }
    } catch (err) {
      // A watch whose answer timed out may still open on the node: tell it to stop.
      if (this.#watches.delete(id) && this.isOpen) this.#unwatch(id)
      throw err
    }
  }

  /** Stops a watch; its handlers hear nothing more. */
  closeWatch(id: number): void {
    if (this.#watches.delete(id) && this.isOpen) this.#unwatch(id)
  }

  close(): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.close(1000)
    // A node that does not answer the close handshake is cut off.
    setTimeout(() => this.#ws.terminate(), 1000).unref()
  }

  terminate(): void {
    this.#ws.terminate()
  }

  #unwatch(id: number): void {
    this.#send(this.#nextId++, 'unwatch', { watch: id }, 5000).catch(() => {})
  }

  #send(id: number, op: string, params: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    if (!this.isOpen) return Promise.reject(new WeftError(ErrorCode.UNAVAILABLE, this.#closeReason))
    let bytes: Uint8Array
    try {
      bytes = pack({ ...params, id, op })
    } catch (err) {
      return Promise.reject(new WeftError(ErrorCode.INVALID_VALUE, `cannot encode the request: ${(err as Error).message}`))
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new WeftError(ErrorCode.TIMEOUT, `${op}: no answer from ${this.url} in ${timeoutMs} ms`))
      }, Math.max(1, timeoutMs))
      this.#pending.set(id, { resolve, reject, timer })
      corkedSend(this.#ws, bytes)
    })
  }

  #receive(data: RawData): void {
    this.#lastHeard = Date.now()
    let frame: unknown
    try {
      frame = unpack(toBytes(data))
    } catch (err) {
      this.#logger.warn({ url: this.url, err: String(err) }, 'unreadable frame from a node')
      return
    }
    if (frame === null || typeof frame !== 'object') return
    const f = frame as Record<string, unknown>
    const id = f.id
    if (typeof id !== 'number') {
      this.#logger.warn({ url: this.url, error: f.error }, 'a node answered a frame it could not read')
      return
    }
    if ('event' in f) {
      this.#watches.get(id)?.onEvent(f.event as Record<string, unknown>)
      return
    }
    if ('ended' in f) {
      const handlers = this.#watches.get(id)
      if (!handlers) return
      this.#watches.delete(id)
      handlers.onEnd(toWeftError(f.ended))
      return
    }
    const pending = this.#pending.get(id)
    if (!pending) return
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    if (f.ok === true) pending.resolve(f.result)
    else pending.reject(toWeftError(f.error))
  }

  #failAll(): void {
    clearInterval(this.#pingTimer)
    const error = new WeftError(ErrorCode.UNAVAILABLE, this.#closeReason)
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const p of pending) {
      clearTimeout(p.timer)
      p.reject(error)
    }
    const watches = [...this.#watches.values()]
    this.#watches.clear()
    for (const handlers of watches) handlers.onEnd(error)
  }
}

/** A node's error body as a WeftError (an unreadable one is INTERNAL). */
export function toWeftError(body: unknown): WeftError {
  if (body !== null && typeof body === 'object') {
    const { code, message, details } = body as { code?: unknown; message?: unknown; details?: unknown }
    if (typeof code === 'string' && Object.hasOwn(ErrorCode, code)) {
      const info = details !== null && typeof details === 'object' ? (details as Record<string, unknown>) : undefined
      // Answered errors are data (KEY_NOT_FOUND is common): no stack trace, which costs more than the rest.
      const limit = Error.stackTraceLimit
      Error.stackTraceLimit = 0
      try {
        return new WeftError(code as ErrorCode, typeof message === 'string' ? message : code, info)
      } finally {
        Error.stackTraceLimit = limit
      }
    }
  }
  return new WeftError(ErrorCode.INTERNAL, 'a node sent an unreadable error')
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data)
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data
}
