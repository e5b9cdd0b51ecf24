// `weft members` and `weft status`: every member field an operator needs, and a
// convergence lag computed from the members' feed seqs and heartbeat ages.
import { afterEach, describe, expect, it } from 'vitest'
import type { MemberInfo } from '@weft/client'
import { FakeServer } from '../../client/test/FakeServer.ts'
import type { CliIo } from '../src/Context.ts'
import { convergenceOf, lagOf } from '../src/convergenceOf.ts'
import { run } from '../src/run.ts'

let server: FakeServer | undefined

afterEach(async () => {
  await server?.stop()
  server = undefined
})

async function weft(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const io: CliIo = {
    env: {},
    stdout: { write: (data) => (stdout += String(data)), isTTY: false },
    stderr: { write: (data) => (stderr += String(data)), isTTY: false },
    readStdin: async () => new Uint8Array(),
    readFile: async () => new Uint8Array(),
  }
  const code = await run(args, io)
  return { code, stdout, stderr }
}

const PEER = { a: '12D3KooWAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', b: '12D3KooWBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', c: '12D3KooWCccccccccccccccccccccccccccccccccccccccccccc' }

function member(name: 'a' | 'b' | 'c', over: Partial<MemberInfo>, now: number): MemberInfo {
  const peerId = PEER[name]
  return {
    peerId,
    name: `node-${name}`,
    addresses: [`/ip4/10.0.0.${name.charCodeAt(0) - 96}/tcp/7400/p2p/${peerId}`],
    api: `ws://10.0.0.${name.charCodeAt(0) - 96}:7410/v1/ws`,
    state: 'alive',
    lastSeen: now - 400,
    version: '0.1.0',
    startedAt: now - 3_600_000,
    uptimeMs: 3_600_000,
    keys: 12,
    load: 0.25,
    feedSeq: 40,
    connected: true,
    self: false,
    ...over,
  }
}

function cluster(now: number): MemberInfo[] {
  return [
    member('a', { self: true, lastSeen: now }, now),
    member('b', { feedSeq: 37, lastSeen: now - 2500, addresses: [`/ip4/10.0.0.2/tcp/7400/p2p/${PEER.b}`, `/ip4/192.168.1.2/tcp/7400/p2p/${PEER.b}`] }, now),
    member('c', { state: 'dead', feedSeq: 3, lastSeen: now - 60_000, uptimeMs: 100_000 }, now),
  ]
}

describe('convergenceOf', () => {
  it('measures how many revisions each alive member lacks, as of the oldest heartbeat', () => {
    const now = Date.now()
    const c = convergenceOf(cluster(now), now)!
    expect(c).toMatchObject({ min: 37, max: 40, spread: 3, behind: [{ name: 'node-b', peerId: PEER.b, revisions: 3 }] })
    expect(c.asOfMs).toBe(2500)
    const list = cluster(now)
    expect(list.map((m) => lagOf(m, c))).toEqual([0, 3, undefined])
  })

  it('is converged when the alive members hold the same revisions, and undefined with none alive', () => {
    const now = Date.now()
    expect(convergenceOf([member('a', { self: true }, now), member('b', {}, now)], now)).toMatchObject({ spread: 0, behind: [] })
    expect(convergenceOf([member('c', { state: 'dead' }, now)], now)).toBeUndefined()
  })
})

describe('weft members', () => {
  it('shows every member: name, state, last seen, uptime, version, keys, feed, lag, load, peer id, API, addresses', async () => {
    server = await FakeServer.start()
    server.handlers.members = () => ({ result: { node: PEER.a, members: cluster(Date.now()) } })
    const { code, stdout } = await weft(['members', '--url', server.url])
    expect(code).toBe(0)
    const [states, ids] = stdout.split('\n\n') as [string, string]
    expect(states.split('\n')[0]).toMatch(/^NAME +STATE +LAST SEEN +UPTIME +VERSION +KEYS +FEED +LAG +LOAD$/)
    expect(states).toMatch(/node-a \* +alive +self +1h +0\.1\.0 +12 +40 +0 +0\.25/)
    expect(states).toMatch(/node-b +alive +2s ago +1h +0\.1\.0 +12 +37 +3 +0\.25/)
    expect(states).toMatch(/node-c +dead +1m ago +1m40s +0\.1\.0 +12 +3 +- +0\.25/)
    expect(ids.split('\n')[0]).toMatch(/^NAME +PEER ID +API +ADDRESSES$/)
    expect(ids).toContain(`node-b    ${PEER.b}  ws://10.0.0.2:7410/v1/ws  /ip4/10.0.0.2/tcp/7400\n`)
    // A second address on a line of its own; /p2p/<id> is left to the PEER ID column.
    expect(ids).toMatch(/\n +\/ip4\/192\.168\.1\.2\/tcp\/7400\n/)
    expect(ids).not.toContain('/p2p/')
  })

  it('prints the members as the server sent them with --json', async () => {
    server = await FakeServer.start()
    const members = cluster(Date.now())
    server.handlers.members = () => ({ result: { node: PEER.a, members } })
    const { code, stdout } = await weft(['members', '--json', '--url', server.url])
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toEqual({ node: PEER.a, members })
  })
})

describe('weft status', () => {
  it('sums up nodes, keys and the convergence lag, then lists the members', async () => {
    server = await FakeServer.start()
    server.handlers.ping = () => ({ result: { node: PEER.a, time: Date.now() } })
    server.handlers.members = () => ({ result: { node: PEER.a, members: cluster(Date.now()) } })
    const { code, stdout } = await weft(['status', '--url', server.url])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^cluster +3 nodes: 2 alive, 0 suspect, 1 dead\n/)
    expect(stdout).toMatch(/\nanswering +node-a at ws:\/\/127\.0\.0\.1:\d+\/v1\/ws \([\d.]+ ms round trip\)\n/)
    expect(stdout).toMatch(/\nkeys +12\n/)
    expect(stdout).toMatch(/\nconvergence lag 3 revisions: behind node-b by 3 \(most: 40 revisions, as of 2s ago\)\n/)
    expect(stdout).toContain('PEER ID')
  })

  it('says converged when the alive nodes agree, and gives the figures with --json', async () => {
    server = await FakeServer.start()
    const now = Date.now()
    const members = [member('a', { self: true }, now), member('b', {}, now)]
    server.handlers.ping = () => ({ result: { node: PEER.a, time: Date.now() } })
    server.handlers.members = () => ({ result: { node: PEER.a, members } })
    const human = await weft(['status', '--url', server.url])
    expect(human.stdout).toMatch(/\nconvergence converged: every alive node holds 40 revisions \(as of now\)\n/)
    const json = await weft(['status', '--json', '--url', server.url])
    expect(JSON.parse(json.stdout)).toMatchObject({
      node: PEER.a,
      nodes: { total: 2, alive: 2, suspect: 0, dead: 0 },
      keys: { min: 12, max: 12 },
      convergence: { min: 40, max: 40, spread: 0, behind: [] },
      members,
    })
  })
})
