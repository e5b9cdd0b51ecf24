// A raw WebSocket client for checking frames byte by byte: sends anything,
// keeps every frame it gets, and waits for the ones a test asks for.
import { pack, unpack } from '@weft/protocol'
import { WebSocket } from 'ws'

export type Frame = Record<string, unknown>

export class RawClient {
  readonly ws: WebSocket
  readonly frames: Frame[] = []
  readonly closed: Promise<{ code: number; reason: string }>
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

  static async connect(url: string, headers: Record<string, string> = {}): Promise<RawClient> {
    const ws = new WebSocket(url, { headers })
    const client = new RawClient(ws)
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
  async errorOf(id: unknown): Promise<string> {
    const frame = await this.next((f) => f.id === id && f.ok === false)
    return (frame.error as { code: string }).code
  }

  close(): void {
    this.ws.terminate()
  }
}
