// An in-process stand-in for a node: a `ws` server on a free port speaking the
// client protocol (msgpack frames) with canned answers, a change feed for
// watches, and handles to drop or close connections at chosen moments.
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type WebSocket, WebSocketServer } from 'ws'
import { pack, unpack } from '@weft/protocol'

export type Frame = Record<string, unknown> & { id: number | string; op: string }

export interface Connection {
  readonly socket: WebSocket
  readonly request: IncomingMessage
  readonly frames: Frame[]
  /** Open watches on this connection: watch id → its feed target. */
  readonly watches: Map<number | string, { key?: string; prefix?: string }>
}

/** What a handler returns: a result, an error, or nothing (no answer: the test answers, or never). */
export type Answer = { result: unknown } | { error: { code: string; message: string; details?: unknown } } | undefined

export type Handler = (frame: Frame, connection: Connection) => Answer | Promise<Answer>

export interface FeedEvent {
  cursor: string
  key: string
  fork: string
  revision: { id: string; index: number; ts: number; node: string; kind: string }
  value?: unknown
  deleted: boolean
}

export class FakeServer {
  readonly wss: WebSocketServer
  readonly connections: Connection[] = []
  /** Every frame received, across connections, in arrival order. */
  readonly frames: Frame[] = []
  /** Answers ops not handled by `handlers`: echoes the frame as the result. */
  handlers: Partial<Record<string, Handler>> = {}
  /** The change feed watches read: seq = index + 1. */
  readonly feed: FeedEvent[] = []
  epoch = 'e1'
  port = 0

  private constructor(wss: WebSocketServer) {
    this.wss = wss
    wss.on('connection', (socket, request) => this.#onConnection(socket, request))
  }

  static async start(port = 0): Promise<FakeServer> {
    const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/v1/ws' })
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve)
      wss.once('error', reject)
    })
    const server = new FakeServer(wss)
    server.port = (wss.address() as AddressInfo).port
    return server
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/v1/ws`
  }

  get last(): Connection | undefined {
    return this.connections.at(-1)
  }

  framesOf(op: string): Frame[] {
    return this.frames.filter((f) => f.op === op)
  }

  send(connection: Connection, frame: unknown): void {
    if (connection.socket.readyState === connection.socket.OPEN) connection.socket.send(pack(frame))
  }

  /** Appends a revision to the feed and sends it to the open watches it matches. */
  publish(key: string, value: unknown, revisionId = `r${this.feed.length + 1}`): FeedEvent {
    const seq = this.feed.length + 1
    const event: FeedEvent = {
      cursor: `${this.epoch}:${seq}`,
      key,
      fork: 'main',
      revision: { id: revisionId, index: seq, ts: 1_700_000_000_000 + seq, node: 'n1', kind: 'set' },
      value,
      deleted: false,
    }
    this.feed.push(event)
    for (const connection of this.connections) {
      for (const [id, target] of connection.watches) if (matches(target, key)) this.send(connection, { id, event })
    }
    return event
  }

  /** Cuts every connection without a close handshake (a crash, a network cut). */
  dropAll(): void {
    for (const connection of this.connections) connection.socket.terminate()
  }

  closeAll(code: number, reason: string): void {
    for (const connection of this.connections) connection.socket.close(code, reason)
  }

  async stop(): Promise<void> {
    for (const client of this.wss.clients) client.terminate()
    await new Promise<void>((resolve) => this.wss.close(() => resolve()))
  }

  #onConnection(socket: WebSocket, request: IncomingMessage): void {
    const connection: Connection = { socket, request, frames: [], watches: new Map() }
    this.connections.push(connection)
    socket.on('error', () => {})
    socket.on('message', (data: Buffer) => void this.#onFrame(connection, unpack(data) as Frame))
  }

  async #onFrame(connection: Connection, frame: Frame): Promise<void> {
    connection.frames.push(frame)
    this.frames.push(frame)
    const handler = this.handlers[frame.op] ?? this.#defaults[frame.op]
    const answer = handler ? await handler(frame, connection) : { result: { echo: frame } }
    if (answer === undefined) return
    if ('error' in answer) this.send(connection, { id: frame.id, ok: false, error: answer.error })
    else this.send(connection, { id: frame.id, ok: true, result: answer.result })
    if (frame.op === 'watch' && 'result' in answer) this.#startWatch(connection, frame)
  }

  /** The feed's watch and unwatch, as a node answers them. */
  readonly #defaults: Record<string, Handler> = {
    watch: (frame) => ({ result: { watch: frame.id, cursor: typeof frame.after === 'string' ? frame.after : `${this.epoch}:${this.feed.length}` } }),
    unwatch: (frame, connection) => ({ result: { watch: frame.watch, removed: connection.watches.delete(frame.watch as number) } }),
  }

  #startWatch(connection: Connection, frame: Frame): void {
    const target = frame.key !== undefined ? { key: frame.key as string } : { prefix: frame.prefix as string }
    const after = typeof frame.after === 'string' ? Number(frame.after.split(':')[1]) : this.feed.length
    for (const event of this.feed.slice(after)) if (matches(target, event.key)) this.send(connection, { id: frame.id, event })
    connection.watches.set(frame.id, target)
  }
}

function matches(target: { key?: string; prefix?: string }, key: string): boolean {
  return target.key !== undefined ? target.key === key : key.startsWith(target.prefix ?? '')
}
