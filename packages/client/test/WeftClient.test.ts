// The client against an in-process fake server: frames, errors, timeouts,
// reconnects, watch resumption, idempotent write retries.
import { afterEach, describe, expect, it } from 'vitest'
import { ErrorCode, WeftError } from '@weft/core'
import { type ConnectionChange, WeftClient, WeftClientError, type WatchEvent, backoffDelay } from '../src/index.ts'
import { FakeServer, type Frame } from './FakeServer.ts'

let server: FakeServer | undefined
const clients: WeftClient[] = []

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()))
  await server?.stop()
  server = undefined
})

async function start(): Promise<FakeServer> {
  server = await FakeServer.start()
  return server
}

async function connect(url: string, options: ConstructorParameters<typeof WeftClient>[1] = {}): Promise<WeftClient> {
  const client = await WeftClient.connect(url, { timeoutMs: 2000, reconnect: { initialDelayMs: 10, maxDelayMs: 50 }, ...options })
  clients.push(client)
  return client
}

/** The frame a request produced, as the server received it (the echo handler returns it). */
function echoed(result: unknown): Frame {
  return (result as { echo: Frame }).echo
}

async function rejection(promise: Promise<unknown>): Promise<WeftClientError> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(WeftClientError)
    return err as WeftClientError
  }
  throw new Error('expected a rejection')
}

async function take(iterator: AsyncIterator<WatchEvent>, n: number): Promise<WatchEvent[]> {
  const out: WatchEvent[] = []
  while (out.length < n) {
    const next = await iterator.next()
    if (next.done) break
    out.push(next.value)
  }
  return out
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

describe('WeftClient frames', () => {
  it('sends every op as the protocol frame, without undefined fields', async () => {
    const s = await start()
    const c = await connect(s.url)
    const { id: _getId, ...get } = echoed(await c.get('a', { fork: 'f', index: 2, timeoutMs: 500 }))
    expect(get).toEqual({ op: 'get', key: 'a', fork: 'f', index: 2 })
    expect(echoed(await c.get('a', { revision: 'r1' }))).toMatchObject({ op: 'get', key: 'a', revision: 'r1' })
    expect(echoed(await c.get('a', { at: 123.5 }))).toMatchObject({ op: 'get', key: 'a', at: 123.5 })

    const set = echoed(await c.set('a', { x: [1, 'two', null, true] }, { ifHead: null, author: 'ana', message: 'm', fork: undefined }))
    expect(set).toMatchObject({ op: 'set', key: 'a', value: { x: [1, 'two', null, true] }, ifHead: null, author: 'ana', message: 'm' })
    expect(set).not.toHaveProperty('fork')
    expect(set.requestId).toMatch(UUID)
    const bytes = echoed(await c.set('b', new Uint8Array([1, 2, 3])))
    expect(new Uint8Array(bytes.value as Uint8Array)).toEqual(new Uint8Array([1, 2, 3]))

    expect(echoed(await c.delete('a', { ifHead: 'r9', requestId: 'mine' }))).toMatchObject({ op: 'delete', key: 'a', ifHead: 'r9', requestId: 'mine' })
    expect(echoed(await c.keys({ prefix: 'p/', fork: 'f', limit: 5, after: 'p/a' }))).toMatchObject({ op: 'keys', prefix: 'p/', fork: 'f', limit: 5, after: 'p/a' })
    expect(echoed(await c.history('a', { limit: 3, before: 'r5', values: true, patches: true }))).toMatchObject({
      op: 'history',
      key: 'a',
      limit: 3,
      before: 'r5',
      values: true,
      patches: true,
    })
    expect(echoed(await c.info('a', { fork: 'f' }))).toMatchObject({ op: 'info', key: 'a', fork: 'f' })
    expect(echoed(await c.diff('a', { index: 1 }, { fork: 'f' }))).toMatchObject({ op: 'diff', key: 'a', from: { index: 1 }, to: { fork: 'f' } })
    expect(echoed(await c.diff('a'))).toMatchObject({ op: 'diff', key: 'a', from: {}, to: {} })
    const revert = echoed(await c.revert('a', { index: 1, message: 'undo' }))
    expect(revert).toMatchObject({ op: 'revert', key: 'a', index: 1, message: 'undo' })
    expect(revert.requestId).toMatch(UUID)
    expect(echoed(await c.fork('a', 'staging', { from: 'main', revision: 'r1' }))).toMatchObject({ op: 'fork', key: 'a', to: 'staging', from: 'main', revision: 'r1' })
    const forkPrefix = echoed(await c.forkPrefix('deploy/', 'staging', { at: 5 }))
    expect(forkPrefix).toMatchObject({ op: 'fork', prefix: 'deploy/', to: 'staging', at: 5 })
    expect(forkPrefix).not.toHaveProperty('key')
    expect(echoed(await c.merge('a', 'staging', { into: 'main', strategy: 'fail' }))).toMatchObject({
      op: 'merge',
      key: 'a',
      from: 'staging',
      into: 'main',
      strategy: 'fail',
    })
    const mergePrefix = echoed(await c.mergePrefix('', 'staging', { strategy: 'theirs' }))
    expect(mergePrefix).toMatchObject({ op: 'merge', prefix: '', from: 'staging', strategy: 'theirs' })
    expect(mergePrefix.requestId).toMatch(UUID)
    expect(echoed(await c.members())).toMatchObject({ op: 'members' })
    expect(echoed(await c.ping())).toMatchObject({ op: 'ping' })
    expect(echoed(await c.request('keys', { prefix: 'q' }))).toMatchObject({ op: 'keys', prefix: 'q' })

    // Reads carry no requestId; every write carries a fresh one; no frame carries timeoutMs.
    for (const frame of s.frames) {
      expect(frame).not.toHaveProperty('timeoutMs')
      if (['get', 'keys', 'history', 'info', 'diff', 'members', 'ping'].includes(frame.op)) expect(frame).not.toHaveProperty('requestId')
      else expect(typeof frame.requestId).toBe('string')
    }
    const ids = s.frames.filter((f) => typeof f.requestId === 'string' && f.requestId !== 'mine').map((f) => f.requestId)
    expect(new Set(ids).size).toBe(ids.length)
    // Frame ids are unique per connection.
    expect(new Set(s.frames.map((f) => f.id)).size).toBe(s.frames.length)
  })

  it('sends the token as ?token= and as an Authorization header in Node', async () => {
    const s = await start()
    await connect(`${s.url}?x=1`, { token: 's3cret/+' })
    const request = s.last!.request
    const query = new URL(request.url!, 'http://h').searchParams
    expect(query.get('token')).toBe('s3cret/+')
    expect(query.get('x')).toBe('1')
    expect(request.headers.authorization).toBe('Bearer s3cret/+')
  })

  it('falls back to `ws` where there is no global WebSocket, headers included', async () => {
    const s = await start()
    const global = globalThis as { WebSocket?: unknown }
    const saved = global.WebSocket
    delete global.WebSocket
    try {
      const c = await connect(s.url, { token: 't' })
      expect(echoed(await c.ping())).toMatchObject({ op: 'ping' })
      expect(s.last!.request.headers.authorization).toBe('Bearer t')
    } finally {
      global.WebSocket = saved
    }
  })

  it('returns results as the server sent them, answers out of order included', async () => {
    const s = await start()
    let first: Frame | undefined
    s.handlers.get = (frame, connection) => {
      if (frame.key === 'slow') {
        first = frame
        return undefined
      }
      // Answer the second, then the first.
      s.send(connection, { id: frame.id, ok: true, result: { key: 'fast', fork: 'main', deleted: false, value: 2, revision: { id: 'r2' } } })
      s.send(connection, { id: first!.id, ok: true, result: { key: 'slow', fork: 'main', deleted: false, value: 1, revision: { id: 'r1' } } })
      return undefined
    }
    const c = await connect(s.url)
    const slow = c.get('slow')
    await new Promise((r) => setTimeout(r, 20))
    const fast = c.get('fast')
    expect((await fast).value).toBe(2)
    expect((await slow).value).toBe(1)
  })
})

describe('WeftClient errors', () => {
  it('rejects with WeftClientError carrying the code, message and details', async () => {
    const s = await start()
    s.handlers.set = () => ({ error: { code: 'HEAD_MISMATCH', message: 'head is r2', details: { head: 'r2' } } })
    s.handlers.merge = () => ({
      error: { code: 'MERGE_CONFLICT', message: '1 conflict', details: { conflicts: [{ path: ['image'], ours: 'a', theirs: 'b', winner: 'theirs' }] } },
    })
    s.handlers.get = () => ({ error: { code: 'KEY_NOT_FOUND', message: 'no key a' } })
    const c = await connect(s.url)
    s.handlers.ping = () => ({ error: { code: 'SOMETHING_NEW', message: 'from the future' } })

    const mismatch = await rejection(c.set('a', 1, { ifHead: 'r1' }))
    expect(mismatch).toBeInstanceOf(WeftError)
    expect(mismatch.code).toBe(ErrorCode.HEAD_MISMATCH)
    expect(mismatch.message).toBe('head is r2')
    expect(mismatch.head).toBe('r2')
    expect(mismatch.op).toBe('set')
    expect(mismatch.requestId).toMatch(UUID)
    expect(mismatch.local).toBe(false)

    const conflict = await rejection(c.merge('a', 'staging', { strategy: 'fail' }))
    expect(conflict.code).toBe(ErrorCode.MERGE_CONFLICT)
    expect(conflict.conflicts).toEqual([{ path: ['image'], ours: 'a', theirs: 'b', winner: 'theirs' }])

    const missing = await rejection(c.get('a'))
    expect(missing.code).toBe(ErrorCode.KEY_NOT_FOUND)
    expect(missing.retryable).toBe(false)

    const unknown = await rejection(c.ping())
    expect(unknown.code).toBe(ErrorCode.INTERNAL)
    expect(unknown.message).toContain('SOMETHING_NEW')
  })

  it('times out a request the server does not answer with TIMEOUT, and ignores a late answer', async () => {
    const s = await start()
    let late: (() => void) | undefined
    s.handlers.set = (frame, connection) => {
      late = () => s.send(connection, { id: frame.id, ok: true, result: { key: 'a' } })
      return undefined
    }
    const c = await connect(s.url)
    const started = Date.now()
    const err = await rejection(c.set('a', 1, { timeoutMs: 150 }))
    expect(err.code).toBe(ErrorCode.TIMEOUT)
    expect(err.local).toBe(true)
    expect(err.retryable).toBe(true)
    expect(err.requestId).toMatch(UUID)
    expect(err.details).toMatchObject({ connected: true, requestId: err.requestId })
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
    expect(Date.now() - started).toBeLessThan(1500)
    late!()
    // The client still works, and the late answer went nowhere.
    expect(echoed(await c.ping())).toMatchObject({ op: 'ping' })
  })

  it('refuses a frame over maxFrameBytes locally with FRAME_TOO_LARGE', async () => {
    const s = await start()
    const c = await connect(s.url, { maxFrameBytes: 1000 })
    const err = await rejection(c.set('a', 'x'.repeat(2000)))
    expect(err.code).toBe(ErrorCode.FRAME_TOO_LARGE)
    expect(s.framesOf('set')).toHaveLength(0)
  })

  it('fails to connect to nothing with UNAVAILABLE within its timeout', async () => {
    const s = await start()
    const url = s.url
    await s.stop()
    server = undefined
    const started = Date.now()
    const err = await rejection(WeftClient.connect(url, { timeoutMs: 300, reconnect: { initialDelayMs: 10, maxDelayMs: 40 } }))
    expect(err.code).toBe(ErrorCode.UNAVAILABLE)
    expect(err.local).toBe(true)
    expect(err.message).toContain(url)
    expect(Date.now() - started).toBeLessThan(2000)
    const once = await rejection(WeftClient.connect(url, { timeoutMs: 1000, reconnect: false }))
    expect(once.code).toBe(ErrorCode.UNAVAILABLE)
  })

  it('rejects connect with UNAUTHORIZED when the server refuses the token right after opening', async () => {
    const s = await start()
    s.wss.on('connection', (socket) => socket.close(4401, 'UNAUTHORIZED: unknown bearer token'))
    const err = await rejection(WeftClient.connect(s.url, { token: 'bad', timeoutMs: 2_000 }))
    expect(err.code).toBe(ErrorCode.UNAUTHORIZED)
    expect(err.message).toBe('unknown bearer token')
  })

  it('stops for good when the server closes with UNAUTHORIZED (4401), failing what waits', async () => {
    const s = await start()
    s.handlers.get = () => undefined
    const changes: ConnectionChange[] = []
    const c = await connect(s.url, { token: 'bad', onConnectionChange: (change) => changes.push(change) })
    const pending = c.get('a')
    await new Promise((r) => setTimeout(r, 20))
    s.closeAll(4401, 'UNAUTHORIZED: unknown token')
    const err = await rejection(pending)
    expect(err.code).toBe(ErrorCode.UNAUTHORIZED)
    expect(err.message).toBe('unknown token')
    expect((await rejection(c.ping())).code).toBe(ErrorCode.UNAUTHORIZED)
    expect(c.state).toBe('closed')
    await new Promise((r) => setTimeout(r, 100))
    expect(s.connections).toHaveLength(1)
    expect(changes.at(-1)?.state).toBe('closed')
  })

  it('close() rejects waiting requests with CLOSED and ends watches', async () => {
    const s = await start()
    s.handlers.get = () => undefined
    const c = await connect(s.url)
    const watch = await c.watch({ key: 'k' })
    const pending = rejection(c.get('a'))
    await c.close()
    expect((await pending).code).toBe(ErrorCode.CLOSED)
    expect(await watch.next()).toEqual({ value: undefined, done: true })
    expect((await rejection(c.get('a'))).code).toBe(ErrorCode.CLOSED)
  })
})

describe('WeftClient connection', () => {
  it('keeps at most maxInflight requests unanswered on the wire', async () => {
    const s = await start()
    let unanswered = 0
    let most = 0
    s.handlers.get = (frame, connection) => {
      unanswered++
      most = Math.max(most, unanswered)
      setTimeout(() => {
        unanswered--
        s.send(connection, { id: frame.id, ok: true, result: { key: frame.key } })
      }, 5)
      return undefined
    }
    const c = await connect(s.url, { maxInflight: 3 })
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => c.get(`k${i}`)))
    expect(results.map((r) => r.key)).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`))
    expect(most).toBe(3)
  })

  it('resends unanswered requests after a reconnect, writes with the same requestId, applied once', async () => {
    const s = await start()
    const applied = new Map<string, { revision: string }>()
    let drops = 0
    s.handlers.set = (frame) => {
      const requestId = frame.requestId as string
      let result = applied.get(requestId)
      if (!result) {
        result = { revision: `rev${applied.size + 1}` }
        applied.set(requestId, result)
      }
      if (drops === 0) {
        // Applied, but the connection dies before the answer goes out.
        drops++
        s.dropAll()
        return undefined
      }
      return { result }
    }
    const changes: ConnectionChange[] = []
    const c = await connect(s.url, { onConnectionChange: (change) => changes.push(change) })
    const result = (await c.set('a', 1)) as unknown as { revision: string }
    expect(result.revision).toBe('rev1')
    const sets = s.framesOf('set')
    expect(sets).toHaveLength(2)
    expect(sets[0]!.requestId).toBe(sets[1]!.requestId)
    expect(applied.size).toBe(1)
    expect(s.connections).toHaveLength(2)
    expect(changes.map((ch) => ch.state)).toEqual(['open', 'reconnecting', 'open'])
  })

  it('applies every write exactly once and answers every request through repeated connection drops', async () => {
    const s = await start()
    const applied = new Map<string, number>()
    let frames = 0
    s.handlers.set = (frame, connection) => {
      const requestId = frame.requestId as string
      if (!applied.has(requestId)) applied.set(requestId, frame.value as number)
      // Every 37th frame: applied, then the connection dies before (or right after) answering.
      if (++frames % 37 === 0) {
        if (frames % 2 === 0) s.send(connection, { id: frame.id, ok: true, result: { value: applied.get(requestId) } })
        connection.socket.terminate()
        return undefined
      }
      return { result: { value: applied.get(requestId) } }
    }
    const c = await connect(s.url, { maxInflight: 16, timeoutMs: 20_000 })
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => c.set(`k${i % 7}`, i) as Promise<unknown>))
    expect(results.map((r) => (r as { value: number }).value)).toEqual(Array.from({ length: 500 }, (_, i) => i))
    expect(applied.size).toBe(500)
    expect(s.connections.length).toBeGreaterThan(5)
  })

  it('lets requests made while disconnected wait for the connection, in order', async () => {
    const s = await start()
    const port = s.port
    const c = await connect(s.url, { timeoutMs: 3000 })
    await s.stop()
    const later = [c.set('a', 1), c.get('a'), c.ping()]
    await new Promise((r) => setTimeout(r, 100))
    server = await FakeServer.start(port)
    const results = await Promise.all(later)
    expect(results.map((r) => echoed(r).op)).toEqual(['set', 'get', 'ping'])
    expect(server.frames.map((f) => f.op)).toEqual(['set', 'get', 'ping'])
  })

  it('times out requests made while disconnected when no connection comes back', async () => {
    const s = await start()
    const c = await connect(s.url)
    await s.stop()
    server = undefined
    const err = await rejection(c.get('a', { timeoutMs: 200 }))
    expect(err.code).toBe(ErrorCode.TIMEOUT)
    expect(err.details).toMatchObject({ connected: false })
    expect(err.message).toContain('no connection')
  })

  it('without reconnect, a lost connection fails what waits with UNAVAILABLE and closes the client', async () => {
    const s = await start()
    s.handlers.get = () => undefined
    const c = await connect(s.url, { reconnect: false })
    const pending = c.get('a')
    await new Promise((r) => setTimeout(r, 20))
    s.dropAll()
    expect((await rejection(pending)).code).toBe(ErrorCode.UNAVAILABLE)
    expect(c.state).toBe('closed')
  })

  it('backs off exponentially with jitter between attempts, capped', async () => {
    expect([0, 1, 2, 3, 10].map((n) => backoffDelay(n, { initialDelayMs: 100, maxDelayMs: 1000 }, () => 1))).toEqual([100, 200, 400, 800, 1000])
    expect([0, 1, 2].map((n) => backoffDelay(n, { initialDelayMs: 100 }, () => 0))).toEqual([50, 100, 200])

    const s = await start()
    const port = s.port
    const changes: ConnectionChange[] = []
    const c = await connect(s.url, { reconnect: { initialDelayMs: 20, maxDelayMs: 80 }, random: () => 1, onConnectionChange: (ch) => changes.push(ch) })
    await s.stop()
    await new Promise((r) => setTimeout(r, 400))
    const delays = changes.filter((ch) => ch.state === 'reconnecting' && ch.delayMs !== undefined).map((ch) => ch.delayMs)
    expect(delays.slice(0, 4)).toEqual([20, 40, 80, 80])
    server = await FakeServer.start(port)
    expect(echoed(await c.ping())).toMatchObject({ op: 'ping' })
  })
})

describe('WeftClient watch', () => {
  it('streams events as an async iterator and unwatches on break', async () => {
    const s = await start()
    const c = await connect(s.url)
    const watch = await c.watch({ prefix: 'deploy/', fork: 'main' })
    expect(s.framesOf('watch')[0]).toMatchObject({ op: 'watch', prefix: 'deploy/', fork: 'main' })
    expect(s.framesOf('watch')[0]).not.toHaveProperty('after')
    expect(watch.cursor).toBe('e1:0')
    s.publish('deploy/api', { image: 'api:1' })
    s.publish('other', 1)
    s.publish('deploy/web', { image: 'web:1' })
    const seen: string[] = []
    for await (const event of watch) {
      seen.push(`${event.key}=${JSON.stringify(event.value)}`)
      if (seen.length === 2) break
    }
    expect(seen).toEqual(['deploy/api={"image":"api:1"}', 'deploy/web={"image":"web:1"}'])
    expect(watch.cursor).toBe('e1:3')
    await waitFor(() => s.framesOf('unwatch').length === 1)
    expect(s.framesOf('unwatch')[0]!.watch).toBe(s.framesOf('watch')[0]!.id)
  })

  it('survives the server dropping the socket mid-stream: resumes from the last cursor, no gap, no duplicate', async () => {
    const s = await start()
    // The server replays from one event before `after` too: the client must drop the overlap.
    const asked: string[] = []
    s.handlers.watch = (frame) => {
      const cursor = typeof frame.after === 'string' ? frame.after : `e1:${s.feed.length}`
      if (typeof frame.after === 'string') {
        asked.push(frame.after)
        frame.after = `e1:${Math.max(0, Number(frame.after.split(':')[1]) - 1)}`
      }
      return { result: { watch: frame.id, cursor } }
    }
    const c = await connect(s.url)
    const watch = await c.watch({ key: 'k' })
    const received: number[] = []
    const consumer = (async () => {
      for await (const event of watch) {
        received.push(event.value as number)
        if (received.length === 60) break
      }
    })()
    for (let i = 1; i <= 60; i++) {
      s.publish('k', i)
      if (i % 15 === 0) {
        // Mid-stream cut; writes keep landing in the feed while the client is away.
        s.dropAll()
      }
      await new Promise((r) => setTimeout(r, 2))
    }
    await consumer
    expect(received).toEqual(Array.from({ length: 60 }, (_, i) => i + 1))
    // Every resubscription asked for what came after the last event received.
    expect(asked.length).toBeGreaterThanOrEqual(3)
    for (const after of asked) expect(after).toMatch(/^e1:\d+$/)
  })

  it('resumes by time when its cursor expired (another node), dropping repeats by revision id', async () => {
    const s = await start()
    const c = await connect(s.url)
    const watch = await c.watch({ key: 'k' })
    s.publish('k', 1, 'rev-a')
    s.publish('k', 2, 'rev-b')
    expect((await take(watch, 2)).map((e) => e.value)).toEqual([1, 2])
    // "Another node": cursors of epoch e1 are refused; since replays two known revisions, then a new one.
    s.handlers.watch = (frame, connection) => {
      if (frame.after !== undefined) return { error: { code: 'CURSOR_EXPIRED', message: 'another epoch', details: { epoch: 'e2' } } }
      setTimeout(() => {
        for (const [seq, id, value] of [[7, 'rev-a', 1], [8, 'rev-b', 2], [9, 'rev-c', 3]] as const) {
          s.send(connection, { id: frame.id, event: { cursor: `e2:${seq}`, key: 'k', fork: 'main', revision: { id, index: seq, ts: 1, node: 'n2', kind: 'set' }, value, deleted: false } })
        }
      }, 10)
      return { result: { watch: frame.id, cursor: 'e2:6' } }
    }
    s.dropAll()
    const [next] = await take(watch, 1)
    expect(next?.value).toBe(3)
    expect(next?.cursor).toBe('e2:9')
    const frames = s.framesOf('watch')
    expect(frames.at(-2)).toMatchObject({ after: 'e1:2' })
    expect(frames.at(-1)).toMatchObject({ since: expect.any(Number) })
    expect(frames.at(-1)).not.toHaveProperty('after')
    expect(watch.cursor).toBe('e2:9')
    watch.close()
  })

  it('pauses a subscription a slow reader has not drained, and resumes it without losing events', async () => {
    const s = await start()
    const c = await connect(s.url)
    const watch = await c.watch({ key: 'k' }, { buffer: 4 })
    for (let i = 1; i <= 20; i++) s.publish('k', i)
    await waitFor(() => s.framesOf('unwatch').length >= 1)
    const events = await take(watch, 20)
    expect(events.map((e) => e.value)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    expect(s.framesOf('watch').length).toBeGreaterThanOrEqual(2)
    watch.close()
  })

  it('ends the iterator with the error of a watch the server ended, after the events received', async () => {
    const s = await start()
    const c = await connect(s.url)
    const watch = await c.watch({ key: 'k' })
    s.publish('k', 1)
    const connection = s.last!
    const id = s.framesOf('watch')[0]!.id
    s.send(connection, { id, ended: { code: 'FORBIDDEN', message: 'grant revoked' } })
    expect((await watch.next()).value?.value).toBe(1)
    const err = await rejection(watch.next())
    expect(err.code).toBe(ErrorCode.FORBIDDEN)
    expect(await watch.next()).toEqual({ value: undefined, done: true })
  })

  it('rejects watch() when the server refuses the watch', async () => {
    const s = await start()
    s.handlers.watch = () => ({ error: { code: 'CURSOR_EXPIRED', message: 'old', details: { epoch: 'e9' } } })
    const c = await connect(s.url)
    const err = await rejection(c.watch({ key: 'k', after: 'e0:5' }))
    expect(err.code).toBe(ErrorCode.CURSOR_EXPIRED)
    expect(err.details).toEqual({ epoch: 'e9' })
  })

  it('times out watch() when the server does not answer', async () => {
    const s = await start()
    s.handlers.watch = () => undefined
    const c = await connect(s.url)
    const err = await rejection(c.watch({ key: 'k' }, { timeoutMs: 100 }))
    expect(err.code).toBe(ErrorCode.TIMEOUT)
  })
})

async function waitFor(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 5))
  }
}
