// Real node processes over real libp2p on loopback: replication, convergence,
// crash recovery, catch-up, gossip loss, secrets, bad input.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { pack } from '@weft/protocol'
import { eventually } from '../support/eventually.ts'
import { type NodeProcess, TestCluster } from '../support/NodeProcess.ts'
import { RequestFailed, type WsTestClient } from '../support/WsTestClient.ts'

const swarmKey = () => `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`

let cluster: TestCluster

afterEach(async (context) => {
  // A failed test shows what its nodes logged above info level, so a CI failure can be read.
  if (context.task.result?.state === 'fail') {
    for (const node of cluster.nodes) console.log(`--- ${node.name}\n${node.output.split('\n').filter((l) => /member state|hanging up|"level":[45]0/.test(l)).slice(-40).join('\n')}`)
  }
  await cluster.cleanup()
})

async function init(): Promise<TestCluster> {
  cluster = new TestCluster()
  await cluster.init(swarmKey())
  return cluster
}

interface Revision {
  id: string
  index: number
}

async function history(client: WsTestClient, key: string): Promise<string[]> {
  const result = await client.request<{ revisions: Revision[] }>('history', { key, limit: 1000 })
  return result.revisions.map((r) => r.id)
}

async function waitForMesh(nodes: NodeProcess[], clients: WsTestClient[]): Promise<void> {
  await eventually(async () => {
    for (const client of clients) {
      const { members } = await client.request<{ members: { state: string }[] }>('members')
      expect(members.filter((m) => m.state === 'alive').length).toBe(nodes.length)
    }
  }, 20_000)
}

describe('a cluster of node processes', () => {
  it('replicates a write on any node to every node with identical history', async () => {
    const nodes = await (await init()).startNodes(3)
    const clients = await Promise.all(nodes.map((n) => cluster.client(n)))
    await waitForMesh(nodes, clients)
    // Each node writes in turn, after seeing the previous write.
    for (const [i, client] of clients.entries()) {
      if (i > 0) await eventually(async () => expect((await history(client, 'deployments/api')).length).toBe(i), 15_000)
      await client.request('set', { key: 'deployments/api', value: { step: i, image: `api:${i}` }, message: `from node ${i + 1}` })
      await client.request('set', { key: `own/${i}`, value: i })
    }
    await eventually(async () => {
      const expected = await history(clients[0]!, 'deployments/api')
      expect(expected).toHaveLength(3)
      for (const client of clients) {
        expect(await history(client, 'deployments/api')).toEqual(expected)
        expect((await client.request<{ value: unknown }>('get', { key: 'deployments/api' })).value).toEqual({ step: 2, image: 'api:2' })
        for (let i = 0; i < 3; i++) expect((await client.request<{ value: unknown }>('get', { key: `own/${i}` })).value).toBe(i)
      }
    }, 15_000)
  }, 60_000)

  it('converges concurrent writes: the same leaf to the later HLC, different fields both kept', async () => {
    // Gossip off: the two writes cannot see each other until anti-entropy runs.
    await init()
    const a = await cluster.add('a', { env: { WEFT_TEST_DROP_GOSSIP: '1' }, extraArgs: ['--anti-entropy-ms', '1500'] })
    await a.start()
    const b = await cluster.add('b', { peers: [a.multiaddr], env: { WEFT_TEST_DROP_GOSSIP: '1' }, extraArgs: ['--anti-entropy-ms', '1500'] })
    await b.start()
    const [ca, cb] = [await cluster.client(a), await cluster.client(b)]
    await waitForMesh([a, b], [ca, cb])
    await ca.request('set', { key: 'cfg', value: { replicas: 1, image: 'v1' } })
    await eventually(async () => expect((await cb.request<{ value: unknown }>('get', { key: 'cfg' })).value).toEqual({ replicas: 1, image: 'v1' }), 15_000)
    await cb.request('set', { key: 'cfg', value: { replicas: 2, image: 'v1' } })
    await new Promise((resolve) => setTimeout(resolve, 5))
    await ca.request('set', { key: 'cfg', value: { replicas: 3, image: 'v2' } })
    await cb.request('set', { key: 'cfg', value: { replicas: 2, image: 'v1', zone: 'b' } })
    // a's replicas write is later than b's first; b's zone is a field a never touched.
    await eventually(async () => {
      for (const client of [ca, cb]) expect((await client.request<{ value: unknown }>('get', { key: 'cfg' })).value).toEqual({ replicas: 3, image: 'v2', zone: 'b' })
      expect(await history(ca, 'cfg')).toEqual(await history(cb, 'cfg'))
    }, 20_000)
  }, 60_000)

  it('a node killed with SIGKILL during writes catches up on restart; no acknowledged write is lost', async () => {
    const nodes = await (await init()).startNodes(3)
    const clients = await Promise.all(nodes.map((n) => cluster.client(n)))
    await waitForMesh(nodes, clients)
    const acknowledged = new Map<string, number>()
    let writing = true
    const writer = async (client: WsTestClient, name: string) => {
      for (let i = 0; writing; i++) {
        const key = `w/${name}/${i}`
        try {
          await client.request('set', { key, value: { i } }, 3000)
          acknowledged.set(key, i)
        } catch {
          // the victim's own writes fail once it dies: only acknowledged ones count
        }
      }
    }
    const writers = [writer(clients[0]!, 'n1'), writer(clients[1]!, 'n2'), writer(clients[2]!, 'n3')]
    await new Promise((resolve) => setTimeout(resolve, 1500))
    await nodes[2]!.stop('SIGKILL')
    await new Promise((resolve) => setTimeout(resolve, 1500))
    writing = false
    await Promise.allSettled(writers)
    await nodes[2]!.start()
    const revived = await cluster.client(nodes[2]!)
    const all = [clients[0]!, clients[1]!, revived]
    expect(acknowledged.size).toBeGreaterThan(100)
    await eventually(async () => {
      for (const client of all) {
        const keys = await allKeys(client, 'w/')
        for (const key of acknowledged.keys()) expect(keys.has(key), key).toBe(true)
      }
    }, 30_000, 500)
  }, 90_000)

  it('a new empty node joins a cluster holding 10,000 keys and catches up fully', async () => {
    const nodes = await (await init()).startNodes(2)
    const clients = await Promise.all(nodes.map((n) => cluster.client(n)))
    await waitForMesh(nodes, clients)
    const total = 10_000
    for (let start = 0; start < total; start += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => clients[(start + j) % 2]!.request('set', { key: `bulk/${String(start + j).padStart(5, '0')}`, value: { n: start + j } })))
    }
    const joiner = await cluster.add('joiner', { peers: nodes.map((n) => n.multiaddr) })
    await joiner.start()
    const client = await cluster.client(joiner)
    await eventually(async () => {
      const health = (await (await fetch(`${joiner.httpUrl}/healthz`)).json()) as { keys: number }
      expect(health.keys).toBe(total)
    }, 60_000, 500)
    expect((await allKeys(client, 'bulk/')).size).toBe(total)
    expect((await client.request<{ value: unknown }>('get', { key: 'bulk/09999' })).value).toEqual({ n: 9999 })
  }, 120_000)

  it('repairs gossip loss with anti-entropy', async () => {
    await init()
    const env = { WEFT_TEST_DROP_GOSSIP: '0.7' }
    const a = await cluster.add('a', { env, extraArgs: ['--anti-entropy-ms', '1000'] })
    await a.start()
    const b = await cluster.add('b', { env, peers: [a.multiaddr], extraArgs: ['--anti-entropy-ms', '1000'] })
    await b.start()
    const [ca, cb] = [await cluster.client(a), await cluster.client(b)]
    await waitForMesh([a, b], [ca, cb])
    for (let i = 0; i < 300; i++) await (i % 2 ? ca : cb).request('set', { key: `loss/${i}`, value: i })
    await eventually(async () => {
      expect((await allKeys(ca, 'loss/')).size).toBe(300)
      expect((await allKeys(cb, 'loss/')).size).toBe(300)
    }, 30_000, 500)
    const metrics = await (await fetch(`${a.httpUrl}/metrics`)).text()
    expect(Number(/weft_anti_entropy_repaired_revisions_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0)
  }, 60_000)

  it('keeps out a node with a different cluster secret', async () => {
    const nodes = await (await init()).startNodes(2)
    const clients = await Promise.all(nodes.map((n) => cluster.client(n)))
    await waitForMesh(nodes, clients)
    await clients[0]!.request('set', { key: 'secret', value: 'members only' })
    const outsiderCluster = new TestCluster()
    await outsiderCluster.init(swarmKey())
    try {
      const outsider = await outsiderCluster.add('outsider', { peers: nodes.map((n) => n.multiaddr) })
      await outsider.start()
      const client = await outsiderCluster.client(outsider)
      await new Promise((resolve) => setTimeout(resolve, 5000))
      await expect(client.request('get', { key: 'secret' })).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' })
      expect((await client.request<{ members: unknown[] }>('members')).members.length).toBe(1)
      for (const c of clients) expect((await c.request<{ members: { name: string }[] }>('members')).members.map((m) => m.name)).not.toContain('outsider')
    } finally {
      await outsiderCluster.cleanup()
    }
  }, 60_000)

  it('keeps membership views in agreement under churn: kills, restarts, joins', async () => {
    const nodes = await (await init()).startNodes(4)
    const clients = await Promise.all(nodes.map((n) => cluster.client(n)))
    await waitForMesh(nodes, clients)
    await nodes[3]!.stop('SIGKILL')
    await nodes[2]!.stop('SIGKILL')
    await nodes[2]!.start()
    const joiner = await cluster.add('node5', { peers: [nodes[0]!.multiaddr] })
    await joiner.start()
    const alive = [nodes[0]!, nodes[1]!, nodes[2]!, joiner]
    const aliveClients = [clients[0]!, clients[1]!, await cluster.client(nodes[2]!), await cluster.client(joiner)]
    await eventually(async () => {
      for (const client of aliveClients) {
        const { members } = await client.request<{ members: { name: string; state: string }[] }>('members')
        const states = Object.fromEntries(members.map((m) => [m.name, m.state]))
        for (const node of alive) expect(states[node.name], `${node.name} as seen by a peer`).toBe('alive')
        // node4 was seen by the old members; the joiner never heard of it, which is fine.
        if (states.node4 !== undefined) expect(states.node4).not.toBe('alive')
      }
    }, 30_000, 250)
  }, 90_000)

  it('stays one cluster when the only peer every node was told of goes away', async () => {
    await init()
    const hub = await cluster.add('hub')
    await hub.start()
    const leaves = [await cluster.add('leaf1', { peers: [hub.multiaddr] }), await cluster.add('leaf2', { peers: [hub.multiaddr] })]
    for (const leaf of leaves) await leaf.start()
    const nodes = [hub, ...leaves]
    const clients = await Promise.all(nodes.map((n) => cluster.client(n)))
    await waitForMesh(nodes, clients)
    // The leaves learn of each other from heartbeats and connect directly.
    await eventually(async () => {
      for (const [i, client] of clients.slice(1).entries()) {
        const { members } = await client.request<{ members: { name: string; connected: boolean }[] }>('members')
        expect(members.find((m) => m.name === `leaf${2 - i}`)?.connected, `leaf${i + 1} connected to leaf${2 - i}`).toBe(true)
      }
    }, 15_000, 250)
    await hub.stop('SIGKILL')
    const [, a, b] = clients as [WsTestClient, WsTestClient, WsTestClient]
    await a.request('set', { key: 'after-hub', value: 'from leaf1' })
    await b.request('set', { key: 'after-hub/2', value: 'from leaf2' })
    await eventually(async () => {
      expect((await b.request<{ value: unknown }>('get', { key: 'after-hub' })).value).toBe('from leaf1')
      expect((await a.request<{ value: unknown }>('get', { key: 'after-hub/2' })).value).toBe('from leaf2')
    }, 15_000, 250)
  }, 60_000)

  it('rejects malformed client frames and keeps serving', async () => {
    const [node] = await (await init()).startNodes(1)
    const bad = await cluster.client(node!)
    const good = await cluster.client(node!)
    bad.sendRaw(new Uint8Array([0xc1, 0x00, 0xff]))
    bad.sendRaw(pack([1, 2, 3]))
    bad.sendRaw(pack({ id: 7, op: 'explode' }))
    await expect(bad.request('set', { key: '', value: 1 })).rejects.toBeInstanceOf(RequestFailed)
    await expect(bad.request('set', { key: 'k', value: 1, fork: 'no spaces' })).rejects.toMatchObject({ code: 'INVALID_FORK' })
    await good.request('set', { key: 'k', value: 1 })
    expect((await good.request<{ value: unknown }>('get', { key: 'k' })).value).toBe(1)
    expect((await (await fetch(`${node!.httpUrl}/healthz`)).json())).toMatchObject({ status: 'ok' })
  }, 30_000)
})

async function allKeys(client: WsTestClient, prefix: string): Promise<Set<string>> {
  const keys = new Set<string>()
  let after: string | undefined
  for (;;) {
    const page = await client.request<{ keys: { key: string }[]; next?: string }>('keys', { prefix, limit: 1000, ...(after !== undefined && { after }) })
    for (const k of page.keys) keys.add(k.key)
    if (!page.next) return keys
    after = page.next
  }
}
