// The victim of crash.test.ts, run as its own process: `crashStoreWriter.ts <dir> <run>`.
// Writes forever through a VersionedStore on LmdbStorage from concurrent writers and
// prints one JSON line per operation only after its promise resolved, so every printed
// line is a promise that the write is durable.
import { fileURLToPath } from 'node:url'
import { ErrorCode, type NodeId, type RevisionRef, isWeftError } from '@weft/core'
import { LmdbStorage } from '../../src/storage/LmdbStorage.ts'
import { VersionedStore } from '../../src/store/VersionedStore.ts'

export const WRITERS = 20
export const NODE_ID = 'crash' as NodeId
/** Keys every writer of every run keeps writing: `hot/0` .. `hot/4`. */
export const HOT_KEYS = Array.from({ length: 5 }, (_, i) => `hot/${i}`)
/** Small, so histories cross many checkpoints and reads at a revision start from one. */
export const CHECKPOINT_EVERY = 16

/** One acknowledged operation, as printed. */
export interface Ack {
  readonly op: 'set' | 'delete' | 'fork'
  readonly key: string
  readonly fork: string
  readonly id: string
  /** The index the store reported when it acknowledged. */
  readonly index: number
  readonly message: string
  /** What was set (set only). */
  readonly value?: unknown
  /** Where the fork was made from (fork only). */
  readonly from?: RevisionRef
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!

/** A structured value: nesting, lists, unicode, numbers JSON keeps exactly (so never -0). */
function hotValue(writer: number, seq: number, run: string): unknown {
  const list = Array.from({ length: Math.floor(Math.random() * 7) }, (_, i) =>
    pick<unknown>([i, -(i + 1) * 1.25, `w${writer}·${seq}·${i} ✓`, null, i % 2 === 0, [i, { deep: [seq, 'é'] }], { i, at: seq / 3 }]),
  )
  return { writer, seq, run, list, ...(seq % 3 === 0 && { extra: { big: Number.MAX_SAFE_INTEGER - seq, neg: -seq - 1 } }) }
}

function keyValue(writer: number, seq: number, run: string): unknown {
  // Now and then a value that spans many LMDB pages, so kills also land inside big commits.
  const text = seq % 25 === 7 ? 'weft ünïcode ✓ '.repeat(4000) : `run${run} writer${writer} seq${seq}`
  return pick<unknown>([{ text, seq }, [text, seq, { writer }], text, seq * 1000 + writer, { nested: { text, list: [] as unknown[] } }])
}

/** The forks of `key`; none while no write to it was durable. */
function forksOf(store: VersionedStore, key: string): string[] {
  try {
    return store.info(key).forks.map((f) => f.fork)
  } catch (err) {
    if (isWeftError(err, ErrorCode.KEY_NOT_FOUND)) return []
    throw err
  }
}

async function main(path: string, run: string): Promise<void> {
  // Never outlive a test that forgot us.
  setTimeout(() => process.exit(3), 15_000).unref()
  const storage = await LmdbStorage.open(path)
  const store = new VersionedStore({ storage, nodeId: NODE_ID, checkpointEvery: CHECKPOINT_EVERY })
  let forks = 0
  // Keys and forks earlier (killed) runs made, dealt out to the writers: writing to them
  // loads fork state that a crashed process left behind.
  const earlier: { key: string; fork: string; deleted: boolean }[] = []
  for (const key of HOT_KEYS) {
    for (const fork of forksOf(store, key)) if (fork !== 'main') earlier.push({ key, fork, deleted: store.info(key, fork).deleted })
  }
  for (const { key } of store.keys({ prefix: 'run', limit: 1000 }).keys) earlier.push({ key, fork: 'main', deleted: false })
  const ack = (line: Ack): void => {
    // Synchronous on Linux pipes: once write returns, the line is the kernel's.
    process.stdout.write(`${JSON.stringify(line)}\n`)
  }

  const writer = async (writer: number): Promise<never> => {
    /** Key/fork pairs only this writer writes: its share of earlier runs' and those it made. */
    const own = earlier.filter((_, i) => i % WRITERS === writer)
    for (let seq = 0; ; seq++) {
      const message = `run${run}/w${writer}/${seq}`
      const dice = Math.random()
      const live = own.filter((t) => !t.deleted)
      // Only a hot key's main may be missing: deleted by another writer, or not yet durably written.
      let mayBeMissing = false
      try {
        if (dice < 0.35 || (dice >= 0.6 && live.length === 0)) {
          const key = pick(HOT_KEYS)
          const value = hotValue(writer, seq, run)
          const { revision } = await store.set(key, value, { message })
          ack({ op: 'set', key, fork: 'main', id: revision.id, index: revision.index, message, value })
        } else if (dice < 0.6) {
          const key = `run${run}/w${writer}/${seq % 4 === 0 ? 'ключ-' : ''}${seq}`
          const value = keyValue(writer, seq, run)
          const { revision } = await store.set(key, value, { message })
          own.push({ key, fork: 'main', deleted: false })
          ack({ op: 'set', key, fork: 'main', id: revision.id, index: revision.index, message, value })
        } else if (dice < 0.78) {
          const target = pick(live)
          const value = keyValue(writer, seq, run)
          const { revision } = await store.set(target.key, value, { fork: target.fork, message })
          ack({ op: 'set', key: target.key, fork: target.fork, id: revision.id, index: revision.index, message, value })
        } else if (dice < 0.86) {
          // Mostly own keys; sometimes a hot key, which may already be deleted (then not acknowledged).
          const target = dice < 0.83 ? pick(live) : { key: pick(HOT_KEYS), fork: 'main', deleted: false }
          mayBeMissing = target.fork === 'main' && HOT_KEYS.includes(target.key)
          const { revision } = await store.delete(target.key, { fork: target.fork, message })
          target.deleted = true
          ack({ op: 'delete', key: target.key, fork: target.fork, id: revision.id, index: revision.index, message })
        } else {
          // A fork of a hot key or of an own key; forking a deleted head is refused (KEY_NOT_FOUND).
          const key = dice < 0.93 ? pick(HOT_KEYS) : pick(own.filter((t) => t.fork === 'main').map((t) => t.key).concat(HOT_KEYS))
          mayBeMissing = HOT_KEYS.includes(key) || own.some((t) => t.key === key && t.fork === 'main' && t.deleted)
          const to = `f-${run}-${++forks}`
          const { revision } = await store.fork(key, { to, message })
          if (revision.from === undefined) throw new Error(`fork ${to} of ${key} acknowledged without from`)
          own.push({ key, fork: to, deleted: false })
          ack({ op: 'fork', key, fork: to, id: revision.id, index: revision.index, message, from: revision.from })
        }
      } catch (err) {
        if (!(mayBeMissing && isWeftError(err, ErrorCode.KEY_NOT_FOUND))) throw err
      }
    }
  }
  await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)))
}

const [, script, path, run] = process.argv
if (script === fileURLToPath(import.meta.url)) {
  if (path === undefined || run === undefined) throw new Error('usage: crashStoreWriter.ts <dir> <run>')
  await main(path, run)
}
