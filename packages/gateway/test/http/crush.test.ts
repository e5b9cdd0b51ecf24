// The crush-compatible routes answer what crush (github.com/queer/crush,
// e96614a) answers: its own controller test's expectations are reproduced here.
import { ErrorCode, WeftError } from '@weft/core'
import { request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { crushPatch, crushRevisionCount } from '../../src/http/crushRoutes.ts'
import { REV, startTestServer, stopTestServers } from './testServer.ts'

afterEach(stopTestServers)

const b64 = (text: string) => Buffer.from(text).toString('base64')
const bytes = (text: string) => new Uint8Array(Buffer.from(text))

/** A fork's history as the node pages it: newest first, `limit`, `before`. */
function historyOf(values: readonly (unknown | { deleted: true })[]) {
  const entries = values.map((value, i) => {
    const id = `${String(i + 1).padStart(16, '0')}.n1`
    const deleted = value !== null && typeof value === 'object' && 'deleted' in value
    return { ...REV, id, index: i + 1, ...(deleted ? { deleted: true } : { value, deleted: false }) }
  })
  const newestFirst = [...entries].reverse()
  return (params: Record<string, unknown>) => {
    const limit = (params.limit as number | undefined) ?? 100
    const start = params.before === undefined ? 0 : newestFirst.findIndex((e) => e.id === params.before) + 1
    const page = newestFirst.slice(start, start + limit)
    const more = start + limit < newestFirst.length
    return { revisions: page, ...(more && { next: page.at(-1)!.id }) }
  }
}

async function text(url: string, init: RequestInit = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url, init)
  return { status: res.status, body: await res.text(), headers: res.headers }
}

describe('crush-compatible routes', () => {
  it('GET /:key of a missing key is [] (200), as crush', async () => {
    const { url, backend } = await startTestServer()
    backend.fail('get', ErrorCode.KEY_NOT_FOUND, 'test not found in fork main')
    const res = await text(`${url}/test`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(JSON.parse(res.body)).toEqual([])
    expect(backend.calls[0]).toMatchObject({ op: 'get', params: { key: 'test', fork: 'main' } })
  })

  it('PUT /:key stores the raw body as bytes and answers exactly {"status":"ok"}; GET answers [base64, []]', async () => {
    const { url, backend } = await startTestServer()
    backend.on('set', { key: 'test', fork: 'main', revision: REV })
    backend.on('get', { key: 'test', fork: 'main', value: bytes('value'), deleted: false, revision: REV })
    const put = await text(`${url}/test`, { method: 'PUT', headers: { 'Content-Type': 'text/plain' }, body: 'value' })
    expect(put.status).toBe(200)
    expect(put.body).toBe('{"status":"ok"}')
    expect(put.headers.get('x-weft-revision')).toBe(REV.id)
    expect(put.headers.get('etag')).toBe(`"${REV.id}"`)
    const stored = backend.calls[0]!.params
    expect(stored).toMatchObject({ key: 'test', fork: 'main' })
    expect(stored.value).toBeInstanceOf(Uint8Array)
    expect(Buffer.from(stored.value as Uint8Array).toString()).toBe('value')
    const get = await text(`${url}/test`)
    expect(JSON.parse(get.body)).toEqual([b64('value'), []])
  })

  it('PUT with a form or no Content-Type still stores the raw bytes; a JSON Content-Type stores JSON', async () => {
    const { url, backend } = await startTestServer()
    backend.on('set', { key: 'k', fork: 'main', revision: REV })
    await text(`${url}/k`, { method: 'PUT', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: '{"a":1}' })
    await text(`${url}/k`, { method: 'PUT', headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: '{"a":1,"b":{"$bytes":"AQ=="}}' })
    const [raw, structured] = backend.calls.map((c) => c.params.value)
    expect(Buffer.from(raw as Uint8Array).toString()).toBe('{"a":1}')
    expect(structured).toEqual({ a: 1, b: new Uint8Array([1]) })
    const bad = await text(`${url}/k`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{"a":' })
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.body)).toMatchObject({ status: 'error', error: 'invalid_argument', code: 'INVALID_ARGUMENT' })
    expect(backend.calls).toHaveLength(2)
  })

  it('GET of a JSON value answers the base64 of its JSON text; bytes stay bytes', async () => {
    const { url, backend } = await startTestServer()
    backend.on('get', { key: 'k', fork: 'main', value: { a: [1, 'x'], b: new Uint8Array([1]) }, deleted: false, revision: REV })
    const res = await text(`${url}/k`)
    expect(JSON.parse(res.body)).toEqual([b64('{"a":[1,"x"],"b":{"$bytes":"AQ=="}}'), []])
  })

  it('fork then merge then GET ?revisions=all gives crush test\'s exact answer', async () => {
    const { url, backend } = await startTestServer()
    backend.on('fork', { key: 'test', fork: 'test-fork', revision: REV })
    backend.on('merge', { key: 'test', fork: 'main', revision: REV, conflicts: [] })
    backend.on('history', historyOf([bytes('value'), bytes('value 2')]))
    const fork = await text(`${url}/test/default/fork/test-fork`, { method: 'POST', headers: { 'Content-Type': 'text/plain' } })
    expect(fork.status).toBe(200)
    expect(JSON.parse(fork.body)).toEqual({ status: 'ok' })
    const merge = await text(`${url}/test/test-fork/merge/default`, { method: 'POST' })
    expect(JSON.parse(merge.body)).toEqual({ status: 'ok' })
    expect(merge.headers.get('x-weft-conflicts')).toBe('0')
    const all = await text(`${url}/test?revisions=all`)
    expect(all.status).toBe(200)
    expect(JSON.parse(all.body)).toEqual([b64('value 2'), [[['eq', b64('value')], ['del', b64(' 2')]]]])
    expect(backend.calls.map((c) => [c.op, c.params])).toEqual([
      ['fork', { key: 'test', from: 'main', to: 'test-fork' }],
      ['merge', { key: 'test', from: 'test-fork', into: 'main' }],
      ['history', { key: 'test', fork: 'main', values: true, limit: 50 }],
    ])
  })

  it('?revisions=N gives the N previous revisions newest first; patch=true gives their values', async () => {
    const { url, backend } = await startTestServer()
    backend.on('history', historyOf([bytes('a'), bytes('ab'), { deleted: true }, bytes('abc'), bytes('xbc')]))
    const two = JSON.parse((await text(`${url}/k?revisions=2`)).body)
    expect(two).toEqual([b64('xbc'), [[['del', b64('x')], ['ins', b64('a')], ['eq', b64('bc')]], [['del', b64('abc')]]]])
    const values = JSON.parse((await text(`${url}/k?revisions=all&patch=true`)).body)
    expect(values).toEqual([b64('xbc'), [b64('abc'), '', b64('ab'), b64('a')]])
    expect(backend.calls[0]!.params.limit).toBe(3)
  })

  it('?revisions= that is not a number or "all" is 0 revisions, as crush', async () => {
    expect(crushRevisionCount(null)).toBe(0)
    expect(crushRevisionCount('nope')).toBe(0)
    expect(crushRevisionCount('3abc')).toBe(3)
    expect(crushRevisionCount('-2')).toBe(0)
    expect(crushRevisionCount('all')).toBe(Number.POSITIVE_INFINITY)
    const { url, backend } = await startTestServer()
    backend.on('get', { key: 'k', fork: 'main', value: bytes('v'), deleted: false, revision: REV })
    expect(JSON.parse((await text(`${url}/k?revisions=nope&patch=true`)).body)).toEqual([b64('v'), []])
    expect(backend.opsCalled()).toEqual(['get'])
  })

  it('?revisions=all streams a long history page by page', async () => {
    const { url, backend } = await startTestServer()
    const values = Array.from({ length: 130 }, (_, i) => bytes(`v${i}`))
    backend.on('history', historyOf(values))
    const res = JSON.parse((await text(`${url}/k?revisions=all&patch=true`)).body) as [string, string[]]
    expect(res[0]).toBe(b64('v129'))
    expect(res[1]).toHaveLength(129)
    expect(res[1].at(-1)).toBe(b64('v0'))
    expect(backend.calls.map((c) => c.params.limit)).toEqual([50, 50, 50])
  })

  it('a deleted or missing key with ?revisions is [] too', async () => {
    const { url, backend } = await startTestServer()
    backend.on('history', historyOf([bytes('a'), { deleted: true }]))
    expect(JSON.parse((await text(`${url}/k?revisions=all`)).body)).toEqual([])
    backend.fail('history', ErrorCode.KEY_NOT_FOUND, 'no')
    expect(JSON.parse((await text(`${url}/k/staging?revisions=all`)).body)).toEqual([])
  })

  it('GET /:key/info and /:key/:fork/info → {key, revision_count}, 0 when absent', async () => {
    const { url, backend } = await startTestServer()
    backend.on('info', (params: Record<string, unknown>) => {
      if (params.fork === 'nope') throw new WeftError(ErrorCode.KEY_NOT_FOUND, 'no')
      return { key: params.key, fork: params.fork, revisionCount: 12, head: REV, deleted: false, forks: [], ancestors: [], sizeBytes: 1 }
    })
    const info = await text(`${url}/test/info`)
    expect(info.body).toBe('{"key":"test","revision_count":11}')
    const forkInfo = await text(`${url}/test/staging/info`)
    expect(JSON.parse(forkInfo.body)).toEqual({ key: 'test', revision_count: 11 })
    const missing = await text(`${url}/test/nope/info`)
    expect(missing.status).toBe(200)
    expect(JSON.parse(missing.body)).toEqual({ key: 'test', revision_count: 0 })
    expect(backend.calls.map((c) => c.params)).toEqual([
      { key: 'test', fork: 'main' },
      { key: 'test', fork: 'staging' },
      { key: 'test', fork: 'nope' },
    ])
  })

  it('DELETE /:key and /:key/:fork answer {"status":"ok"}, also when nothing was there', async () => {
    const { url, backend } = await startTestServer()
    backend.on('delete', (params: Record<string, unknown>) => {
      if (params.fork === 'gone') throw new WeftError(ErrorCode.KEY_NOT_FOUND, 'no')
      return { key: 'k', fork: params.fork, revision: REV }
    })
    const del = await text(`${url}/k`, { method: 'DELETE' })
    expect(del.body).toBe('{"status":"ok"}')
    const gone = await text(`${url}/k/gone`, { method: 'DELETE' })
    expect(gone.status).toBe(200)
    expect(gone.body).toBe('{"status":"ok"}')
    expect(backend.calls.map((c) => c.params)).toEqual([
      { key: 'k', fork: 'main' },
      { key: 'k', fork: 'gone' },
    ])
  })

  it('the /:key/:fork variants use the fork; `default` is main', async () => {
    const { url, backend } = await startTestServer()
    backend.on('set', { key: 'k', fork: 'staging', revision: REV })
    backend.on('get', { key: 'k', fork: 'staging', value: bytes('s'), deleted: false, revision: REV })
    await text(`${url}/k/staging`, { method: 'PUT', body: 's', headers: { 'Idempotency-Key': 'i1' } })
    await text(`${url}/k/default`, { method: 'PUT', body: 'd' })
    await text(`${url}/k/staging`)
    await text(`${url}/deployments%2Fapi/release%2F1`)
    await text(`${url}/k/info`, { method: 'PUT', body: 'x' })
    expect(backend.calls.map((c) => [c.op, c.params.key, c.params.fork, c.params.requestId])).toEqual([
      ['set', 'k', 'staging', 'i1'],
      ['set', 'k', 'main', undefined],
      ['get', 'k', 'staging', undefined],
      ['get', 'deployments/api', 'release/1', undefined],
      ['set', 'k', 'info', undefined],
    ])
  })

  it('fork of a missing key is 404 {status:"error", error:"not_found"}; an existing target is 409', async () => {
    const { url, backend } = await startTestServer()
    backend.fail('fork', ErrorCode.KEY_NOT_FOUND, 'k not found in fork main')
    const missing = await text(`${url}/k/default/fork/x`, { method: 'POST' })
    expect(missing.status).toBe(404)
    expect(JSON.parse(missing.body)).toEqual({ status: 'error', error: 'not_found', code: 'KEY_NOT_FOUND', message: 'k not found in fork main' })
    backend.fail('fork', ErrorCode.FORK_EXISTS, 'fork x of k already exists')
    const exists = await text(`${url}/k/default/fork/x`, { method: 'POST' })
    expect(exists.status).toBe(409)
    expect(JSON.parse(exists.body)).toMatchObject({ status: 'error', error: 'fork_exists', code: 'FORK_EXISTS' })
  })

  it('merge names the missing side: source_not_found or target_not_found (404)', async () => {
    const { url, backend } = await startTestServer()
    backend.on('merge', (params: Record<string, unknown>) => {
      const missing = params.from === 'gone' ? 'gone' : params.into
      throw new WeftError(ErrorCode.FORK_NOT_FOUND, `k has no fork ${String(missing)}`, { key: 'k', fork: missing })
    })
    const source = await text(`${url}/k/gone/merge/default`, { method: 'POST' })
    expect(source.status).toBe(404)
    expect(JSON.parse(source.body)).toMatchObject({ status: 'error', error: 'source_not_found' })
    const target = await text(`${url}/k/staging/merge/nowhere`, { method: 'POST' })
    expect(JSON.parse(target.body)).toMatchObject({ status: 'error', error: 'target_not_found' })
  })

  it('merge reports how many conflicts weft resolved in X-Weft-Conflicts', async () => {
    const { url, backend } = await startTestServer()
    backend.on('merge', { key: 'k', fork: 'main', revision: REV, conflicts: [{ path: [], ours: 'a', theirs: 'b', winner: 'theirs' }] })
    const res = await text(`${url}/k/staging/merge/default`, { method: 'POST' })
    expect(res.body).toBe('{"status":"ok"}')
    expect(res.headers.get('x-weft-conflicts')).toBe('1')
  })

  it('GET /keys?prefix= lists crush-style "<fork>:<key>" names across pages', async () => {
    const { url, backend } = await startTestServer()
    const all = Array.from({ length: 2500 }, (_, i) => `deployments/${String(i).padStart(4, '0')}`)
    backend.on('keys', (params: Record<string, unknown>) => {
      const start = params.after === undefined ? 0 : all.indexOf(params.after as string) + 1
      const page = all.slice(start, start + (params.limit as number))
      return { keys: page.map((key) => ({ key, head: REV.id, revisionCount: 1 })), ...(start + page.length < all.length && { next: page.at(-1) }) }
    })
    const res = await text(`${url}/keys?prefix=deployments/`)
    expect(res.status).toBe(200)
    const keys = JSON.parse(res.body) as string[]
    expect(keys).toHaveLength(2500)
    expect(keys[0]).toBe('default:deployments/0000')
    expect(keys.at(-1)).toBe('default:deployments/2499')
    expect(backend.calls.map((c) => c.params.after)).toEqual([undefined, 'deployments/0999', 'deployments/1999'])
    expect(backend.calls[0]!.params).toEqual({ prefix: 'deployments/', fork: 'main', limit: 1000 })
  })

  it('GET /keys with a fork and without a prefix; an empty listing is []', async () => {
    const { url, backend } = await startTestServer()
    backend.on('keys', (params: Record<string, unknown>) => ({ keys: params.fork === 'staging' ? [{ key: 'a', head: REV.id, revisionCount: 1 }] : [] }))
    expect(JSON.parse((await text(`${url}/keys?prefix=a&fork=staging`)).body)).toEqual(['staging:a'])
    expect(JSON.parse((await text(`${url}/keys`)).body)).toEqual([])
    expect(backend.calls.map((c) => c.params)).toEqual([
      { prefix: 'a', fork: 'staging', limit: 1000 },
      { prefix: '', fork: 'main', limit: 1000 },
    ])
  })

  it('route precedence: /v1/*, /healthz and /metrics are never keys; PUT /keys is the key "keys"', async () => {
    const { url, backend } = await startTestServer()
    backend.on('set', { key: 'keys', fork: 'main', revision: REV })
    expect((await text(`${url}/healthz`)).status).toBe(299)
    expect((await text(`${url}/metrics`)).status).toBe(299)
    const v1 = await text(`${url}/v1`, { method: 'PUT', body: 'x' })
    expect(v1.status).toBe(404)
    await text(`${url}/keys`, { method: 'PUT', body: 'x' })
    expect(backend.calls.map((c) => [c.op, c.params.key])).toEqual([['set', 'keys']])
  })

  it('paths crush has no route for are 404 JSON; a wrong method is 405', async () => {
    const { url, backend } = await startTestServer()
    for (const path of ['/', '/a//b', '/a/', '/a/b/c', '/a/b/c/d', '/a/b/c/d/e', '/a/b/spoon/c']) {
      const res = await text(`${url}${path}`)
      expect(res.status, path).toBe(404)
      expect(JSON.parse(res.body).error.code, path).toBe(ErrorCode.UNKNOWN_OP)
    }
    const post = await text(`${url}/a`, { method: 'POST' })
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET, HEAD, PUT, DELETE')
    const getFork = await text(`${url}/a/default/fork/b`)
    expect(getFork.status).toBe(405)
    expect(backend.calls).toEqual([])
  })

  it('crush patches: common start and end kept, the middle deleted and inserted', () => {
    expect(crushPatch(bytes('value 2'), bytes('value'))).toEqual([['eq', b64('value')], ['del', b64(' 2')]])
    expect(crushPatch(bytes('value'), bytes('value 2'))).toEqual([['eq', b64('value')], ['ins', b64(' 2')]])
    expect(crushPatch(bytes('same'), bytes('same'))).toEqual([['eq', b64('same')]])
    expect(crushPatch(bytes(''), bytes(''))).toEqual([])
    expect(crushPatch(bytes('aXa'), bytes('aa'))).toEqual([['eq', b64('a')], ['del', b64('X')], ['eq', b64('a')]])
  })

  it('raw bodies keep every byte (not UTF-8 text)', async () => {
    const { port, backend } = await startTestServer()
    backend.on('set', { key: 'bin', fork: 'main', revision: REV })
    const body = Buffer.from([0, 255, 128, 10, 13])
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/bin', method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end(body)
    })
    expect(status).toBe(200)
    expect([...(backend.calls[0]!.params.value as Uint8Array)]).toEqual([...body])
  })
})
