// A whole Gateway (pool, router, server) with the HTTP routes mounted as
// apps/gateway mounts them, over a stand-in node.
import { afterEach, describe, expect, it } from 'vitest'
import { OpenAuthorizer } from '../src/auth/OpenAuthorizer.ts'
import { Gateway } from '../src/Gateway.ts'
import { createHttpHandler } from '../src/http/createHttpHandler.ts'
import { FakeNodeServer } from './FakeNodeServer.ts'

const cleanup: (() => Promise<void>)[] = []

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

describe('Gateway', () => {
  it('counts HTTP requests in its request metrics, by op and code, next to WebSocket ones', async () => {
    const node = new FakeNodeServer('12D3KooWnode')
    await node.start()
    cleanup.push(() => node.kill())
    const revision = { id: '0193f1c2a4b50000.n1', index: 1, ts: Date.now(), node: 'n1', kind: 'set' }
    node.answer = (frame) =>
      frame.key === 'present'
        ? { ok: true, result: { key: 'present', fork: 'main', value: 1, deleted: false, revision } }
        : { ok: false, error: { code: 'KEY_NOT_FOUND', message: `no key ${String(frame.key)}` } }
    const authorizer = new OpenAuthorizer()
    const gateway = await Gateway.start({
      nodes: [node.url],
      host: '127.0.0.1',
      port: 0,
      authorizer,
      mountHttp: (backend, observe) => createHttpHandler({ backend, authorizer, observe }),
    })
    cleanup.push(() => gateway.stop())
    expect(await gateway.pool.ready(5000)).toBe(true)
    const http = `http://127.0.0.1:${gateway.address!.port}`
    expect((await fetch(`${http}/v1/keys/present`)).status).toBe(200)
    expect((await fetch(`${http}/v1/keys/absent`)).status).toBe(404)
    expect((await fetch(`${http}/present`)).status).toBe(200)
    const metrics = await (await fetch(`${http}/metrics`)).text()
    expect(metrics).toMatch(/^weft_gateway_requests_total\{op="get",code="OK"\} 2$/m)
    expect(metrics).toMatch(/^weft_gateway_requests_total\{op="get",code="KEY_NOT_FOUND"\} 1$/m)
    expect(metrics).toMatch(/^weft_gateway_request_duration_seconds_count\{op="get"\} 3$/m)
  })
})
