// The one seam between weft and a disk. The layer above (VersionedStore) owns the
// key layout; adapters only keep ordered bytes. Reads are synchronous because the
// embedded stores we target answer from memory-mapped pages in microseconds.

/**
 * Storage keys are strings ordered by Unicode code point (the same order as their
 * UTF-8 bytes), so a prefix of keys is one contiguous range.
 */
export type StorageKey = string

/**
 * The longest key, in UTF-8 bytes, that commit() accepts: LMDB's limit (1978) less the
 * 4 bytes prefixEnd() appends, so the bound of any stored prefix is itself usable.
 */
export const MAX_KEY_BYTES = 1974

// With the u flag a surrogate pair is one code point, so this matches only lone halves.
const unstorable = /[\uD800-\uDFFF]|\u{10FFFF}/u

/**
 * Throws unless every adapter can store `key` exactly: non-empty, at most MAX_KEY_BYTES,
 * no lone surrogates (UTF-8 cannot hold them) and no U+10FFFF (prefixEnd() must stay
 * above every key). Adapters call it, so the in-memory one rejects what disk would.
 */
export function assertStorageKey(key: StorageKey): void {
  if (key === '' || Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES || unstorable.test(key)) {
    throw new RangeError(`unstorable key ${JSON.stringify(key.slice(0, 100))}`)
  }
}

export type StorageWrite =
  | { readonly type: 'put'; readonly key: StorageKey; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: StorageKey }

export interface StorageRange {
  /** Inclusive lower bound. */
  readonly gte?: StorageKey
  /** Exclusive upper bound. */
  readonly lt?: StorageKey
  readonly reverse?: boolean
  readonly limit?: number
}

export interface StorageAdapter {
  get(key: StorageKey): Uint8Array | undefined
  /** Whether `key` holds a value (empty counts), without copying it out. */
  has(key: StorageKey): boolean
  /** Entries in key order (or reverse), as they are when the iteration starts. */
  range(range: StorageRange): Iterable<readonly [StorageKey, Uint8Array]>
  /**
   * Applies every write atomically. The promise resolves only once the writes are
   * durable (they survive a process crash). Concurrent calls may share one sync.
   * Rejects, applying nothing, if any key fails assertStorageKey().
   */
  commit(writes: readonly StorageWrite[]): Promise<void>
  /** Approximate bytes used on disk (or in memory). */
  sizeBytes(): number
  close(): Promise<void>
}

/** The exclusive upper bound of every key that starts with `prefix`. */
export function prefixEnd(prefix: StorageKey): StorageKey {
  return prefix + '\u{10FFFF}'
}
