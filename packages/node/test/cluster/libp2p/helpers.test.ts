// The libp2p-free parts: peer address parsing, swarm key files, identity files,
// the keep-connected loop and the gossip watchdog, on a fake clock.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { silentLogger } from '../../../src/Logger.ts'
import { GossipWatchdog } from '../../../src/cluster/libp2p/GossipWatchdog.ts'
import { loadOrCreateIdentity, peerIdOf } from '../../../src/cluster/libp2p/identity.ts'
import { KeepConnected, type KeepConnectedDeps } from '../../../src/cluster/libp2p/KeepConnected.ts'
import { parsePeerAddress } from '../../../src/cluster/libp2p/peerAddress.ts'
import { generateSwarmKey, parseSwarmKey, readSwarmKey } from '../../../src/cluster/libp2p/swarmKey.ts'

const ID = '12D3KooWBiUr2B1HHvzS3Lpjf63i3X3BLmqhCHuyQXiU5h6hdH23'
const OTHER_ID = '12D3KooWABARXJNbhghdejapBiEpNG7FvSkuo7TxwChuux9ATuSf'
const directories: string[] = []

afterEach(async () => {
  await Promise.allSettled(directories.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-libp2p-unit-'))
  directories.push(dir)
  return dir
}

describe('parsePeerAddress', () => {
  it('splits the peer id off a multiaddr and flags DNS names', () => {
    expect(parsePeerAddress(`/ip4/10.0.0.1/tcp/7400/p2p/${ID}`)).toEqual({ address: '/ip4/10.0.0.1/tcp/7400', peerId: ID, dns: false })
    expect(parsePeerAddress(`/dns4/node-a/tcp/7400/p2p/${ID}`)).toEqual({ address: '/dns4/node-a/tcp/7400', peerId: ID, dns: true })
    expect(parsePeerAddress('/dns4/node-a/tcp/7400')).toEqual({ address: '/dns4/node-a/tcp/7400', dns: true })
  })

  it('turns host:port into a multiaddr without a peer id', () => {
    expect(parsePeerAddress('10.0.0.1:7400')).toEqual({ address: '/ip4/10.0.0.1/tcp/7400', dns: false })
    expect(parsePeerAddress('[::1]:7400')).toEqual({ address: '/ip6/::1/tcp/7400', dns: false })
    expect(parsePeerAddress('node-a:7400')).toEqual({ address: '/dns4/node-a/tcp/7400', dns: true })
  })

  it('rejects what it cannot dial, saying why', () => {
    expect(() => parsePeerAddress('node-a')).toThrow(/neither a multiaddr nor host:port/)
    expect(() => parsePeerAddress('node-a:70000')).toThrow(/invalid port/)
    expect(() => parsePeerAddress('/ip4/10.0.0.1/udp/7400')).toThrow(/not a TCP address/)
    expect(() => parsePeerAddress('/ip4/nonsense')).toThrow(/not a valid multiaddr/)
    expect(() => parsePeerAddress('/ip4/10.0.0.1/tcp/7400/p2p/nonsense')).toThrow(/invalid \/p2p\/ peer id/)
  })
})

describe('swarm key', () => {
  it('generates keys in the pnet file format that parse back unchanged', () => {
    const key = generateSwarmKey()
    expect(new TextDecoder().decode(key)).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    expect(parseSwarmKey(key)).toEqual(key)
    expect(generateSwarmKey()).not.toEqual(key)
  })

  it('explains a broken or missing key file', async () => {
    const dir = await tempDir()
    await expect(readSwarmKey(join(dir, 'missing.key'))).rejects.toThrow(/cannot read swarm key file .*missing\.key/)
    const path = join(dir, 'swarm.key')
    await writeFile(path, '/key/swarm/psk/1.0.0/\n/base16/\nabc\n')
    await expect(readSwarmKey(path)).rejects.toThrow(/swarm\.key is not a valid swarm key: third line must be 64 hex digits/)
    expect(() => parseSwarmKey(new TextEncoder().encode('hello'))).toThrow(/first line/)
  })
})

describe('loadOrCreateIdentity', () => {
  it('creates the key once and loads the same peer afterwards', async () => {
    const dir = join(await tempDir(), 'nested')
    const first = await loadOrCreateIdentity(dir)
    expect(first.type).toBe('Ed25519')
    expect(peerIdOf(await loadOrCreateIdentity(dir))).toBe(peerIdOf(first))
  })

  it('refuses a file that is not a key instead of replacing it', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'identity.key'), 'not a key')
    await expect(loadOrCreateIdentity(dir)).rejects.toThrow(/is not a libp2p private key/)
  })
})

function fakeNetwork(selfId: string) {
  const state = { now: 0, connected: new Set<string>(), dials: [] as string[], failing: new Set<string>(), addressIds: new Map<string, string>() }
  const deps: KeepConnectedDeps = {
    selfId,
    isConnected: (peerId) => state.connected.has(peerId),
    dialAddress: async (address, peerId) => {
      state.dials.push(peerId === undefined ? address : `${address}/p2p/${peerId}`)
      const remote = state.addressIds.get(address)
      if (remote === undefined || state.failing.has(address)) throw new Error('connection refused')
      state.connected.add(remote)
      return remote
    },
    dialPeer: async (peerId) => {
      state.dials.push(peerId)
      if (state.failing.has(peerId)) throw new Error('connection refused')
      state.connected.add(peerId)
    },
    now: () => state.now,
    logger: silentLogger,
  }
  return { state, deps }
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('KeepConnected', () => {
  it('dials an unknown host:port, learns its id, and backs off up to the maximum while it is down', async () => {
    const { state, deps } = fakeNetwork('m')
    state.addressIds.set('/ip4/10.0.0.2/tcp/1', 'z')
    const loop = new KeepConnected([parsePeerAddress('10.0.0.2:1')], deps, { maxBackoffMs: 10_000 })
    loop.tick()
    await settle()
    expect(state.dials).toEqual(['/ip4/10.0.0.2/tcp/1'])
    expect(state.connected.has('z')).toBe(true)

    state.connected.delete('z')
    state.failing.add('/ip4/10.0.0.2/tcp/1')
    const times: number[] = []
    for (state.now = 1_000; state.now <= 60_000; state.now += 1_000) {
      const before = state.dials.length
      loop.tick()
      await settle()
      if (state.dials.length > before) times.push(state.now)
    }
    expect(state.dials.at(1)).toBe('/ip4/10.0.0.2/tcp/1/p2p/z')
    const gaps = times.slice(1).map((time, i) => time - times[i]!)
    expect(gaps.slice(0, 4)).toEqual([1_000, 2_000, 4_000, 8_000])
    expect(Math.max(...gaps)).toBe(10_000)
    loop.stop()
  })

  it('dials a configured peer it never reached at once, whatever the ids', async () => {
    const [small, large] = [ID, OTHER_ID].sort() as [string, string]
    const larger = fakeNetwork(large)
    larger.state.addressIds.set('/ip4/10.0.0.1/tcp/1', small)
    const loop = new KeepConnected([parsePeerAddress(`/ip4/10.0.0.1/tcp/1/p2p/${small}`)], larger.deps, { yieldMs: 3_000 })
    loop.tick()
    await settle()
    expect(larger.state.dials).toEqual([`/ip4/10.0.0.1/tcp/1/p2p/${small}`])
    loop.stop()
  })

  it('after a lost connection lets the smaller peer id dial first, the larger one only after the yield time', async () => {
    const [small, large] = [ID, OTHER_ID].sort() as [string, string]
    const larger = fakeNetwork(large)
    larger.state.addressIds.set('/ip4/10.0.0.1/tcp/1', small)
    const loop = new KeepConnected([parsePeerAddress(`/ip4/10.0.0.1/tcp/1/p2p/${small}`)], larger.deps, { yieldMs: 3_000 })
    larger.state.connected.add(small)
    loop.tick()
    larger.state.connected.delete(small)
    for (larger.state.now = 0; larger.state.now < 3_000; larger.state.now += 1_000) loop.tick()
    await settle()
    expect(larger.state.dials).toEqual([])
    larger.state.now = 3_000
    loop.tick()
    await settle()
    expect(larger.state.dials).toEqual([`/ip4/10.0.0.1/tcp/1/p2p/${small}`])
  })

  it('re-dials a peer whose connection dropped, for a while', async () => {
    const { state, deps } = fakeNetwork('a')
    const loop = new KeepConnected([], deps, { rememberDroppedMs: 5_000 })
    loop.peerDisconnected('b')
    loop.tick()
    await settle()
    expect(state.dials).toEqual(['b'])
    state.connected.delete('b')
    state.failing.add('b')
    loop.peerDisconnected('b')
    for (state.now = 0; state.now <= 20_000; state.now += 1_000) {
      loop.tick()
      await settle()
    }
    expect(state.dials.length).toBeLessThan(8)
  })

  it('keeps a peer learnt of from the cluster connected while it is heard of, then forgets it', async () => {
    const { state, deps } = fakeNetwork('a')
    const loop = new KeepConnected([], deps, { rememberDroppedMs: 5_000, minBackoffMs: 1_000, maxBackoffMs: 1_000 })
    loop.learn('b')
    loop.learn('a') // itself: ignored
    loop.tick()
    await settle()
    expect(state.dials).toEqual(['b'])
    // Connected: no dials. Then b goes away but is still heard of (heartbeats relayed by others).
    state.now = 1_000
    loop.tick()
    state.connected.delete('b')
    state.failing.add('b')
    for (state.now = 2_000; state.now <= 12_000; state.now += 1_000) {
      loop.learn('b')
      loop.tick()
      await settle()
    }
    const whileHeard = state.dials.length
    expect(whileHeard).toBeGreaterThan(5)
    // No longer heard of: dials stop once it is forgotten.
    for (state.now = 13_000; state.now <= 30_000; state.now += 1_000) {
      loop.tick()
      await settle()
    }
    expect(state.dials.length).toBeLessThan(whileHeard + 7)
    const afterForget = state.dials.length
    for (state.now = 31_000; state.now <= 40_000; state.now += 1_000) {
      loop.tick()
      await settle()
    }
    expect(state.dials.length).toBe(afterForget)
  })

  it('lets the smaller id dial a learnt peer first', async () => {
    const [small, large] = [ID, OTHER_ID].sort() as [string, string]
    const larger = fakeNetwork(large)
    const loop = new KeepConnected([], larger.deps, { yieldMs: 3_000 })
    loop.learn(small)
    for (larger.state.now = 0; larger.state.now < 3_000; larger.state.now += 1_000) {
      loop.tick()
      await settle()
    }
    expect(larger.state.dials).toEqual([])
    larger.state.now = 3_000
    loop.tick()
    await settle()
    expect(larger.state.dials).toEqual([small])
  })
})

describe('GossipWatchdog', () => {
  function watched() {
    const state = { now: 0, open: new Map<string, string[]>(), subscribers: [] as string[], hungUp: [] as string[] }
    const watchdog = new GossipWatchdog({
      openConnections: (peer) => state.open.get(peer) ?? [],
      subscribedTopics: () => ['t'],
      subscribers: () => state.subscribers,
      speaksGossip: () => true,
      hangUp: (peer) => state.hungUp.push(peer),
      now: () => state.now,
      logger: silentLogger,
    }, 10_000)
    return { state, watchdog }
  }

  it('hangs up a peer that lost a connection while another stayed open', () => {
    const { state, watchdog } = watched()
    watchdog.peerConnected('b')
    state.subscribers = ['b']
    state.open.set('b', ['new'])
    watchdog.connectionClosed('b')
    state.now = 1_000
    watchdog.tick()
    expect(state.hungUp).toEqual(['b'])
  })

  it('does not count a connection the peer opened after the close (its redial after our hang-up)', () => {
    const { state, watchdog } = watched()
    watchdog.peerConnected('b')
    state.subscribers = ['b']
    state.open.set('b', ['c1'])
    watchdog.connectionClosed('b')
    state.now = 1_000
    watchdog.tick()
    expect(state.hungUp).toEqual(['b'])
    // Our hang-up closes c1 (no other connection open then); the peer dials back before the next tick.
    state.open.set('b', [])
    watchdog.connectionClosed('b')
    state.open.set('b', ['c2'])
    for (state.now = 2_000; state.now <= 5_000; state.now += 1_000) watchdog.tick()
    expect(state.hungUp).toEqual(['b'])
    // A later close while c2 stays open is news again.
    state.now = 10_000
    watchdog.connectionClosed('b')
    state.now = 11_000
    watchdog.tick()
    expect(state.hungUp).toEqual(['b', 'b'])
  })

  it('leaves alone a peer whose connections all closed (a clean shutdown)', () => {
    const { state, watchdog } = watched()
    watchdog.connectionClosed('b')
    state.now = 1_000
    watchdog.tick()
    expect(state.hungUp).toEqual([])
  })

  it('hangs up a connected peer that has not been a subscriber for the grace time', () => {
    const { state, watchdog } = watched()
    watchdog.peerConnected('b')
    watchdog.peerConnected('c')
    state.subscribers = ['c']
    for (state.now = 0; state.now <= 9_000; state.now += 1_000) watchdog.tick()
    expect(state.hungUp).toEqual([])
    state.now = 10_000
    watchdog.tick()
    expect(state.hungUp).toEqual(['b'])
    state.now = 11_000
    watchdog.tick()
    expect(state.hungUp).toEqual(['b'])
  })
})
