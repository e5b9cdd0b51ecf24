// Watches through the router: failover to another node without gaps or
// duplicates, exact resume on the same node, resume from a gateway cursor.
import { describe, expect, it } from 'vitest'
import { ErrorCode, WeftError } from '@weft/core'
import { parseGatewayCursor } from '../src/GatewayCursor.ts'
import { GatewayMetrics } from '../src/GatewayMetrics.ts'
import { Router } from '../src/Router.ts'
import { FakeClock, FakeDirectory, FakeNode, unavailable } from './fakes.ts'

const flush = () => new Promise((resolve) => setImmediate(resolve))

function setup() {
  const nodes = [new FakeNode('peer-1'), new FakeNode('peer-2'), new FakeNode('peer-3')]
  const directory = new FakeDirectory(nodes)
  const clock = new FakeClock()
  const metrics = new GatewayMetrics()
  const router = new Router({ nodes: directory, now: clock.now, sleep: clock.sleep, random: () => 0.5, metrics, watch: { failoverTimeoutMs: 5000 } })
  const events: Record<string, unknown>[] = []
  const ended: WeftError[] = []
  const callbacks = { onEvent: (e: Record<string, unknown>) => events.push(e), onEnd: (e: WeftError) => ended.push(e) }
  const byId = (peerId: string) => nodes.find((n) => n.peerId === peerId)!
  return { nodes, directory, clock, router, events, ended, callbacks, byId, metrics }
}

/** An event as node `node` would send it for revision `rev` at feed position `seq`. */
function event(node: FakeNode, seq: number, rev: string, ts: number): Record<string, unknown> {
  return { cursor: `${node.peerId}-epoch:${seq}`, key: `app/${rev}`, fork: 'main', revision: { id: rev, ts, index: 1, node: 'n', kind: 'set' }, value: rev, deleted: false }
}

describe('a watch through the gateway', () => {
  it('opens on the node that owns its key or prefix, with gateway cursors', async () => {
    const { router, callbacks, byId, events, clock } = setup()
    const handle = await router.watch({ prefix: 'app/' }, callbacks, { deadline: clock.time + 5000 })
    const owner = byId(router.ownerOf('app/')!)
    expect(owner.lastWatch().params).toEqual({ prefix: 'app/' })
    expect(parseGatewayCursor(handle.cursor!)).toEqual({ node: { epoch: `${owner.peerId}-epoch`, seq: 0 }, since: clock.time })
    owner.lastWatch().emit(event(owner, 1, 'r1', clock.time - 5))
    expect(events).toHaveLength(1)
    expect(parseGatewayCursor(events[0]!.cursor as string)).toEqual({ node: { epoch: `${owner.peerId}-epoch`, seq: 1 }, since: clock.time })
    expect(events[0]).toMatchObject({ key: 'app/r1', revision: { id: 'r1' }, value: 'r1', deleted: false })
    handle.close()
    expect(owner.lastWatch().closed).toBe(true)
  })

  it('fails over to another node when its node dies: resumes by time, drops what it already delivered', async () => {
    const { router, callbacks, byId, events, clock, directory, ended, metrics } = setup()
    await router.watch({ prefix: 'app/' }, callbacks, { deadline: clock.time + 5000 })
    const first = byId(router.ownerOf('app/')!)
    clock.time += 500
    first.lastWatch().emit(event(first, 11, 'r1', clock.time - 20))
    first.lastWatch().emit(event(first, 12, 'r2', clock.time - 10))
    clock.time += 1000
    directory.remove(first)
    first.lastWatch().end(unavailable())
    await flush()
    const second = byId(router.ownerOf('app/')!)
    // The newest revision delivered was made at t-10 (before it arrived): resume from there.
    expect(second.lastWatch().params).toEqual({ prefix: 'app/', since: clock.time - 1010 })
    // The new node replays from before that (its margin): r1 and r2 again, then what was missed, then live.
    for (const [seq, rev] of [[3, 'r1'], [4, 'r2'], [5, 'r3'], [6, 'r4']] as const) second.lastWatch().emit(event(second, seq, rev, clock.time - 5))
    expect(events.map((e) => (e.revision as { id: string }).id)).toEqual(['r1', 'r2', 'r3', 'r4'])
    expect(parseGatewayCursor(events.at(-1)!.cursor as string)!.node).toEqual({ epoch: `${second.peerId}-epoch`, seq: 6 })
    expect(ended).toEqual([])
    expect(await metrics.registry.getSingleMetricAsString('weft_gateway_watch_duplicates_dropped_total')).toMatch(/ 2$/)
    expect(await metrics.registry.getSingleMetricAsString('weft_gateway_failovers_total')).toMatch(/kind="watch"} 1/)
  })

  it('resumes exactly from its cursor when its own node is still there', async () => {
    const { router, callbacks, byId, events, clock } = setup()
    await router.watch({ key: 'k' }, callbacks, { deadline: clock.time + 5000 })
    const node = byId(router.ownerOf('k')!)
    node.lastWatch().emit(event(node, 7, 'r1', clock.time))
    // The node ended the watch (e.g. its connection blinked) but is still connected.
    node.lastWatch().end(new WeftError(ErrorCode.CLOSED, 'server stopping'))
    await flush()
    expect(node.watches).toHaveLength(2)
    expect(node.lastWatch().params).toEqual({ key: 'k', after: `${node.peerId}-epoch:7` })
    node.lastWatch().emit(event(node, 8, 'r2', clock.time))
    expect(events.map((e) => (e.revision as { id: string }).id)).toEqual(['r1', 'r2'])
  })

  it('falls back to resuming by time when its node no longer knows the cursor', async () => {
    const { router, callbacks, byId, clock } = setup()
    await router.watch({ key: 'k' }, callbacks, { deadline: clock.time + 5000 })
    const node = byId(router.ownerOf('k')!)
    clock.time += 500
    node.lastWatch().emit(event(node, 7, 'r1', clock.time - 3))
    node.watchAnswer = (params) => {
      if (params.after !== undefined) throw new WeftError(ErrorCode.CURSOR_EXPIRED, 'another epoch')
      return 'new-epoch:0'
    }
    node.lastWatch().end(unavailable())
    await flush()
    expect(node.watches.slice(1).map((w) => w.params)).toEqual([{ key: 'k', after: `${node.peerId}-epoch:7` }, { key: 'k', since: clock.time - 3 }])
  })

  it('resumes from a gateway cursor a client gives back, on any node', async () => {
    const { router, callbacks, byId, clock, directory, nodes } = setup()
    const first = await router.watch({ key: 'k' }, callbacks, { deadline: clock.time + 5000 })
    const owner = byId(router.ownerOf('k')!)
    first.close()
    // Same node: exact.
    await router.watch({ key: 'k', after: first.cursor }, callbacks, { deadline: clock.time + 5000 })
    expect(owner.lastWatch().params).toEqual({ key: 'k', after: `${owner.peerId}-epoch:0` })
    // That node gone: by time, on the next.
    directory.set(nodes.filter((n) => n !== owner))
    await router.watch({ key: 'k', after: first.cursor }, callbacks, { deadline: clock.time + 5000 })
    const next = byId(router.ownerOf('k')!)
    expect(next.lastWatch().params).toEqual({ key: 'k', since: parseGatewayCursor(first.cursor!)!.since })
  })

  it('passes a node cursor through once, and its errors back to the client', async () => {
    const { router, callbacks, byId, clock } = setup()
    const owner = byId(router.ownerOf('k')!)
    owner.watchAnswer = () => {
      throw new WeftError(ErrorCode.CURSOR_EXPIRED, 'cursor is from another incarnation')
    }
    await expect(router.watch({ key: 'k', after: 'some-node-epoch:5' }, callbacks, { deadline: clock.time + 5000 })).rejects.toMatchObject({ code: 'CURSOR_EXPIRED' })
    expect(owner.lastWatch().params).toEqual({ key: 'k', after: 'some-node-epoch:5' })
    expect(router.watchCount).toBe(0)
  })

  it('ends the watch when no node takes it before the failover timeout', async () => {
    const { router, callbacks, byId, clock, directory, ended } = setup()
    await router.watch({ key: 'k' }, callbacks, { deadline: clock.time + 5000 })
    const node = byId(router.ownerOf('k')!)
    directory.set([])
    const start = clock.time
    node.lastWatch().end(unavailable())
    await flush()
    expect(ended).toHaveLength(1)
    expect(ended[0]).toMatchObject({ code: 'UNAVAILABLE' })
    expect(clock.time - start).toBeLessThanOrEqual(5000)
    expect(router.watchCount).toBe(0)
  })

  it('waits longer each time a node ends the watch again before any event came', async () => {
    const { router, callbacks, byId, clock, events } = setup()
    await router.watch({ key: 'k' }, callbacks, { deadline: clock.time + 5000 })
    const node = byId(router.ownerOf('k')!)
    for (let i = 0; i < 4; i++) {
      node.lastWatch().end(new WeftError(ErrorCode.INTERNAL, 'replay failed'))
      await flush()
    }
    expect(node.watches).toHaveLength(5)
    expect(clock.waits).toEqual([25, 50, 100])
    node.lastWatch().emit(event(node, 1, 'r1', clock.time))
    expect(events).toHaveLength(1)
    clock.waits.length = 0
    node.lastWatch().end(new WeftError(ErrorCode.INTERNAL, 'replay failed'))
    await flush()
    expect(clock.waits).toEqual([])
  })

  it('ends the watch on an error that another node would give too', async () => {
    const { router, callbacks, byId, clock, ended } = setup()
    await router.watch({ key: 'k' }, callbacks, { deadline: clock.time + 5000 })
    byId(router.ownerOf('k')!).lastWatch().end(new WeftError(ErrorCode.INVALID_KEY, 'bad key'))
    await flush()
    expect(ended.map((e) => e.code)).toEqual(['INVALID_KEY'])
  })

  it('keeps the newest revision time as its resume point, whatever order revisions come in', async () => {
    const { router, callbacks, byId, clock, directory, events } = setup()
    await router.watch({ prefix: '' }, callbacks, { deadline: clock.time + 5000 })
    const first = byId(router.ownerOf('')!)
    // A fresh watch resumes from when it was asked for, until newer revisions come.
    const asked = clock.time
    clock.time += 1000
    const now = clock.time
    first.lastWatch().emit(event(first, 1, 'fresh', now - 100))
    // A revision made long ago, replicated late (a healed partition): it does not move the resume point back.
    first.lastWatch().emit(event(first, 2, 'old', now - 600_000))
    expect(asked).toBeLessThan(now - 100)
    // A revision from a node whose clock runs ahead: capped at when it arrived.
    first.lastWatch().emit(event(first, 3, 'ahead', now + 50_000))
    expect(events.map((e) => parseGatewayCursor(e.cursor as string)!.since)).toEqual([now - 100, now - 100, now])
    directory.remove(first)
    first.lastWatch().end(unavailable())
    await flush()
    expect(byId(router.ownerOf('')!).lastWatch().params).toEqual({ prefix: '', since: now })
  })
})
