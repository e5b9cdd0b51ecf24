import { describe, expect, it } from 'vitest'
import { ErrorCode, WeftError } from '@weft/core'
import { Router } from '../src/Router.ts'
import { FakeClock, FakeDirectory, FakeNode, unavailable } from './fakes.ts'

function setup(n = 3, options: { random?: () => number } = {}) {
  const nodes = Array.from({ length: n }, (_, i) => new FakeNode(`peer-${i + 1}`))
  const directory = new FakeDirectory(nodes)
  const clock = new FakeClock()
  let ids = 0
  const router = new Router({
    nodes: directory,
    now: clock.now,
    sleep: clock.sleep,
    random: options.random ?? (() => 0.5),
    newRequestId: () => `rid-${++ids}`,
    backoff: { baseMs: 50, maxMs: 1000 },
    attemptTimeoutMs: 2000,
  })
  const byId = (peerId: string) => nodes.find((node) => node.peerId === peerId)!
  const deadline = (ms = 10_000) => ({ deadline: clock.time + ms })
  return { nodes, directory, clock, router, byId, deadline }
}

describe('routing', () => {
  it('sends every request for a key to the same node, and keys to different nodes', async () => {
    const { router, nodes, deadline, byId } = setup()
    for (let i = 0; i < 5; i++) await router.request('get', { key: 'deployments/api' }, deadline())
    const owner = byId(router.ownerOf('deployments/api')!)
    expect(owner.calls).toHaveLength(5)
    for (let i = 0; i < 300; i++) await router.request('get', { key: `k${i}` }, deadline())
    for (const node of nodes) expect(node.calls.length).toBeGreaterThan(50)
  })

  it('routes prefix ops by their prefix and keyless ops to any node in turn', async () => {
    const { router, nodes, deadline, byId } = setup()
    await router.request('keys', { prefix: 'apps/' }, deadline())
    await router.request('fork', { prefix: 'apps/', to: 'staging' }, deadline())
    expect(byId(router.ownerOf('apps/')!).calls.map((c) => c.op)).toEqual(['keys', 'fork'])
    for (const node of nodes) node.calls.length = 0
    for (let i = 0; i < 6; i++) await router.request('members', {}, deadline())
    expect(nodes.map((n) => n.calls.length)).toEqual([2, 2, 2])
  })

  it('moves a key to the next node on the ring when its node leaves, and back when it returns', async () => {
    const { router, directory, nodes, deadline } = setup()
    const owner = router.ownerOf('k')!
    const gone = nodes.find((n) => n.peerId === owner)!
    directory.remove(gone)
    const next = router.ownerOf('k')
    expect(next).not.toBe(owner)
    await router.request('get', { key: 'k' }, deadline())
    expect(nodes.find((n) => n.peerId === next)!.calls).toHaveLength(1)
    directory.set(nodes)
    expect(router.ownerOf('k')).toBe(owner)
  })
})

describe('retries', () => {
  it('fails over to the next node on the ring after a jittered wait', async () => {
    const { router, nodes, clock, deadline, byId, directory } = setup(3, { random: () => 0.999 })
    const owner = byId(router.ownerOf('k')!)
    owner.answer = () => { throw unavailable() }
    // Where the key goes once its owner is gone: the next node on the ring.
    directory.remove(owner)
    const next = byId(router.ownerOf('k')!)
    directory.set(nodes)
    expect(await router.request('get', { key: 'k' }, deadline())).toMatchObject({ node: next.peerId })
    expect(owner.calls).toHaveLength(1)
    expect(next.calls).toHaveLength(1)
    expect(clock.waits).toEqual([49])
  })

  it('waits longer after each failure: full jitter under a doubling cap', async () => {
    const { router, nodes, clock, deadline } = setup(3, { random: () => 0.999 })
    let calls = 0
    for (const node of nodes) node.answer = () => {
      if (++calls < 6) throw new WeftError(ErrorCode.TIMEOUT, 'slow')
      return 'value'
    }
    expect(await router.request('get', { key: 'k' }, deadline())).toBe('value')
    expect(clock.waits).toEqual([49, 99, 199, 399, 799])
  })

  it('tries each node at most once per round, owner first, then starts over', async () => {
    const { router, nodes, deadline } = setup()
    const sequence: string[] = []
    for (const node of nodes) node.answer = () => {
      sequence.push(node.peerId)
      throw unavailable()
    }
    await expect(router.request('get', { key: 'k' }, deadline(5000))).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    expect(sequence[0]).toBe(router.ownerOf('k'))
    expect(new Set(sequence.slice(0, 3)).size).toBe(3)
    expect(sequence[3]).toBe(sequence[0])
  })

  it('never retries errors about the request itself', async () => {
    for (const code of [ErrorCode.KEY_NOT_FOUND, ErrorCode.HEAD_MISMATCH, ErrorCode.INVALID_VALUE, ErrorCode.MERGE_CONFLICT, ErrorCode.FORK_EXISTS, ErrorCode.INVALID_ARGUMENT]) {
      const { router, nodes, clock, deadline } = setup()
      for (const node of nodes) node.answer = () => { throw new WeftError(code, 'no', { head: 'h1' }) }
      const error = await router.request('set', { key: 'k', value: 1, ifHead: 'h0' }, deadline()).catch((err: unknown) => err)
      expect(error).toBeInstanceOf(WeftError)
      expect(error).toMatchObject({ code, details: { head: 'h1' } })
      expect(nodes.reduce((sum, n) => sum + n.calls.length, 0)).toBe(1)
      expect(clock.waits).toEqual([])
    }
  })

  it('gives every write a requestId and sends the same one on every retry', async () => {
    const { router, nodes, deadline } = setup()
    let failures = 0
    for (const node of nodes) node.answer = (op, params) => {
      if (failures++ < 2) throw unavailable()
      return { requestId: params.requestId }
    }
    await router.request('set', { key: 'k', value: 1 }, deadline())
    const sent = nodes.flatMap((n) => n.calls.map((c) => c.params.requestId))
    expect(sent).toEqual(['rid-1', 'rid-1', 'rid-1'])
    await router.request('delete', { key: 'k', requestId: 'client-chose' }, deadline())
    expect(nodes.flatMap((n) => n.calls.map((c) => c.params.requestId))).toContain('client-chose')
    await router.request('get', { key: 'k' }, deadline())
    expect(nodes.flatMap((n) => n.calls).find((c) => c.op === 'get')!.params).not.toHaveProperty('requestId')
  })

  it('waits at least 100 ms before retrying a write, so the first node\'s gossip can land', async () => {
    const { router, nodes, clock, deadline } = setup(3, { random: () => 0 })
    let failures = 0
    for (const node of nodes) node.answer = () => {
      if (failures++ < 2) throw unavailable()
      return 'ok'
    }
    await router.request('set', { key: 'k', value: 1 }, deadline())
    expect(clock.waits).toEqual([100, 100])
    clock.waits.length = 0
    failures = 0
    await router.request('get', { key: 'k' }, deadline())
    expect(clock.waits).toEqual([0, 0])
  })

  it('gives up at the deadline: never sleeps past it, answers the last retryable error', async () => {
    const { router, nodes, clock, deadline } = setup(2, { random: () => 0.999 })
    for (const node of nodes) node.answer = () => { throw new WeftError(ErrorCode.TIMEOUT, 'no answer') }
    const start = clock.time
    const error = await router.request('get', { key: 'k' }, deadline(3000)).catch((err: unknown) => err)
    expect(error).toMatchObject({ code: 'TIMEOUT' })
    expect((error as Error).message).toMatch(/gave up after \d+ attempt/)
    expect(clock.time - start).toBeLessThan(3000)
    // Each attempt's own timeout is cut to what is left of the deadline.
    for (const call of nodes.flatMap((n) => n.calls)) expect(call.timeoutMs).toBeLessThanOrEqual(2000)
  })

  it('answers UNAVAILABLE when no node is connected until the deadline', async () => {
    const { router, directory, clock, deadline } = setup()
    directory.set([])
    const start = clock.time
    await expect(router.request('get', { key: 'k' }, deadline(2000))).rejects.toMatchObject({ code: 'UNAVAILABLE', message: 'no node is reachable' })
    expect(clock.time - start).toBeLessThanOrEqual(2000)
    expect(clock.waits.length).toBeGreaterThan(3)
  })

  it('uses a node that connects while the request waits', async () => {
    const nodes = [new FakeNode('peer-1')]
    const directory = new FakeDirectory([])
    const clock = new FakeClock()
    const router = new Router({
      nodes: directory,
      now: clock.now,
      sleep: async (ms) => {
        await clock.sleep(ms)
        if (clock.waits.length === 3) directory.set(nodes)
      },
    })
    expect(await router.request('get', { key: 'k' }, { deadline: clock.time + 5000 })).toMatchObject({ node: 'peer-1' })
    expect(clock.waits).toHaveLength(3)
  })
})
