// One WebSocket connection speaking weft frames (docs/PROTOCOL.md), as a node
// and a gateway serve it alike: decode and validate each frame, limit the
// requests in flight, answer with the request's id or a typed error, count
// each answer, and stop reading from a client that does not read its answers.
// What a request does is the owner's `handle`. Nothing a client sends can
// throw out of here; every failure becomes an error frame and the connection
// stays open.
import { ErrorCode, WeftError } from '@weft/core'
import { type ErrorResponse, Op, type Request, type RequestId, type ServerFrame, decodeFrame, errorBody, parseRequest, requestIdOf } from '../messages.ts'
import { pack } from '../codec.ts'
import { closeCodeOf, closeReason } from '../httpStatus.ts'
import type { Logger } from '../Logger.ts'
import { type RawData, WebSocket } from 'ws'
import { corkedSend } from './corkedSend.ts'
import { dropUndefined } from './dropUndefined.ts'

/** Metric label for frames whose op could not be read (keeps label values a closed set). */
export const INVALID_OP = 'invalid'
/** Code label of a request that succeeded. */
export const OK_CODE = 'OK'

export interface SessionLimits {
  /** Requests a connection may have unanswered; more get TOO_MANY_REQUESTS. */
  readonly maxInflightPerConnection: number
  readonly maxWatchesPerConnection: number
  /** Bytes queued for a connection past which reading pauses, and a watch event closes it as a slow consumer. */
  readonly maxBufferedBytes: number
}

/** Sends the answer of the request being handled (counted as OK). */
export type Answer = (result: unknown) => void

export interface FrameSessionOptions {
  readonly limits: SessionLimits
  readonly logger: Logger
  /**
   * Runs one valid request within the in-flight limit. It calls `answer` at
   * most once (a watch answers before its events); what it throws becomes the
   * request's error frame.
   */
  readonly handle: (request: Request, answer: Answer) => Promise<void> | void
  /** Each answer: its op (or INVALID_OP), OK_CODE or the error code, and the seconds since its frame came. */
  readonly observe: (op: string, code: string, seconds: number) => void
  /** Once the socket has closed, before `closed` resolves: let go of the connection's watches. */
  readonly onClose?: () => void
  /** Hold the socket corked for the rest of the event turn, so a burst of answers goes out in one write. */
  readonly corked?: boolean
}

export class FrameSession {
  readonly #ws: WebSocket
  readonly #options: FrameSessionOptions
  #inflight = 0
  /** Set while reading is paused because the client does not read its answers. */
  #drainTimer: NodeJS.Timeout | undefined
  /** Resolves once the socket has closed and the owner let go of everything. */
  readonly closed: Promise<void>

  constructor(ws: WebSocket, options: FrameSessionOptions) {
    this.#ws = ws
    this.#options = options
    this.closed = new Promise((resolve) => {
      ws.on('close', () => {
        this.#stopDrainWait()
        options.onClose?.()
        resolve()
      })
    })
    ws.on('message', (data, isBinary) => void this.#onMessage(data, isBinary))
    // Socket errors (e.g. a frame over maxPayload) are logged by the server; ws closes the socket itself.
  }

  isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN
  }

  /** Bytes queued for the client and not yet written to the network. */
  bufferedAmount(): number {
    return this.#ws.bufferedAmount
  }

  /** The client reads too slowly: end its connection. */
  overflow(): void {
    this.close(ErrorCode.TOO_MANY_REQUESTS, `slow consumer: over ${this.#options.limits.maxBufferedBytes} bytes unread`)
  }

  /** Sends a watch event, or ends the connection if too much is already queued for it. */
  sendEvent(id: RequestId, event: unknown): void {
    if (!this.isOpen()) return
    if (this.#ws.bufferedAmount > this.#options.limits.maxBufferedBytes) return this.overflow()
    this.send({ id, event } as unknown as ServerFrame)
  }

  send(frame: ServerFrame): void {
    if (!this.isOpen()) return
    let bytes: Uint8Array
    try {
      bytes = pack(frame)
    } catch (err) {
      this.#options.logger.error({ err: String(err) }, 'could not encode a frame')
      if (!('ok' in frame)) return
      bytes = pack({ id: frame.id, ok: false, error: { code: ErrorCode.INTERNAL, message: 'could not encode the result' } } satisfies ErrorResponse)
    }
    if (this.#options.corked) corkedSend(this.#ws, bytes)
    else this.#ws.send(bytes)
    if (this.#ws.bufferedAmount > this.#options.limits.maxBufferedBytes) this.#pauseUntilDrained()
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

  async #onMessage(data: RawData, isBinary: boolean): Promise<void> {
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
      const { maxInflightPerConnection } = this.#options.limits
      if (this.#inflight >= maxInflightPerConnection) {
        throw new WeftError(ErrorCode.TOO_MANY_REQUESTS, `more than ${maxInflightPerConnection} requests in flight on this connection`)
      }
      this.#inflight++
      counted = true
      await this.#options.handle(request, (result) => {
        this.#options.observe(op, OK_CODE, (performance.now() - started) / 1000)
        this.send({ id: request.id, ok: true, result } as ServerFrame)
      })
    } catch (err) {
      if (!(err instanceof WeftError)) this.#options.logger.error({ err: String(err), stack: (err as Error)?.stack, op }, 'request failed')
      const error = errorBody(err)
      this.#options.observe(op, error.code, (performance.now() - started) / 1000)
      this.send({ id, ok: false, error: error.details === undefined ? error : { ...error, details: dropUndefined(error.details) as Record<string, unknown> } })
    } finally {
      if (counted) this.#inflight--
    }
  }

  /**
   * A client that sends requests but does not read the answers: stop reading its
   * requests until half the queue has gone out, so answers cannot pile up.
   */
  #pauseUntilDrained(): void {
    if (this.#drainTimer) return
    this.#ws.pause()
    this.#drainTimer = setInterval(() => {
      if (this.isOpen() && this.#ws.bufferedAmount > this.#options.limits.maxBufferedBytes / 2) return
      this.#stopDrainWait()
      if (this.isOpen()) this.#ws.resume()
    }, 10)
    this.#drainTimer.unref()
  }

  #stopDrainWait(): void {
    clearInterval(this.#drainTimer)
    this.#drainTimer = undefined
  }
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data)
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data
}
