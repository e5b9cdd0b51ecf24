import { afterEach, describe, expect, it } from 'vitest'
import { type NodeId, type RevisionId, isWeftError } from '@weft/core'
import { MemoryStorage } from '../../src/storage/MemoryStorage.ts'
import type { StorageAdapter } from '../../src/storage/StorageAdapter.ts'
import { VersionedStore } from '../../src/store/VersionedStore.ts'

let time = 1_700_000_000_000
const stores: VersionedStore[] = []

function openStore(options: { nodeId?: string; storage?: MemoryStorage; checkpointEvery?: number } = {}): VersionedStore {
  const store = new VersionedStore({
    storage: options.storage ?? new MemoryStorage(),
    nodeId: (options.nodeId ?? 'n1') as NodeId,
    now: () => time,
    checkpointEvery: options.checkpointEvery ?? 4,
  })
  stores.push(store)
  return store
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()))
})

/** `memory`, with commits going through `commit` (to hold them back or reorder them). */
function withCommit(memory: MemoryStorage, commit: StorageAdapter['commit']): StorageAdapter {
  return {
    get: (key) => memory.get(key),
    has: (key) => memory.has(key),
    range: (range) => memory.range(range),
    sizeBytes: () => memory.sizeBytes(),
    close: () => memory.close(),
    commit,
  }
}

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof promise === 'function' ? promise() : promise)
  } catch (err) {
    expect(isWeftError(err), String(err)).toBe(true)
    expect((err as { code: string }).code).toBe(code)
    return
  }
  expect.unreachable(`expected ${code}`)
}

describe('set and get', () => {
  it('reads back what was set, with the revision', async () => {
    const store = openStore()
    const { revision } = await store.set('deployments/api', { image: 'api:1', replicas: 2 }, { author: 'ana', message: 'first' })
    expect(revision).toMatchObject({ index: 1, kind: 'set', node: 'n1', author: 'ana', message: 'first' })
    expect(store.get('deployments/api')).toMatchObject({ value: { image: 'api:1', replicas: 2 }, deleted: false, revision: { id: revision.id, index: 1 } })
  })

  it('gives each revision a stable id that sorts in history order', async () => {
    const store = openStore()
    const ids: string[] = []
    for (let i = 0; i < 10; i++) ids.push((await store.set('k', i)).revision.id)
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(10)
  })

  it('compare-and-set succeeds on the current head and fails on a stale one', async () => {
    const store = openStore()
    await expectCode(store.set('k', 1, { ifHead: 'x' }), 'INVALID_ARGUMENT').catch(() => undefined)
    const first = await store.set('k', 1, { ifHead: null })
    await expectCode(store.set('k', 2, { ifHead: null }), 'HEAD_MISMATCH')
    const second = await store.set('k', 2, { ifHead: first.revision.id })
    await expectCode(store.set('k', 3, { ifHead: first.revision.id }), 'HEAD_MISMATCH')
    expect(store.get('k')).toMatchObject({ value: 2, revision: { id: second.revision.id } })
  })

  it('records a revision even when the value is unchanged', async () => {
    const store = openStore()
    await store.set('k', { a: 1 })
    await store.set('k', { a: 1 }, { message: 'redeploy' })
    expect(store.info('k').revisionCount).toBe(2)
  })
})

describe('delete', () => {
  it('hides the key from gets and listings, keeps history, and a later set revives it', async () => {
    const store = openStore()
    await store.set('a', 1)
    await store.set('b', 2)
    await store.delete('a', { message: 'gone' })
    await expectCode(() => store.get('a'), 'KEY_NOT_FOUND')
    expect(store.keys().keys.map((k) => k.key)).toEqual(['b'])
    expect(store.history('a').revisions.map((r) => r.kind)).toEqual(['delete', 'set'])
    expect(store.get('a', 'main', { index: 1 }).value).toBe(1)
    expect(store.get('a', 'main', { index: 2 })).toMatchObject({ deleted: true })
    await store.set('a', 3)
    expect(store.get('a').value).toBe(3)
    expect(store.history('a').revisions.map((r) => r.kind)).toEqual(['set', 'delete', 'set'])
  })

  it('refuses to delete what does not exist', async () => {
    const store = openStore()
    await expectCode(store.delete('nope'), 'KEY_NOT_FOUND')
    await store.set('k', 1)
    await store.delete('k')
    await expectCode(store.delete('k'), 'KEY_NOT_FOUND')
  })
})

describe('time travel', () => {
  it('reads any revision by id, by index and as of a time, across checkpoints', async () => {
    const store = openStore({ checkpointEvery: 3 })
    const ids: RevisionId[] = []
    const times: number[] = []
    for (let i = 1; i <= 20; i++) {
      time += 1000
      times.push(time)
      ids.push((await store.set('cfg', { version: i, list: Array.from({ length: i % 4 }, (_, j) => j) })).revision.id)
    }
    for (let i = 1; i <= 20; i++) {
      const expected = { version: i, list: Array.from({ length: i % 4 }, (_, j) => j) }
      expect(store.get('cfg', 'main', { index: i })).toMatchObject({ value: expected, revision: { index: i, id: ids[i - 1] } })
      expect(store.get('cfg', 'main', { revision: ids[i - 1]! })).toMatchObject({ value: expected, revision: { index: i } })
      expect(store.get('cfg', 'main', { at: times[i - 1]! + 500 })).toMatchObject({ value: expected, revision: { index: i } })
    }
    await expectCode(() => store.get('cfg', 'main', { at: times[0]! - 1 }), 'REVISION_NOT_FOUND')
    await expectCode(() => store.get('cfg', 'main', { index: 21 }), 'REVISION_NOT_FOUND')
    await expectCode(() => store.get('cfg', 'main', { revision: '0000000000000000.zz' }), 'REVISION_NOT_FOUND')
    await expectCode(() => store.get('cfg', 'main', { revision: 'not-an-id' }), 'INVALID_ARGUMENT')
  })

  it('reloads the same state after the cache is cold', async () => {
    const storage = new MemoryStorage()
    const a = openStore({ storage, checkpointEvery: 3 })
    for (let i = 0; i < 10; i++) await a.set('k', { n: i, s: 'x'.repeat(i) })
    const b = new VersionedStore({ storage, nodeId: 'n1' as NodeId, now: () => time, checkpointEvery: 3, cacheSize: 1 })
    await b.set('k', { n: 10, s: 'y' })
    expect(b.get('k').value).toEqual({ n: 10, s: 'y' })
    expect(b.get('k', 'main', { index: 10 }).value).toEqual({ n: 9, s: 'xxxxxxxxx' })
  })
})

describe('history', () => {
  it('lists newest first, paginated, with values and patches', async () => {
    const store = openStore({ checkpointEvery: 2 })
    for (let i = 1; i <= 7; i++) await store.set('k', { n: i }, { author: `a${i}` })
    const first = store.history('k', 'main', { limit: 3, values: true, patches: true })
    expect(first.revisions.map((r) => [r.index, r.value, r.author])).toEqual([
      [7, { n: 7 }, 'a7'],
      [6, { n: 6 }, 'a6'],
      [5, { n: 5 }, 'a5'],
    ])
    expect(first.revisions[0]!.patch).toEqual([{ op: 'change', path: ['n'], before: 6, after: 7 }])
    const second = store.history('k', 'main', { limit: 3, before: first.next! })
    expect(second.revisions.map((r) => r.index)).toEqual([4, 3, 2])
    const third = store.history('k', 'main', { limit: 3, before: second.next!, patches: true })
    expect(third.revisions.map((r) => r.index)).toEqual([1])
    expect(third.revisions[0]!.patch).toEqual([{ op: 'add', path: [], after: { n: 1 } }])
    expect(third.next).toBeUndefined()
  })
})

describe('revert', () => {
  it('makes a new revision equal to an earlier one and keeps history', async () => {
    const store = openStore()
    const v1 = await store.set('k', { image: 'v1', replicas: 1 })
    await store.set('k', { image: 'v2', replicas: 3 })
    const reverted = await store.revert('k', { revision: v1.revision.id }, { message: 'rollback' })
    expect(reverted.revision).toMatchObject({ kind: 'revert', index: 3, from: { fork: 'main', revision: v1.revision.id }, message: 'rollback' })
    expect(store.get('k').value).toEqual({ image: 'v1', replicas: 1 })
    expect(store.get('k', 'main', { index: 2 }).value).toEqual({ image: 'v2', replicas: 3 })
  })

  it('reverting to a deletion deletes', async () => {
    const store = openStore()
    await store.set('k', 1)
    await store.delete('k')
    await store.set('k', 2)
    await store.revert('k', { index: 2 })
    await expectCode(() => store.get('k'), 'KEY_NOT_FOUND')
  })
})

describe('forks and merges', () => {
  const base = { replicas: 1, image: 'v1', env: { LOG: 'info' } }

  it('forks at the head or at an earlier revision and records the ancestor', async () => {
    const store = openStore()
    const r1 = await store.set('app', base)
    await store.set('app', { ...base, image: 'v2' })
    const staged = await store.fork('app', { to: 'staging' })
    expect(staged.revision).toMatchObject({ kind: 'fork', index: 1 })
    expect(store.get('app', 'staging').value).toEqual({ ...base, image: 'v2' })
    await store.fork('app', { to: 'old', revision: r1.revision.id })
    expect(store.get('app', 'old').value).toEqual(base)
    await store.fork('app', { from: 'old', to: 'older' })
    const info = store.info('app', 'older')
    expect(info.forks.map((f) => f.fork).sort()).toEqual(['main', 'old', 'older', 'staging'])
    expect(info.ancestors).toEqual([
      { fork: 'old', revision: expect.any(String) as string },
      { fork: 'main', revision: r1.revision.id },
    ])
    await expectCode(store.fork('app', { to: 'staging' }), 'FORK_EXISTS')
    await expectCode(store.fork('app', { from: 'nope', to: 'x' }), 'KEY_NOT_FOUND')
    await expectCode(store.fork('missing', { to: 'x' }), 'KEY_NOT_FOUND')
  })

  it('merges changes to different fields from both sides', async () => {
    const store = openStore()
    await store.set('app', base)
    await store.fork('app', { to: 'staging' })
    await store.set('app', { ...base, replicas: 5 }, { fork: 'staging' })
    await store.set('app', { ...base, image: 'v2' })
    const merged = await store.merge('app', { from: 'staging', message: 'promote' })
    expect(merged.conflicts).toEqual([])
    expect(merged.revision).toMatchObject({ kind: 'merge', from: { fork: 'staging' }, message: 'promote' })
    expect(store.get('app').value).toEqual({ ...base, replicas: 5, image: 'v2' })
  })

  it('resolves the same field changed on both sides by the later HLC and reports the conflict', async () => {
    const store = openStore()
    await store.set('app', base)
    await store.fork('app', { to: 'staging' })
    await store.set('app', { ...base, replicas: 2 })
    time += 10
    await store.set('app', { ...base, replicas: 3 }, { fork: 'staging' })
    const merged = await store.merge('app', { from: 'staging' })
    expect(merged.conflicts).toEqual([{ path: ['replicas'], ours: 2, theirs: 3, winner: 'theirs' }])
    expect(store.get('app').value).toEqual({ ...base, replicas: 3 })
  })

  it.each([
    ['ours', 2],
    ['theirs', 3],
  ] as const)('strategy %s keeps that side', async (strategy, replicas) => {
    const store = openStore()
    await store.set('app', base)
    await store.fork('app', { to: 'staging' })
    await store.set('app', { ...base, replicas: 3 }, { fork: 'staging' })
    await store.set('app', { ...base, replicas: 2 })
    const merged = await store.merge('app', { from: 'staging', strategy })
    expect(merged.conflicts).toEqual([{ path: ['replicas'], ours: 2, theirs: 3, winner: strategy }])
    expect(store.get('app').value).toEqual({ ...base, replicas })
  })

  it('strategy fail changes nothing and reports the conflicts', async () => {
    const store = openStore()
    await store.set('app', base)
    await store.fork('app', { to: 'staging' })
    await store.set('app', { ...base, replicas: 3 }, { fork: 'staging' })
    await store.set('app', { ...base, replicas: 2 })
    const before = store.info('app')
    try {
      await store.merge('app', { from: 'staging', strategy: 'fail' })
      expect.unreachable()
    } catch (err) {
      expect(isWeftError(err, 'MERGE_CONFLICT')).toBe(true)
      expect((err as { details: { conflicts: unknown } }).details.conflicts).toEqual([{ path: ['replicas'], ours: 2, theirs: 3, winner: 'ours' }])
    }
    expect(store.info('app')).toEqual(before)
    expect(store.get('app').value).toEqual({ ...base, replicas: 2 })
  })

  it('merges a fork back again after a first merge without repeating old conflicts', async () => {
    const store = openStore()
    await store.set('app', base)
    await store.fork('app', { to: 'staging' })
    await store.set('app', { ...base, replicas: 3 }, { fork: 'staging' })
    await store.set('app', { ...base, replicas: 2 })
    await store.merge('app', { from: 'staging' })
    expect(store.get('app').value).toEqual({ ...base, replicas: 2 })
    // staging still says 3 for replicas: unchanged since the merge, so main keeps 2.
    await store.set('app', { ...base, replicas: 3, image: 'v3' }, { fork: 'staging' })
    const again = await store.merge('app', { from: 'staging', strategy: 'ours' })
    expect(again.conflicts).toEqual([])
    expect(store.get('app').value).toEqual({ ...base, replicas: 2, image: 'v3' })
    // Now staging changes replicas; main has not since the last merge: no conflict, even with ours.
    await store.set('app', { ...base, replicas: 4, image: 'v3' }, { fork: 'staging' })
    const third = await store.merge('app', { from: 'staging', strategy: 'ours' })
    expect(third.conflicts).toEqual([])
    expect(store.get('app').value).toEqual({ ...base, replicas: 4, image: 'v3' })
  })

  it('rejects merges of missing forks and into itself', async () => {
    const store = openStore()
    await store.set('app', base)
    await expectCode(store.merge('app', { from: 'nope' }), 'FORK_NOT_FOUND')
    await expectCode(store.merge('app', { from: 'main' }), 'INVALID_ARGUMENT')
    await expectCode(store.merge('app', { from: 'main', strategy: 'bogus', into: 'x' }), 'INVALID_ARGUMENT')
  })
})

describe('diff', () => {
  it('diffs two revisions and two forks', async () => {
    const store = openStore()
    const a = await store.set('k', { a: 1, b: [1, 2], c: 'x' })
    const b = await store.set('k', { a: 2, b: [1, 2, 3] })
    expect(store.diff('k', { revision: a.revision.id }, { revision: b.revision.id }).changes).toEqual([
      { op: 'change', path: ['a'], before: 1, after: 2 },
      { op: 'add', path: ['b', 2], after: 3 },
      { op: 'remove', path: ['c'], before: 'x' },
    ])
    await store.fork('k', { to: 'f' })
    await store.set('k', { a: 5, b: [1, 2, 3] }, { fork: 'f' })
    expect(store.diff('k', {}, { fork: 'f' }).changes).toEqual([{ op: 'change', path: ['a'], before: 2, after: 5 }])
  })
})

describe('prefix operations', () => {
  it('lists keys by prefix with pagination', async () => {
    const store = openStore()
    for (const key of ['a', 'a/b', 'a/c', 'a/d', 'b/a']) await store.set(key, key)
    const page1 = store.keys({ prefix: 'a/', limit: 2 })
    expect(page1.keys.map((k) => k.key)).toEqual(['a/b', 'a/c'])
    const page2 = store.keys({ prefix: 'a/', limit: 2, after: page1.next! })
    expect(page2.keys.map((k) => k.key)).toEqual(['a/d'])
    expect(page2.next).toBeUndefined()
    expect(store.keys().keys.map((k) => k.key)).toEqual(['a', 'a/b', 'a/c', 'a/d', 'b/a'])
  })

  it('forks and merges every key under a prefix, reporting per key', async () => {
    const store = openStore()
    await store.set('prod/api', { replicas: 2 })
    await store.set('prod/web', { replicas: 1 })
    await store.set('other', 1)
    const progress: number[] = []
    const forked = await store.forkPrefix('prod/', { to: 'staging' }, (done) => progress.push(done))
    expect(forked.results.map((r) => [r.key, r.ok])).toEqual([
      ['prod/api', true],
      ['prod/web', true],
    ])
    expect(progress).toEqual([1, 2])
    await store.set('prod/api', { replicas: 4 }, { fork: 'staging' })
    await store.set('prod/new', { replicas: 9 }, { fork: 'staging' })
    await store.delete('prod/web', { fork: 'staging' })
    const merged = await store.mergePrefix('prod/', { from: 'staging' })
    expect(merged.results.every((r) => r.ok)).toBe(true)
    expect(store.keys({ prefix: 'prod/' }).keys.map((k) => k.key)).toEqual(['prod/api', 'prod/new'])
    expect(store.get('prod/api').value).toEqual({ replicas: 4 })
    expect(store.keys({ fork: 'staging' }).keys.map((k) => k.key)).toEqual(['prod/api', 'prod/new'])
  })
})

describe('bad input', () => {
  it.each([
    ['empty key', () => openStore().set('', 1), 'INVALID_KEY'],
    ['long key', () => openStore().set('k'.repeat(1025), 1), 'INVALID_KEY'],
    ['key with NUL', () => openStore().set('a\u0000b', 1), 'INVALID_KEY'],
    ['key not a string', () => openStore().set(42 as unknown as string, 1), 'INVALID_KEY'],
    ['bad fork', () => openStore().set('k', 1, { fork: 'has space' }), 'INVALID_FORK'],
    ['long fork', () => openStore().set('k', 1, { fork: 'f'.repeat(129) }), 'INVALID_FORK'],
    ['undefined value', () => openStore().set('k', undefined), 'INVALID_VALUE'],
    ['NaN', () => openStore().set('k', { a: NaN }), 'INVALID_VALUE'],
    ['a function', () => openStore().set('k', { a: () => 1 }), 'INVALID_VALUE'],
    ['a Date', () => openStore().set('k', new Date()), 'INVALID_VALUE'],
    ['too deep', () => openStore().set('k', JSON.parse('['.repeat(70) + ']'.repeat(70)) as unknown), 'INVALID_VALUE'],
    ['too large', () => openStore().set('k', 'x'.repeat(2_000_000)), 'VALUE_TOO_LARGE'],
    ['author not a string', () => openStore().set('k', 1, { author: 5 as unknown as string }), 'INVALID_ARGUMENT'],
    ['message too long', () => openStore().set('k', 1, { message: 'm'.repeat(5000) }), 'INVALID_ARGUMENT'],
    ['bad limit', async () => openStore().keys({ limit: 0 }), 'INVALID_ARGUMENT'],
  ])('%s gets its code and writes nothing', async (_name, run, code) => {
    await expectCode(run(), code)
    for (const store of stores) expect(store.keys().keys).toEqual([])
  })

  it('rejects malformed remote revisions one by one and applies the good ones', async () => {
    const a = openStore({ nodeId: 'a' })
    const b = openStore({ nodeId: 'b' })
    await a.set('k', { x: 1 })
    const good = a.revision('k' as never, 'main' as never, a.get('k').revision.id)!
    const result = await b.applyRemote([
      null,
      { ...good, id: 'nonsense' },
      { ...good, id: good.id.replace('.a', '.c'), delta: new Uint8Array([1, 2, 3, 4, 5, 6]) },
      { ...good, kind: 'explode' },
      { ...good, delta: 'not bytes' },
      // The first revision of a fork b does not have: nothing of it may stay.
      { ...good, key: 'fresh', delta: new Uint8Array([1, 0, 5, 200, 7]) },
      good,
    ])
    expect(result.applied.map((r) => r.id)).toEqual([good.id])
    expect(result.rejected.map((r) => r.code).sort()).toEqual(['INVALID_ARGUMENT', 'INVALID_UPDATE', 'INVALID_UPDATE', 'INVALID_UPDATE', 'INVALID_UPDATE', 'INVALID_UPDATE'])
    expect(b.get('k').value).toEqual({ x: 1 })
    expect(b.keys().keys.map((k) => k.key)).toEqual(['k'])
    expect(b.feed(0, 10).map((e) => e.key)).toEqual(['k'])
    await expectCode(() => b.info('fresh'), 'KEY_NOT_FOUND')
  })
})

describe('change feed', () => {
  it('lists every stored revision in commit order, local and remote, and survives reopening', async () => {
    const storage = new MemoryStorage()
    const a = openStore({ storage, nodeId: 'a' })
    const b = openStore({ nodeId: 'b' })
    await a.set('x', 1)
    await a.set('y', 2)
    await b.set('z', 3)
    const remote = b.revision('z' as never, 'main' as never, b.get('z').revision.id)!
    await a.applyRemote([remote])
    await a.delete('x')
    const feed = a.feed(0, 10)
    expect(feed.map((e) => [e.seq, e.key])).toEqual([
      [1, 'x'],
      [2, 'y'],
      [3, 'z'],
      [4, 'x'],
    ])
    expect(a.feed(2, 1).map((e) => e.seq)).toEqual([3])
    expect(a.keyCount()).toBe(2)
    const reopened = openStore({ storage, nodeId: 'a' })
    expect(reopened.feedHead()).toEqual(a.feedHead())
    expect(reopened.keyCount()).toBe(2)
  })
})

describe('reads while writes are in flight', () => {
  it('reads by time while a write that makes a checkpoint is not yet durable', async () => {
    // A disk whose commits land only when released, like a slow fsync.
    const memory = new MemoryStorage()
    let release: () => void = () => {}
    let gate = Promise.resolve()
    const slow = withCommit(memory, async (writes) => {
      await gate
      return memory.commit(writes)
    })
    const store = new VersionedStore({ storage: slow, nodeId: 'n1' as NodeId, now: () => time, checkpointEvery: 4 })
    stores.push(store)
    for (let i = 1; i <= 3; i++) await store.set('k', i)
    gate = new Promise<void>((resolve) => (release = resolve))
    const pending = store.set('k', 4)
    expect(store.get('k', 'main', { at: time + 10 }).value).toBe(3)
    release()
    await pending
    expect(store.get('k', 'main', { at: time + 10 }).value).toBe(4)
  })

  it('builds on a new key whose first revision is not yet durable (its doc is let go until needed)', async () => {
    const memory = new MemoryStorage()
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    const slow = withCommit(memory, async (writes) => {
      await gate
      return memory.commit(writes)
    })
    const store = new VersionedStore({ storage: slow, nodeId: 'n1' as NodeId, now: () => time })
    stores.push(store)
    const source = openStore({ nodeId: 'src' })
    await source.set('r', { a: 1, b: 1 })
    await source.set('r', { a: 2, b: 1 })
    const [first, second] = [...source.revisionIds('r' as never, 'main' as never)].map((id) => source.revision('r' as never, 'main' as never, id)!)
    // Each fork's first revision is pending when its second one comes.
    const writes = [store.set('l', { a: 1, b: 1 }), store.applyRemote([first])]
    await new Promise((resolve) => setImmediate(resolve))
    writes.push(store.set('l', { a: 1, b: 2 }), store.applyRemote([second]))
    await new Promise((resolve) => setImmediate(resolve))
    release()
    await Promise.all(writes)
    expect(store.get('l').value).toEqual({ a: 1, b: 2 })
    expect(store.get('r').value).toEqual({ a: 2, b: 1 })
    expect(store.info('l').revisionCount).toBe(2)
    expect(store.info('r').revisionCount).toBe(2)
    expect(store.history('r', 'main', { values: true }).revisions.map((r) => r.value)).toEqual([{ a: 2, b: 1 }, { a: 1, b: 1 }])
  })

  it('forks the head that writes see, and refuses to fork a deleted key', async () => {
    const store = openStore()
    const first = store.set('k', 1)
    await store.fork('k', { to: 'f' })
    await first
    expect(store.get('k', 'f').value).toBe(1)
    await store.delete('k')
    await expectCode(store.fork('k', { to: 'g' }), 'KEY_NOT_FOUND')
  })
})

describe('feed by time', () => {
  it('finds the first feed position stored at or after a time', async () => {
    const store = openStore()
    const start = time
    for (let i = 0; i < 10; i++) {
      time += 100
      await store.set(`k${i}`, i)
    }
    expect(store.feedSeqAt(0)).toBe(1)
    expect(store.feedSeqAt(start + 100)).toBe(1)
    expect(store.feedSeqAt(start + 101)).toBe(2)
    expect(store.feedSeqAt(start + 550)).toBe(6)
    expect(store.feedSeqAt(start + 5000)).toBe(11)
    expect(store.feed(store.feedSeqAt(start + 550) - 1, 100).map((e) => e.key)).toEqual(['k5', 'k6', 'k7', 'k8', 'k9'])
  })
})

describe('requestId', () => {
  it('answers a retried write with the first revision, here and on a replica', async () => {
    const a = openStore({ nodeId: 'a' })
    const b = openStore({ nodeId: 'b' })
    const first = await a.set('k', { v: 1 }, { requestId: 'req-1' })
    const again = await a.set('k', { v: 1 }, { requestId: 'req-1' })
    expect(again).toMatchObject({ replayed: true, revision: { id: first.revision.id, index: 1 } })
    expect(a.info('k').revisionCount).toBe(1)
    await b.applyRemote([a.revision('k' as never, 'main' as never, first.revision.id)!])
    const onB = await b.set('k', { v: 1 }, { requestId: 'req-1' })
    expect(onB).toMatchObject({ replayed: true, revision: { id: first.revision.id } })
    expect(b.info('k').revisionCount).toBe(1)
    await expectCode(a.set('k', 1, { requestId: '' }), 'INVALID_ARGUMENT')
  })
})

describe('concurrent remote delivery', () => {
  it('stores a revision once when gossip and anti-entropy deliver it at the same time', async () => {
    const a = openStore({ nodeId: 'a' })
    const b = openStore({ nodeId: 'b' })
    await a.set('k', 1)
    await a.set('k', 2)
    const revisions = [...a.revisionIds('k' as never, 'main' as never)].map((id) => a.revision('k' as never, 'main' as never, id)!)
    const [x, y] = await Promise.all([b.applyRemote(revisions), b.applyRemote([...revisions].reverse())])
    expect(x.applied.length + y.applied.length).toBe(2)
    expect(b.info('k').revisionCount).toBe(2)
    expect(b.feed(0, 10)).toHaveLength(2)
  })
})

describe('commit order', () => {
  it('emits events and moves the feed head in seq order when storage commits settle out of order', async () => {
    const memory = new MemoryStorage()
    // The first commit (after the one that opens the feed) settles last.
    let held: (() => void) | undefined
    let commits = 0
    const storage = withCommit(memory, async (writes) => {
      await memory.commit(writes)
      if (++commits === 2) await new Promise<void>((resolve) => (held = resolve))
    })
    const store = new VersionedStore({ storage, nodeId: 'n1' as NodeId, now: () => time })
    stores.push(store)
    const seen: number[] = []
    const heads: number[] = []
    store.subscribe((event) => {
      seen.push(event.seq)
      heads.push(store.feedHead().seq)
    })
    await store.set('a', 1)
    const second = store.set('b', 2)
    try {
      await new Promise((resolve) => setImmediate(resolve))
      await store.set('c', 3)
      // The third write is durable and acknowledged, but its event waits for the second's.
      expect(seen).toEqual([1])
      expect(store.feedHead().seq).toBe(1)
    } finally {
      held?.()
    }
    await second
    await new Promise((resolve) => setImmediate(resolve))
    expect(seen).toEqual([1, 2, 3])
    expect(heads).toEqual([1, 2, 3])
  })
})
