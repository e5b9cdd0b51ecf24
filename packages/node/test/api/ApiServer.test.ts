import { afterEach, describe, expect, it } from 'vitest'
import type { NodeId, RevisionInfo } from '@weft/core'
import { pack } from '@weft/protocol'
import { Registry } from 'prom-client'
import { ApiServer, type ApiLimits } from '../../src/api/ApiServer.ts'
import { MemoryStorage } from '../../src/storage/MemoryStorage.ts'
import type { StorageWrite } from '../../src/storage/StorageAdapter.ts'
import { VersionedStore } from '../../src/store/VersionedStore.ts'
import { TestClient } from './TestClient.ts'

const servers: ApiServer[] = []
const stores: VersionedStore[] = []
const clients: TestClient[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  await Promise.allSettled(servers.splice(0).map((s) => s.stop()))
  await Promise.allSettled(stores.splice(0).map((s) => s.close()))
})

/** Storage whose commits wait until released: keeps writes in flight on purpose. */
class GatedStorage extends MemoryStorage {
  #open = true
  #waiting: (() => void)[] = []

  hold(): void {
    this.#open = false
  }

  release(): void {
    this.#open = true
    for (const go of this.#waiting.splice(0)) go()
  }

  override async commit(writes: readonly StorageWrite[]): Promise<void> {
    if (!this.#open) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    return super.commit(writes)
  }
}

interface SetupOptions {
  readonly storage?: MemoryStorage
  readonly limits?: Partial<ApiLimits>
  readonly members?: () => unknown[]
  readonly registry?: Registry
  readonly watchReplayPage?: number
  readonly nodeId?: string
}

async function setup(options: SetupOptions = {}) {
  const store = new VersionedStore({ storage: options.storage ?? new MemoryStorage(), nodeId: (options.nodeId ?? 'n1') as NodeId })
  stores.push(store)
  const server = new ApiServer({
    store,
    host: '127.0.0.1',
    port: 0,
    members: options.members ?? (() => [{ node: 'n1', state: 'alive' }]),
    health: () => ({ cluster: 'test' }),
    ...(options.limits && { limits: options.limits }),
    ...(options.registry && { registry: options.registry }),
    ...(options.watchReplayPage !== undefined && { watchReplayPage: options.watchReplayPage }),
  })
  servers.push(server)
  const { port } = await server.start()
  const url = `ws://127.0.0.1:${port}/v1/ws`
  const connect = async (): Promise<TestClient> => {
    const client = await TestClient.connect(url)
    clients.push(client)
    return client
  }
  return { store, server, url, http: `http://127.0.0.1:${port}`, connect }
}

type Write = { key: string; fork: string; revision: RevisionInfo }

describe('ops', () => {
  it('answers every op with its result', async () => {
    const { connect } = await setup()
    const c = await connect()

    expect(await c.ok('ping')).toMatchObject({ node: 'n1', time: expect.any(Number) })
    expect(await c.ok('members')).toEqual({ node: 'n1', members: [{ node: 'n1', state: 'alive' }] })

    const first = await c.ok<Write>('set', { key: 'deployments/api', value: { image: 'api:1', replicas: 2 }, author: 'ana', message: 'first', ifHead: null })
    expect(first).toMatchObject({ key: 'deployments/api', fork: 'main', revision: { index: 1, kind: 'set', node: 'n1', author: 'ana', message: 'first' } })
    const second = await c.ok<Write>('set', { key: 'deployments/api', value: { image: 'api:2', replicas: 2 }, ifHead: first.revision.id })
    expect(second.revision.index).toBe(2)

    expect(await c.ok('get', { key: 'deployments/api' })).toMatchObject({ value: { image: 'api:2', replicas: 2 }, deleted: false, revision: { id: second.revision.id } })
    expect(await c.ok('get', { key: 'deployments/api', index: 1 })).toMatchObject({ value: { image: 'api:1' }, revision: { id: first.revision.id } })
    expect(await c.ok('get', { key: 'deployments/api', revision: first.revision.id })).toMatchObject({ value: { image: 'api:1' } })
    expect(await c.ok('get', { key: 'deployments/api', at: first.revision.ts })).toMatchObject({ revision: { index: expect.any(Number) } })

    expect(await c.ok('keys', { prefix: 'deployments/' })).toEqual({ keys: [{ key: 'deployments/api', head: second.revision.id, revisionCount: 2 }] })
    expect(await c.ok('keys', { prefix: 'nothing/' })).toEqual({ keys: [] })

    const history = await c.ok<{ revisions: { id: string; value: unknown; patch: unknown[] }[] }>('history', { key: 'deployments/api', values: true, patches: true })
    expect(history.revisions.map((r) => r.id)).toEqual([second.revision.id, first.revision.id])
    expect(history.revisions[0]).toMatchObject({ value: { image: 'api:2' }, patch: [{ op: 'change', path: ['image'], before: 'api:1', after: 'api:2' }] })
    const page = await c.ok('history', { key: 'deployments/api', limit: 1 })
    expect(page).toMatchObject({ revisions: [{ id: second.revision.id }], next: second.revision.id })
    expect(await c.ok('history', { key: 'deployments/api', before: second.revision.id })).toMatchObject({ revisions: [{ id: first.revision.id }] })

    expect(await c.ok('info', { key: 'deployments/api' })).toMatchObject({ revisionCount: 2, deleted: false, forks: [{ fork: 'main' }], ancestors: [], head: { id: second.revision.id } })
    expect(await c.ok('diff', { key: 'deployments/api', from: { index: 1 }, to: {} })).toMatchObject({
      from: { id: first.revision.id },
      to: { id: second.revision.id },
      changes: [{ op: 'change', path: ['image'], before: 'api:1', after: 'api:2' }],
    })

    const reverted = await c.ok<Write>('revert', { key: 'deployments/api', index: 1, message: 'rollback' })
    expect(reverted.revision).toMatchObject({ kind: 'revert', index: 3, message: 'rollback', from: { fork: 'main', revision: first.revision.id } })
    expect(await c.ok('get', { key: 'deployments/api' })).toMatchObject({ value: { image: 'api:1' } })

    const forked = await c.ok<Write>('fork', { key: 'deployments/api', to: 'staging' })
    expect(forked).toMatchObject({ fork: 'staging', revision: { kind: 'fork', from: { fork: 'main' } } })
    await c.ok('set', { key: 'deployments/api', fork: 'staging', value: { image: 'api:3', replicas: 2 } })
    expect(await c.ok('diff', { key: 'deployments/api', from: { fork: 'main' }, to: { fork: 'staging' } })).toMatchObject({ changes: [{ path: ['image'], after: 'api:3' }] })
    const merged = await c.ok('merge', { key: 'deployments/api', from: 'staging', into: 'main' })
    expect(merged).toMatchObject({ fork: 'main', revision: { kind: 'merge' }, conflicts: [] })
    expect(await c.ok('get', { key: 'deployments/api' })).toMatchObject({ value: { image: 'api:3' } })

    await c.ok('set', { key: 'deployments/web', value: { image: 'web:1' } })
    const prefixFork = await c.ok('fork', { prefix: 'deployments/', to: 'canary', message: 'canary all' })
    expect(prefixFork).toMatchObject({ results: [{ key: 'deployments/api', ok: true }, { key: 'deployments/web', ok: true }] })
    await c.ok('set', { key: 'deployments/web', fork: 'canary', value: { image: 'web:2' } })
    const prefixMerge = await c.ok('merge', { prefix: 'deployments/', from: 'canary' })
    expect(prefixMerge).toMatchObject({ results: [{ key: 'deployments/api', ok: true }, { key: 'deployments/web', ok: true, conflicts: [] }] })
    expect(await c.ok('get', { key: 'deployments/web' })).toMatchObject({ value: { image: 'web:2' } })

    const deleted = await c.ok<Write>('delete', { key: 'deployments/web', message: 'gone' })
    expect(deleted.revision).toMatchObject({ kind: 'delete', message: 'gone' })
    expect(await c.fails('get', { key: 'deployments/web' })).toBe('KEY_NOT_FOUND')
    expect(await c.ok('get', { key: 'deployments/web', revision: deleted.revision.id })).toEqual(expect.objectContaining({ deleted: true }))
    expect(await c.ok('unwatch', { watch: 99 })).toEqual({ watch: 99, removed: false })
  })

  it('round-trips bytes, nil and nested values', async () => {
    const { connect } = await setup()
    const c = await connect()
    const value = { blob: new Uint8Array([0, 1, 255]), none: null, list: [1, 'two', { three: true }] }
    await c.ok('set', { key: 'k', value })
    const got = await c.ok<{ value: typeof value }>('get', { key: 'k' })
    expect(new Uint8Array(got.value.blob)).toEqual(value.blob)
    expect(got.value.none).toBeNull()
    expect(got.value.list).toEqual(value.list)
    await c.ok('set', { key: 'n', value: null })
    expect(await c.ok('get', { key: 'n' })).toMatchObject({ value: null, deleted: false })
  })
})

describe('errors', () => {
  it('answers store errors with their codes and details', async () => {
    const { connect } = await setup()
    const c = await connect()
    const first = await c.ok<Write>('set', { key: 'k', value: { a: 1 } })
    expect(await c.fails('get', { key: 'missing' })).toBe('KEY_NOT_FOUND')
    expect(await c.fails('get', { key: '' })).toBe('INVALID_KEY')
    expect(await c.fails('get', { key: 'k', fork: 'no spaces' })).toBe('INVALID_FORK')
    expect(await c.fails('get', { key: 'k', index: 9 })).toBe('REVISION_NOT_FOUND')
    expect(await c.fails('get', { key: 'k', revision: 'not-an-id' })).toBe('INVALID_ARGUMENT')
    expect(await c.fails('set', { key: 'k', value: 'x'.repeat(1_100_000) })).toBe('VALUE_TOO_LARGE')
    expect(await c.fails('keys', { limit: 0 })).toBe('INVALID_ARGUMENT')
    expect(await c.fails('merge', { key: 'k', from: 'nope' })).toBe('FORK_NOT_FOUND')
    await c.ok('fork', { key: 'k', to: 'b' })
    expect(await c.fails('fork', { key: 'k', to: 'b' })).toBe('FORK_EXISTS')

    await c.ok('set', { key: 'k', value: { a: 2 } })
    const stale = await c.call('set', { key: 'k', value: 3, ifHead: first.revision.id })
    expect(stale).toMatchObject({ ok: false, error: { code: 'HEAD_MISMATCH', message: expect.any(String), details: { head: expect.any(String) } } })

    await c.ok('set', { key: 'k', fork: 'b', value: { a: 3 } })
    const conflict = await c.call('merge', { key: 'k', from: 'b', strategy: 'fail' })
    expect(conflict).toMatchObject({ ok: false, error: { code: 'MERGE_CONFLICT', details: { conflicts: [{ path: ['a'], ours: 2, theirs: 3 }] } } })
  })

  it('answers INTERNAL for unexpected failures and keeps the connection', async () => {
    const { connect } = await setup({
      members: () => {
        throw new Error('membership exploded')
      },
    })
    const c = await connect()
    expect(await c.call('members')).toMatchObject({ ok: false, error: { code: 'INTERNAL', message: 'internal error' } })
    expect(await c.ok('ping')).toMatchObject({ node: 'n1' })
  })

  it('sends merge conflicts without undefined fields', async () => {
    const { connect } = await setup()
    const c = await connect()
    await c.ok('set', { key: 'k', value: { section: { x: 1 } } })
    await c.ok('fork', { key: 'k', to: 'b' })
    await c.ok('set', { key: 'k', value: {} })
    await c.ok('set', { key: 'k', fork: 'b', value: { section: { x: 2 } } })
    const merged = await c.ok<{ conflicts: Record<string, unknown>[] }>('merge', { key: 'k', from: 'b', strategy: 'ours' })
    expect(merged.conflicts.length).toBeGreaterThan(0)
    for (const conflict of merged.conflicts) {
      for (const value of Object.values(conflict)) expect(value).not.toBeUndefined()
    }
  })
})

describe('malformed frames', () => {
  it('answers each with an error and keeps serving this and other clients', async () => {
    const { connect } = await setup()
    const c = await connect()
    const other = await connect()

    c.sendRaw(new Uint8Array([0xc1, 0xff, 0x00]))
    expect(await c.response(null)).toMatchObject({ ok: false, error: { code: 'BAD_FRAME' } })
    c.frames.length = 0

    c.sendRaw(pack([1, 'get']))
    expect(await c.response(null)).toMatchObject({ ok: false, error: { code: 'BAD_FRAME' } })
    c.frames.length = 0

    c.sendRaw(pack(42))
    expect(await c.response(null)).toMatchObject({ ok: false, error: { code: 'BAD_FRAME' } })
    c.frames.length = 0

    c.sendRaw('{"id": 1, "op": "ping"}')
    expect(await c.response(null)).toMatchObject({ ok: false, error: { code: 'BAD_FRAME' } })
    c.frames.length = 0

    c.send({ op: 'ping' })
    expect(await c.response(null)).toMatchObject({ ok: false, error: { code: 'BAD_FRAME' } })

    c.send({ id: 7, op: 'explode' })
    expect(await c.response(7)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_OP' } })
    c.send({ id: 8, op: 'get', key: 42 })
    expect(await c.response(8)).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT', details: { field: 'key' } } })
    c.send({ id: 9, op: 'history', key: 'k', limit: 'ten' })
    expect(await c.response(9)).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT', details: { field: 'limit' } } })
    c.send({ id: 'ten', op: 'set', key: 'k', value: 1, ifHead: 5 })
    expect(await c.response('ten')).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT', details: { field: 'ifHead' } } })
    c.send({ id: 11, op: 'set', key: 'k', value: new Date(0) })
    expect(await c.response(11)).toMatchObject({ ok: false, error: { code: 'INVALID_VALUE' } })

    expect(c.ws.readyState).toBe(c.ws.OPEN)
    expect(await c.ok('ping')).toMatchObject({ node: 'n1' })
    expect(await other.ok('ping')).toMatchObject({ node: 'n1' })
  })

  it('closes a connection that sends an oversized frame with 1009, and serves others', async () => {
    const { connect } = await setup({ limits: { maxFrameBytes: 64 * 1024 } })
    const big = await connect()
    const other = await connect()
    big.send({ id: 1, op: 'set', key: 'k', value: 'x'.repeat(100 * 1024) })
    expect(await big.closed).toMatchObject({ code: 1009 })
    expect(await other.ok('ping')).toMatchObject({ node: 'n1' })
    await other.ok('set', { key: 'k', value: 'x'.repeat(1024) })
  })

  it('takes frames up to the default 2 MiB and closes past it', async () => {
    const { connect } = await setup()
    const c = await connect()
    expect(await c.fails('set', { key: 'k', value: 'x'.repeat(1_500_000) })).toBe('VALUE_TOO_LARGE')
    c.send({ id: 2, op: 'set', key: 'k', value: 'x'.repeat(2 * 1024 * 1024 + 1) })
    expect(await c.closed).toMatchObject({ code: 1009 })
  })
})

describe('limits', () => {
  it('refuses requests past maxInflightPerConnection with TOO_MANY_REQUESTS', async () => {
    const storage = new GatedStorage()
    const { connect } = await setup({ storage, limits: { maxInflightPerConnection: 2 } })
    const c = await connect()
    storage.hold()
    c.send({ id: 1, op: 'set', key: 'a', value: 1 })
    c.send({ id: 2, op: 'set', key: 'b', value: 2 })
    c.send({ id: 3, op: 'set', key: 'c', value: 3 })
    expect(await c.response(3)).toMatchObject({ ok: false, error: { code: 'TOO_MANY_REQUESTS' } })
    storage.release()
    expect(await c.response(1)).toMatchObject({ ok: true })
    expect(await c.response(2)).toMatchObject({ ok: true })
    expect(await c.ok('keys')).toMatchObject({ keys: [{ key: 'a' }, { key: 'b' }] })
  })

  it('closes connections past maxConnections with 4429', async () => {
    const { connect } = await setup({ limits: { maxConnections: 1 } })
    const first = await connect()
    const second = await connect()
    expect(await second.closed).toMatchObject({ code: 4429, reason: expect.stringMatching(/^TOO_MANY_REQUESTS: /) })
    expect(await first.ok('ping')).toMatchObject({ node: 'n1' })
  })

  it('refuses watches past maxWatchesPerConnection', async () => {
    const { connect } = await setup({ limits: { maxWatchesPerConnection: 2 } })
    const c = await connect()
    await c.ok('watch', { key: 'a' })
    await c.ok('watch', { key: 'b' })
    expect(await c.fails('watch', { key: 'c' })).toBe('TOO_MANY_REQUESTS')
  })

  it('pauses a client that does not read its answers, and answers everything once it reads', async () => {
    const { store, connect } = await setup({ limits: { maxBufferedBytes: 64 * 1024 } })
    await store.set('big', 'x'.repeat(200 * 1024))
    const c = await connect()
    c.ws.pause()
    for (let i = 0; i < 100; i++) c.send({ id: i, op: 'get', key: 'big' })
    await new Promise((r) => setTimeout(r, 200))
    c.ws.resume()
    for (let i = 0; i < 100; i++) expect(await c.response(i)).toMatchObject({ ok: true, result: { key: 'big' } })
    expect(c.ws.readyState).toBe(c.ws.OPEN)
  })

  it('closes a slow watch consumer with 4429 instead of buffering without bound', async () => {
    const { store, connect } = await setup({ limits: { maxBufferedBytes: 256 * 1024 } })
    const c = await connect()
    await c.ok('watch', { key: 'big' })
    c.ws.pause()
    const value = 'x'.repeat(300 * 1024)
    for (let i = 0; i < 64; i++) {
      await store.set('big', `${i}${value}`)
    }
    c.ws.resume()
    expect(await c.closed).toMatchObject({ code: 4429, reason: expect.stringMatching(/slow consumer/) })
  })
})

describe('requestId', () => {
  it('applies a retried write once and answers the same result, on any connection', async () => {
    const { connect } = await setup()
    const c = await connect()
    const first = await c.ok<Write>('set', { key: 'k', value: 1, requestId: 'req-1' })
    const retry = await c.ok<Write>('set', { key: 'k', value: 1, requestId: 'req-1' })
    expect(retry).toEqual(first)
    const elsewhere = await connect()
    expect(await elsewhere.ok('set', { key: 'k', value: 1, requestId: 'req-1' })).toEqual(first)
    expect(await c.ok('info', { key: 'k' })).toMatchObject({ revisionCount: 1 })

    const forked = await c.ok('fork', { key: 'k', to: 'b', requestId: 'req-2' })
    expect(await c.ok('fork', { key: 'k', to: 'b', requestId: 'req-2' })).toEqual(forked)
  })

  it('joins a retry to a write still in flight', async () => {
    const storage = new GatedStorage()
    const { connect } = await setup({ storage })
    const c = await connect()
    storage.hold()
    c.send({ id: 1, op: 'set', key: 'k', value: 'v', requestId: 'same' })
    c.send({ id: 2, op: 'set', key: 'k', value: 'v', requestId: 'same' })
    await new Promise((r) => setTimeout(r, 20))
    storage.release()
    const [a, b] = await Promise.all([c.response(1), c.response(2)])
    expect(a).toMatchObject({ ok: true })
    expect(b).toMatchObject({ ok: true, result: (a as { result: unknown }).result })
    expect(await c.ok('info', { key: 'k' })).toMatchObject({ revisionCount: 1 })
  })

  it('refuses a requestId reused for a different write, and retries failed writes', async () => {
    const { connect } = await setup()
    const c = await connect()
    await c.ok('set', { key: 'k', value: 1, requestId: 'r' })
    expect(await c.fails('set', { key: 'k', value: 2, requestId: 'r' })).toBe('INVALID_ARGUMENT')
    expect(await c.fails('delete', { key: 'gone', requestId: 'd' })).toBe('KEY_NOT_FOUND')
    await c.ok('set', { key: 'gone', value: 1 })
    await c.ok('delete', { key: 'gone', requestId: 'd' })
  })
})

describe('watch', () => {
  it('streams the revisions of one key, live', async () => {
    const { connect } = await setup()
    const c = await connect()
    const writer = await connect()
    const ack = await c.ok<{ watch: number; cursor: string }>('watch', { key: 'a' })
    expect(ack.cursor).toMatch(/^.+:\d+$/)
    const watchId = ack.watch
    const set = await writer.ok<Write>('set', { key: 'a', value: { v: 1 }, author: 'ana' })
    await writer.ok('set', { key: 'b', value: 1 })
    await writer.ok('set', { key: 'a', fork: 'other', value: 1 })
    await writer.ok('delete', { key: 'a' })
    const events = await c.waitEvents(watchId, 2)
    await new Promise((r) => setTimeout(r, 30))
    expect(c.events(watchId)).toHaveLength(2)
    expect(events[0]).toMatchObject({ key: 'a', fork: 'main', value: { v: 1 }, deleted: false, revision: { id: set.revision.id, kind: 'set', author: 'ana' } })
    expect(events[1]).toMatchObject({ key: 'a', fork: 'main', deleted: true, revision: { kind: 'delete' } })
    expect(events[1]).not.toHaveProperty('value')
    expect(seqOf(events[1]!.cursor)).toBeGreaterThan(seqOf(events[0]!.cursor))
  })

  it('streams a prefix of one fork, including revisions replicated from peers', async () => {
    const { store, connect } = await setup()
    const c = await connect()
    const { watch } = await c.ok<{ watch: number }>('watch', { prefix: 'deployments/', fork: 'staging' })
    await c.ok('set', { key: 'deployments/api', fork: 'staging', value: 1 })
    await c.ok('set', { key: 'deployments/api', value: 'main, not watched' })
    await c.ok('set', { key: 'other/x', fork: 'staging', value: 'not under the prefix' })

    const peer = new VersionedStore({ storage: new MemoryStorage(), nodeId: 'n2' as NodeId })
    stores.push(peer)
    const remote = await peer.set('deployments/web', { from: 'peer' }, { fork: 'staging' })
    const revision = peer.revision(remote.key, remote.fork, remote.revision.id)!
    expect((await store.applyRemote([revision])).applied).toHaveLength(1)

    const events = await c.waitEvents(watch, 2)
    expect(events.map((e) => [e.key, e.fork, e.value])).toEqual([
      ['deployments/api', 'staging', 1],
      ['deployments/web', 'staging', { from: 'peer' }],
    ])
    expect(events[1]!.revision).toMatchObject({ node: 'n2', id: remote.revision.id })
  })

  it('stops streaming after unwatch', async () => {
    const { connect } = await setup()
    const c = await connect()
    const { watch } = await c.ok<{ watch: number }>('watch', { key: 'a' })
    await c.ok('set', { key: 'a', value: 1 })
    await c.waitEvents(watch, 1)
    expect(await c.ok('unwatch', { watch })).toEqual({ watch, removed: true })
    await c.ok('set', { key: 'a', value: 2 })
    await new Promise((r) => setTimeout(r, 30))
    expect(c.events(watch)).toHaveLength(1)
  })

  it('resumes after a disconnect from a cursor with no loss and no duplicate', async () => {
    const { store, connect } = await setup({ watchReplayPage: 3 })
    let c = await connect()
    const { watch } = await c.ok<{ watch: number }>('watch', { prefix: 'app/' })
    const expected: unknown[] = []
    for (let i = 0; i < 5; i++) {
      await store.set(`app/${i % 2}`, i)
      expected.push(i)
    }
    const before = await c.waitEvents(watch, 5)
    const cursor = before.at(-1)!.cursor
    c.close()

    // While disconnected: matching writes, other keys, a delete and a revival.
    for (let i = 5; i < 65; i++) {
      await store.set(i % 3 === 0 ? `other/${i}` : `app/${i % 2}`, i)
      if (i % 3 !== 0) expected.push(i)
    }
    await store.delete('app/0')
    await store.set('app/0', 100)
    expected.push('deleted', 100)

    c = await connect()
    c.send({ id: 'w', op: 'watch', prefix: 'app/', after: cursor })
    // Writes racing the replay (one per event-loop turn, as the replay pages): each must arrive exactly once.
    const seenWhileRacing: number[] = []
    for (let j = 0; j < 30; j++) {
      await store.set(`app/${j % 2}`, 200 + j)
      expected.push(200 + j)
      seenWhileRacing.push(c.events('w').length)
      await new Promise((r) => setImmediate(r))
    }
    expect(await c.response('w')).toMatchObject({ ok: true, result: { watch: 'w', cursor } })
    await c.waitEvents('w', expected.length - before.length)
    await new Promise((r) => setTimeout(r, 50))

    const events = [...before, ...c.events('w')]
    const seqs = events.map((e) => seqOf(e.cursor))
    expect(new Set(seqs).size).toBe(seqs.length)
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs)
    expect(events.map((e) => (e.deleted ? 'deleted' : e.value))).toEqual(expected)
    // Cursors are this node's feed positions: every matching entry after the cursor, once.
    const feed = store.feed(seqOf(cursor), 1000).filter((entry) => entry.key.startsWith('app/'))
    expect(feed.map((entry) => entry.seq)).toEqual(seqs.slice(5))
    // The replay really raced: some writes landed while it was part way.
    expect(seenWhileRacing.some((n) => n > 0 && n < expected.length - before.length - 30)).toBe(true)
  })

  it('delivers a write that was in flight when the replay caught up', async () => {
    const storage = new GatedStorage()
    const { store, connect } = await setup({ storage })
    for (let i = 1; i <= 5; i++) await store.set('k', i)
    const c = await connect()
    storage.hold()
    const pending = store.set('k', 'in flight')
    c.send({ id: 'w', op: 'watch', key: 'k', after: `${store.epoch}:0` })
    expect(await c.response('w')).toMatchObject({ ok: true })
    await c.waitEvents('w', 5)
    storage.release()
    await pending
    const events = await c.waitEvents('w', 6)
    await new Promise((r) => setTimeout(r, 30))
    expect(c.events('w').map((e) => e.value)).toEqual([1, 2, 3, 4, 5, 'in flight'])
    expect(events.map((e) => seqOf(e.cursor))).toEqual([1, 2, 3, 4, 5, 6])
  })

  it('replays from the cursor a watch was acknowledged with', async () => {
    const { store, connect } = await setup()
    let c = await connect()
    const ack = await c.ok<{ cursor: string }>('watch', { key: 'k' })
    c.close()
    await store.set('k', 1)
    c = await connect()
    const { watch } = await c.ok<{ watch: number }>('watch', { key: 'k', after: ack.cursor })
    const events = await c.waitEvents(watch, 1)
    expect(events[0]).toMatchObject({ key: 'k', value: 1 })
    await store.set('k', 2)
    expect((await c.waitEvents(watch, 2))[1]).toMatchObject({ value: 2 })
  })

  it('refuses cursors of another epoch or ahead of the feed, and malformed ones', async () => {
    const { store, connect } = await setup()
    const c = await connect()
    await store.set('k', 1)
    const { epoch, seq } = store.feedHead()
    expect(await c.fails('watch', { key: 'k', after: `another-epoch:${seq}` })).toBe('CURSOR_EXPIRED')
    expect(await c.fails('watch', { key: 'k', after: `${epoch}:${seq + 5}` })).toBe('CURSOR_EXPIRED')
    expect(await c.fails('watch', { key: 'k', after: 'no-seq' })).toBe('INVALID_ARGUMENT')
    expect(await c.fails('watch', { key: '' })).toBe('INVALID_KEY')
    await c.ok('watch', { key: 'k', after: `${epoch}:0` })
  })

  it('refuses a second watch with the id of an open one', async () => {
    const { connect } = await setup()
    const c = await connect()
    c.send({ id: 'w', op: 'watch', key: 'a' })
    expect(await c.response('w')).toMatchObject({ ok: true })
    c.frames.length = 0
    c.send({ id: 'w', op: 'watch', key: 'b' })
    expect(await c.response('w')).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } })
  })
})

describe('http', () => {
  it('serves /healthz as JSON', async () => {
    const { http, connect } = await setup()
    const c = await connect()
    await c.ok('set', { key: 'k', value: 1 })
    const response = await fetch(`${http}/healthz`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/application\/json/)
    expect(await response.json()).toMatchObject({ status: 'ok', node: 'n1', uptime: expect.any(Number), keys: 1, feed: { seq: 1 }, connections: 1, cluster: 'test' })
  })

  it('serves /metrics from the given registry', async () => {
    const registry = new Registry()
    const { http, connect } = await setup({ registry })
    const c = await connect()
    await c.ok('set', { key: 'k', value: 1 })
    await c.fails('get', { key: 'missing' })
    await c.ok('watch', { key: 'k' })
    c.sendRaw(new Uint8Array([0xc1]))
    await c.response(null)
    const response = await fetch(`${http}/metrics`)
    expect(response.status).toBe(200)
    const text = await response.text()
    expect(text).toContain('weft_api_requests_total{op="set",code="OK"} 1')
    expect(text).toContain('weft_api_requests_total{op="get",code="KEY_NOT_FOUND"} 1')
    expect(text).toContain('weft_api_requests_total{op="invalid",code="BAD_FRAME"} 1')
    expect(text).toMatch(/weft_api_request_duration_seconds_count\{op="set"\} 1/)
    expect(text).toContain('weft_api_connections 1')
    expect(text).toContain('weft_api_watches 1')
    expect(text).toContain('weft_store_keys 1')
    expect(text).toMatch(/weft_store_size_bytes \d+/)
    expect(registry.getSingleMetric('weft_api_watches')).toBeDefined()
  })

  it('answers unknown routes with 404 and refuses upgrades elsewhere', async () => {
    const { http, url } = await setup()
    expect((await fetch(`${http}/nope`)).status).toBe(404)
    expect((await fetch(`${http}/healthz`, { method: 'POST' })).status).toBe(405)
    await expect(TestClient.connect(url.replace('/v1/ws', '/v2/ws'))).rejects.toThrow(/404/)
  })

  it('stop() closes connections with 1001 and frees the registry', async () => {
    const registry = new Registry()
    const { server, connect } = await setup({ registry })
    const c = await connect()
    await c.ok('watch', { key: 'k' })
    await server.stop()
    expect(await c.closed).toMatchObject({ code: 1001, reason: expect.stringMatching(/^CLOSED: /) })
    expect(registry.getSingleMetric('weft_api_requests_total')).toBeUndefined()
  })
})

function seqOf(cursor: string): number {
  return Number(cursor.slice(cursor.lastIndexOf(':') + 1))
}
