// FrameServer and FrameSession over real sockets, with a scripted handler:
// what a node and a gateway share (frame checks, in-flight and connection
// limits, error replies, metrics samples, upgrade paths, stopping).
import { afterEach, describe, expect, it } from 'vitest'
import { ErrorCode, WeftError } from '@weft/core'
import { WebSocket } from 'ws'
import { pack, unpack } from '../../src/codec.ts'
import type { Logger } from '../../src/Logger.ts'
import { FrameServer, type FrameServerOptions, WS_PATH } from '../../src/server/FrameServer.ts'
import { type Answer, FrameSession, INVALID_OP, OK_CODE } from '../../src/server/FrameSession.ts'
import { replyJson } from '../../src/server/httpReplies.ts'
import type { Request } from '../../src/messages.ts'

type Frame = Record<string, unknown>

class Client {
  readonly ws: WebSocket
  readonly frames: Frame[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  #waiters: { test: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = []

  constructor(url: string) {
    this.ws = new WebSocket(url)
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    this.ws.on('error', () => {})
    this.ws.on('message', (data) => {
      const frame = unpack(data as Buffer) as Frame
      this.frames.push(frame)
      this.#waiters = this.#waiters.filter((w) => (w.test(frame) ? (w.resolve(frame), false) : true))
    })
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve())
      this.ws.once('error', reject)
    })
  }

  send(frame: unknown): void {
    this.ws.send(pack(frame))
  }

  reply(id: unknown): Promise<Frame> {
    const test = (f: Frame) => f.id === id
    const seen = this.frames.find(test)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve) => this.#waiters.push({ test, resolve }))
  }
}

interface Harness {
  server: FrameServer
  url: string
  samples: { op: string; code: string }[]
  sessions: FrameSession[]
  errors: string[]
  closedSessions: number
  release: () => void
}

const servers: FrameServer[] = []
const clients: Client[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate()
  await Promise.all(servers.splice(0).map((s) => s.stop()))
})

async function start(options: Partial<FrameServerOptions> = {}, limits = { maxInflightPerConnection: 2, maxWatchesPerConnection: 2, maxBufferedBytes: 1 << 20 }): Promise<Harness> {
  let release = () => {}
  const held = new Promise<void>((resolve) => (release = resolve))
  const harness: Harness = { server: undefined as unknown as FrameServer, url: '', samples: [], sessions: [], errors: [], closedSessions: 0, release }
  const logger: Logger = { debug() {}, info() {}, warn() {}, error: (_fields, message) => void harness.errors.push(message ?? '') }
  // A scripted op per case: ping answers, get fails typed, set waits for release(), keys throws untyped.
  const handle = async (request: Request, answer: Answer) => {
    if (request.op === 'ping') return answer({ pong: true })
    if (request.op === 'get') throw new WeftError(ErrorCode.KEY_NOT_FOUND, 'no such key', { key: request.key, head: undefined })
    if (request.op === 'set') {
      await held
      return answer({ done: true })
    }
    throw new Error('boom')
  }
  const server = new FrameServer({
    host: '127.0.0.1',
    port: 0,
    limits: { maxFrameBytes: 1024, maxConnections: 2 },
    logger,
    role: 'test server',
    stoppingMessage: 'test stopping',
    serverErrorMessage: 'test server error',
    openSession: (ws) => {
      const session = new FrameSession(ws, {
        limits,
        logger,
        handle,
        observe: (op, code) => void harness.samples.push({ op, code }),
        onClose: () => void harness.closedSessions++,
      })
      harness.sessions.push(session)
      return session
    },
    onHttp: async (_req, res) => replyJson(res, 200, { ok: true }),
    ...options,
  })
  servers.push(server)
  const { port } = await server.start()
  harness.server = server
  harness.url = `ws://127.0.0.1:${port}${WS_PATH}`
  return harness
}

async function connect(url: string): Promise<Client> {
  const client = new Client(url)
  clients.push(client)
  await client.opened()
  return client
}

describe('FrameSession', () => {
  it('answers with the request id and counts the answer as OK', async () => {
    const h = await start()
    const client = await connect(h.url)
    client.send({ id: 'a', op: 'ping' })
    expect(await client.reply('a')).toEqual({ id: 'a', ok: true, result: { pong: true } })
    expect(h.samples).toEqual([{ op: 'ping', code: OK_CODE }])
  })

  it('answers a text message, bad msgpack and an unknown op with typed errors, and stays open', async () => {
    const h = await start()
    const client = await connect(h.url)
    client.ws.send('hello')
    expect(((await client.reply(null)).error as Frame).code).toBe(ErrorCode.BAD_FRAME)
    client.frames.length = 0
    client.ws.send(Buffer.from([0xc1, 0xff, 0x00]))
    expect(((await client.reply(null)).error as Frame).code).toBe(ErrorCode.BAD_FRAME)
    client.send({ id: 7, op: 'drop' })
    expect(((await client.reply(7)).error as Frame).code).toBe(ErrorCode.UNKNOWN_OP)
    client.send({ id: 8, op: 'ping' })
    expect((await client.reply(8)).ok).toBe(true)
    expect(h.samples.map((s) => s.op)).toEqual([INVALID_OP, INVALID_OP, INVALID_OP, 'ping'])
  })

  it("sends a handler's WeftError as its error frame without undefined details; anything else is INTERNAL and logged", async () => {
    const h = await start()
    const client = await connect(h.url)
    client.send({ id: 1, op: 'get', key: 'k' })
    const failed = await client.reply(1)
    expect(failed).toEqual({ id: 1, ok: false, error: { code: ErrorCode.KEY_NOT_FOUND, message: 'no such key', details: { key: 'k' } } })
    client.send({ id: 2, op: 'keys' })
    expect(await client.reply(2)).toEqual({ id: 2, ok: false, error: { code: ErrorCode.INTERNAL, message: 'internal error' } })
    expect(h.errors).toEqual(['request failed'])
    expect(h.samples).toEqual([
      { op: 'get', code: ErrorCode.KEY_NOT_FOUND },
      { op: 'keys', code: ErrorCode.INTERNAL },
    ])
  })

  it('answers TOO_MANY_REQUESTS past the in-flight limit, and takes requests again once answers went out', async () => {
    const h = await start()
    const client = await connect(h.url)
    client.send({ id: 1, op: 'set', key: 'k', value: 1 })
    client.send({ id: 2, op: 'set', key: 'k', value: 2 })
    client.send({ id: 3, op: 'ping' })
    expect(((await client.reply(3)).error as Frame).code).toBe(ErrorCode.TOO_MANY_REQUESTS)
    h.release()
    expect((await client.reply(1)).ok).toBe(true)
    expect((await client.reply(2)).ok).toBe(true)
    client.send({ id: 4, op: 'ping' })
    expect((await client.reply(4)).ok).toBe(true)
  })

  it('closes a slow consumer on an event with TOO_MANY_REQUESTS (4429)', async () => {
    const h = await start({}, { maxInflightPerConnection: 2, maxWatchesPerConnection: 2, maxBufferedBytes: 64 * 1024 })
    const client = await connect(h.url)
    const session = h.sessions[0]!
    // The client stops reading: events pile up on the server until one finds too much queued.
    client.ws.pause()
    const event = { blob: new Uint8Array(16 * 1024) }
    let sent = 0
    while (session.isOpen() && sent < 100_000) {
      session.sendEvent('w', event)
      sent++
    }
    expect(session.isOpen()).toBe(false)
    client.ws.resume()
    const closed = await client.closed
    expect(closed.code).toBe(4429)
    expect(closed.reason).toMatch(/^TOO_MANY_REQUESTS: slow consumer/)
  })
})

describe('FrameServer', () => {
  it('refuses upgrades on other paths with 404', async () => {
    const h = await start()
    const client = new Client(h.url.replace(WS_PATH, '/other'))
    clients.push(client)
    await expect(client.opened()).rejects.toThrow(/404/)
  })

  it('closes connections past maxConnections with 4429 after the handshake', async () => {
    const h = await start()
    await connect(h.url)
    await connect(h.url)
    const third = await connect(h.url)
    const closed = await third.closed
    expect(closed).toEqual({ code: 4429, reason: 'TOO_MANY_REQUESTS: this test server takes at most 2 connections' })
    expect(h.server.connectionCount).toBe(2)
  })

  it('refuses a connection its owner will not serve with the error it threw', async () => {
    const h = await start({
      openSession: () => {
        throw new WeftError(ErrorCode.UNAUTHORIZED, 'no token')
      },
    })
    const client = await connect(h.url)
    const closed = await client.closed
    expect(closed.reason).toBe('UNAUTHORIZED: no token')
    expect(h.server.connectionCount).toBe(0)
  })

  it('closes a connection sending a frame over maxFrameBytes with 1009', async () => {
    const h = await start()
    const client = await connect(h.url)
    client.send({ id: 1, op: 'ping', pad: 'x'.repeat(2000) })
    expect((await client.closed).code).toBe(1009)
  })

  it('passes other HTTP requests to onHttp', async () => {
    const h = await start()
    const response = await fetch(h.url.replace('ws:', 'http:'))
    expect(await response.json()).toEqual({ ok: true })
  })

  it('stops by closing every connection with 1001 and its reason, letting each session go', async () => {
    const h = await start()
    const client = await connect(h.url)
    await h.server.stop()
    expect(await client.closed).toEqual({ code: 1001, reason: 'CLOSED: test stopping' })
    expect(h.closedSessions).toBe(1)
    expect(h.server.connectionCount).toBe(0)
  })
})
