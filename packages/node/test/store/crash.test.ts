// Durability of the versioned store under process crashes: a writer process doing
// acknowledged sets, deletes and forks through VersionedStore on LmdbStorage is SIGKILLed
// again and again on one directory; afterwards every operation it acknowledged must be
// in its fork's history, reading back exactly what was written, with gap-free indexes.
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { afterEach, expect, it } from 'vitest'
import { LmdbStorage } from '../../src/storage/LmdbStorage.ts'
import { type HistoryEntry, VersionedStore } from '../../src/store/VersionedStore.ts'
import { decodeCheckpoint, decodeIndex } from '../../src/store/records.ts'
import { type Ack, CHECKPOINT_EVERY, HOT_KEYS, NODE_ID } from './crashStoreWriter.ts'
import { runUntilKilled } from '../support/killLoop.ts'

const RUNS = 24
/** Every EARLY_EVERYth run is killed at a random moment after spawn, maybe while opening. */
const EARLY_EVERY = 6
const writerScript = fileURLToPath(new URL('./crashStoreWriter.ts', import.meta.url))

const children = new Set<ChildProcess>()
const stores: VersionedStore[] = []
let dir: string | undefined

afterEach(async () => {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
  }
  children.clear()
  await Promise.allSettled(stores.splice(0).map((store) => store.close()))
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  dir = undefined
})

function track(store: VersionedStore): VersionedStore {
  stores.push(store)
  return store
}

it(`keeps every acknowledged VersionedStore write through ${RUNS} SIGKILLs`, async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-store-crash-'))
  const acks: Ack[] = []
  let killedAfterAck = 0
  for (let run = 0; run < RUNS; run++) {
    const early = run % EARLY_EVERY === EARLY_EVERY - 1
    // Kill anywhere from the first acknowledgement to well into the stream; or, early, from spawn on.
    const lines = await runUntilKilled(writerScript, [dir, String(run)], children, early ? { sinceSpawnMs: Math.random() * 600 } : { sinceAckMs: Math.random() * 400 })
    if (!early) killedAfterAck++
    acks.push(...lines.map((line) => JSON.parse(line) as Ack))
  }
  expect(killedAfterAck).toBeGreaterThanOrEqual(20)
  expect(acks.length).toBeGreaterThanOrEqual(killedAfterAck)

  const storage = await LmdbStorage.open(dir)
  const store = track(new VersionedStore({ storage, nodeId: NODE_ID }))
  const problems: string[] = []

  // 1. Each acknowledged operation reads back at its revision, exactly as written.
  for (const ack of acks) {
    const at = `${ack.op} ${ack.key}@${ack.fork} ${ack.id}`
    try {
      const read = store.get(ack.key, ack.fork, { revision: ack.id })
      if (read.revision.id !== ack.id || read.revision.index !== ack.index || read.revision.kind !== ack.op || read.revision.message !== ack.message) {
        problems.push(`${at}: read back as ${JSON.stringify(read.revision)}, acknowledged index ${ack.index}`)
      }
      const expected = expectedRead(store, ack)
      if (read.deleted !== expected.deleted || !isEqual(read.value, expected.value)) {
        problems.push(`${at}: reads ${JSON.stringify(read.value)} (deleted ${read.deleted}), expected ${JSON.stringify(expected.value)}`)
      }
      if (ack.op === 'fork' && !isEqual(read.revision.from, ack.from)) problems.push(`${at}: from ${JSON.stringify(read.revision.from)}, expected ${JSON.stringify(ack.from)}`)
      const byIndex = store.get(ack.key, ack.fork, { index: ack.index })
      if (byIndex.revision.id !== ack.id) problems.push(`${at}: index ${ack.index} is ${byIndex.revision.id}`)
    } catch (err) {
      problems.push(`${at}: ${String(err)}`)
    }
  }

  // 2. Every fork in the store, acknowledged or cut off, is whole: the head record, the fork
  //    record, the revisions and the checkpoints agree; history indexes run n..1 without gaps
  //    in id order; each acknowledged revision is there exactly once, at its index.
  const byFork = new Map<string, Ack[]>()
  for (const ack of acks) byFork.set(forkId(ack.key, ack.fork), [...(byFork.get(forkId(ack.key, ack.fork)) ?? []), ack])
  const layout = scanLayout(storage)
  for (const id of byFork.keys()) if (!layout.forks.has(id)) problems.push(`${id.replace('\u0000', '@')}: acknowledged, but no such fork`)
  for (const [id, records] of layout.forks) {
    const [key, fork] = id.split('\u0000') as [string, string]
    problems.push(...checkFork(store, key, fork, records, byFork.get(id) ?? []))
  }
  for (const key of HOT_KEYS) {
    const listed = store.info(key).forks.map((f) => f.fork).sort()
    const stored = [...layout.forks.keys()].filter((id) => id.startsWith(`${key}\u0000`)).map((id) => id.split('\u0000')[1]!).sort()
    if (!isEqual(listed, stored)) problems.push(`${key}: info lists forks ${listed.join()}, storage holds ${stored.join()}`)
  }

  expect(problems.slice(0, 20), `${problems.length} problems over ${acks.length} acknowledged operations`).toEqual([])
  for (const key of HOT_KEYS) expect(acks.filter((ack) => ack.key === key && ack.fork === 'main').length, key).toBeGreaterThan(0)
  expect(layout.forks.size).toBeGreaterThanOrEqual(byFork.size)

  // 3. After the last crash the store takes new writes, continuing each history in order.
  const hot = HOT_KEYS[0]!
  const before = store.info(hot)
  const written = await store.set(hot, { after: 'crash', list: [1, 2, 3] }, { message: 'after the crashes' })
  expect(written.revision.index).toBe(before.revisionCount + 1)
  // The clock survived the crashes: the new revision sorts after every stored one, acknowledged or not.
  expect(written.revision.id > layout.maxRevisionId, `${written.revision.id} sorts after ${layout.maxRevisionId}`).toBe(true)
  const fresh = await store.set('after/crash', { ok: true })
  const forked = await store.fork(hot, { to: 'after-crash' })
  await store.close()

  const reopened = track(new VersionedStore({ storage: await LmdbStorage.open(dir), nodeId: NODE_ID }))
  expect(reopened.get(hot)).toMatchObject({ value: { after: 'crash', list: [1, 2, 3] }, revision: { id: written.revision.id, index: before.revisionCount + 1 } })
  expect(reopened.get('after/crash')).toMatchObject({ value: { ok: true }, revision: { id: fresh.revision.id, index: 1 } })
  expect(reopened.get(hot, 'after-crash')).toMatchObject({ value: { after: 'crash' }, revision: { id: forked.revision.id, kind: 'fork' } })
}, 120_000)

/** What reading an acknowledged revision must give. */
function expectedRead(store: VersionedStore, ack: Ack): { deleted: boolean; value?: unknown } {
  if (ack.op === 'set') return { deleted: false, value: ack.value }
  if (ack.op === 'delete') return { deleted: true }
  // A fork starts as its origin was at the revision it was made from.
  const origin = store.get(ack.key, ack.from!.fork, { revision: ack.from!.revision })
  return { deleted: origin.deleted, value: origin.value }
}

/** What the raw storage holds for one fork of a key. */
interface ForkRecords {
  head: boolean
  forkRecord: boolean
  revisions: number
  /** Checkpoint id to the index its state and its index entry record. */
  checkpoints: Map<string, { state?: number; entry?: number }>
}

const forkId = (key: string, fork: string): string => `${key}\u0000${fork}`

/**
 * Every fork in storage, from one scan of the raw records (layout of StoreLayout.ts: parts
 * separated by NUL: `v fork key` head, `f key fork` fork record, `r key fork id` revision,
 * `c key fork id` checkpoint and `k key fork id` its index entry).
 */
function scanLayout(storage: LmdbStorage): { forks: Map<string, ForkRecords>; maxRevisionId: string } {
  const forks = new Map<string, ForkRecords>()
  let maxRevisionId = ''
  const of = (key: string | undefined, fork: string | undefined): ForkRecords => {
    const id = forkId(key ?? '?', fork ?? '?')
    let records = forks.get(id)
    if (records === undefined) forks.set(id, (records = { head: false, forkRecord: false, revisions: 0, checkpoints: new Map() }))
    return records
  }
  for (const [storageKey, bytes] of storage.range({})) {
    const [kind, a, b, c] = storageKey.split('\u0000')
    if (kind === 'v') of(b, a).head = true
    else if (kind === 'f') of(a, b).forkRecord = true
    else if (kind === 'r') {
      of(a, b).revisions++
      if (c !== undefined && c > maxRevisionId) maxRevisionId = c
    } else if (kind === 'c' || kind === 'k') {
      const checkpoints = of(a, b).checkpoints
      const entry = checkpoints.get(c ?? '?') ?? {}
      if (kind === 'c') entry.state = decodeCheckpoint(bytes).index
      else entry.entry = decodeIndex(bytes)
      checkpoints.set(c ?? '?', entry)
    }
  }
  return { forks, maxRevisionId }
}

/** Problems with one fork's whole history, read paged, against its raw records and what was acknowledged on it. */
function checkFork(store: VersionedStore, key: string, fork: string, records: ForkRecords, acked: Ack[]): string[] {
  const at = `${key}@${fork}`
  if (!records.head || !records.forkRecord || records.revisions === 0) {
    return [`${at}: half a fork in storage (head ${records.head}, fork record ${records.forkRecord}, ${records.revisions} revisions)`]
  }
  const problems: string[] = []
  const info = store.info(key, fork)
  const history: HistoryEntry[] = []
  let before: string | undefined
  for (let page = 0; ; page++) {
    // An odd page size, so pages start at and between checkpoints.
    const { revisions, next } = store.history(key, fork, { limit: 37, values: true, ...(before !== undefined && { before }) })
    history.push(...revisions)
    if (next === undefined) break
    before = next
    if (page > 10_000) return [`${at}: history paging does not end`]
  }
  const n = history.length
  if (n !== info.revisionCount || n !== records.revisions) problems.push(`${at}: ${n} revisions in history, ${records.revisions} stored, head record counts ${info.revisionCount}`)
  history.forEach((entry, i) => {
    if (entry.index !== n - i) problems.push(`${at}: entry ${i} of ${n} has index ${entry.index}`)
    const older = history[i + 1]
    if (older !== undefined && !(older.id < entry.id)) problems.push(`${at}: ${older.id} is listed before ${entry.id}`)
  })
  const top = history[0]
  if (top !== undefined) {
    if (top.id !== info.head.id) problems.push(`${at}: head record says ${info.head.id}, history ends at ${top.id}`)
    if (top.deleted !== info.deleted) problems.push(`${at}: head record deleted=${info.deleted}, replay deleted=${top.deleted}`)
    if (!info.deleted && !isEqual(store.get(key, fork).value, top.value)) problems.push(`${at}: materialized head differs from the replayed one`)
  }
  const byId = new Map<string, HistoryEntry[]>()
  for (const entry of history) byId.set(entry.id, [...(byId.get(entry.id) ?? []), entry])
  // The writer checkpoints every CHECKPOINT_EVERY revisions, counting on across its restarts.
  const indexes = [...records.checkpoints.values()].map((c) => c.state ?? c.entry ?? 0).sort((x, y) => x - y)
  const expected = Array.from({ length: Math.floor(n / CHECKPOINT_EVERY) }, (_, i) => (i + 1) * CHECKPOINT_EVERY)
  if (!isEqual(indexes, expected)) problems.push(`${at}: checkpoints at ${indexes.join()} of ${n}, expected ${expected.join()}`)
  for (const [id, { state, entry }] of records.checkpoints) {
    const index = byId.get(id)?.[0]?.index
    if (index === undefined || state !== index || entry !== index) problems.push(`${at}: checkpoint ${id} records index ${state}/${entry}, revision is at ${index}`)
  }
  for (const ack of acked) {
    const found = byId.get(ack.id) ?? []
    if (found.length !== 1) {
      problems.push(`${at}: acknowledged ${ack.op} ${ack.id} is in history ${found.length} times`)
      continue
    }
    const entry = found[0]!
    if (entry.index !== ack.index) problems.push(`${at}: ${ack.id} acknowledged as index ${ack.index}, history has ${entry.index}`)
    if (ack.op === 'set' && (entry.deleted !== false || !isEqual(entry.value, ack.value))) problems.push(`${at}: history value of ${ack.id} is ${JSON.stringify(entry.value)}`)
    if (ack.op === 'delete' && entry.deleted !== true) problems.push(`${at}: history has delete ${ack.id} not deleted`)
  }
  return problems
}

function isEqual(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(a, b)
}
