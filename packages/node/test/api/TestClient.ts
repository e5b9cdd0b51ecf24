// A raw WebSocket client for API tests (node and gateway): packs frames,
// collects every frame the server sends, and waits for the ones a test asks for.
import { pack, unpack } from '@weft/protocol'
import type { ErrorResponse, OkResponse, Op, RequestId, WatchEvent } from '@weft/protocol'
import WebSocket from 'ws'

export type Frame = Record<string, unknown>

export class TestClient {
  readonly ws: WebSocket
  readonly frames: Frame[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  /** Far from the small ids tests pick by hand. */
  #nextId = 1000
  #waiters: { test: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = []

  private constructor(ws: WebSocket) {
    this.ws = ws
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    ws.on('error', () => {})
    ws.on('message', (data) => {
      const frame = unpack(data as Buffer) as Frame
      this.frames.push(frame)
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.test(frame)) return true
        w.resolve(frame)
        return false
      })
    })
  }

  static async connect(url: string, headers: Record<string, string> = {}): Promise<TestClient> {
    const ws = new WebSocket(url, { headers })
    const client = new TestClient(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    return client
  }

  send(frame: unknown): void {
    this.ws.send(pack(frame))
  }

  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data)
  }

  /** The first frame (already received or coming) that passes `test`. */
  next(test: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    const seen = this.frames.find(test)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame in ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`)), timeoutMs)
      this.#waiters.push({
        test,
        resolve: (f) => {
          clearTimeout(timer)
          resolve(f)
        },
      })
    })
  }

  /** The error code answered to request `id` (which must fail). */
  async errorOf(id: unknown, timeoutMs = 10_000): Promise<string> {
    const frame = await this.next((f) => f.id === id && f.ok === false, timeoutMs)
    return (frame.error as { code: string }).code
  }

  response(id: RequestId | null): Promise<OkResponse | ErrorResponse> {
    return this.next((f) => f.id === id && 'ok' in f) as unknown as Promise<OkResponse | ErrorResponse>
  }

  /** Sends a request with a fresh id and waits for its answer. */
  async call(op: Op | string, params: Record<string, unknown> = {}): Promise<OkResponse | ErrorResponse> {
    const id = this.#nextId++
    this.send({ id, op, ...params })
    return this.response(id)
  }

  /** The result of a request that must succeed. */
  async ok<T = Record<string, unknown>>(op: Op | string, params: Record<string, unknown> = {}): Promise<T> {
    const response = await this.call(op, params)
    if (!response.ok) throw new Error(`${op} failed: ${JSON.stringify(response.error)}`)
    return response.result as T
  }

  /** The error code of a request that must fail. */
  async fails(op: Op | string, params: Record<string, unknown> = {}): Promise<string> {
    const response = await this.call(op, params)
    if (response.ok) throw new Error(`${op} succeeded: ${JSON.stringify(response.result)}`)
    return response.error.code
  }

  /** Events of one watch received so far. */
  events(watch: RequestId): WatchEvent[] {
    return this.frames.filter((f) => f.id === watch && 'event' in f).map((f) => f.event as WatchEvent)
  }

  /** Waits until a watch has at least `count` events, and returns them all. */
  async waitEvents(watch: RequestId, count: number, timeoutMs = 5000): Promise<WatchEvent[]> {
    const deadline = Date.now() + timeoutMs
    while (this.events(watch).length < count) {
      if (Date.now() > deadline) throw new Error(`watch ${String(watch)}: ${this.events(watch).length} of ${count} events`)
      await new Promise((r) => setTimeout(r, 5))
    }
    return this.events(watch)
  }

  close(): void {
    this.ws.terminate()
  }
}
