// The gateway's WebSocket and HTTP front door over a scripted backend: the
// node protocol's validation, errors and limits, watches, auth, HTTP routes.
import { afterEach, describe, expect, it } from 'vitest'
import { ErrorCode, WeftError } from '@weft/core'
import { pack, unpack } from '@weft/protocol'
import { WebSocket } from 'ws'
import type { Access, Authorizer, Principal } from '../src/auth/Authorizer.ts'
import type { GatewayBackend, RequestContext, WatchCallbacks, WatchHandle } from '../src/GatewayBackend.ts'
import { type GatewayLimits, GatewayServer, type GatewayServerOptions } from '../src/GatewayServer.ts'

type Frame = Record<string, unknown>

class ScriptedBackend implements GatewayBackend {
  readonly requests: { op: string; params: Record<string, unknown>; context: RequestContext }[] = []
  readonly watches: { params: Record<string, unknown>; callbacks: WatchCallbacks; closed: boolean }[] = []
  answer: (op: string, params: Record<string, unknown>) => Promise<unknown> = async (op, params) => ({ op, params })
  /** Runs while watch() is pending (to emit events before the answer). */
  beforeWatchAnswer: (callbacks: WatchCallbacks) => void = () => {}

  request(op: string, params: Record<string, unknown>, context: RequestContext): Promise<unknown> {
    this.requests.push({ op, params, context })
    return this.answer(op, params)
  }

  async watch(params: Record<string, unknown>, callbacks: WatchCallbacks): Promise<WatchHandle> {
    const entry = { params, callbacks, closed: false }
    this.watches.push(entry)
    this.beforeWatchAnswer(callbacks)
    await new Promise((resolve) => setTimeout(resolve, 5))
    return { cursor: 'g.1.e:0', close: () => (entry.closed = true) }
  }

  members(): unknown[] {
    return [{ peerId: 'p1', state: 'alive' }]
  }
}

class Client {
  readonly ws: WebSocket
  readonly frames: Frame[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  #waiters: { test: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = []

  constructor(ws: WebSocket) {
    this.ws = ws
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    ws.on('error', () => {})
    ws.on('message', (data) => {
      const frame = unpack(data as Buffer) as Frame
      this.frames.push(frame)
      this.#waiters = this.#waiters.filter((w) => (w.test(frame) ? (w.resolve(frame), false) : true))
    })
  }

  send(frame: unknown): void {
    this.ws.send(pack(frame))
  }

  next(test: (f: Frame) => boolean): Promise<Frame> {
    const seen = this.frames.find(test)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no frame; got ${JSON.stringify(this.frames.slice(-3))}`)), 3000)
      this.#waiters.push({ test, resolve: (f) => (clearTimeout(timer), resolve(f)) })
    })
  }

  response(id: unknown): Promise<Frame> {
    return this.next((f) => f.id === id && 'ok' in f)
  }

  async code(id: unknown): Promise<string | undefined> {
    const frame = await this.response(id)
    return (frame.error as { code?: string } | undefined)?.code
  }
}

const servers: GatewayServer[] = []
const sockets: WebSocket[] = []
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate()
  await Promise.allSettled(servers.splice(0).map((s) => s.stop()))
})

async function setup(options: Partial<GatewayServerOptions> & { limits?: Partial<GatewayLimits> } = {}) {
  const backend = (options.backend as ScriptedBackend | undefined) ?? new ScriptedBackend()
  const server = new GatewayServer({ port: 0, host: '127.0.0.1', ...options, backend })
  servers.push(server)
  const { port } = await server.start()
  const url = `ws://127.0.0.1:${port}/v1/ws`
  const connect = async (suffix = '', headers: Record<string, string> = {}) => {
    const ws = new WebSocket(url + suffix, { headers })
    sockets.push(ws)
    const client = new Client(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    return client
  }
  return { server, backend, connect, http: `http://127.0.0.1:${port}` }
}

describe('requests', () => {
  it('hands each op to the backend with its params and a deadline, and answers its result', async () => {
    const { connect, backend } = await setup({ requestTimeoutMs: 3000 })
    const c = await connect()
    c.send({ id: 1, op: 'set', key: 'k', value: { a: [1, 2] }, ifHead: null, author: 'ana' })
    expect(await c.response(1)).toEqual({ id: 1, ok: true, result: { op: 'set', params: { key: 'k', value: { a: [1, 2] }, ifHead: null, author: 'ana' } } })
    expect(backend.requests[0]!.context.deadline).toBeGreaterThan(Date.now() + 2000)
    c.send({ id: 'two', op: 'members' })
    expect(await c.response('two')).toMatchObject({ ok: true, result: { op: 'members', params: {} } })
  })

  it('answers backend errors with their code and details', async () => {
    const { connect, backend } = await setup()
    backend.answer = async () => {
      throw new WeftError(ErrorCode.HEAD_MISMATCH, 'head is h2', { head: 'h2' })
    }
    const c = await connect()
    c.send({ id: 1, op: 'set', key: 'k', value: 1, ifHead: 'h1' })
    expect(await c.response(1)).toEqual({ id: 1, ok: false, error: { code: 'HEAD_MISMATCH', message: 'head is h2', details: { head: 'h2' } } })
    backend.answer = async () => {
      throw new Error('a bug')
    }
    c.send({ id: 2, op: 'get', key: 'k' })
    expect(await c.response(2)).toEqual({ id: 2, ok: false, error: { code: 'INTERNAL', message: 'internal error' } })
  })

  it('refuses malformed frames and unknown ops without asking the backend', async () => {
    const { connect, backend } = await setup()
    const c = await connect()
    c.ws.send('{"id":1}')
    expect(await c.next((f) => f.id === null)).toMatchObject({ ok: false, error: { code: 'BAD_FRAME' } })
    c.frames.length = 0
    c.ws.send(new Uint8Array([0x93, 0x01]))
    expect(await c.next((f) => f.id === null)).toMatchObject({ error: { code: 'BAD_FRAME' } })
    c.send({ id: 3, op: 'drop', key: 'x' })
    expect(await c.code(3)).toBe('UNKNOWN_OP')
    c.send({ id: 4, op: 'get' })
    expect(await c.response(4)).toMatchObject({ error: { code: 'INVALID_ARGUMENT', details: { field: 'key' } } })
    c.send({ id: 5, op: 'get', key: 'k', colour: 1 })
    expect(await c.code(5)).toBe('INVALID_ARGUMENT')
    expect(backend.requests).toEqual([])
  })

  it('refuses requests past the in-flight limit with TOO_MANY_REQUESTS', async () => {
    const { connect, backend } = await setup({ limits: { maxInflightPerConnection: 2 } })
    const release: (() => void)[] = []
    backend.answer = (op) => new Promise((resolve) => release.push(() => resolve(op)))
    const c = await connect()
    for (let id = 1; id <= 3; id++) c.send({ id, op: 'get', key: 'k' })
    expect(await c.code(3)).toBe('TOO_MANY_REQUESTS')
    for (const go of release) go()
    expect(await c.response(1)).toMatchObject({ ok: true })
    c.send({ id: 4, op: 'get', key: 'k' })
    while (release.length < 3) await new Promise((resolve) => setTimeout(resolve, 5))
    release[2]!()
    expect(await c.response(4)).toMatchObject({ ok: true })
  })

  it('closes a connection that sends an oversized frame with 1009, and serves others', async () => {
    const { connect } = await setup({ limits: { maxFrameBytes: 1024 } })
    const big = await connect()
    const other = await connect()
    big.send({ id: 1, op: 'set', key: 'k', value: 'x'.repeat(2000) })
    expect((await big.closed).code).toBe(1009)
    other.send({ id: 1, op: 'ping' })
    expect(await other.response(1)).toMatchObject({ ok: true })
  })

  it('closes connections past maxConnections with 4429', async () => {
    const { connect } = await setup({ limits: { maxConnections: 1 } })
    await connect()
    const extra = await connect()
    expect(await extra.closed).toMatchObject({ code: 4429, reason: expect.stringMatching(/^TOO_MANY_REQUESTS:/) })
  })

  it('closes every connection with 1001 when it stops', async () => {
    const { connect, server } = await setup()
    const c = await connect()
    await server.stop()
    expect(await c.closed).toMatchObject({ code: 1001, reason: expect.stringMatching(/^CLOSED:/) })
  })
})

describe('watches', () => {
  it('answers first, then the events that came before the answer, then live ones; unwatch closes it', async () => {
    const { connect, backend, server } = await setup()
    backend.beforeWatchAnswer = (callbacks) => callbacks.onEvent({ cursor: 'g.1.e:1', key: 'k', early: true })
    const c = await connect()
    c.send({ id: 'w', op: 'watch', key: 'k', after: 'g.1.e:0' })
    await c.next((f) => f.id === 'w' && 'event' in f)
    const forWatch = c.frames.filter((f) => f.id === 'w')
    expect(forWatch[0]).toEqual({ id: 'w', ok: true, result: { watch: 'w', cursor: 'g.1.e:0' } })
    expect(forWatch[1]).toEqual({ id: 'w', event: { cursor: 'g.1.e:1', key: 'k', early: true } })
    expect(backend.watches[0]!.params).toEqual({ key: 'k', after: 'g.1.e:0' })
    expect(server.watchCount).toBe(1)
    backend.watches[0]!.callbacks.onEvent({ cursor: 'g.1.e:2', key: 'k' })
    await c.next((f) => f.id === 'w' && (f.event as Frame | undefined)?.cursor === 'g.1.e:2')
    c.send({ id: 'u', op: 'unwatch', watch: 'w' })
    expect(await c.response('u')).toEqual({ id: 'u', ok: true, result: { watch: 'w', removed: true } })
    expect(backend.watches[0]!.closed).toBe(true)
    expect(server.watchCount).toBe(0)
    c.send({ id: 'u2', op: 'unwatch', watch: 'w' })
    expect(await c.response('u2')).toMatchObject({ result: { removed: false } })
  })

  it('sends `ended` when the backend gives up on a watch', async () => {
    const { connect, backend } = await setup()
    const c = await connect()
    c.send({ id: 7, op: 'watch', prefix: '' })
    await c.response(7)
    backend.watches[0]!.callbacks.onEnd(new WeftError(ErrorCode.UNAVAILABLE, 'no node'))
    expect(await c.next((f) => f.id === 7 && 'ended' in f)).toEqual({ id: 7, ended: { code: 'UNAVAILABLE', message: 'no node' } })
    // Its id is free again.
    c.frames.length = 0
    c.send({ id: 7, op: 'watch', prefix: '' })
    expect(await c.response(7)).toMatchObject({ ok: true })
  })

  it('refuses a second watch with an open watch\'s id, and watches past the limit', async () => {
    const { connect } = await setup({ limits: { maxWatchesPerConnection: 1 } })
    const c = await connect()
    c.send({ id: 1, op: 'watch', key: 'a' })
    await c.response(1)
    c.frames.length = 0
    c.send({ id: 1, op: 'watch', key: 'b' })
    expect(await c.code(1)).toBe('INVALID_ARGUMENT')
    c.send({ id: 2, op: 'watch', key: 'b' })
    expect(await c.code(2)).toBe('TOO_MANY_REQUESTS')
  })

  it('closes the backend watches of a connection that goes away', async () => {
    const { connect, backend, server } = await setup()
    const c = await connect()
    c.send({ id: 1, op: 'watch', key: 'a' })
    c.send({ id: 2, op: 'watch', key: 'b' })
    await c.response(2)
    c.ws.close()
    await c.closed
    while (server.watchCount > 0) await new Promise((resolve) => setTimeout(resolve, 5))
    expect(backend.watches.map((w) => w.closed)).toEqual([true, true])
  })
})

class TestAuthorizer implements Authorizer {
  readonly open = false
  readonly checks: [string, Access, string | undefined][] = []

  authenticate(token: string | undefined): Principal {
    if (token === 'good') return { name: 'ci' }
    throw new WeftError(ErrorCode.UNAUTHORIZED, token === undefined ? 'a bearer token is required' : 'unknown token')
  }

  authorize(principal: Principal, access: Access, scope: string | undefined): void {
    this.checks.push([principal.name, access, scope])
    if (scope === undefined || scope === '' || scope.startsWith('secret/')) throw new WeftError(ErrorCode.FORBIDDEN, `${principal.name} may not ${access} ${scope ?? 'the cluster'}`)
  }
}

describe('auth', () => {
  it('closes connections without a valid token with 4401', async () => {
    const { connect } = await setup({ authorizer: new TestAuthorizer() })
    expect(await (await connect()).closed).toMatchObject({ code: 4401, reason: 'UNAUTHORIZED: a bearer token is required' })
    expect(await (await connect('?token=bad')).closed).toMatchObject({ code: 4401 })
  })

  it('checks read or write on what each op touches, and answers FORBIDDEN without asking the backend', async () => {
    const authorizer = new TestAuthorizer()
    const { connect, backend } = await setup({ authorizer })
    const c = await connect('', { Authorization: 'Bearer good' })
    const ops: Frame[] = [
      { op: 'get', key: 'a/1' },
      { op: 'history', key: 'a/1' },
      { op: 'info', key: 'a/1' },
      { op: 'diff', key: 'a/1', from: {}, to: {} },
      { op: 'keys', prefix: 'a/' },
      { op: 'set', key: 'a/1', value: 1 },
      { op: 'delete', key: 'a/1' },
      { op: 'revert', key: 'a/1', index: 1 },
      { op: 'fork', key: 'a/1', to: 'b' },
      { op: 'fork', prefix: 'a/', to: 'b' },
      { op: 'merge', prefix: 'a/', from: 'b' },
      { op: 'watch', prefix: 'a/' },
    ]
    for (const [i, op] of ops.entries()) {
      c.send({ id: i, ...op })
      expect(await c.response(i)).toMatchObject({ ok: true })
    }
    expect(authorizer.checks.map(([, access, scope]) => `${access} ${scope}`)).toEqual([
      'read a/1', 'read a/1', 'read a/1', 'read a/1', 'read a/', 'write a/1', 'write a/1', 'write a/1', 'write a/1', 'write a/', 'write a/', 'read a/',
    ])
    const before = backend.requests.length
    c.send({ id: 'x', op: 'set', key: 'secret/k', value: 1 })
    expect(await c.response('x')).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } })
    // Listing every key and members need read on every key.
    c.send({ id: 'k', op: 'keys' })
    expect(await c.code('k')).toBe('FORBIDDEN')
    c.send({ id: 'm', op: 'members' })
    expect(await c.code('m')).toBe('FORBIDDEN')
    expect(authorizer.checks.slice(-2).map(([, access, scope]) => `${access} ${scope}`)).toEqual(['read ', 'read '])
    expect(backend.requests.length).toBe(before)
    // Ping needs only the valid token (clients ping at connect to check it).
    const checks = authorizer.checks.length
    c.send({ id: 'p', op: 'ping' })
    expect(await c.response('p')).toMatchObject({ ok: true })
    expect(authorizer.checks.length).toBe(checks)
  })
})

describe('http', () => {
  it('serves /healthz (503 without nodes), /metrics and /v1/cluster/members', async () => {
    let nodes = 2
    const { http, connect } = await setup({ nodeCount: () => nodes, health: () => ({ pool: [] }) })
    const c = await connect()
    c.send({ id: 1, op: 'get', key: 'k' })
    await c.response(1)
    const health = await fetch(`${http}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'ok', role: 'gateway', nodes: 2, connections: 1, watches: 0, auth: 'open', pool: [] })
    nodes = 0
    expect((await fetch(`${http}/healthz`)).status).toBe(503)
    const metrics = await (await fetch(`${http}/metrics`)).text()
    expect(metrics).toMatch(/weft_gateway_requests_total\{op="get",code="OK"\} 1/)
    expect(metrics).toMatch(/weft_gateway_connections 1/)
    expect(metrics).toMatch(/weft_gateway_nodes 0/)
    expect(await (await fetch(`${http}/v1/cluster/members`)).json()).toEqual({ members: [{ peerId: 'p1', state: 'alive' }] })
    expect((await fetch(`${http}/nope`)).status).toBe(404)
    expect((await fetch(`${http}/healthz`, { method: 'POST' })).status).toBe(405)
  })

  it('asks the mounted handler first, and serves what it leaves', async () => {
    const seen: string[] = []
    const { http } = await setup({
      httpHandler: async (req, res) => {
        seen.push(req.url ?? '')
        if (!req.url?.startsWith('/v1/keys')) return false
        res.writeHead(200, { 'Content-Type': 'application/json' })
        res.end('{"keys":[]}')
        return true
      },
    })
    expect(await (await fetch(`${http}/v1/keys`)).json()).toEqual({ keys: [] })
    expect((await fetch(`${http}/healthz`)).status).toBe(200)
    expect(seen).toEqual(['/v1/keys', '/healthz'])
  })

  it('needs a token with read on the cluster for /v1/cluster/members', async () => {
    const { http } = await setup({ authorizer: new TestAuthorizer() })
    const anonymous = await fetch(`${http}/v1/cluster/members`)
    expect(anonymous.status).toBe(401)
    expect(await anonymous.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } })
    expect((await fetch(`${http}/v1/cluster/members`, { headers: { Authorization: 'Bearer good' } })).status).toBe(403)
  })
})
