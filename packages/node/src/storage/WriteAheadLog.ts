// An append-only log of commits in a directory, so a commit is durable after one
// sequential write and one fdatasync, instead of after a B-tree's scattered page
// writes and syncs. LmdbStorage logs each commit here, acknowledges it once the
// log is synced, and applies it to LMDB behind; once LMDB has flushed a commit,
// its record is no longer needed, and whole segments of such records are deleted.
//
// The log is a series of segment files `wal-<first seq, 16 hex digits>.log`, each a
// series of records:
//
//   u32 magic "WAL1" | u32 payload length | u32 crc32 of the payload | payload
//   payload: f64 seq | u32 write count | per write: u8 type (1 put, 2 del),
//            u32 key length, key (UTF-8), and for a put: u32 value length, value
//
// all little-endian. A crash can only tear the tail of the last segment (a record
// whose write was never acknowledged); reading stops there. A bad record anywhere
// else means the disk lost acknowledged data, and opening fails.
import { type FileHandle, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import type { StorageWrite } from './StorageAdapter.ts'

const MAGIC = 0x314c4157 // "WAL1"
const HEADER_BYTES = 12
const PUT = 1
const DEL = 2
/** A segment is closed, and a new one begun, once it grows past this. */
const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024
const SEGMENT_NAME = /^wal-([0-9a-f]{16})\.log$/

export interface WalOptions {
  readonly segmentBytes?: number
}

export interface RecoveredCommit {
  readonly seq: number
  readonly writes: StorageWrite[]
}

interface Segment {
  readonly path: string
  readonly firstSeq: number
  lastSeq: number
}

interface Pending {
  readonly seq: number
  readonly record: Buffer
  readonly resolve: () => void
  readonly reject: (err: Error) => void
}

export class WalCorruptError extends Error {}

export class WriteAheadLog {
  readonly #dir: string
  readonly #segmentBytes: number
  /** Closed segments, oldest first, then the open one last. */
  readonly #segments: Segment[] = []
  #file: FileHandle
  #fileBytes = 0
  #seq: number
  #released = 0
  #queue: Pending[] = []
  #draining: Promise<void> | undefined
  #failure: Error | undefined
  #closed = false

  private constructor(dir: string, file: FileHandle, segment: Segment, options: WalOptions) {
    this.#dir = dir
    this.#file = file
    this.#segments.push(segment)
    this.#seq = segment.firstSeq - 1
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
  }

  /**
   * Reads every commit the log in `dir` holds, oldest first, for the caller to
   * apply again (they may already be applied: applying a suffix of commits again,
   * in order, leaves the same state). `discard` must then be called once they are
   * safely applied elsewhere; only after that does the log take new commits.
   */
  static async recover(dir: string): Promise<RecoveredCommit[]> {
    await mkdir(dir, { recursive: true })
    const names = (await readdir(dir)).filter((name) => SEGMENT_NAME.test(name)).sort()
    const commits: RecoveredCommit[] = []
    for (const [i, name] of names.entries()) {
      const bytes = await readFile(join(dir, name))
      const { records, end } = readRecords(bytes)
      if (end < bytes.length && i < names.length - 1) {
        throw new WalCorruptError(`write-ahead log ${join(dir, name)} is corrupt at byte ${end} of ${bytes.length}, before its last segment`)
      }
      commits.push(...records)
    }
    return commits
  }

  /** Deletes every segment in `dir` (after recovery), and opens a fresh log whose first commit is `nextSeq`. */
  static async create(dir: string, nextSeq: number, options: WalOptions = {}): Promise<WriteAheadLog> {
    await mkdir(dir, { recursive: true })
    for (const name of await readdir(dir)) {
      if (SEGMENT_NAME.test(name)) await unlink(join(dir, name))
    }
    const segment = { path: segmentPath(dir, nextSeq), firstSeq: nextSeq, lastSeq: nextSeq - 1 }
    const file = await open(segment.path, 'a')
    await syncDir(dir)
    return new WriteAheadLog(dir, file, segment, options)
  }

  /** The seq of the last commit appended. */
  get seq(): number {
    return this.#seq
  }

  /**
   * Appends one commit. Returns its seq at once, and a promise that resolves when
   * the record is on disk (fdatasync'ed); commits appended while a sync runs share
   * the next one.
   */
  append(writes: readonly StorageWrite[]): { seq: number; durable: Promise<void> } {
    if (this.#closed) throw new Error('write-ahead log is closed')
    if (this.#failure) throw this.#failure
    const seq = ++this.#seq
    const record = encodeRecord(seq, writes)
    const durable = new Promise<void>((resolve, reject) => this.#queue.push({ seq, record, resolve, reject }))
    this.#draining ??= this.#drain()
    return { seq, durable }
  }

  /** Every commit up to `seq` is safely applied elsewhere: segments holding only such commits go. */
  release(seq: number): void {
    this.#released = Math.max(this.#released, seq)
    while (this.#segments.length > 1 && this.#segments[0]!.lastSeq <= this.#released) {
      const segment = this.#segments.shift()!
      // A segment left behind is only read again (harmlessly) after a restart.
      unlink(segment.path).catch(() => {})
    }
  }

  /**
   * Waits for pending appends, then closes. With every commit released, the log
   * is deleted, so the next open has nothing to recover.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#draining
    await this.#file.close()
    if (this.#released >= this.#seq && !this.#failure) {
      for (const segment of this.#segments.splice(0)) await unlink(segment.path).catch(() => {})
      await syncDir(this.#dir).catch(() => {})
    }
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const group = this.#queue
      this.#queue = []
      try {
        if (this.#failure) throw this.#failure
        const records = group.map((p) => p.record)
        const total = records.reduce((sum, r) => sum + r.length, 0)
        const { bytesWritten } = await this.#file.writev(records)
        if (bytesWritten !== total) throw new Error(`short write to the write-ahead log: ${bytesWritten} of ${total} bytes`)
        await this.#file.datasync()
        this.#fileBytes += total
        this.#segments.at(-1)!.lastSeq = group.at(-1)!.seq
        for (const pending of group) pending.resolve()
        if (this.#fileBytes >= this.#segmentBytes && !this.#closed) await this.#rotate()
      } catch (err) {
        // Whatever reached the disk is unknown now: no further commit may follow it.
        this.#failure ??= err as Error
        for (const pending of group) pending.reject(this.#failure)
      }
    }
    this.#draining = undefined
  }

  // Only between syncs, so every closed segment is wholly on disk.
  async #rotate(): Promise<void> {
    const next = { path: segmentPath(this.#dir, this.#seq + 1), firstSeq: this.#seq + 1, lastSeq: this.#seq }
    const file = await open(next.path, 'a')
    await syncDir(this.#dir)
    await this.#file.close()
    this.#file = file
    this.#fileBytes = 0
    this.#segments.push(next)
    this.release(this.#released)
  }
}

function segmentPath(dir: string, firstSeq: number): string {
  return join(dir, `wal-${firstSeq.toString(16).padStart(16, '0')}.log`)
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export function encodeRecord(seq: number, writes: readonly StorageWrite[]): Buffer {
  let size = HEADER_BYTES + 12
  for (const write of writes) {
    size += 5 + Buffer.byteLength(write.key, 'utf8')
    if (write.type === 'put') size += 4 + write.value.byteLength
  }
  const record = Buffer.allocUnsafe(size)
  let at = HEADER_BYTES
  record.writeDoubleLE(seq, at)
  record.writeUInt32LE(writes.length, at + 8)
  at += 12
  for (const write of writes) {
    record[at] = write.type === 'put' ? PUT : DEL
    const keyBytes = record.write(write.key, at + 5, 'utf8')
    record.writeUInt32LE(keyBytes, at + 1)
    at += 5 + keyBytes
    if (write.type === 'put') {
      record.writeUInt32LE(write.value.byteLength, at)
      record.set(write.value, at + 4)
      at += 4 + write.value.byteLength
    }
  }
  record.writeUInt32LE(MAGIC, 0)
  record.writeUInt32LE(size - HEADER_BYTES, 4)
  record.writeUInt32LE(crc32(record.subarray(HEADER_BYTES)), 8)
  return record
}

/** The whole records at the start of `bytes`, and where they end. */
export function readRecords(bytes: Buffer): { records: RecoveredCommit[]; end: number } {
  const records: RecoveredCommit[] = []
  let at = 0
  while (at + HEADER_BYTES <= bytes.length) {
    if (bytes.readUInt32LE(at) !== MAGIC) break
    const length = bytes.readUInt32LE(at + 4)
    if (length < 12 || at + HEADER_BYTES + length > bytes.length) break
    const payload = bytes.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length)
    if (crc32(payload) !== bytes.readUInt32LE(at + 8)) break
    const record = decodePayload(payload)
    if (!record) break
    records.push(record)
    at += HEADER_BYTES + length
  }
  return { records, end: at }
}

function decodePayload(payload: Buffer): RecoveredCommit | undefined {
  const seq = payload.readDoubleLE(0)
  const count = payload.readUInt32LE(8)
  const writes: StorageWrite[] = []
  let at = 12
  for (let i = 0; i < count; i++) {
    if (at + 5 > payload.length) return undefined
    const type = payload[at]
    const keyLength = payload.readUInt32LE(at + 1)
    at += 5
    if (at + keyLength > payload.length) return undefined
    const key = payload.toString('utf8', at, at + keyLength)
    at += keyLength
    if (type === PUT) {
      if (at + 4 > payload.length) return undefined
      const valueLength = payload.readUInt32LE(at)
      at += 4
      if (at + valueLength > payload.length) return undefined
      writes.push({ type: 'put', key, value: Uint8Array.prototype.slice.call(payload, at, at + valueLength) })
      at += valueLength
    } else if (type === DEL) {
      writes.push({ type: 'del', key })
    } else {
      return undefined
    }
  }
  return at === payload.length && Number.isSafeInteger(seq) ? { seq, writes } : undefined
}
