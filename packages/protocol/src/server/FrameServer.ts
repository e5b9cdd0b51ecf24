// The HTTP server a node's API and a gateway both run: weft frames over
// WebSocket at /v1/ws (other upgrade paths 404, 503 while stopping), a
// connection limit, frames over maxFrameBytes closed with 1009, and a stop
// that closes every connection (1001, CLOSED) before the server. Sessions and
// plain HTTP routes are the owner's: `openSession` and `onHttp`.
import { ErrorCode } from '@weft/core'
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { type WebSocket, WebSocketServer } from 'ws'
import { closeCodeOf, closeReason } from '../httpStatus.ts'
import type { Logger } from '../Logger.ts'
import { errorBody } from '../messages.ts'
import type { SessionLimits } from './FrameSession.ts'
import { pathOf } from './httpReplies.ts'

export const WS_PATH = '/v1/ws'

export interface FrameLimits extends SessionLimits {
  /** Largest frame a client may send; a bigger one closes the connection with 1009 (FRAME_TOO_LARGE). */
  readonly maxFrameBytes: number
  readonly maxConnections: number
}

/** A node's defaults, and a gateway's, so a client sees one set of limits. */
export const DEFAULT_FRAME_LIMITS: FrameLimits = {
  maxFrameBytes: 2 * 1024 * 1024,
  maxInflightPerConnection: 256,
  maxConnections: 1024,
  maxWatchesPerConnection: 64,
  maxBufferedBytes: 16 * 1024 * 1024,
}

/** What the server needs of an open connection. */
export interface ServedSession {
  /** Resolves once the socket has closed and the session let go of everything. */
  readonly closed: Promise<void>
  close(code: ErrorCode, message: string): void
  terminate(): void
}

export interface FrameServerOptions {
  readonly host?: string
  /** 0 picks a free port; start() tells which. */
  readonly port: number
  readonly limits: Pick<FrameLimits, 'maxFrameBytes' | 'maxConnections'>
  readonly logger: Logger
  /** Who refuses a connection past the limit: "this <role> takes at most …". */
  readonly role: string
  /** The close reason sent to every client when stopping. */
  readonly stoppingMessage: string
  /** Logged when the HTTP server fails. */
  readonly serverErrorMessage: string
  /** Serves an accepted connection; a throw refuses it with the error's close code. */
  readonly openSession: (ws: WebSocket, req: IncomingMessage) => ServedSession
  /** Answers every request that is not a WebSocket upgrade. */
  readonly onHttp: (req: IncomingMessage, res: ServerResponse) => Promise<void>
}

export interface ServerAddress {
  readonly host: string
  readonly port: number
}

export class FrameServer {
  readonly #options: FrameServerOptions
  readonly #http: Server
  readonly #wss: WebSocketServer
  readonly #sessions = new Set<ServedSession>()
  #startedAt = 0
  #stopping: Promise<void> | undefined

  constructor(options: FrameServerOptions) {
    this.#options = options
    const { logger } = options
    this.#http = createServer((req, res) => void options.onHttp(req, res))
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head))
    this.#http.on('error', (err) => logger.error({ err: String(err) }, options.serverErrorMessage))
    // No per-message deflate: a zlib context per connection costs memory, and msgpack is compact.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: options.limits.maxFrameBytes, perMessageDeflate: false })
  }

  get connectionCount(): number {
    return this.#sessions.size
  }

  /** Seconds since start() resolved. */
  get uptime(): number {
    return (Date.now() - this.#startedAt) / 1000
  }

  /** Listens; resolves with the address bound (the port chosen when given 0). */
  async start(): Promise<ServerAddress> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      this.#http.once('error', onError)
      this.#http.listen(this.#options.port, this.#options.host, () => {
        this.#http.off('error', onError)
        resolve()
      })
    })
    this.#startedAt = Date.now()
    const address = this.#http.address() as AddressInfo
    return { host: address.address, port: address.port }
  }

  /** Closes every connection (1001, CLOSED), then the server. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  async #stop(): Promise<void> {
    const sessions = [...this.#sessions]
    for (const session of sessions) session.close(ErrorCode.CLOSED, this.#options.stoppingMessage)
    // A client that does not answer the close handshake is cut off.
    const closed = Promise.all(sessions.map((s) => s.closed))
    if ((await Promise.race([closed.then(() => true), sleep(2000, false)])) === false) {
      for (const session of sessions) session.terminate()
      await closed
    }
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()))
    await new Promise<void>((resolve) => {
      if (!this.#http.listening) return resolve()
      this.#http.close(() => resolve())
      this.#http.closeAllConnections()
    })
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.#options.logger.debug({ err: String(err) }, 'upgrade socket error'))
    if (this.#stopping || pathOf(req) !== WS_PATH) {
      socket.end(`HTTP/1.1 ${this.#stopping ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      return
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, req))
  }

  #onConnection(ws: WebSocket, req: IncomingMessage): void {
    // An 'error' event without a listener would crash the process.
    ws.on('error', (err) => this.#options.logger.debug({ err: String(err) }, 'client socket error'))
    // Refusals are sent as closes after the handshake, so that browsers too can see why.
    const refuse = (code: ErrorCode, message: string) => ws.close(closeCodeOf(code), closeReason(code, message))
    if (this.#stopping) return refuse(ErrorCode.CLOSED, this.#options.stoppingMessage)
    const { maxConnections } = this.#options.limits
    if (this.#sessions.size >= maxConnections) return refuse(ErrorCode.TOO_MANY_REQUESTS, `this ${this.#options.role} takes at most ${maxConnections} connections`)
    let session: ServedSession
    try {
      session = this.#options.openSession(ws, req)
    } catch (err) {
      const error = errorBody(err)
      return refuse(error.code, error.message)
    }
    this.#sessions.add(session)
    void session.closed.then(() => this.#sessions.delete(session))
  }
}
