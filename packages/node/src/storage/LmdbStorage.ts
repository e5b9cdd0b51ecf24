import { join } from 'node:path'
import { open } from 'lmdb'
import type { RangeOptions, RootDatabase } from 'lmdb'
import { PendingWrites } from './PendingWrites.ts'
import { assertStorageKey, MAX_KEY_BYTES } from './StorageAdapter.ts'
import type { StorageAdapter, StorageKey, StorageRange, StorageWrite } from './StorageAdapter.ts'
import { WriteAheadLog } from './WriteAheadLog.ts'

export interface LmdbStorageOptions {
  /** Milliseconds a commit waits for others to join its transaction (lmdb's commitDelay, default 0). */
  readonly commitDelay?: number
  /** Size at which the write-ahead log starts a new segment file. */
  readonly walSegmentBytes?: number
  /**
   * For tests: hold each commit back from LMDB this many ms after it is logged,
   * so a crash can land between the two (as when LMDB falls behind its log).
   */
  readonly lmdbLagMs?: number
}

// Keys are stored as their UTF-8 bytes, which LMDB compares with memcmp: code-point
// order. Not lmdb's default ordered-binary keys: in strings of 64+ UTF-16 units those
// store U+0000-U+0004 unescaped, which breaks the order and reads back as arrays.
const encodeKey = (key: StorageKey): Buffer => Buffer.from(key, 'utf8')
const utf8 = new TextDecoder()
const lowestKey = encodeKey('\u0000')
/** A write whose value this storage owns (a copy lmdb may read later). */
type OwnedWrite = { readonly type: 'put'; readonly key: StorageKey; readonly value: Buffer } | { readonly type: 'del'; readonly key: StorageKey }
/** Commits applied to LMDB but not yet flushed there, beyond which a commit also waits for LMDB. */
const MAX_UNFLUSHED_COMMITS = 256

/**
 * Storage on LMDB, through lmdb-js with its default durable sync, behind a
 * write-ahead log. A commit is appended to the log and acknowledged once the log
 * is fdatasync'ed (one sequential write, shared by the commits of a sync); it is
 * queued to LMDB at the same time (async puts: one LMDB transaction per event
 * turn, the B-tree work on lmdb's writer thread, LMDB syncing on its own pace).
 * Until LMDB has flushed a commit, its writes are served from memory (`#pending`),
 * so reads see every acknowledged commit. Opening replays the log into LMDB, so a
 * crash loses nothing acknowledged.
 */
export class LmdbStorage implements StorageAdapter {
  readonly #db: RootDatabase<Buffer, Uint8Array>
  readonly #wal: WriteAheadLog
  readonly #pending = new PendingWrites()
  #unflushed = 0
  #lastFlush: Promise<unknown> = Promise.resolve()
  #failure: Error | undefined
  readonly #lagMs: number

  private constructor(db: RootDatabase<Buffer, Uint8Array>, wal: WriteAheadLog, lagMs: number) {
    this.#db = db
    this.#wal = wal
    this.#lagMs = lagMs
  }

  /** Opens (creating if needed) the store in directory `path`, replaying its write-ahead log. */
  static async open(path: string, options: LmdbStorageOptions = {}): Promise<LmdbStorage> {
    const db = open<Buffer, Uint8Array>({
      path,
      noSubdir: false,
      encoding: 'binary',
      keyEncoding: 'binary',
      commitDelay: options.commitDelay ?? 0,
    })
    try {
      const walDir = join(path, 'wal')
      const commits = await WriteAheadLog.recover(walDir)
      if (commits.length > 0) {
        // One synchronous, flushed transaction: after it the log may go.
        db.transactionSync(() => {
          for (const { writes } of commits) {
            for (const write of writes) {
              if (write.type === 'put') db.putSync(encodeKey(write.key), Buffer.from(write.value))
              else db.removeSync(encodeKey(write.key))
            }
          }
        })
      }
      const wal = await WriteAheadLog.create(walDir, (commits.at(-1)?.seq ?? 0) + 1, {
        ...(options.walSegmentBytes !== undefined && { segmentBytes: options.walSegmentBytes }),
      })
      return new LmdbStorage(db, wal, options.lmdbLagMs ?? 0)
    } catch (err) {
      await db.close()
      throw err
    }
  }

  get(key: StorageKey): Uint8Array | undefined {
    const held = this.#pending.get(key)
    // A copy (Buffer#slice would be a view), so callers cannot change what is held.
    if (held) return held.value === null ? undefined : new Uint8Array(held.value)
    const bytes = encodeKey(key)
    // LMDB throws on keys it could never hold; they are simply absent.
    if (bytes.length === 0 || bytes.length > MAX_KEY_BYTES) return undefined
    return this.#db.getBinary(bytes)
  }

  range(range: StorageRange): Iterable<readonly [StorageKey, Uint8Array]> {
    return { [Symbol.iterator]: () => this.#entries(range) }
  }

  async commit(writes: readonly StorageWrite[]): Promise<void> {
    for (const write of writes) assertStorageKey(write.key)
    if (this.#failure) throw this.#failure
    if (writes.length === 0) return
    // Copied once: callers may reuse their buffers, and lmdb reads them later.
    const copies = writes.map((write): OwnedWrite => (write.type === 'put' ? { type: 'put', key: write.key, value: Buffer.from(write.value) } : write))
    const { seq, durable } = this.#wal.append(copies)
    this.#pending.hold(copies, seq)
    this.#unflushed++
    const applied = this.#lagMs > 0 ? new Promise((resolve) => setTimeout(resolve, this.#lagMs)).then(() => this.#apply(copies)) : this.#apply(copies)
    const flushed = applied.then(
      () => this.#flushed(copies, seq),
      (err: unknown) => {
        this.#failure ??= new Error(`LMDB commit failed: ${(err as Error)?.message ?? String(err)}`)
        throw this.#failure
      },
    )
    this.#lastFlush = flushed.catch(() => {})
    // Memory is bounded: with LMDB far behind, commits wait for it too.
    await (this.#unflushed > MAX_UNFLUSHED_COMMITS ? Promise.all([durable, flushed]) : durable)
  }

  // Async puts and removes queued in one event turn go into one LMDB write
  // transaction (lmdb-js eventTurnBatching), so LMDB applies the commit whole. The
  // last one settles once that transaction is committed and flushed.
  #apply(writes: readonly OwnedWrite[]): Promise<boolean> {
    let last: Promise<boolean> | undefined
    for (const write of writes) {
      last = write.type === 'put' ? this.#db.put(encodeKey(write.key), write.value) : this.#db.remove(encodeKey(write.key))
    }
    return last!
  }

  sizeBytes(): number {
    const { pageSize, lastPageNumber } = this.#db.getStats() as { pageSize: number; lastPageNumber: number }
    return (lastPageNumber + 1) * pageSize
  }

  async close(): Promise<void> {
    await this.#lastFlush
    await this.#wal.close()
    await this.#db.close()
  }

  // LMDB holds commit `seq` on disk now: its writes leave memory unless a later commit replaced them.
  #flushed(writes: readonly StorageWrite[], seq: number): void {
    this.#unflushed--
    this.#pending.release(writes, seq)
    this.#wal.release(seq)
  }

  *#entries(range: StorageRange): Generator<readonly [StorageKey, Uint8Array], void, undefined> {
    yield* this.#pending.merge(range, (bounds) => this.#stored(bounds))
  }

  *#stored({ gte, lt, reverse = false, limit }: StorageRange): Generator<readonly [StorageKey, Uint8Array], void, undefined> {
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
