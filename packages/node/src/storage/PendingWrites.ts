// Writes of acknowledged commits that the store below has not flushed yet, held
// in memory and read over it: a get looks here first, and a range merges these
// with the store's own entries of the same range. A held deletion hides the key.
import { compareCodePoints, lowerBound } from './keyOrder.ts'
import type { StorageKey, StorageRange, StorageWrite } from './StorageAdapter.ts'

/** A held write; `value` null is a deletion. Values are never mutated once held. */
export interface HeldWrite {
  readonly value: Uint8Array | null
  /** The commit that made it. */
  readonly seq: number
}

export type Entry = readonly [StorageKey, Uint8Array]

export class PendingWrites {
  readonly #held = new Map<StorageKey, HeldWrite>()
  // The held keys in storage order, kept lazily: holding only notes a new key and
  // releasing only deletes from #held; a range sorts in what was noted since the
  // last one and drops keys no longer held. A key may be listed twice until then.
  #sorted: StorageKey[] = []
  #unsorted: StorageKey[] = []
  #released = 0

  get size(): number {
    return this.#held.size
  }

  get(key: StorageKey): HeldWrite | undefined {
    return this.#held.get(key)
  }

  /** Holds every write of commit `seq` (later commits replace earlier ones' writes). */
  hold(writes: readonly StorageWrite[], seq: number): void {
    for (const write of writes) {
      if (!this.#held.has(write.key)) this.#unsorted.push(write.key)
      this.#held.set(write.key, { value: write.type === 'put' ? write.value : null, seq })
    }
  }

  /** Commit `seq` is flushed below: its writes go, unless a later commit replaced them. */
  release(writes: readonly StorageWrite[], seq: number): void {
    for (const write of writes) {
      if (this.#held.get(write.key)?.seq !== seq) continue
      this.#held.delete(write.key)
      this.#released++
    }
  }

  /**
   * The entries of `range`: `stored` (the store's own, read with the same bounds
   * and direction but no limit) with the held writes laid over them. The held
   * writes are taken when iteration starts, like a read snapshot.
   */
  *merge(range: StorageRange, stored: (range: StorageRange) => Generator<Entry, void, undefined>): Generator<Entry, void, undefined> {
    const { gte, lt, reverse = false, limit = Infinity } = range
    if (lt === '' || limit <= 0) return
    const held = this.#slice(gte, lt)
    if (held.length === 0) {
      yield* stored(range)
      return
    }
    if (reverse) held.reverse()
    const below = stored({ ...(gte !== undefined && { gte }), ...(lt !== undefined && { lt }), reverse })
    const order = (a: StorageKey, b: StorageKey): number => (reverse ? compareCodePoints(b, a) : compareCodePoints(a, b))
    let next = below.next()
    let i = 0
    let yielded = 0
    try {
      while (yielded < limit && (i < held.length || !next.done)) {
        const fromBelow = next.done ? undefined : next.value
        const step = i >= held.length ? 1 : fromBelow === undefined ? -1 : order(held[i]![0], fromBelow[0])
        if (step > 0) {
          yield fromBelow!
          yielded++
          next = below.next()
          continue
        }
        // A held write wins over the store's entry for the same key.
        if (step === 0) next = below.next()
        const [key, value] = held[i++]!
        if (value === null) continue
        // A copy (Buffer#slice would be a view), so readers cannot change what is held.
        yield [key, new Uint8Array(value)]
        yielded++
      }
    } finally {
      below.return(undefined)
    }
  }

  /** Held writes with keys in [gte, lt), in storage order. */
  #slice(gte: StorageKey | undefined, lt: StorageKey | undefined): [StorageKey, Uint8Array | null][] {
    if (this.#held.size === 0) return []
    const keys = this.#sortedKeys()
    const from = gte === undefined ? 0 : lowerBound(keys, gte)
    const to = lt === undefined ? keys.length : lowerBound(keys, lt)
    const slice: [StorageKey, Uint8Array | null][] = []
    for (let k = from; k < to; k++) {
      const held = this.#held.get(keys[k]!)
      if (held) slice.push([keys[k]!, held.value])
    }
    return slice
  }

  #sortedKeys(): StorageKey[] {
    if (this.#unsorted.length === 0 && this.#released <= this.#sorted.length / 2) return this.#sorted
    const live = (key: StorageKey): boolean => this.#held.has(key)
    const old = this.#sorted.filter(live)
    const added = this.#unsorted.filter(live).sort(compareCodePoints)
    const merged: StorageKey[] = []
    let i = 0
    let j = 0
    while (i < old.length || j < added.length) {
      const key = j >= added.length || (i < old.length && compareCodePoints(old[i]!, added[j]!) < 0) ? old[i++]! : added[j++]!
      if (merged.at(-1) !== key) merged.push(key)
    }
    this.#sorted = merged
    this.#unsorted = []
    this.#released = 0
    return merged
  }
}
