import { assertStorageKey } from './StorageAdapter.ts'
import type { StorageAdapter, StorageKey, StorageRange, StorageWrite } from './StorageAdapter.ts'

/**
 * The storage contract without a disk, for fast deterministic tests. A commit is
 * validated, then applied in one synchronous step (so all or nothing), and resolves
 * on a microtask. Values are copied in and out, as a disk store would.
 */
export class MemoryStorage implements StorageAdapter {
  // Sorted by code point, so a range is two binary searches and a slice.
  readonly #keys: StorageKey[] = []
  readonly #values = new Map<StorageKey, Uint8Array>()
  #bytes = 0
  #closed = false

  get(key: StorageKey): Uint8Array | undefined {
    this.#assertOpen()
    return this.#values.get(key)?.slice()
  }

  has(key: StorageKey): boolean {
    this.#assertOpen()
    return this.#values.has(key)
  }

  range(range: StorageRange): Iterable<readonly [StorageKey, Uint8Array]> {
    return { [Symbol.iterator]: () => this.#entries(range) }
  }

  async commit(writes: readonly StorageWrite[]): Promise<void> {
    this.#assertOpen()
    for (const write of writes) assertStorageKey(write.key)
    for (const write of writes) {
      if (write.type === 'put') this.#put(write.key, write.value.slice())
      else this.#del(write.key)
    }
  }

  sizeBytes(): number {
    return this.#bytes
  }

  async close(): Promise<void> {
    this.#closed = true
  }

  *#entries({ gte, lt, reverse = false, limit = Infinity }: StorageRange): Generator<[StorageKey, Uint8Array]> {
    this.#assertOpen()
    const from = gte === undefined ? 0 : this.#lowerBound(gte)
    const to = lt === undefined ? this.#keys.length : this.#lowerBound(lt)
    const count = Math.max(0, Math.min(to - from, limit))
    const keys = reverse ? this.#keys.slice(to - count, to).reverse() : this.#keys.slice(from, from + count)
    // Taken before the first yield: stored values are replaced, never mutated, so
    // holding them keeps this iteration on the state it started from.
    const entries = keys.map((key) => [key, this.#values.get(key)] as const)
    for (const [key, value] of entries) {
      if (value !== undefined) yield [key, value.slice()]
    }
  }

  #put(key: StorageKey, value: Uint8Array): void {
    const old = this.#values.get(key)
    if (old === undefined) {
      this.#keys.splice(this.#lowerBound(key), 0, key)
      this.#bytes += Buffer.byteLength(key, 'utf8')
    } else {
      this.#bytes -= old.length
    }
    this.#values.set(key, value)
    this.#bytes += value.length
  }

  #del(key: StorageKey): void {
    const old = this.#values.get(key)
    if (old === undefined) return
    this.#keys.splice(this.#lowerBound(key), 1)
    this.#values.delete(key)
    this.#bytes -= Buffer.byteLength(key, 'utf8') + old.length
  }

  /** The index of the first key >= `key`. */
  #lowerBound(key: StorageKey): number {
    let low = 0
    let high = this.#keys.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (compareCodePoints(this.#keys[middle] as StorageKey, key) < 0) low = middle + 1
      else high = middle
    }
    return low
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('MemoryStorage is closed')
  }
}

/**
 * Orders strings by code point, i.e. by UTF-8 bytes. JS's `<` compares UTF-16 units,
 * which puts U+10000 and above (surrogates, 0xD800-0xDFFF) before U+E000-U+FFFF.
 */
function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

// Moves surrogates above U+E000-U+FFFF; the first differing unit decides for valid strings.
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800
}
