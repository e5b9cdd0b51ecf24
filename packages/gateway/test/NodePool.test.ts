// The pool, its links and connections against stand-in nodes over real sockets.
import { afterEach, describe, expect, it } from 'vitest'
import { ErrorCode, WeftError } from '@weft/core'
import { pack } from '@weft/protocol'
import { NodeConnection } from '../src/NodeConnection.ts'
import { NodeLink } from '../src/NodeLink.ts'
import { NodePool } from '../src/NodePool.ts'
import { FakeNodeServer } from './FakeNodeServer.ts'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function node(peerId: string): Promise<FakeNodeServer> {
  const server = new FakeNodeServer(peerId)
  await server.start()
  cleanups.push(() => server.kill())
  return server
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function pool(seeds: string[], refreshMs = 100): NodePool {
  const p = new NodePool({ seeds, refreshMs, link: { reconnect: { baseMs: 20, maxMs: 100 } } })
  cleanups.push(() => p.stop())
  p.start()
  return p
}

describe('NodeConnection', () => {
  it('matches answers to requests, and fails them on timeout or when the connection drops', async () => {
    const n = await node('n1')
    const conn = await NodeConnection.connect(n.url)
    cleanups.push(() => conn.close())
    expect(await conn.request('get', { key: 'k' }, 1000)).toEqual({ op: 'get', node: 'n1' })
    n.answer = (f) => (f.op === 'fail' ? { ok: false, error: { code: 'HEAD_MISMATCH', message: 'no', details: { head: 'h' } } } : undefined)
    await expect(conn.request('fail', {}, 1000)).rejects.toMatchObject({ code: 'HEAD_MISMATCH', details: { head: 'h' } })
    await expect(conn.request('hang', {}, 50)).rejects.toMatchObject({ code: 'TIMEOUT' })
    const pending = conn.request('hang', {}, 5000)
    await n.kill()
    await expect(pending).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    await expect(conn.request('get', {}, 1000)).rejects.toMatchObject({ code: 'UNAVAILABLE' })
  })

  it('delivers watch events to their handlers, and ends watches when the node ends them or goes away', async () => {
    const n = await node('n1')
    const conn = await NodeConnection.connect(n.url)
    cleanups.push(() => conn.close())
    const events: unknown[] = []
    const ends: WeftError[] = []
    const { id, cursor } = await conn.openWatch({ key: 'k' }, { onEvent: (e) => events.push(e), onEnd: (e) => ends.push(e) }, 1000)
    expect(cursor).toBe('n1-epoch:0')
    n.broadcast({ id, event: { cursor: 'n1-epoch:1', key: 'k' } })
    n.broadcast({ id: id + 100, event: { cursor: 'n1-epoch:2', key: 'other' } })
    await until(() => events.length === 1)
    n.broadcast({ id, ended: { code: 'INTERNAL', message: 'replay failed' } })
    await until(() => ends.length === 1)
    expect(ends[0]).toMatchObject({ code: 'INTERNAL' })
    const second = await conn.openWatch({ key: 'k' }, { onEvent: () => {}, onEnd: (e) => ends.push(e) }, 1000)
    await n.kill()
    await until(() => ends.length === 2)
    expect(ends[1]).toMatchObject({ code: 'UNAVAILABLE' })
    expect(second.id).toBeGreaterThan(id)
  })

  it('cuts off a node that stops answering pings', async () => {
    const n = await node('n1')
    const conn = await NodeConnection.connect(n.url, { pingIntervalMs: 50 })
    cleanups.push(() => conn.close())
    // The node's process hangs: it reads nothing and answers nothing.
    for (const ws of n.sockets) (ws as unknown as { _socket: { pause(): void } })._socket.pause()
    const pending = conn.request('get', {}, 10_000)
    await expect(pending).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/stopped answering/) })
  })

  it('refuses to connect to nothing with UNAVAILABLE', async () => {
    const n = await node('n1')
    await n.kill()
    await expect(NodeConnection.connect(n.url, { connectTimeoutMs: 1000 })).rejects.toMatchObject({ code: 'UNAVAILABLE' })
  })
})

describe('NodeLink', () => {
  it('queues requests past the in-flight limit and sends them in order as answers come', async () => {
    const n = await node('n1')
    const held: (() => void)[] = []
    n.answer = (f) => {
      held.push(() => n.broadcast({ id: f.id, ok: true, result: f.n }))
      return undefined
    }
    const link = new NodeLink(n.url, { maxInflight: 2 })
    cleanups.push(() => link.retire())
    link.start()
    await until(() => link.connected)
    const results = [1, 2, 3, 4].map((i) => link.request('set', { n: i }, 5000))
    await until(() => held.length === 2)
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(held).toHaveLength(2)
    held.shift()!()
    await until(() => held.length === 2)
    while (held.length > 0) {
      held.shift()!()
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(await Promise.all(results)).toEqual([1, 2, 3, 4])
    expect(n.received.filter((f) => f.op === 'set').map((f) => f.n)).toEqual([1, 2, 3, 4])
  })

  it('fails queued requests that wait past their timeout, without sending them', async () => {
    const n = await node('n1')
    n.answer = () => undefined
    const link = new NodeLink(n.url, { maxInflight: 1 })
    cleanups.push(() => link.retire())
    link.start()
    await until(() => link.connected)
    void link.request('hang', {}, 5000).catch(() => {})
    await expect(link.request('queued', {}, 50)).rejects.toMatchObject({ code: 'TIMEOUT' })
    expect(n.received.some((f) => f.op === 'queued')).toBe(false)
  })

  it('opens another connection for watches past the per-connection limit, and closes it when they end', async () => {
    const n = await node('n1')
    const link = new NodeLink(n.url, { maxWatchesPerConnection: 2 })
    cleanups.push(() => link.retire())
    link.start()
    await until(() => link.connected)
    const events = { onEvent: () => {}, onEnd: () => {} }
    const watches = await Promise.all([1, 2, 3].map(() => link.watch({ key: 'k' }, events, 1000)))
    expect(n.sockets.size).toBe(2)
    watches[2]!.close()
    await until(() => n.sockets.size === 1)
  })
})

describe('NodePool', () => {
  it('learns every node from a seed\'s membership and connects to each', async () => {
    const [a, b, c] = [await node('peer-a'), await node('peer-b'), await node('peer-c')]
    a.members = [b.self(), c.self()]
    a.members = a.members.map((m) => ({ ...m, self: false }))
    const p = pool([a.url])
    await until(() => p.nodes().length === 3)
    expect(p.nodes().map((n) => n.peerId).sort()).toEqual(['peer-a', 'peer-b', 'peer-c'])
    expect(p.members()).toEqual([
      expect.objectContaining({ peerId: 'peer-a', state: 'alive', gatewayConnected: true }),
      expect.objectContaining({ peerId: 'peer-b', state: 'alive', gatewayConnected: true }),
      expect.objectContaining({ peerId: 'peer-c', state: 'alive', gatewayConnected: true }),
    ])
    expect(p.members()[0]).not.toHaveProperty('self')
  })

  it('drops a node whose connection closes at once, and takes it back when it returns', async () => {
    const [a, b] = [await node('peer-a'), await node('peer-b')]
    const p = pool([a.url, b.url])
    await until(() => p.nodes().length === 2)
    const version = p.version
    await b.kill()
    await until(() => p.nodes().length === 1)
    expect(p.version).toBeGreaterThan(version)
    expect(p.nodes()[0]!.peerId).toBe('peer-a')
    await b.start()
    await until(() => p.nodes().length === 2, 5000)
  })

  it('stops dialling a learnt node once the cluster lists it dead', async () => {
    const [a, b] = [await node('peer-a'), await node('peer-b')]
    a.members = [{ ...b.self(), self: false }]
    const p = pool([a.url])
    await until(() => p.nodes().length === 2)
    await b.kill()
    await until(() => p.nodes().length === 1)
    expect(p.links().map((l) => l.peerId).sort()).toEqual(['peer-a', 'peer-b'])
    a.members = [{ ...b.self('dead'), self: false }]
    await until(() => p.links().length === 1)
    expect(p.links()[0]).toMatchObject({ peerId: 'peer-a', seed: true })
  })

  it('keeps one link per node when a seed URL and the advertised URL differ', async () => {
    const a = await node('peer-a')
    a.members = []
    const p = pool([a.url.replace('127.0.0.1', 'localhost')])
    await until(() => p.nodes().length === 1)
    await p.refresh()
    expect(p.links()).toHaveLength(1)
  })

  it('says when no node could be reached in time', async () => {
    const a = await node('peer-a')
    await a.kill()
    const p = pool([a.url])
    expect(await p.ready(200)).toBe(false)
  })
})

describe('frames from a misbehaving node', () => {
  it('are ignored without breaking the connection', async () => {
    const n = await node('n1')
    const conn = await NodeConnection.connect(n.url)
    cleanups.push(() => conn.close())
    for (const ws of n.sockets) {
      ws.send(new Uint8Array([0xc1, 0xff]))
      ws.send(pack([1, 2]))
      ws.send(pack({ id: null, ok: false, error: { code: 'BAD_FRAME', message: 'x' } }))
      ws.send(pack({ id: 999, ok: true, result: 1 }))
    }
    n.answer = (f) => ({ ok: false, error: { code: 'NOT_A_CODE', message: 'odd' }, extra: f.id })
    await expect(conn.request('odd', {}, 1000)).rejects.toEqual(new WeftError(ErrorCode.INTERNAL, 'a node sent an unreadable error'))
    n.answer = () => ({ ok: true, result: 'fine' })
    expect(await conn.request('get', {}, 1000)).toBe('fine')
  })
})
