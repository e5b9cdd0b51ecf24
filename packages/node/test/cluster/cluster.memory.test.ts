// Replication, anti-entropy and membership over the in-memory network: the
// same logic the real cluster runs, fast and deterministic enough for CI.
import { afterEach, describe, expect, it } from 'vitest'
import type { NodeId } from '@weft/core'
import { SYNC_PROTOCOL, SyncLimits, Topics, pack, unpack } from '@weft/protocol'
import { AntiEntropy } from '../../src/cluster/AntiEntropy.ts'
import type { PeerId } from '../../src/cluster/ClusterTransport.ts'
import { Membership } from '../../src/cluster/Membership.ts'
import { MemoryNetwork, type MemoryTransport } from '../../src/cluster/MemoryTransport.ts'
import { Replicator } from '../../src/cluster/Replicator.ts'
import { silentLogger } from '../../src/Logger.ts'
import { MemoryStorage } from '../../src/storage/MemoryStorage.ts'
import { VersionedStore } from '../../src/store/VersionedStore.ts'

interface TestNode {
  name: string
  store: VersionedStore
  transport: MemoryTransport
  replicator: Replicator
  antiEntropy: AntiEntropy
  membership: Membership
}

const running: TestNode[] = []

async function startNode(network: MemoryNetwork, name: string, options: { antiEntropyMs?: number; storage?: MemoryStorage; forgetAfterMs?: number; fetchesInFlight?: number } = {}): Promise<TestNode> {
  const store = new VersionedStore({ storage: options.storage ?? new MemoryStorage(), nodeId: name as NodeId })
  const transport = network.transport(name)
  const replicator = new Replicator({ store, transport, logger: silentLogger })
  const antiEntropy = new AntiEntropy({ store, transport, logger: silentLogger, intervalMs: options.antiEntropyMs ?? 50, ...(options.fetchesInFlight !== undefined && { fetchesInFlight: options.fetchesInFlight }) })
  const membership = new Membership({
    transport,
    logger: silentLogger,
    intervalMs: 20,
    ...(options.forgetAfterMs !== undefined && { forgetAfterMs: options.forgetAfterMs }),
    self: { name, api: `ws://${name}/v1/ws`, version: 'test', startedAt: Date.now(), keys: () => store.keyCount(), load: () => 0, feed: () => store.feedHead() },
  })
  await transport.start()
  replicator.start()
  antiEntropy.start()
  membership.start()
  const node = { name, store, transport, replicator, antiEntropy, membership }
  running.push(node)
  return node
}

async function stopNode(node: TestNode, closeStore = true): Promise<void> {
  running.splice(running.indexOf(node), 1)
  node.membership.stop()
  await node.replicator.stop()
  await node.antiEntropy.stop()
  await node.transport.stop()
  if (closeStore) await node.store.close()
}

afterEach(async () => {
  for (const node of [...running]) await stopNode(node)
})

async function eventually(check: () => void, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      check()
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
}

function historyOf(node: TestNode, key: string, fork = 'main') {
  return node.store.history(key, fork, { limit: 1000 }).revisions.map((r) => r.id)
}

describe('cluster over the memory network', () => {
  it('replicates a write on any node to every node, with identical history', async () => {
    const network = new MemoryNetwork()
    const nodes = await Promise.all(['a', 'b', 'c'].map((n) => startNode(network, n, { antiEntropyMs: 60_000 })))
    await nodes[0]!.store.set('cfg', { v: 1 })
    await nodes[1]!.store.set('cfg', { v: 1, w: 2 })
    await nodes[2]!.store.fork('cfg', { to: 'staging' }).catch(() => undefined)
    await eventually(() => {
      for (const node of nodes) expect(node.store.get('cfg').value).toEqual({ v: 1, w: 2 })
      const expected = historyOf(nodes[0]!, 'cfg')
      expect(expected.length).toBe(2)
      for (const node of nodes) expect(historyOf(node, 'cfg')).toEqual(expected)
    })
    expect(nodes[0]!.replicator.stats.published).toBeGreaterThan(0)
  })

  it('repairs gossip loss by anti-entropy', async () => {
    const network = new MemoryNetwork()
    network.dropRatio = 1
    const nodes = await Promise.all(['a', 'b', 'c'].map((n) => startNode(network, n)))
    for (let i = 0; i < 50; i++) await nodes[i % 3]!.store.set(`k${i}`, { i })
    await eventually(() => {
      for (const node of nodes) expect(node.store.keys({ limit: 1000 }).keys.length).toBe(50)
    })
    expect(nodes.reduce((sum, n) => sum + n.antiEntropy.stats.repaired, 0)).toBeGreaterThanOrEqual(100)
  })

  it('converges after a partition heals: values and histories', async () => {
    const network = new MemoryNetwork()
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => startNode(network, n)))
    await a!.store.set('cfg', { replicas: 1, image: 'v1' })
    await eventually(() => expect(c!.store.get('cfg').value).toEqual({ replicas: 1, image: 'v1' }))
    network.partition(['c' as PeerId], ['a' as PeerId, 'b' as PeerId])
    await a!.store.set('cfg', { replicas: 5, image: 'v1' })
    await c!.store.set('cfg', { replicas: 1, image: 'v2' })
    await c!.store.set('only-c', 1)
    await b!.store.set('only-b', 1)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(c!.store.get('cfg').value).toEqual({ replicas: 1, image: 'v2' })
    network.heal()
    await eventually(() => {
      for (const node of [a!, b!, c!]) {
        expect(node.store.get('cfg').value).toEqual({ replicas: 5, image: 'v2' })
        expect(node.store.keys().keys.map((k) => k.key)).toEqual(['cfg', 'only-b', 'only-c'])
        expect(historyOf(node, 'cfg')).toEqual(historyOf(a!, 'cfg'))
      }
    })
  })

  it('lets a new empty node catch up with a cluster that holds data', async () => {
    const network = new MemoryNetwork()
    const [a, b] = await Promise.all(['a', 'b'].map((n) => startNode(network, n)))
    await Promise.all(Array.from({ length: 2000 }, (_, i) => (i % 2 ? a! : b!).store.set(`key/${i}`, { i })))
    const c = await startNode(network, 'c')
    await eventually(() => {
      const first = c.store.keys({ limit: 1000 })
      expect(first.keys.length + (first.next ? c.store.keys({ limit: 1000, after: first.next }).keys.length : 0)).toBe(2000)
      expect(c.store.get('key/1999').value).toEqual({ i: 1999 })
    }, 20_000)
  })

  it('keeps what a failed catch-up round applied: the next round scans and fetches only the rest', async () => {
    // Two feed pages, written before `a` joins the network (so none of it is gossiped).
    const total = SyncLimits.feedPage + 2 * SyncLimits.refsPerGet
    const storage = new MemoryStorage()
    const filling = new VersionedStore({ storage, nodeId: 'a' as NodeId })
    await Promise.all(Array.from({ length: total }, (_, i) => filling.set(`key/${i}`, i)))
    const network = new MemoryNetwork()
    const a = await startNode(network, 'a', { antiEntropyMs: 60_000, storage })
    const serve = network.transports.get(a.transport.peerId)!
    let gets = 0
    let asked = 0
    const failAt = SyncLimits.feedPage / SyncLimits.refsPerGet + 1 // the second page's first get
    const real = (serve as unknown as { handlers: Map<string, (from: PeerId, bytes: Uint8Array) => Promise<Uint8Array>> }).handlers.get(SYNC_PROTOCOL)!
    serve.handle(SYNC_PROTOCOL, async (from, bytes) => {
      const request = unpack(bytes) as { t: string; refs?: unknown[] }
      if (request.t === 'get') {
        asked += request.refs!.length
        if (++gets === failAt) return pack({ t: 'error', code: 'UNAVAILABLE', message: 'injected' })
      }
      return real(from, bytes)
    })
    const c = await startNode(network, 'c', { antiEntropyMs: 60_000 })
    await eventually(() => expect(c.antiEntropy.stats.failedRounds).toBe(1))
    const held = c.store.keyCount()
    expect(held).toBeGreaterThanOrEqual(SyncLimits.feedPage)
    expect(held).toBeLessThan(total)
    const scanned = c.antiEntropy.stats.scanned
    asked = 0
    await c.antiEntropy.syncWith(a.transport.peerId)
    expect(c.store.keyCount()).toBe(total)
    // The kept cursor had moved past the first page only.
    expect(c.antiEntropy.stats.scanned - scanned).toBe(total - SyncLimits.feedPage)
    expect(asked).toBe(total - held)
  })

  it('fetches each revision once when two peers offer the same ones, in other orders', async () => {
    // Two peers hold the same revisions, their feeds in opposite orders; the
    // joiner's window is small, so chunks of both rounds wait their turn.
    const total = SyncLimits.feedPage + 2 * SyncLimits.refsPerGet
    const first = new MemoryStorage()
    const filling = new VersionedStore({ storage: first, nodeId: 'a' as NodeId })
    await Promise.all(Array.from({ length: total }, (_, i) => filling.set(`key/${i}`, i)))
    const second = new MemoryStorage()
    const copying = new VersionedStore({ storage: second, nodeId: 'b' as NodeId })
    for (const entry of filling.feed(0, total).reverse()) await copying.applyRemote([filling.revision(entry.key, entry.fork, entry.id)!])
    const network = new MemoryNetwork()
    await startNode(network, 'a', { antiEntropyMs: 60_000, storage: first })
    await startNode(network, 'b', { antiEntropyMs: 60_000, storage: second })
    const c = await startNode(network, 'c', { antiEntropyMs: 60_000, fetchesInFlight: 2 })
    await eventually(() => expect(c.antiEntropy.stats.repaired).toBe(total), 30_000)
    expect(c.store.keyCount()).toBe(total)
    expect(c.antiEntropy.stats.fetched).toBe(total)
  })

  it('catches up a node that was down, from its old data', async () => {
    const network = new MemoryNetwork()
    const storage = new MemoryStorage()
    const [a, b] = await Promise.all(['a', 'b'].map((n) => startNode(network, n)))
    let c = await startNode(network, 'c', { storage })
    await a!.store.set('before', 1)
    await eventually(() => expect(c.store.get('before').value).toBe(1))
    await stopNode(c, false)
    for (let i = 0; i < 100; i++) await b!.store.set(`during/${i}`, i)
    c = await startNode(network, 'c', { storage })
    await eventually(() => expect(c.store.keyCount()).toBe(101))
  })

  it('ignores malformed gossip and sync requests and keeps serving', async () => {
    const network = new MemoryNetwork()
    const [a, b] = await Promise.all(['a', 'b'].map((n) => startNode(network, n)))
    const rogue = network.transport('rogue')
    await rogue.start()
    await rogue.publish(Topics.revisions, new Uint8Array([1, 2, 3]))
    await rogue.publish(Topics.revisions, pack({ t: 'revs', revisions: [{ id: 'x', key: 1, delta: 'no' }, null] }))
    await rogue.publish(Topics.members, pack({ t: 'hb', peer: 'a', name: 'imposter' }))
    const reply = await rogue.request('a' as PeerId, SYNC_PROTOCOL, new Uint8Array([0xc1, 0xff]))
    expect(reply.length).toBeGreaterThan(0)
    await rogue.stop()
    await a!.store.set('still', 'fine')
    await eventually(() => expect(b!.store.get('still').value).toBe('fine'))
    expect(a!.membership.view().map((m) => m.name)).not.toContain('imposter')
  })

  it('agrees on membership; a stopped node turns suspect then dead', async () => {
    const network = new MemoryNetwork()
    const nodes = await Promise.all(['a', 'b', 'c'].map((n) => startNode(network, n)))
    await eventually(() => {
      for (const node of nodes) expect(node.membership.view().map((m) => [m.name, m.state])).toEqual(expect.arrayContaining([['a', 'alive'], ['b', 'alive'], ['c', 'alive']]))
    })
    await stopNode(nodes[2]!)
    await eventually(() => {
      for (const node of nodes.slice(0, 2)) expect(node.membership.view().find((m) => m.name === 'c')?.state).toBe('dead')
    })
    const view = nodes[0]!.membership.view()
    expect(view[0]).toMatchObject({ name: 'a', self: true, state: 'alive' })
    expect(view.find((m) => m.name === 'b')).toMatchObject({ connected: true, keys: 0, version: 'test' })
  })

  it('forgets a member that stayed dead past forgetAfterMs', async () => {
    const network = new MemoryNetwork()
    const nodes = await Promise.all(['a', 'b', 'c'].map((n) => startNode(network, n, { forgetAfterMs: 600 })))
    await eventually(() => {
      for (const node of nodes) expect(node.membership.view().filter((m) => m.state === 'alive')).toHaveLength(3)
    })
    await stopNode(nodes[2]!)
    // Dead after 10 missed heartbeats (200 ms), gone after 600 ms of silence.
    await eventually(() => expect(nodes[0]!.membership.view().find((m) => m.name === 'c')?.state).toBe('dead'))
    await eventually(() => {
      for (const node of nodes.slice(0, 2)) expect(node.membership.view().map((m) => m.name).sort()).toEqual(['a', 'b'])
    })
    // A forgotten member that comes back is a member again.
    const back = await startNode(network, 'c', { forgetAfterMs: 600 })
    await eventually(() => expect(nodes[0]!.membership.view().find((m) => m.name === back.name)?.state).toBe('alive'))
  })
})
