// The client against one real node process (apps/node/src/main.ts): every op,
// errors with their codes, idempotent writes, and a watch that lives through
// the node being killed and restarted.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCode } from '@weft/core'
import { type NodeProcess, TestCluster } from '../../../test/support/NodeProcess.ts'
import { type WatchEvent, WeftClient, WeftClientError } from '../src/index.ts'

const swarmKey = () => `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`

let cluster: TestCluster
let node: NodeProcess
const clients: WeftClient[] = []

beforeAll(async () => {
  cluster = new TestCluster()
  await cluster.init(swarmKey())
  ;[node] = (await cluster.startNodes(1)) as [NodeProcess]
}, 30_000)

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()))
  await cluster.cleanup()
}, 30_000)

async function connect(options: ConstructorParameters<typeof WeftClient>[1] = {}): Promise<WeftClient> {
  const client = await WeftClient.connect(node.wsUrl, { timeoutMs: 5000, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, ...options })
  clients.push(client)
  return client
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(WeftClientError)
    return (err as WeftClientError).code
  }
  throw new Error('expected a rejection')
}

describe('WeftClient against a real node', () => {
  it('runs every operation with the protocol results and error codes', async () => {
    const c = await connect()
    const pong = await c.ping()
    expect(typeof pong.node).toBe('string')
    expect(Math.abs(pong.time - Date.now())).toBeLessThan(60_000)

    // set / get, by revision, index and time
    const v1 = await c.set('app/api', { image: 'api:1', replicas: 2 }, { author: 'ana', message: 'first', ifHead: null })
    expect(v1).toMatchObject({ key: 'app/api', fork: 'main', revision: { index: 1, kind: 'set', author: 'ana', message: 'first' } })
    expect(await codeOf(c.set('app/api', 0, { ifHead: null }))).toBe(ErrorCode.HEAD_MISMATCH)
    const v2 = await c.set('app/api', { image: 'api:2', replicas: 2 }, { ifHead: v1.revision.id })
    try {
      await c.set('app/api', 0, { ifHead: v1.revision.id })
      expect.unreachable()
    } catch (err) {
      expect((err as WeftClientError).head).toBe(v2.revision.id)
    }
    expect((await c.get('app/api')).value).toEqual({ image: 'api:2', replicas: 2 })
    expect((await c.get('app/api', { index: 1 })).value).toEqual({ image: 'api:1', replicas: 2 })
    expect((await c.get('app/api', { revision: v1.revision.id })).revision.id).toBe(v1.revision.id)
    expect((await c.get('app/api', { at: v2.revision.ts + 1 })).revision.id).toBe(v2.revision.id)
    expect(await codeOf(c.get('app/api', { index: 99 }))).toBe(ErrorCode.REVISION_NOT_FOUND)
    expect(await codeOf(c.get('nope'))).toBe(ErrorCode.KEY_NOT_FOUND)
    expect(await codeOf(c.get(''))).toBe(ErrorCode.INVALID_KEY)
    const bytes = await c.set('app/blob', new Uint8Array([0, 255, 7]))
    expect(new Uint8Array((await c.get('app/blob', { revision: bytes.revision.id })).value as Uint8Array)).toEqual(new Uint8Array([0, 255, 7]))

    // a write retried with the same requestId is applied once
    const first = await c.set('app/web', { image: 'web:1' }, { requestId: 'retry-1' })
    const again = await c.set('app/web', { image: 'web:1' }, { requestId: 'retry-1' })
    expect(again.revision.id).toBe(first.revision.id)
    expect((await c.info('app/web')).revisionCount).toBe(1)

    // delete
    await c.set('app/tmp', 'x')
    const deleted = await c.delete('app/tmp', { message: 'bye' })
    expect(deleted.revision.kind).toBe('delete')
    expect(await codeOf(c.get('app/tmp'))).toBe(ErrorCode.KEY_NOT_FOUND)
    expect(await codeOf(c.delete('app/tmp'))).toBe(ErrorCode.KEY_NOT_FOUND)
    expect((await c.get('app/tmp', { index: 2 })).deleted).toBe(true)

    // keys, paged
    const page = await c.keys({ prefix: 'app/', limit: 2 })
    expect(page.keys.map((k) => k.key)).toEqual(['app/api', 'app/blob'])
    expect(page.next).toBeDefined()
    const all: string[] = []
    for await (const entry of c.scanKeys({ prefix: 'app/', limit: 1 })) all.push(entry.key)
    expect(all).toEqual(['app/api', 'app/blob', 'app/web'])

    // history, info, diff
    const history = await c.history('app/api', { values: true, patches: true })
    expect(history.revisions.map((r) => r.index)).toEqual([2, 1])
    expect(history.revisions[0]).toMatchObject({ value: { image: 'api:2', replicas: 2 }, patch: [{ op: 'change', path: ['image'], before: 'api:1', after: 'api:2' }] })
    const scanned: number[] = []
    for await (const entry of c.scanHistory('app/api', { limit: 1 })) scanned.push(entry.index)
    expect(scanned).toEqual([2, 1])
    const info = await c.info('app/api')
    expect(info).toMatchObject({ key: 'app/api', fork: 'main', revisionCount: 2, deleted: false, head: { id: v2.revision.id } })
    expect(info.forks.map((f) => f.fork)).toEqual(['main'])
    const diff = await c.diff('app/api', { index: 1 }, {})
    expect(diff.changes).toEqual([{ op: 'change', path: ['image'], before: 'api:1', after: 'api:2' }])

    // revert
    const reverted = await c.revert('app/api', { index: 1, message: 'rollback' })
    expect(reverted.revision).toMatchObject({ kind: 'revert', index: 3, from: { fork: 'main', revision: v1.revision.id } })
    expect((await c.get('app/api')).value).toEqual({ image: 'api:1', replicas: 2 })
    expect(await codeOf(c.revert('app/api', {}))).toBe(ErrorCode.INVALID_ARGUMENT)

    // fork, merge (crdt with a conflict, fail), prefix variants
    const forked = await c.fork('app/api', 'staging', { index: 2 })
    expect(forked).toMatchObject({ key: 'app/api', fork: 'staging', revision: { kind: 'fork' } })
    expect(await codeOf(c.fork('app/api', 'staging'))).toBe(ErrorCode.FORK_EXISTS)
    expect((await c.get('app/api', { fork: 'staging' })).value).toEqual({ image: 'api:2', replicas: 2 })
    await c.set('app/api', { image: 'api:3', replicas: 2 }, { fork: 'staging' })
    await c.set('app/api', { image: 'api:1', replicas: 5 })
    const failed = c.merge('app/api', 'staging', { strategy: 'fail' })
    await expect(failed).rejects.toMatchObject({ code: ErrorCode.MERGE_CONFLICT })
    const conflictErr = (await failed.catch((err: unknown) => err)) as WeftClientError
    expect(conflictErr.conflicts?.map((x) => x.path)).toEqual([['image']])
    const merged = await c.merge('app/api', 'staging', { strategy: 'theirs', message: 'promote' })
    expect(merged.revision.kind).toBe('merge')
    expect(merged.conflicts).toHaveLength(1)
    expect((await c.get('app/api')).value).toEqual({ image: 'api:3', replicas: 5 })
    expect(await codeOf(c.merge('app/api', 'nowhere'))).toBe(ErrorCode.FORK_NOT_FOUND)

    const forkedAll = await c.forkPrefix('app/', 'canary')
    expect(forkedAll.results.map((r) => [r.key, r.ok])).toEqual([
      ['app/api', true],
      ['app/blob', true],
      ['app/web', true],
    ])
    await c.set('app/web', { image: 'web:2' }, { fork: 'canary' })
    const mergedAll = await c.mergePrefix('app/', 'canary')
    expect(mergedAll.results.every((r) => r.ok)).toBe(true)
    expect((await c.get('app/web')).value).toEqual({ image: 'web:2' })

    // members
    const members = await c.members()
    expect(members.node).toBe(pong.node)
    expect(members.members).toHaveLength(1)
    expect(members.members[0]).toMatchObject({ state: 'alive', self: true })
    expect(typeof members.members[0]!.feedSeq).toBe('number')

    // bad params from the typed surface still come back as codes
    expect(await codeOf(c.keys({ limit: 5000 }))).toBe(ErrorCode.INVALID_ARGUMENT)
    expect(await codeOf(c.set('k', 1, { fork: 'bad fork!' }))).toBe(ErrorCode.INVALID_FORK)
  }, 60_000)

  it('watches a prefix through a node crash and restart: every write once, in order', async () => {
    const states: string[] = []
    const writer = await connect()
    const reader = await connect({ onConnectionChange: (change) => states.push(change.state) })
    const watch = await reader.watch({ prefix: 'live/' })
    const received: WatchEvent[] = []
    const done = (async () => {
      for await (const event of watch) {
        received.push(event)
        if (received.length === 40) break
      }
    })()
    for (let i = 1; i <= 20; i++) await writer.set(`live/${i % 3}`, i)
    // Killed mid-stream; writes made while it is down wait for it to come back.
    await node.stop('SIGKILL')
    const whileDown = Array.from({ length: 5 }, (_, j) => writer.set(`live/${j % 3}`, 21 + j, { timeoutMs: 30_000 }))
    await node.start()
    await Promise.all(whileDown)
    for (let i = 26; i <= 40; i++) await writer.set(`live/${i % 3}`, i)
    await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${received.length} events`)), 20_000))])
    expect(received.map((e) => e.value)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
    expect(new Set(received.map((e) => e.revision.id)).size).toBe(40)
    expect(states).toContain('reconnecting')
    expect(states.at(-1)).toBe('open')
  }, 60_000)
})
