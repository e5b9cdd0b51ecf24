import { ErrorCode, WeftError } from '@weft/core'
import { afterEach, describe, expect, it } from 'vitest'
import { REV, REV2, startTestServer, stopTestServers } from './testServer.ts'

afterEach(stopTestServers)

interface SseEvent {
  id?: string
  event?: string
  data?: string
}

/** Reads server-sent events off a fetch response, one block at a time. */
class SseReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>
  readonly #decoder = new TextDecoder()
  #buffer = ''

  constructor(res: Response) {
    this.#reader = res.body!.getReader()
  }

  /** The next event (comment-only blocks skipped); undefined when the stream ended. */
  async next(): Promise<SseEvent | undefined> {
    while (true) {
      const end = this.#buffer.indexOf('\n\n')
      if (end >= 0) {
        const block = this.#buffer.slice(0, end)
        this.#buffer = this.#buffer.slice(end + 2)
        const event: SseEvent = {}
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue
          const colon = line.indexOf(':')
          const field = line.slice(0, colon)
          const value = line.slice(colon + 1).replace(/^ /, '')
          if (field === 'id' || field === 'event' || field === 'data') event[field] = value
        }
        if (Object.keys(event).length > 0) return event
        continue
      }
      const { done, value } = await this.#reader.read()
      if (done) return undefined
      this.#buffer += this.#decoder.decode(value, { stream: true })
    }
  }
}

const event = (seq: number, value?: unknown) => ({
  cursor: `e1:${seq}`,
  key: 'deployments/api',
  fork: 'main',
  revision: { ...REV, index: seq },
  ...(value === undefined ? { deleted: true } : { value, deleted: false }),
})

describe('GET /v1/watch (server-sent events)', () => {
  it('streams events as `id: <cursor>` + one `data:` JSON line, and a client that leaves closes the backend watch', async () => {
    const { url, backend } = await startTestServer()
    const abort = new AbortController()
    const res = await fetch(`${url}/v1/watch?prefix=deployments%2F&fork=main`, { signal: abort.signal })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const sse = new SseReader(res)
    expect(await sse.next()).toEqual({ event: 'ready', data: '{}' })
    const watch = await backend.nextWatch()
    expect(watch.params).toEqual({ prefix: 'deployments/', fork: 'main' })
    watch.emit(event(1, { image: 'api:1' }))
    watch.emit(event(2, new Uint8Array([1, 2])))
    watch.emit(event(3))
    const got = [await sse.next(), await sse.next(), await sse.next()]
    expect(got.map((e) => e?.id)).toEqual(['e1:1', 'e1:2', 'e1:3'])
    expect(got.map((e) => JSON.parse(e!.data!))).toEqual([event(1, { image: 'api:1' }), event(2, { $bytes: 'AQI=' }), event(3)])
    expect(watch.closed).toBe(false)
    abort.abort()
    await watch.whenClosed()
    expect(watch.closed).toBe(true)
  })

  it('resumes: `since` as a cursor is `after`, as a time is `since`; Last-Event-ID wins over both', async () => {
    const { url, backend } = await startTestServer()
    const open = async (query: string, headers: Record<string, string> = {}) => {
      const abort = new AbortController()
      const res = await fetch(`${url}/v1/watch?${query}`, { signal: abort.signal, headers })
      expect(res.status).toBe(200)
      const watch = await backend.nextWatch()
      abort.abort()
      await watch.whenClosed()
      return watch.params
    }
    expect(await open('key=k&since=e1:41')).toEqual({ key: 'k', after: 'e1:41' })
    expect(await open('key=k&since=1732240000000')).toEqual({ key: 'k', since: 1732240000000 })
    expect(await open('key=k&since=2024-11-22T02:00:00Z')).toEqual({ key: 'k', since: Date.parse('2024-11-22T02:00:00Z') })
    expect(await open('key=k&since=e1:1', { 'Last-Event-ID': 'e1:99' })).toEqual({ key: 'k', after: 'e1:99' })
  })

  it('the start cursor comes first as a `ready` event with its id, when the backend knows it', async () => {
    const { url, backend } = await startTestServer()
    backend.watchStart = async (watch) => {
      Object.assign(watch, { cursor: 'g.abc.e1:7' })
      // An event that arrives before the watch is acknowledged still comes, after `ready`.
      watch.emit(event(8, 'early'))
    }
    const abort = new AbortController()
    const res = await fetch(`${url}/v1/watch?key=deployments%2Fapi`, { signal: abort.signal })
    const sse = new SseReader(res)
    expect(await sse.next()).toEqual({ id: 'g.abc.e1:7', event: 'ready', data: '{"cursor":"g.abc.e1:7"}' })
    const early = await sse.next()
    expect(early?.id).toBe('e1:8')
    expect(JSON.parse(early!.data!).value).toBe('early')
    abort.abort()
    await (await backend.nextWatch()).whenClosed()
  })

  it('a watch the backend ends gets `event: ended` with the code, then the stream ends', async () => {
    const { url, backend } = await startTestServer()
    const res = await fetch(`${url}/v1/watch?key=k`)
    const sse = new SseReader(res)
    await sse.next()
    const watch = await backend.nextWatch()
    watch.emit({ ...event(1, 1), revision: REV2 })
    watch.end(new WeftError(ErrorCode.UNAVAILABLE, 'no node could carry the watch'))
    expect((await sse.next())?.id).toBe('e1:1')
    const ended = await sse.next()
    expect(ended?.event).toBe('ended')
    expect(JSON.parse(ended!.data!)).toEqual({ error: { code: 'UNAVAILABLE', message: 'no node could carry the watch' } })
    expect(await sse.next()).toBeUndefined()
    expect(watch.closed).toBe(true)
  })

  it('a watch that cannot start is an ordinary JSON error (410 CURSOR_EXPIRED), and nothing stays open', async () => {
    const { url, backend } = await startTestServer()
    backend.watchStart = async () => {
      throw new WeftError(ErrorCode.CURSOR_EXPIRED, 'cursor of another epoch', { epoch: 'e2' })
    }
    const res = await fetch(`${url}/v1/watch?key=k&since=e1:5`)
    expect(res.status).toBe(410)
    expect(await res.json()).toEqual({ error: { code: 'CURSOR_EXPIRED', message: 'cursor of another epoch', details: { epoch: 'e2' } } })
  })

  it('needs exactly one of key and prefix, a valid cursor, and only known parameters', async () => {
    const { url, backend } = await startTestServer()
    for (const query of ['', 'key=a&prefix=b', 'key=a&since=nocolon', 'key=a&after=e1:1', 'key=a&since=2024-99-99']) {
      const res = await fetch(`${url}/v1/watch?${query}`)
      expect(res.status, query).toBe(400)
      expect(((await res.json()) as { error: { code: string } }).error.code, query).toBe(ErrorCode.INVALID_ARGUMENT)
    }
    const post = await fetch(`${url}/v1/watch?key=a`, { method: 'POST' })
    expect(post.status).toBe(405)
    await post.text()
    expect(backend.calls).toEqual([])
  })

  it('past maxWatches a watch gets 429; a closed one frees its place', async () => {
    const { url, backend } = await startTestServer({ limits: { maxWatches: 1 } })
    const first = new AbortController()
    const res = await fetch(`${url}/v1/watch?key=a`, { signal: first.signal })
    expect(res.status).toBe(200)
    const watch = await backend.nextWatch()
    const second = await fetch(`${url}/v1/watch?key=b`)
    expect(second.status).toBe(429)
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.TOO_MANY_REQUESTS)
    first.abort()
    await watch.whenClosed()
    const third = new AbortController()
    const again = await fetch(`${url}/v1/watch?key=c`, { signal: third.signal })
    expect(again.status).toBe(200)
    third.abort()
    await (await backend.nextWatch()).whenClosed()
  })

  it('sends keep-alive comments on an idle stream', async () => {
    const { url, backend } = await startTestServer({ limits: { keepAliveMs: 20 } })
    const abort = new AbortController()
    const res = await fetch(`${url}/v1/watch?key=a`, { signal: abort.signal })
    const reader = res.body!.getReader()
    let text = ''
    while (!text.includes(': keepalive')) text += new TextDecoder().decode((await reader.read()).value)
    abort.abort()
    await (await backend.nextWatch()).whenClosed()
  })
})
