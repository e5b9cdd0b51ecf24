// Real libp2p nodes on 127.0.0.1 in one process: private network, gossip,
// request/response, persistent identity, and gossip recovery after a peer
// comes back while its old connection is still up (the gossipsub 14.1.2 bug).
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { PeerId } from '../../../src/cluster/ClusterTransport.ts'
import { loadOrCreateIdentity } from '../../../src/cluster/libp2p/identity.ts'
import { Libp2pTransport, TransportRequestError, type Libp2pTransportOptions } from '../../../src/cluster/libp2p/Libp2pTransport.ts'
import { generateSwarmKey } from '../../../src/cluster/libp2p/swarmKey.ts'

const TOPIC = 'weft/test'
const ECHO = '/weft/test/echo/1'
const FAIL = '/weft/test/fail/1'
const HANG = '/weft/test/hang/1'

interface Node {
  transport: Libp2pTransport
  received: { from: PeerId; text: string }[]
  /** peer:connect / peer:disconnect events, as "+peer" / "-peer". */
  events: string[]
}

const started: Libp2pTransport[] = []
const identities = new WeakMap<Libp2pTransport, Libp2pTransportOptions['privateKey']>()
const directories: string[] = []

afterEach(async () => {
  await Promise.allSettled(started.splice(0).map((transport) => transport.stop()))
  await Promise.allSettled(directories.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-libp2p-'))
  directories.push(dir)
  return dir
}

async function startNode(options: Partial<Libp2pTransportOptions> & Pick<Libp2pTransportOptions, 'swarmKey'>): Promise<Node> {
  const privateKey = options.privateKey ?? (await loadOrCreateIdentity(await tempDir()))
  // WEFT_TEST_NO_WATCHDOG=1 shows the last test failing without the gossipsub 14.1.2 watchdog.
  const watchdog = process.env.WEFT_TEST_NO_WATCHDOG ? { watchdog: false } : {}
  const transport = new Libp2pTransport({ listen: ['/ip4/127.0.0.1/tcp/0'], topics: [TOPIC, 'weft/other'], ...watchdog, ...options, privateKey })
  const node: Node = { transport, received: [], events: [] }
  transport.on('peer:connect', ({ peer }) => node.events.push(`+${peer}`))
  transport.on('peer:disconnect', ({ peer }) => node.events.push(`-${peer}`))
  identities.set(transport, privateKey)
  transport.subscribe(TOPIC)
  transport.on('message', ({ from, data }) => node.received.push({ from, text: new TextDecoder().decode(data) }))
  transport.handle(ECHO, async (from, request) => new TextEncoder().encode(`${from}:${new TextDecoder().decode(request)}`))
  transport.handle(FAIL, async () => {
    throw new Error('handler exploded')
  })
  transport.handle(HANG, () => new Promise<Uint8Array>(() => {}))
  started.push(transport)
  await transport.start()
  return node
}

function identityOf(node: Node): Libp2pTransportOptions['privateKey'] {
  const key = identities.get(node.transport)
  if (!key) throw new Error('unknown identity')
  return key
}

function addressOf(node: Node): string {
  const address = node.transport.addresses()[0]
  if (address === undefined) throw new Error('node has no address')
  return address
}

function portOf(node: Node): number {
  return Number(/\/tcp\/(\d+)/.exec(addressOf(node))?.[1])
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string, onPoll?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await onPoll?.()
    if (check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

let probes = 0
/** Publishes probes from `from` until `to` receives one (gossip needs subscriptions exchanged first). */
async function gossipReaches(from: Node, to: Node, timeoutMs: number): Promise<void> {
  const prefix = `probe-${from.transport.peerId}-`
  const seen = (): boolean => to.received.some((message) => message.from === from.transport.peerId && message.text.startsWith(prefix))
  to.received.length = 0
  await waitFor(seen, timeoutMs, `gossip from ${from.transport.peerId} to ${to.transport.peerId}`, async () => {
    await from.transport.publish(TOPIC, new TextEncoder().encode(`${prefix}${probes++}`))
  })
}

async function allGossip(nodes: Node[], timeoutMs: number): Promise<void> {
  for (const from of nodes) for (const to of nodes) if (from !== to) await gossipReaches(from, to, timeoutMs)
}

function connectedAll(nodes: Node[]): boolean {
  return nodes.every((node) => nodes.every((other) => other === node || node.transport.connectedPeers().includes(other.transport.peerId)))
}

async function startTrio(swarmKey: Uint8Array): Promise<[Node, Node, Node]> {
  const a = await startNode({ swarmKey, name: 'a' })
  const b = await startNode({ swarmKey, name: 'b', peers: [addressOf(a)] })
  // A plain host:port: the peer id is learnt by dialling.
  const c = await startNode({ swarmKey, name: 'c', peers: [`127.0.0.1:${portOf(a)}`, addressOf(b)] })
  await waitFor(() => connectedAll([a, b, c]), 10_000, 'a, b and c to connect')
  return [a, b, c]
}

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)
const bytes = (value: string): Uint8Array => new TextEncoder().encode(value)

describe('Libp2pTransport', () => {
  it('connects three nodes in a private network; gossip and requests flow both ways', async () => {
    const [a, b, c] = await startTrio(generateSwarmKey())
    await allGossip([a, b, c], 10_000)
    for (const node of [a, b, c]) {
      expect(node.received.every((message) => message.from !== node.transport.peerId)).toBe(true)
      const others = [a, b, c].filter((other) => other !== node).map((other) => `+${other.transport.peerId}`)
      expect([...node.events].sort()).toEqual(others.sort())
    }
    await expect(a.transport.publish(TOPIC, new Uint8Array(1024 * 1024 + 1))).rejects.toThrow(/exceeds maxMessageBytes/)
    await expect(a.transport.publish('weft/unknown', bytes('x'))).rejects.toThrow(/not in the transport's topics/)
    expect(() => a.transport.subscribe('weft/unknown')).toThrow(/not in the transport's topics/)
    // Nobody subscribes to this topic: not an error.
    await a.transport.publish('weft/other', bytes('x'))

    expect(text(await a.transport.request(c.transport.peerId, ECHO, bytes('ping')))).toBe(`${a.transport.peerId}:ping`)
    expect(text(await c.transport.request(a.transport.peerId, ECHO, bytes('pong')))).toBe(`${c.transport.peerId}:pong`)

    const failed = await b.transport.request(a.transport.peerId, FAIL, bytes('x')).catch((err: unknown) => err)
    expect(failed).toBeInstanceOf(TransportRequestError)
    expect((failed as TransportRequestError).code).toBe('remote-error')
    expect((failed as Error).message).toContain('handler exploded')
    expect(text(await b.transport.request(a.transport.peerId, ECHO, bytes('still')))).toBe(`${b.transport.peerId}:still`)

    const began = Date.now()
    const timedOut = await b.transport.request(c.transport.peerId, HANG, bytes('x'), { timeoutMs: 300 }).catch((err: unknown) => err)
    expect((timedOut as TransportRequestError).code).toBe('timeout')
    expect(Date.now() - began).toBeLessThan(3_000)
    expect(text(await b.transport.request(c.transport.peerId, ECHO, bytes('after')))).toBe(`${b.transport.peerId}:after`)

    const info = a.transport.connections().find((connection) => connection.peer === c.transport.peerId)
    expect(info?.address).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
    expect(info?.openedAt).toBeGreaterThan(0)
    await waitFor(() => a.transport.connections().some((connection) => connection.rttMs !== undefined), 5_000, 'an rtt')
  })

  it('keeps out a node with a different swarm key', async () => {
    const swarmKey = generateSwarmKey()
    const a = await startNode({ swarmKey, name: 'a' })
    const b = await startNode({ swarmKey, name: 'b', peers: [addressOf(a)] })
    await gossipReaches(a, b, 10_000)
    const stranger = await startNode({ swarmKey: generateSwarmKey(), name: 'stranger', peers: [addressOf(a), addressOf(b)] })

    const until = Date.now() + 3_000
    while (Date.now() < until) {
      await a.transport.publish(TOPIC, bytes('secret'))
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    expect(stranger.transport.connectedPeers()).toEqual([])
    expect(a.transport.connectedPeers()).not.toContain(stranger.transport.peerId)
    expect(stranger.received).toEqual([])
    await expect(stranger.transport.request(a.transport.peerId, ECHO, bytes('x'), { timeoutMs: 2_000 })).rejects.toBeInstanceOf(TransportRequestError)
  })

  it('keeps its identity across a restart and gossips again afterwards', async () => {
    const swarmKey = generateSwarmKey()
    const dir = await tempDir()
    const identity = await loadOrCreateIdentity(dir)
    expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600)

    const a = await startNode({ swarmKey, name: 'a' })
    const b = await startNode({ swarmKey, name: 'b', privateKey: identity, peers: [addressOf(a)] })
    await allGossip([a, b], 10_000)
    const port = portOf(b)
    await b.transport.stop()

    const again = await startNode({
      swarmKey,
      name: 'b again',
      privateKey: await loadOrCreateIdentity(dir),
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
      peers: [addressOf(a)],
    })
    expect(again.transport.peerId).toBe(b.transport.peerId)
    await allGossip([a, again], 15_000)
  })

  it('recovers gossip with a peer that came back while its old connection was still open', async () => {
    const swarmKey = generateSwarmKey()
    const [a, b, c] = await startTrio(swarmKey)
    await allGossip([a, b, c], 10_000)

    // The same identity on a new port reconnects before the old process goes away,
    // like a container restarted with a new IP: a and b see two connections to "c".
    const cAgain = await startNode({ swarmKey, name: 'c again', privateKey: identityOf(c), peers: [addressOf(a), addressOf(b)] })
    await waitFor(() => connectedAll([a, b, cAgain]), 10_000, 'the new c to connect')
    await c.transport.stop()

    await allGossip([a, b, cAgain], 15_000)
  })
})
