// A real network partition: three node processes, each in its own network
// namespace, joined by veth links to a bridge (test/support/Netns.ts draws it).
// Node 3 is cut off, both sides take writes (including the same leaf of the same
// key), the partition heals, and every node ends with the same values and the
// same history.
//
// Networking: every address is in one random /24 of 198.18.0.0/15. The bridge
// lives in a namespace of its own; each node's namespace has only `lo` and one
// veth to the bridge, with no default route, so no packet can leave the machine.
// The test process reaches the nodes' APIs (bound on their 198.18.x.n address,
// as NodeProcess does) through one more veth from the root namespace to the
// bridge, addressed .254 with forwarding off. This was chosen over forwarders
// in each namespace: no extra processes, and NodeProcess's wsUrl works as is.
//
// Partition: blackhole routes between node 3 and each of nodes 1-2, in both
// namespaces (iproute2 only; iptables is not needed). Nothing crosses the cut
// either way, yet the test link still reaches node 3, so the test can see it
// serve reads and writes while cut off. Healing deletes the routes.
//
// Needs root and `ip` (CI runs as root); skipped with a warning otherwise.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { eventually } from '../support/eventually.ts'
import { NetnsLab, netnsUnavailable } from '../support/Netns.ts'
import { type NodeProcess, TestCluster } from '../support/NodeProcess.ts'
import { RequestFailed, type WsTestClient } from '../support/WsTestClient.ts'

const unavailable = netnsUnavailable()
if (unavailable) console.warn(`skipping the network partition test: ${unavailable}`)

const swarmKey = () => `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`
const P2P_PORT = 7400
const API_PORT = 7410

let cluster: TestCluster | undefined
let lab: NetnsLab | undefined

afterEach(async () => {
  // Processes first (by PID), then the namespaces they ran in.
  try {
    await cluster?.cleanup()
  } finally {
    cluster = undefined
    const created = lab
    lab = undefined
    await created?.destroy()
  }
}, 30_000)

interface Member {
  name: string
  state: string
}

async function members(client: WsTestClient): Promise<Member[]> {
  return (await client.request<{ members: Member[] }>('members', {}, 3000)).members
}

async function history(client: WsTestClient, key: string): Promise<string[]> {
  const result = await client.request<{ revisions: { id: string }[] }>('history', { key, limit: 1000 }, 3000)
  return result.revisions.map((r) => r.id)
}

async function get(client: WsTestClient, key: string): Promise<unknown> {
  return (await client.request<{ value: unknown }>('get', { key }, 3000)).value
}

async function set(client: WsTestClient, key: string, value: unknown, message: string): Promise<string> {
  const result = await client.request<{ revision: { id: string } }>('set', { key, value, message }, 3000)
  return result.revision.id
}

async function expectMissing(client: WsTestClient, key: string): Promise<void> {
  const error = await client.request('get', { key }, 3000).then(() => undefined, (err: unknown) => err)
  expect(error, `${key} should not be here yet`).toBeInstanceOf(RequestFailed)
  expect((error as RequestFailed).code).toBe('KEY_NOT_FOUND')
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.skipIf(unavailable !== undefined)('a network partition between node processes in namespaces', () => {
  it('keeps both sides writable and converges values and histories after healing', async () => {
    lab = await NetnsLab.create(3)
    cluster = new TestCluster()
    await cluster.init(swarmKey())
    const nodes: NodeProcess[] = []
    for (const [i, host] of lab.hosts.entries()) {
      const node = await cluster.add(`node${i + 1}`, {
        host: host.address,
        wrapper: host.wrapper,
        p2pPort: P2P_PORT,
        apiPort: API_PORT,
        peers: nodes.map((n) => n.multiaddr),
        extraArgs: ['--anti-entropy-ms', '1000'],
      })
      await node.start()
      nodes.push(node)
    }
    const c = cluster
    const clients = await Promise.all(nodes.map((n) => c.client(n)))
    const [c1, c2, c3] = clients as [WsTestClient, WsTestClient, WsTestClient]
    const names = nodes.map((n) => n.name)

    await eventually(async () => {
      for (const client of clients) expect((await members(client)).filter((m) => m.state === 'alive').map((m) => m.name).sort()).toEqual(names)
    }, 20_000, 200)

    const ids = new Map<string, string[]>([['cfg', []], ['majority/only', []], ['minority/only', []]])
    const record = (key: string, id: string) => ids.get(key)!.push(id)

    record('cfg', await set(c1, 'cfg', { replicas: 1, image: 'v1' }, 'before the partition'))
    await eventually(async () => {
      for (const client of clients) {
        expect(await get(client, 'cfg')).toEqual({ replicas: 1, image: 'v1' })
        expect(await history(client, 'cfg')).toEqual(ids.get('cfg'))
      }
    }, 10_000, 100)

    // Cut node 3 off from nodes 1 and 2 (the test still reaches all three).
    await lab.isolate(2)

    // Majority side: the contested leaf (replicas), a field of its own, a new key.
    record('cfg', await set(c1, 'cfg', { replicas: 2, image: 'v1', owner: 'team-a' }, 'node1, partitioned'))
    record('majority/only', await set(c1, 'majority/only', { from: 'node1' }, 'node1, partitioned'))
    await sleep(20)
    // Minority side: the same leaf, later; a field of its own; another new key.
    record('cfg', await set(c3, 'cfg', { replicas: 3, image: 'v1', zone: 'c' }, 'node3, partitioned, later'))
    record('minority/only', await set(c3, 'minority/only', { from: 'node3' }, 'node3, partitioned'))

    // Each side serves reads and writes and replicates within itself...
    expect(await get(c1, 'cfg')).toEqual({ replicas: 2, image: 'v1', owner: 'team-a' })
    expect(await get(c3, 'cfg')).toEqual({ replicas: 3, image: 'v1', zone: 'c' })
    expect(await get(c3, 'minority/only')).toEqual({ from: 'node3' })
    await eventually(async () => {
      expect(await get(c2, 'cfg')).toEqual({ replicas: 2, image: 'v1', owner: 'team-a' })
      expect(await get(c2, 'majority/only')).toEqual({ from: 'node1' })
    }, 10_000, 100)
    // ...and the partition is real: each side loses sight of the other (a few
    // heartbeats, i.e. several anti-entropy rounds) and nothing crosses it.
    await eventually(async () => {
      expect((await members(c3)).filter((m) => m.state === 'alive').map((m) => m.name)).toEqual(['node3'])
      for (const client of [c1, c2]) expect((await members(client)).find((m) => m.name === 'node3')?.state).not.toBe('alive')
    }, 15_000, 200)
    await expectMissing(c3, 'majority/only')
    await expectMissing(c1, 'minority/only')
    await expectMissing(c2, 'minority/only')
    expect(await get(c1, 'cfg')).toEqual({ replicas: 2, image: 'v1', owner: 'team-a' })
    expect(await get(c3, 'cfg')).toEqual({ replicas: 3, image: 'v1', zone: 'c' })

    await lab.heal()
    const healedAt = Date.now()

    const expected: Record<string, unknown> = {
      // The contested leaf takes node 3's later write; both sides' own fields stay.
      cfg: { replicas: 3, image: 'v1', owner: 'team-a', zone: 'c' },
      'majority/only': { from: 'node1' },
      'minority/only': { from: 'node3' },
    }
    await eventually(async () => {
      for (const [key, value] of Object.entries(expected)) {
        const newestFirst = [...ids.get(key)!].sort().reverse()
        for (const client of clients) {
          expect(await get(client, key), key).toEqual(value)
          expect(await history(client, key), key).toEqual(newestFirst)
        }
      }
      for (const client of clients) expect((await members(client)).filter((m) => m.state === 'alive').map((m) => m.name).sort()).toEqual(names)
    }, 30_000, 250)
    console.info(`partition test: converged ${Date.now() - healedAt} ms after healing`)
  }, 60_000)
})
