// A minimal client for tests: msgpack frames over one WebSocket, as docs/PROTOCOL.md
// describes. The real client lives in packages/client; tests that check the
// node itself use this one so they do not depend on it.
import { WebSocket } from 'ws'
import { pack, unpack } from '@weft/protocol'

export interface WireError {
  code: string
  message: string
  details?: unknown
}

export class RequestFailed extends Error {
  readonly code: string
  readonly details: unknown
  constructor(error: WireError) {
    super(`${error.code}: ${error.message}`)
    this.code = error.code
    this.details = error.details
  }
}

export class WsTestClient {
  private readonly socket: WebSocket
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>()
  private readonly watchers = new Map<number, (event: Record<string, unknown>) => void>()
  readonly closed: Promise<void>

  private constructor(socket: WebSocket) {
    this.socket = socket
    socket.on('message', (data: Buffer) => this.receive(data))
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
    void this.closed.then(() => {
      for (const [, p] of this.pending) {
        clearTimeout(p.timer)
        p.reject(new Error('connection closed'))
      }
      this.pending.clear()
    })
  }

  static async connect(url: string, timeoutMs = 5000): Promise<WsTestClient> {
    const socket = new WebSocket(url)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.terminate()
        reject(new Error(`connect to ${url} timed out`))
      }, timeoutMs)
      socket.once('open', () => {
        clearTimeout(timer)
        resolve()
      })
      socket.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
    })
    return new WsTestClient(socket)
  }

  request<T = Record<string, unknown>>(op: string, params: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${op} timed out`))
      }, timeoutMs)
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
      this.socket.send(pack({ id, op, ...params }))
    })
  }

  /** Starts a watch; events go to `onEvent`. Returns the watch's request id. */
  async watch(params: Record<string, unknown>, onEvent: (event: Record<string, unknown>) => void): Promise<number> {
    const id = this.nextId
    this.watchers.set(id, onEvent)
    await this.request('watch', params)
    return id
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.send(bytes)
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return
    this.socket.close()
    await Promise.race([this.closed, new Promise((resolve) => setTimeout(resolve, 1000))])
    this.socket.terminate()
  }

  private receive(data: Buffer): void {
    const frame = unpack(data) as { id: number; ok?: boolean; result?: unknown; error?: WireError; event?: Record<string, unknown> }
    if (frame.event) {
      this.watchers.get(frame.id)?.(frame.event)
      return
    }
    const pending = this.pending.get(frame.id)
    if (!pending) return
    this.pending.delete(frame.id)
    clearTimeout(pending.timer)
    if (frame.ok) pending.resolve(frame.result)
    else pending.reject(new RequestFailed(frame.error ?? { code: 'INTERNAL', message: 'no error given' }))
  }
}
