// Consistent hashing with virtual nodes: each peer owns many points on a
// 32-bit ring, a key belongs to the first point at or after its hash. The same
// key maps to the same peer while that peer is on the ring, and adding or
// removing one peer only moves the keys it gains or loses.

export const DEFAULT_VIRTUAL_NODES = 160

export class HashRing {
  readonly peers: readonly string[]
  /** Point hashes, ascending; owners[i] owns points[i]. */
  readonly #points: Uint32Array
  readonly #owners: string[]

  constructor(peers: Iterable<string>, virtualNodes = DEFAULT_VIRTUAL_NODES) {
    this.peers = [...new Set(peers)].sort()
    const entries: [number, string][] = []
    for (const peer of this.peers) {
      for (let i = 0; i < virtualNodes; i++) entries.push([hash32(`${peer}#${i}`), peer])
    }
    // Ties (rare) are broken by peer id, so every gateway builds the same ring.
    entries.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    this.#points = Uint32Array.from(entries, (e) => e[0])
    this.#owners = entries.map((e) => e[1])
  }

  get size(): number {
    return this.peers.length
  }

  /** The peer that owns `key`, or undefined on an empty ring. */
  lookup(key: string): string | undefined {
    if (this.#owners.length === 0) return undefined
    return this.#owners[this.#indexOf(hash32(key))]
  }

  /**
   * Every peer in the order a request for `key` tries them: the owner first,
   * then the next distinct peers clockwise (where the key goes when the owner
   * leaves the ring).
   */
  preference(key: string): string[] {
    const out: string[] = []
    const n = this.#owners.length
    if (n === 0) return out
    const seen = new Set<string>()
    const start = this.#indexOf(hash32(key))
    for (let i = 0; i < n && out.length < this.peers.length; i++) {
      const peer = this.#owners[(start + i) % n]!
      if (!seen.has(peer)) {
        seen.add(peer)
        out.push(peer)
      }
    }
    return out
  }

  /** First point at or after `h`, wrapping around. */
  #indexOf(h: number): number {
    let lo = 0
    let hi = this.#points.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.#points[mid]! < h) lo = mid + 1
      else hi = mid
    }
    return lo === this.#points.length ? 0 : lo
  }
}

const encoder = new TextEncoder()

/** MurmurHash3 (x86, 32-bit) of a string's UTF-8 bytes: fast, well mixed, the same everywhere. */
export function hash32(text: string, seed = 0): number {
  const bytes = encoder.encode(text)
  const c1 = 0xcc9e2d51
  const c2 = 0x1b873593
  let h = seed >>> 0
  const blocks = bytes.length >>> 2
  for (let i = 0; i < blocks; i++) {
    const o = i << 2
    let k = bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)
    k = Math.imul(k, c1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, c2)
    h ^= k
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  let k = 0
  const tail = blocks << 2
  const rest = bytes.length & 3
  if (rest > 0) {
    if (rest === 3) k ^= bytes[tail + 2]! << 16
    if (rest >= 2) k ^= bytes[tail + 1]! << 8
    k ^= bytes[tail]!
    k = Math.imul(k, c1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, c2)
    h ^= k
  }
  h ^= bytes.length
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
