import { open } from 'lmdb'
import type { RangeOptions, RootDatabase } from 'lmdb'
import { assertStorageKey, MAX_KEY_BYTES } from './StorageAdapter.ts'
import type { StorageAdapter, StorageKey, StorageRange, StorageWrite } from './StorageAdapter.ts'

export interface LmdbStorageOptions {
  /** Milliseconds a commit waits for others to join its transaction (lmdb's commitDelay, default 0). */
  readonly commitDelay?: number
}

// Keys are stored as their UTF-8 bytes, which LMDB compares with memcmp: code-point
// order. Not lmdb's default ordered-binary keys: in strings of 64+ UTF-16 units those
// store U+0000-U+0004 unescaped, which breaks the order and reads back as arrays.
const encodeKey = (key: StorageKey): Buffer => Buffer.from(key, 'utf8')
const utf8 = new TextDecoder()
const lowestKey = encodeKey('\u0000')

/** The key's bytes, or undefined for keys LMDB could never hold (it throws on them; they are simply absent). */
function readableKey(key: StorageKey): Buffer | undefined {
  const bytes = encodeKey(key)
  return bytes.length === 0 || bytes.length > MAX_KEY_BYTES ? undefined : bytes
}

/**
 * Storage on LMDB, through lmdb-js with its default durable sync. Commits are lmdb
 * async writes: those queued in one event turn share one write transaction, and
 * a sync covers every transaction committed before it (overlappingSync), so concurrent
 * commits share disk flushes. Each resolves only after its data is fdatasync'ed.
 */
export class LmdbStorage implements StorageAdapter {
  readonly #db: RootDatabase<Buffer, Uint8Array>

  private constructor(db: RootDatabase<Buffer, Uint8Array>) {
    this.#db = db
  }

  /** Opens (creating if needed) the store in directory `path`. */
  static async open(path: string, options: LmdbStorageOptions = {}): Promise<LmdbStorage> {
    const db = open<Buffer, Uint8Array>({
      path,
      noSubdir: false,
      encoding: 'binary',
      keyEncoding: 'binary',
      commitDelay: options.commitDelay ?? 0,
      // A write's promise settles when its transaction is committed (visible);
      // its `flushed` promise when LMDB's overlapping sync has it on disk.
      separateFlushed: true,
    })
    return new LmdbStorage(db)
  }

  get(key: StorageKey): Uint8Array | undefined {
    const bytes = readableKey(key)
    return bytes && this.#db.getBinary(bytes)
  }

  has(key: StorageKey): boolean {
    const bytes = readableKey(key)
    return bytes !== undefined && this.#db.doesExist(bytes)
  }

  range(range: StorageRange): Iterable<readonly [StorageKey, Uint8Array]> {
    return { [Symbol.iterator]: () => this.#entries(range) }
  }

  async commit(writes: readonly StorageWrite[]): Promise<void> {
    for (const write of writes) assertStorageKey(write.key)
    // Async puts and removes queued in one event turn go into one LMDB write
    // transaction (lmdb-js eventTurnBatching), so the commit is atomic; the B-tree
    // work runs on lmdb's writer thread, not this one. The values are copied first:
    // lmdb reads them later, and callers may reuse buffers. LMDB syncs a
    // transaction after committing it (overlappingSync), and one sync covers every
    // transaction committed before it, so concurrent commits share disk flushes.
    let last: Promise<boolean> | undefined
    for (const write of writes) {
      last = write.type === 'put' ? this.#db.put(encodeKey(write.key), Buffer.from(write.value)) : this.#db.remove(encodeKey(write.key))
    }
    if (!last) return
    await last
    // Committed is visible, not yet durable: wait for the transaction's sync too.
    await ((last as Promise<boolean> & { flushed?: PromiseLike<unknown> }).flushed ?? this.#db.flushed)
  }

  sizeBytes(): number {
    const { pageSize, lastPageNumber } = this.#db.getStats() as { pageSize: number; lastPageNumber: number }
    return (lastPageNumber + 1) * pageSize
  }

  close(): Promise<void> {
    return this.#db.close()
  }

  *#entries({ gte, lt, reverse = false, limit }: StorageRange): Generator<[StorageKey, Uint8Array]> {
    if (lt === '') return
    // lmdb ranges run from `start` (inclusive) to `end` (exclusive) in iteration order,
    // so reversed they run from lt down to gte, with the inclusivity flipped.
    const options: RangeOptions = reverse
      ? {
          reverse: true,
          ...(lt === undefined ? {} : { start: encodeKey(lt), exclusiveStart: true }),
          // Never left out: lmdb's default end is U+0000 itself, excluded unless inclusiveEnd.
          end: gte ? encodeKey(gte) : lowestKey,
          inclusiveEnd: true,
        }
      : { ...(gte ? { start: encodeKey(gte) } : {}), ...(lt === undefined ? {} : { end: encodeKey(lt) }) }
    if (limit !== undefined) options.limit = limit
    for (const { key, value } of this.#db.getRange(options)) yield [utf8.decode(key), value]
  }
}
