import { ErrorCode } from '@weft/core'
import { afterEach, describe, expect, it } from 'vitest'
import { REV, REV2, startTestServer, stopTestServers } from './testServer.ts'

afterEach(stopTestServers)

const json = { 'Content-Type': 'application/json' }

async function send(url: string, init: RequestInit = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, init)
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
}

describe('REST API /v1', () => {
  it('GET /v1/keys/{key} reads a key whose name has slashes, with the revision as ETag', async () => {
    const { url, backend } = await startTestServer()
    backend.on('get', { key: 'deployments/api', fork: 'main', value: { image: 'api:1' }, deleted: false, revision: REV })
    const res = await send(`${url}/v1/keys/deployments/api`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(res.headers.get('etag')).toBe(`"${REV.id}"`)
    expect(res.body).toEqual({ key: 'deployments/api', fork: 'main', value: { image: 'api:1' }, deleted: false, revision: REV })
    expect(backend.calls[0]).toMatchObject({ op: 'get', params: { key: 'deployments/api' } })
    expect(backend.calls[0]!.context!.deadline).toBeGreaterThan(Date.now())
  })

  it('decodes percent-encoded keys: %2F is a slash, %2D keeps a `-` segment part of the key', async () => {
    const { url, backend } = await startTestServer()
    backend.on('get', { key: 'x', fork: 'main', value: 1, deleted: false, revision: REV })
    await send(`${url}/v1/keys/deployments%2Fapi`)
    await send(`${url}/v1/keys/a/%2D/b%20c%E2%9C%93`)
    await send(`${url}/v1/keys/${encodeURIComponent('a/-/history')}`)
    expect(backend.calls.map((c) => c.params.key)).toEqual(['deployments/api', 'a/-/b c✓', 'a/-/history'])
  })

  it('GET takes fork and one selector: revision, index, or at (ms or ISO 8601)', async () => {
    const { url, backend } = await startTestServer()
    backend.on('get', { key: 'k', fork: 'staging', value: 1, deleted: false, revision: REV })
    await send(`${url}/v1/keys/k?fork=staging&index=2`)
    await send(`${url}/v1/keys/k?revision=${REV.id}`)
    await send(`${url}/v1/keys/k?at=1732240000000`)
    await send(`${url}/v1/keys/k?at=2024-11-22T02:00:00Z`)
    expect(backend.calls.map((c) => c.params)).toEqual([
      { key: 'k', fork: 'staging', index: 2 },
      { key: 'k', revision: REV.id },
      { key: 'k', at: 1732240000000 },
      { key: 'k', at: Date.parse('2024-11-22T02:00:00Z') },
    ])
    const two = await send(`${url}/v1/keys/k?index=2&at=5`)
    expect(two.status).toBe(400)
    expect(two.body.error.code).toBe(ErrorCode.INVALID_ARGUMENT)
    expect(backend.calls).toHaveLength(4)
  })

  it('bytes travel as {"$bytes": base64} both ways', async () => {
    const { url, backend } = await startTestServer()
    backend.on('set', { key: 'bin', fork: 'main', revision: REV })
    backend.on('get', { key: 'bin', fork: 'main', value: { blob: new Uint8Array([0, 1, 254, 255]), list: [new Uint8Array([104, 105])] }, deleted: false, revision: REV })
    const put = await send(`${url}/v1/keys/bin`, { method: 'PUT', headers: json, body: JSON.stringify({ value: { blob: { $bytes: 'AAH+/w==' }, n: 1 } }) })
    expect(put.status).toBe(200)
    const value = backend.calls[0]!.params.value as { blob: Uint8Array; n: number }
    expect(value.blob).toBeInstanceOf(Uint8Array)
    expect([...value.blob]).toEqual([0, 1, 254, 255])
    expect(value.n).toBe(1)
    const get = await send(`${url}/v1/keys/bin`)
    expect(get.body.value).toEqual({ blob: { $bytes: 'AAH+/w==' }, list: [{ $bytes: 'aGk=' }] })
    const bad = await send(`${url}/v1/keys/bin`, { method: 'PUT', headers: json, body: JSON.stringify({ value: { $bytes: 'not base64!' } }) })
    expect(bad.status).toBe(400)
    expect(bad.body.error.code).toBe(ErrorCode.INVALID_VALUE)
    expect(backend.opsCalled()).toEqual(['set', 'get'])
  })

  it('PUT sets with every option; Idempotency-Key is requestId and If-Match is ifHead', async () => {
    const { url, backend } = await startTestServer()
    backend.on('set', { key: 'k', fork: 'staging', revision: REV2 })
    const res = await send(`${url}/v1/keys/k`, {
      method: 'PUT',
      headers: { ...json, 'Idempotency-Key': 'req-1', 'If-Match': `"${REV.id}"` },
      body: JSON.stringify({ value: [1, 'two', null], fork: 'staging', author: 'ana', message: 'deploy' }),
    })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ key: 'k', fork: 'staging', revision: REV2 })
    expect(res.headers.get('etag')).toBe(`"${REV2.id}"`)
    expect(backend.calls[0]!.params).toEqual({ key: 'k', value: [1, 'two', null], fork: 'staging', ifHead: REV.id, author: 'ana', message: 'deploy', requestId: 'req-1' })
  })

  it('PUT with If-None-Match: * or ifHead null means the fork must not exist; value null is a value', async () => {
    const { url, backend } = await startTestServer()
    backend.on('set', { key: 'k', fork: 'main', revision: REV })
    await send(`${url}/v1/keys/k`, { method: 'PUT', headers: { ...json, 'If-None-Match': '*' }, body: JSON.stringify({ value: null }) })
    await send(`${url}/v1/keys/k`, { method: 'PUT', headers: json, body: JSON.stringify({ value: 'v', ifHead: null, requestId: 'r' }) })
    expect(backend.calls.map((c) => c.params)).toEqual([
      { key: 'k', value: null, ifHead: null },
      { key: 'k', value: 'v', ifHead: null, requestId: 'r' },
    ])
  })

  it('PUT refuses a missing value, a body field twice from two places, and unknown fields, before the backend', async () => {
    const { url, backend } = await startTestServer()
    const missing = await send(`${url}/v1/keys/k`, { method: 'PUT', headers: json, body: '{}' })
    expect(missing.status).toBe(400)
    expect(missing.body.error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, details: { field: 'value' } })
    const twice = await send(`${url}/v1/keys/k`, { method: 'PUT', headers: { ...json, 'Idempotency-Key': 'a' }, body: JSON.stringify({ value: 1, requestId: 'b' }) })
    expect(twice.body.error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, details: { field: 'requestId' } })
    const unknown = await send(`${url}/v1/keys/k`, { method: 'PUT', headers: json, body: JSON.stringify({ value: 1, frok: 'x' }) })
    expect(unknown.body.error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, details: { field: 'frok' } })
    const wrongType = await send(`${url}/v1/keys/k`, { method: 'PUT', headers: json, body: JSON.stringify({ value: 1, fork: 7 }) })
    expect(wrongType.body.error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, details: { field: 'fork' } })
    expect(backend.calls).toEqual([])
  })

  it('DELETE takes fork from the query, meta from the query or a body, If-Match and Idempotency-Key', async () => {
    const { url, backend } = await startTestServer()
    backend.on('delete', { key: 'k', fork: 'staging', revision: REV2 })
    const res = await send(`${url}/v1/keys/k?fork=staging&author=ana`, { method: 'DELETE', headers: { 'If-Match': REV.id, 'Idempotency-Key': 'd1' } })
    expect(res.status).toBe(200)
    expect(res.body.revision).toEqual(REV2)
    await send(`${url}/v1/keys/k`, { method: 'DELETE', headers: json, body: JSON.stringify({ fork: 'staging', message: 'gone' }) })
    expect(backend.calls.map((c) => c.params)).toEqual([
      { key: 'k', fork: 'staging', ifHead: REV.id, author: 'ana', requestId: 'd1' },
      { key: 'k', fork: 'staging', message: 'gone' },
    ])
  })

  it('GET /v1/keys lists by prefix, fork, limit and after', async () => {
    const { url, backend } = await startTestServer()
    const page = { keys: [{ key: 'deployments/api', head: REV.id, revisionCount: 3 }], next: 'deployments/api' }
    backend.on('keys', page)
    const res = await send(`${url}/v1/keys?prefix=deployments%2F&fork=main&limit=1&after=deployments%2Fa`)
    expect(res.status).toBe(200)
    expect(res.body).toEqual(page)
    expect(backend.calls[0]!.params).toEqual({ prefix: 'deployments/', fork: 'main', limit: 1, after: 'deployments/a' })
    await send(`${url}/v1/keys`)
    expect(backend.calls[1]!.params).toEqual({})
  })

  it('GET /-/history pages with values and patches', async () => {
    const { url, backend } = await startTestServer()
    const result = { revisions: [{ ...REV2, value: 2, deleted: false, patch: [{ op: 'change', path: [], before: 1, after: 2 }] }], next: REV2.id }
    backend.on('history', result)
    const res = await send(`${url}/v1/keys/a/b/-/history?fork=main&limit=1&before=${REV2.id}x&values=true&patches=1`)
    expect(res.body).toEqual(result)
    expect(backend.calls[0]!.params).toEqual({ key: 'a/b', fork: 'main', limit: 1, before: `${REV2.id}x`, values: true, patches: true })
    const bad = await send(`${url}/v1/keys/a/-/history?values=maybe`)
    expect(bad.body.error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, details: { field: 'values' } })
  })

  it('GET /-/info answers the info with the head as ETag', async () => {
    const { url, backend } = await startTestServer()
    const info = { key: 'k', fork: 'main', revisionCount: 2, head: REV2, deleted: false, forks: [{ fork: 'main' }], ancestors: [], sizeBytes: 10 }
    backend.on('info', info)
    const res = await send(`${url}/v1/keys/k/-/info?fork=main`)
    expect(res.body).toEqual(info)
    expect(res.headers.get('etag')).toBe(`"${REV2.id}"`)
  })

  it('GET /-/diff reads from/to as an index, @time or revision id, with their forks', async () => {
    const { url, backend } = await startTestServer()
    const diff = { from: REV, to: REV2, changes: [{ op: 'change', path: ['blob'], before: new Uint8Array([1]), after: new Uint8Array([2]) }] }
    backend.on('diff', diff)
    const res = await send(`${url}/v1/keys/k/-/diff?from=3&to=@2024-11-22T02:00:00Z&fromFork=main&toFork=staging`)
    expect(res.body.changes).toEqual([{ op: 'change', path: ['blob'], before: { $bytes: 'AQ==' }, after: { $bytes: 'Ag==' } }])
    await send(`${url}/v1/keys/k/-/diff?from=${REV.id}&to=@1732240000000`)
    await send(`${url}/v1/keys/k/-/diff?toFork=staging`)
    expect(backend.calls.map((c) => c.params)).toEqual([
      { key: 'k', from: { index: 3, fork: 'main' }, to: { at: Date.parse('2024-11-22T02:00:00Z'), fork: 'staging' } },
      { key: 'k', from: { revision: REV.id }, to: { at: 1732240000000 } },
      { key: 'k', from: {}, to: { fork: 'staging' } },
    ])
  })

  it('POST /-/revert, /-/fork and /-/merge send their bodies as params', async () => {
    const { url, backend } = await startTestServer()
    backend.on('revert', { key: 'k', fork: 'main', revision: { ...REV2, kind: 'revert' } })
    backend.on('fork', { key: 'k', fork: 'staging', revision: { ...REV2, kind: 'fork' } })
    backend.on('merge', { key: 'k', fork: 'main', revision: { ...REV2, kind: 'merge' }, conflicts: [{ path: ['image'], ours: 'a', theirs: 'b', winner: 'theirs' }] })
    const revert = await send(`${url}/v1/keys/k/-/revert`, { method: 'POST', headers: { ...json, 'Idempotency-Key': 'rv' }, body: JSON.stringify({ index: 1, message: 'rollback' }) })
    expect(revert.status).toBe(200)
    const fork = await send(`${url}/v1/keys/k/-/fork`, { method: 'POST', headers: json, body: JSON.stringify({ to: 'staging', at: '2024-11-22T02:00:00Z' }) })
    expect(fork.body.fork).toBe('staging')
    const merge = await send(`${url}/v1/keys/k/-/merge`, { method: 'POST', headers: json, body: JSON.stringify({ from: 'staging', strategy: 'theirs', author: 'ana' }) })
    expect(merge.body.conflicts).toEqual([{ path: ['image'], ours: 'a', theirs: 'b', winner: 'theirs' }])
    expect(backend.calls.map((c) => [c.op, c.params])).toEqual([
      ['revert', { key: 'k', index: 1, message: 'rollback', requestId: 'rv' }],
      ['fork', { key: 'k', to: 'staging', at: Date.parse('2024-11-22T02:00:00Z') }],
      ['merge', { key: 'k', from: 'staging', strategy: 'theirs', author: 'ana' }],
    ])
  })

  it('a revert without a selector, or a merge with a bad strategy, is refused before the backend', async () => {
    const { url, backend } = await startTestServer()
    const revert = await send(`${url}/v1/keys/k/-/revert`, { method: 'POST' })
    expect(revert.status).toBe(400)
    const merge = await send(`${url}/v1/keys/k/-/merge`, { method: 'POST', headers: json, body: JSON.stringify({ from: 'x', strategy: 'yolo' }) })
    expect(merge.body.error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, details: { field: 'strategy' } })
    expect(backend.calls).toEqual([])
  })

  it('a merge with strategy fail that conflicts is 409 MERGE_CONFLICT with the conflicts', async () => {
    const { url, backend } = await startTestServer()
    const conflicts = [{ path: ['blob'], ours: new Uint8Array([1]), theirs: 'b', winner: 'ours' }]
    backend.fail('merge', ErrorCode.MERGE_CONFLICT, '1 conflict', { conflicts })
    const res = await send(`${url}/v1/keys/k/-/merge`, { method: 'POST', headers: json, body: JSON.stringify({ from: 'staging', strategy: 'fail' }) })
    expect(res.status).toBe(409)
    expect(res.body).toEqual({
      error: { code: 'MERGE_CONFLICT', message: '1 conflict', details: { conflicts: [{ path: ['blob'], ours: { $bytes: 'AQ==' }, theirs: 'b', winner: 'ours' }] } },
    })
  })

  it('prefix fork and merge: the prefix is everything before /-/, %2F for a trailing slash, empty for all keys', async () => {
    const { url, backend } = await startTestServer()
    const results = { results: [{ key: 'deployments/api', ok: true, revision: REV }, { key: 'deployments/db', ok: false, error: { code: 'FORK_EXISTS', message: 'exists' } }] }
    backend.on('fork', results)
    backend.on('merge', { results: [] })
    const fork = await send(`${url}/v1/prefixes/deployments%2F/-/fork`, { method: 'POST', headers: { ...json, 'Idempotency-Key': 'pf' }, body: JSON.stringify({ to: 'staging', at: 5 }) })
    expect(fork.status).toBe(200)
    expect(fork.body).toEqual(results)
    await send(`${url}/v1/prefixes/-/merge`, { method: 'POST', headers: json, body: JSON.stringify({ from: 'staging' }) })
    await send(`${url}/v1/prefixes/a/b/-/merge`, { method: 'POST', headers: json, body: JSON.stringify({ from: 'staging', into: 'main', strategy: 'ours' }) })
    expect(backend.calls.map((c) => [c.op, c.params])).toEqual([
      ['fork', { prefix: 'deployments/', to: 'staging', at: 5, requestId: 'pf' }],
      ['merge', { prefix: '', from: 'staging' }],
      ['merge', { prefix: 'a/b', from: 'staging', into: 'main', strategy: 'ours' }],
    ])
    const byIndex = await send(`${url}/v1/prefixes/a/-/fork`, { method: 'POST', headers: json, body: JSON.stringify({ to: 's', index: 1 }) })
    expect(byIndex.body.error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, details: { field: 'index' } })
  })

  it('GET /v1/cluster/members answers the backend members; GET /v1/ping pings', async () => {
    const { url, backend } = await startTestServer()
    backend.membersList = [{ peerId: 'p1', name: 'n1', state: 'alive' }, { peerId: 'p2', name: 'n2', state: 'dead' }]
    backend.on('ping', { node: 'n1', time: 5 })
    const members = await send(`${url}/v1/cluster/members`)
    expect(members.status).toBe(200)
    expect(members.body).toEqual({ members: backend.membersList })
    expect((await send(`${url}/v1/ping`)).body).toEqual({ node: 'n1', time: 5 })
  })

  it('backend errors keep their code and get the mapped status', async () => {
    const { url, backend } = await startTestServer()
    backend.fail('get', ErrorCode.KEY_NOT_FOUND, 'k not found in fork main', { key: 'k', fork: 'main' })
    backend.fail('set', ErrorCode.HEAD_MISMATCH, 'head moved', { head: REV2.id })
    backend.fail('info', ErrorCode.UNAVAILABLE, 'no node')
    backend.on('history', () => {
      throw new Error('a bug with secrets inside')
    })
    const get = await send(`${url}/v1/keys/k`)
    expect(get.status).toBe(404)
    expect(get.body).toEqual({ error: { code: 'KEY_NOT_FOUND', message: 'k not found in fork main', details: { key: 'k', fork: 'main' } } })
    const set = await send(`${url}/v1/keys/k`, { method: 'PUT', headers: { ...json, 'If-Match': '"x"' }, body: '{"value":1}' })
    expect(set.status).toBe(412)
    expect(set.body.error.details).toEqual({ head: REV2.id })
    const info = await send(`${url}/v1/keys/k/-/info`)
    expect(info.status).toBe(503)
    expect(info.headers.get('retry-after')).toBe('1')
    const history = await send(`${url}/v1/keys/k/-/history`)
    expect(history.status).toBe(500)
    expect(history.body).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } })
  })

  it('unknown routes and sub-resources are 404 JSON; a wrong method is 405 with Allow', async () => {
    const { url, backend } = await startTestServer()
    for (const path of ['/v1', '/v1/', '/v1/nope', '/v1/keys/k/-/nope', '/v1/keys/k/-', '/v1/prefixes/a', '/v1/prefixes/a/-/history']) {
      const res = await send(`${url}${path}`)
      expect(res.status, path).toBe(404)
      expect(res.body.error.code, path).toBe(ErrorCode.UNKNOWN_OP)
    }
    const wrong = await send(`${url}/v1/keys/k/-/history`, { method: 'POST' })
    expect(wrong.status).toBe(405)
    expect(wrong.headers.get('allow')).toBe('GET, HEAD')
    const empty = await send(`${url}/v1/keys/`)
    expect(empty.status).toBe(400)
    expect(empty.body.error.code).toBe(ErrorCode.INVALID_KEY)
    const badEscape = await send(`${url}/v1/keys/%E0%A4%A`)
    expect(badEscape.body.error.code).toBe(ErrorCode.INVALID_KEY)
    const unknownQuery = await send(`${url}/v1/keys/k?frok=main`)
    expect(unknownQuery.body.error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, details: { field: 'frok' } })
    const twice = await send(`${url}/v1/keys/k?fork=a&fork=b`)
    expect(twice.body.error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, details: { field: 'fork' } })
    expect(backend.calls).toEqual([])
  })

  it('tells `observe` about every backend op with its result code and duration', async () => {
    const samples: { op: string; code: string; seconds: number }[] = []
    const { url, backend } = await startTestServer({ observe: (sample) => samples.push(sample) })
    backend.on('get', { key: 'k', fork: 'main', value: 1, deleted: false, revision: REV })
    backend.fail('info', ErrorCode.KEY_NOT_FOUND, 'no')
    await send(`${url}/v1/keys/k`)
    await send(`${url}/v1/keys/k/-/info`)
    expect(samples.map(({ op, code }) => [op, code])).toEqual([
      ['get', 'OK'],
      ['info', 'KEY_NOT_FOUND'],
    ])
    expect(samples.every((s) => s.seconds >= 0 && s.seconds < 5)).toBe(true)
  })

  it('HEAD reads like GET without a body', async () => {
    const { url, backend } = await startTestServer()
    backend.on('get', { key: 'k', fork: 'main', value: 1, deleted: false, revision: REV })
    const res = await fetch(`${url}/v1/keys/k`, { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(res.headers.get('etag')).toBe(`"${REV.id}"`)
    expect(await res.text()).toBe('')
  })

  it('leaves /healthz, /metrics and /v1/ws to the caller', async () => {
    const { url, backend } = await startTestServer()
    for (const path of ['/healthz', '/metrics', '/metrics?x=1', '/v1/ws']) {
      const res = await fetch(`${url}${path}`)
      expect(res.status, path).toBe(299)
      await res.text()
    }
    expect(backend.calls).toEqual([])
  })
})
