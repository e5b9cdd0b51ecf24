// With a token file, every route refuses a request without a valid token (401)
// or outside its grants (403) before anything reaches the backend.
import { ErrorCode } from '@weft/core'
import { afterEach, describe, expect, it } from 'vitest'
import { TokenFileAuthorizer } from '../../src/auth/TokenFileAuthorizer.ts'
import { REV, startTestServer, stopTestServers } from './testServer.ts'

afterEach(stopTestServers)

const authorizer = TokenFileAuthorizer.parse(
  JSON.stringify({
    tokens: {
      'ci-token': { name: 'ci', grants: [{ prefix: 'deployments/', access: 'write' }] },
      'reader-token': { name: 'reader', grants: [{ prefix: '', access: 'read' }] },
    },
  }),
)

interface Probe {
  readonly method: string
  readonly path: string
  readonly body?: string
  /** Allowed for ci (write on deployments/) */
  readonly ci: boolean
  /** Allowed for reader (read on everything) */
  readonly reader: boolean
}

const PROBES: readonly Probe[] = [
  { method: 'GET', path: '/v1/keys/deployments/api', ci: true, reader: true },
  { method: 'GET', path: '/v1/keys/secrets/db', ci: false, reader: true },
  { method: 'PUT', path: '/v1/keys/deployments/api', body: '{"value":1}', ci: true, reader: false },
  { method: 'PUT', path: '/v1/keys/secrets/db', body: '{"value":1}', ci: false, reader: false },
  { method: 'DELETE', path: '/v1/keys/secrets/db', ci: false, reader: false },
  { method: 'GET', path: '/v1/keys?prefix=deployments%2F', ci: true, reader: true },
  { method: 'GET', path: '/v1/keys?prefix=deploy', ci: false, reader: true },
  { method: 'GET', path: '/v1/keys', ci: false, reader: true },
  { method: 'GET', path: '/v1/keys/secrets/db/-/history', ci: false, reader: true },
  { method: 'GET', path: '/v1/keys/secrets/db/-/info', ci: false, reader: true },
  { method: 'GET', path: '/v1/keys/secrets/db/-/diff', ci: false, reader: true },
  { method: 'POST', path: '/v1/keys/secrets/db/-/revert', body: '{"index":1}', ci: false, reader: false },
  { method: 'POST', path: '/v1/keys/secrets/db/-/fork', body: '{"to":"x"}', ci: false, reader: false },
  { method: 'POST', path: '/v1/keys/deployments/api/-/merge', body: '{"from":"x"}', ci: true, reader: false },
  { method: 'POST', path: '/v1/prefixes/deployments%2F/-/fork', body: '{"to":"x"}', ci: true, reader: false },
  { method: 'POST', path: '/v1/prefixes/deployments/-/fork', body: '{"to":"x"}', ci: false, reader: false },
  { method: 'POST', path: '/v1/prefixes/-/merge', body: '{"from":"x"}', ci: false, reader: false },
  { method: 'GET', path: '/v1/cluster/members', ci: false, reader: true },
  { method: 'GET', path: '/v1/ping', ci: true, reader: true },
  { method: 'GET', path: '/secrets%2Fdb', ci: false, reader: true },
  { method: 'PUT', path: '/secrets%2Fdb', body: 'x', ci: false, reader: false },
  { method: 'PUT', path: '/deployments%2Fapi/staging', body: 'x', ci: true, reader: false },
  { method: 'DELETE', path: '/secrets%2Fdb', ci: false, reader: false },
  { method: 'GET', path: '/secrets%2Fdb/info', ci: false, reader: true },
  { method: 'POST', path: '/secrets%2Fdb/default/fork/x', ci: false, reader: false },
  { method: 'POST', path: '/secrets%2Fdb/x/merge/default', ci: false, reader: false },
  { method: 'GET', path: '/keys?prefix=secrets', ci: false, reader: true },
  { method: 'GET', path: '/keys', ci: false, reader: true },
]

async function probe(url: string, p: Probe, token?: string): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${url}${p.path}`, {
    method: p.method,
    headers: { 'Content-Type': p.path.startsWith('/v1/') ? 'application/json' : 'text/plain', ...(token !== undefined && { Authorization: token }) },
    ...(p.body !== undefined && { body: p.body }),
  })
  return { status: res.status, body: await res.json(), headers: res.headers }
}

function codeOf(body: any): string {
  return body.error?.code ?? body.code
}

describe('HTTP auth with a token file', () => {
  it('no token or a wrong one is 401 UNAUTHORIZED on every route, and the backend is never called', async () => {
    const { url, backend } = await startTestServer({ authorizer })
    for (const p of PROBES) {
      for (const token of [undefined, 'Bearer wrong-token', 'Basic Y2k6Y2ktdG9rZW4=', 'Bearer', 'ci-token']) {
        const res = await probe(url, p, token)
        expect(res.status, `${p.method} ${p.path} ${token}`).toBe(401)
        expect(codeOf(res.body)).toBe(ErrorCode.UNAUTHORIZED)
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="weft"')
      }
    }
    expect(backend.calls).toEqual([])
  })

  it('a token outside its grants is 403 FORBIDDEN and the backend is never called', async () => {
    const { url, backend } = await startTestServer({ authorizer })
    for (const [token, allowedOf] of [
      ['ci-token', (p: Probe) => p.ci],
      ['reader-token', (p: Probe) => p.reader],
    ] as const) {
      for (const p of PROBES.filter((q) => !allowedOf(q))) {
        const res = await probe(url, p, `Bearer ${token}`)
        expect(res.status, `${token} ${p.method} ${p.path}`).toBe(403)
        expect(codeOf(res.body)).toBe(ErrorCode.FORBIDDEN)
      }
    }
    expect(backend.calls).toEqual([])
  })

  it('a token inside its grants reaches the backend, with its name as the principal', async () => {
    const { url, backend } = await startTestServer({ authorizer })
    backend.on('set', { key: 'deployments/api', fork: 'main', revision: REV })
    backend.on('get', { key: 'secrets/db', fork: 'main', value: 1, deleted: false, revision: REV })
    const set = await probe(url, PROBES[2]!, 'Bearer ci-token')
    expect(set.status).toBe(200)
    const get = await probe(url, PROBES[1]!, 'bearer reader-token')
    expect(get.status).toBe(200)
    expect(backend.calls.map((c) => [c.op, c.context?.principal])).toEqual([
      ['set', 'ci'],
      ['get', 'reader'],
    ])
  })

  it('refuses before reading the body: an unauthorized oversized upload is 401, not 413', async () => {
    const { url, backend } = await startTestServer({ authorizer, limits: { maxBodyBytes: 16 } })
    const res = await fetch(`${url}/v1/keys/deployments/api`, { method: 'PUT', body: JSON.stringify({ value: 'x'.repeat(100) }) })
    expect(res.status).toBe(401)
    await res.text()
    expect(backend.calls).toEqual([])
  })

  it('watches need read on the key or prefix; the token may come as access_token for EventSource', async () => {
    const { url, backend } = await startTestServer({ authorizer })
    const none = await fetch(`${url}/v1/watch?prefix=deployments%2F`)
    expect(none.status).toBe(401)
    await none.text()
    const outside = await fetch(`${url}/v1/watch?prefix=`, { headers: { Authorization: 'Bearer ci-token' } })
    expect(outside.status).toBe(403)
    await outside.text()
    const abort = new AbortController()
    const ok = await fetch(`${url}/v1/watch?prefix=deployments%2F&access_token=ci-token`, { signal: abort.signal })
    const wrongQueryToken = await fetch(`${url}/v1/watch?prefix=deployments%2F&token=nope`)
    expect(wrongQueryToken.status).toBe(401)
    await wrongQueryToken.text()
    expect(ok.status).toBe(200)
    const watch = await backend.nextWatch()
    expect(watch.params).toEqual({ prefix: 'deployments/' })
    expect(watch.context.principal).toBe('ci')
    abort.abort()
    await watch.whenClosed()
  })
})
