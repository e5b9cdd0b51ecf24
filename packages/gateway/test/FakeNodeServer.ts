// A stand-in for a node's API, for pool and connection tests: speaks just
// enough of the node protocol (ping, members, watch, scripted ops), and can
// be killed and brought back on the same port.
import { pack, unpack } from '@weft/protocol'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type WebSocket, WebSocketServer } from 'ws'

export type Frame = Record<string, unknown>

export class FakeNodeServer {
  readonly peerId: string
  /** What `members` answers (this node first). */
  members: Frame[] = []
  /** Answers ops other than ping/members/watch/unwatch; undefined: no answer at all. */
  answer: (frame: Frame) => Frame | undefined = (frame) => ({ ok: true, result: { op: frame.op, node: this.peerId } })
  readonly received: Frame[] = []
  readonly sockets = new Set<WebSocket>()
  port = 0
  #http: Server | undefined
  #wss: WebSocketServer | undefined

  constructor(peerId: string) {
    this.peerId = peerId
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/v1/ws`
  }

  /** What this node says about itself in `members`. */
  self(state = 'alive'): Frame {
    return { peerId: this.peerId, name: this.peerId, api: this.url, state, lastSeen: Date.now(), self: true }
  }

  async start(): Promise<void> {
    const http = createServer()
    const wss = new WebSocketServer({ server: http, path: '/v1/ws' })
    wss.on('connection', (ws) => {
      this.sockets.add(ws)
      ws.on('close', () => this.sockets.delete(ws))
      ws.on('message', (data) => this.#receive(ws, unpack(data as Buffer) as Frame))
    })
    await new Promise<void>((resolve) => http.listen(this.port, '127.0.0.1', () => resolve()))
    this.port = (http.address() as AddressInfo).port
    this.#http = http
    this.#wss = wss
  }

  /** Like kill -9: every connection dropped, the port closed. */
  async kill(): Promise<void> {
    for (const ws of this.sockets) ws.terminate()
    await new Promise<void>((resolve) => this.#wss?.close(() => resolve()) ?? resolve())
    await new Promise<void>((resolve) => {
      this.#http?.close(() => resolve())
      this.#http?.closeAllConnections()
    })
  }

  /** Sends a frame to every client (watch events, say). */
  broadcast(frame: Frame): void {
    for (const ws of this.sockets) ws.send(pack(frame))
  }

  #receive(ws: WebSocket, frame: Frame): void {
    this.received.push(frame)
    const reply = (body: Frame) => ws.send(pack({ id: frame.id, ...body }))
    switch (frame.op) {
      case 'ping':
        return reply({ ok: true, result: { node: this.peerId, time: Date.now() } })
      case 'members':
        return reply({ ok: true, result: { node: this.peerId, members: [this.self(), ...this.members] } })
      case 'watch':
        return reply({ ok: true, result: { watch: frame.id, cursor: `${this.peerId}-epoch:0` } })
      case 'unwatch':
        return reply({ ok: true, result: { watch: frame.watch, removed: true } })
      default: {
        const answer = this.answer(frame)
        if (answer) reply(answer)
      }
    }
  }
}
