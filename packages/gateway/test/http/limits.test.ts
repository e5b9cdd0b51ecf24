import { ErrorCode, WeftError } from '@weft/core'
import fc from 'fast-check'
import { request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { REV, startTestServer, stopTestServers } from './testServer.ts'

afterEach(stopTestServers)

interface RawAnswer {
  status: number
  body: string
  headers: Record<string, string | string[] | undefined>
}

/**
 * One request over node:http. With `chunks`, the body goes chunked (no
 * Content-Length: only for methods Node chunks by default, e.g. PUT); else with
 * its Content-Length.
 */
async function raw(port: number, method: string, path: string, options: { body?: Buffer; chunks?: number; headers?: Record<string, string> } = {}): Promise<RawAnswer> {
  const headers = { ...options.headers }
  if (options.body !== undefined && options.chunks === undefined && !('Content-Length' in headers)) headers['Content-Length'] = String(options.body.length)
  return new Promise<RawAnswer>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (part: Buffer) => parts.push(part))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), headers: res.headers }))
      res.on('error', reject)
    })
    // The server may close while we are still sending a refused body: the answer already came.
    req.on('error', (err) => reject(err))
    const body = options.body
    if (body === undefined) return void req.end()
    const chunks = options.chunks ?? 1
    const size = Math.ceil(body.length / chunks)
    let offset = 0
    const pump = () => {
      while (offset < body.length) {
        const part = body.subarray(offset, offset + size)
        offset += size
        if (!req.write(part)) return void req.once('drain', pump)
      }
      req.end()
    }
    pump()
  })
}

describe('HTTP limits and bad input', () => {
  it('a body over maxBodyBytes by Content-Length is 413 FRAME_TOO_LARGE before reading it, and the connection closes', async () => {
    const { port, backend } = await startTestServer({ limits: { maxBodyBytes: 1024 } })
    const res = await raw(port, 'PUT', '/v1/keys/k', { body: Buffer.alloc(4096, 'a'), headers: { 'Content-Type': 'application/json', 'Content-Length': '4096' } })
    expect(res.status).toBe(413)
    expect(res.headers.connection).toBe('close')
    expect(JSON.parse(res.body).error).toEqual({ code: 'FRAME_TOO_LARGE', message: 'request body over 1024 bytes', details: { limit: 1024 } })
    expect(backend.calls).toEqual([])
  })

  it('a chunked body that grows past the limit is cut off with 413, on REST and crush routes alike', async () => {
    const { port, backend } = await startTestServer({ limits: { maxBodyBytes: 64 * 1024 } })
    const big = Buffer.alloc(512 * 1024, 'x')
    const rest = await raw(port, 'PUT', '/v1/keys/k', { body: big, chunks: 64 }).catch((err: Error) => err)
    // Either the 413 arrives, or the socket closes under the writer first; never a stored value.
    if (!(rest instanceof Error)) expect(rest.status).toBe(413)
    const crush = await raw(port, 'PUT', '/k', { body: big, chunks: 64 }).catch((err: Error) => err)
    if (!(crush instanceof Error)) {
      expect(crush.status).toBe(413)
      expect(JSON.parse(crush.body)).toMatchObject({ status: 'error', error: 'frame_too_large', code: 'FRAME_TOO_LARGE' })
    }
    expect(backend.calls).toEqual([])
    backend.on('get', { key: 'k', fork: 'main', value: 1, deleted: false, revision: REV })
    expect((await raw(port, 'GET', '/v1/keys/k')).status).toBe(200)
  })

  it('malformed JSON, and JSON that is not an object, are 400 INVALID_ARGUMENT', async () => {
    const { port, backend } = await startTestServer()
    for (const body of ['{"value": ', 'not json', '[1,2]', '"text"', 'null', '\u0000\u0001']) {
      const res = await raw(port, 'PUT', '/v1/keys/k', { body: Buffer.from(body), headers: { 'Content-Type': 'application/json' } })
      expect(res.status, body).toBe(400)
      expect(JSON.parse(res.body).error.code, body).toBe(ErrorCode.INVALID_ARGUMENT)
    }
    expect(backend.calls).toEqual([])
  })

  it('a request the backend does not answer in time is 504 TIMEOUT; the backend had the deadline', async () => {
    const { url, backend } = await startTestServer({ limits: { requestTimeoutMs: 100 } })
    backend.on('get', () => new Promise(() => {}))
    const started = Date.now()
    const res = await fetch(`${url}/v1/keys/k`)
    expect(res.status).toBe(504)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.TIMEOUT)
    expect(Date.now() - started).toBeLessThan(2000)
    const deadline = backend.calls[0]!.context!.deadline
    expect(deadline - started).toBeGreaterThanOrEqual(90)
    expect(deadline - started).toBeLessThan(1000)
  })

  it('past maxInflightRequests a request gets 429 TOO_MANY_REQUESTS with Retry-After', async () => {
    const { url, backend } = await startTestServer({ limits: { maxInflightRequests: 1 } })
    let release: () => void = () => {}
    backend.on('get', () => new Promise((resolve) => (release = () => resolve({ key: 'k', fork: 'main', value: 1, deleted: false, revision: REV }))))
    const slow = fetch(`${url}/v1/keys/k`)
    while (backend.calls.length === 0) await new Promise((r) => setTimeout(r, 5))
    const refused = await fetch(`${url}/v1/keys/other`)
    expect(refused.status).toBe(429)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.TOO_MANY_REQUESTS)
    release()
    expect((await slow).status).toBe(200)
    expect(backend.calls).toHaveLength(1)
  })

  it('never crashes and always answers JSON, whatever the method, path, headers and body', async () => {
    const { port, backend } = await startTestServer({ limits: { maxBodyBytes: 256, requestTimeoutMs: 200 } })
    const outcomes: (() => unknown)[] = [
      () => ({ key: 'k', fork: 'main', value: new Uint8Array([1]), deleted: false, revision: REV }),
      () => ({ keys: [{ key: 'a', head: REV.id, revisionCount: 1 }] }),
      () => ({ revisions: [{ ...REV, value: 1, deleted: false }] }),
      () => null,
      () => 'weird',
      () => {
        throw new WeftError(ErrorCode.KEY_NOT_FOUND, 'no')
      },
      () => {
        throw new Error('bug')
      },
      () => {
        throw 'not even an error'
      },
    ]
    const segment = fc.oneof(
      fc.constantFrom('v1', 'keys', 'prefixes', '-', 'history', 'info', 'diff', 'revert', 'fork', 'merge', 'cluster', 'members', 'ping', 'default', 'main', '%', '%zz', '%2F', '%00', '..', '.', '', 'k'),
      fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{1,6}$/),
    )
    const query = fc.oneof(
      fc.constant(''),
      fc.constantFrom('?revisions=all', '?revisions=2&patch=true', '?fork=', '?index=x', '?at=2024-13-45', '?prefix=a&prefix=b', '?limit=99999999999999999', '?values', '?from=@x'),
    )
    const body = fc.oneof(
      fc.constant(undefined),
      fc.string({ maxLength: 300 }).map((s) => Buffer.from(s)),
      fc.json({ maxDepth: 3 }).map((s) => Buffer.from(s)),
      fc.constantFrom('{"value":{"$bytes":"@@"}}', '{"value":1,"__proto__":{"x":1}}', '{"to":"x","at":"soon"}', '{"from":1}').map((s) => Buffer.from(s)),
    )
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'PATCH', 'OPTIONS'),
        fc.array(segment, { minLength: 0, maxLength: 6 }),
        query,
        body,
        fc.constantFrom(undefined, 'application/json', 'text/plain'),
        fc.constantFrom(undefined, '"x"', '*', ''),
        fc.nat(outcomes.length - 1),
        async (method, segments, q, payload, contentType, ifMatch, outcome) => {
          for (const op of ['get', 'set', 'delete', 'keys', 'history', 'info', 'diff', 'revert', 'fork', 'merge', 'ping']) backend.on(op, outcomes[outcome]!)
          const path = `/${segments.join('/')}${q}`
          if (path.startsWith('/v1/watch')) return
          const headers: Record<string, string> = {}
          if (contentType) headers['Content-Type'] = contentType
          if (ifMatch !== undefined) headers['If-Match'] = ifMatch
          const res = await raw(port, method, path, { ...(payload !== undefined && { body: payload }), headers })
          expect(res.status).toBeGreaterThanOrEqual(200)
          expect(res.status).toBeLessThan(600)
          if (res.status !== 299 && method !== 'HEAD') expect(() => JSON.parse(res.body)).not.toThrow()
        },
      ),
      { numRuns: 300 },
    )
    backend.on('get', { key: 'k', fork: 'main', value: 1, deleted: false, revision: REV })
    expect((await raw(port, 'GET', '/v1/keys/k')).status).toBe(200)
  })
})
