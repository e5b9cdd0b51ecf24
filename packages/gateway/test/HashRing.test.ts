import { describe, expect, it } from 'vitest'
import { HashRing, hash32 } from '../src/HashRing.ts'

const keys = Array.from({ length: 20_000 }, (_, i) => `deployments/service-${i}`)

function owners(ring: HashRing): Map<string, string> {
  return new Map(keys.map((k) => [k, ring.lookup(k)!]))
}

describe('hash32', () => {
  it('is MurmurHash3 x86 32-bit', () => {
    expect(hash32('')).toBe(0)
    expect(hash32('hello')).toBe(0x248bfa47)
    expect(hash32('The quick brown fox jumps over the lazy dog')).toBe(0x2e4ff723)
    expect(hash32('ключ/日本')).toBe(hash32('ключ/日本'))
  })
})

describe('HashRing', () => {
  it('maps the same key to the same peer, whatever order the peers come in', () => {
    const a = new HashRing(['p1', 'p2', 'p3'])
    const b = new HashRing(['p3', 'p1', 'p2', 'p1'])
    expect(b.peers).toEqual(['p1', 'p2', 'p3'])
    for (const key of keys.slice(0, 2000)) expect(b.lookup(key)).toBe(a.lookup(key))
    expect(new HashRing([]).lookup('k')).toBeUndefined()
    expect(new HashRing([]).preference('k')).toEqual([])
  })

  it('spreads keys evenly enough over the peers', () => {
    const ring = new HashRing(['p1', 'p2', 'p3', 'p4', 'p5'])
    const counts = new Map<string, number>()
    for (const owner of owners(ring).values()) counts.set(owner, (counts.get(owner) ?? 0) + 1)
    for (const count of counts.values()) expect(count / keys.length).toBeGreaterThan(0.13)
    for (const count of counts.values()) expect(count / keys.length).toBeLessThan(0.27)
  })

  it('moves only the keys of a peer that leaves, each to the next peer in its preference', () => {
    const before = new HashRing(['p1', 'p2', 'p3', 'p4'])
    const after = new HashRing(['p1', 'p2', 'p4'])
    let moved = 0
    for (const key of keys) {
      const was = before.lookup(key)!
      const now = after.lookup(key)!
      if (was !== 'p3') expect(now).toBe(was)
      else {
        moved++
        expect(now).toBe(before.preference(key)[1])
      }
    }
    expect(moved / keys.length).toBeGreaterThan(0.15)
    expect(moved / keys.length).toBeLessThan(0.35)
  })

  it('moves only keys to a peer that joins, about 1/n of them', () => {
    const before = owners(new HashRing(['p1', 'p2', 'p3']))
    const after = owners(new HashRing(['p1', 'p2', 'p3', 'p4']))
    let moved = 0
    for (const key of keys) {
      if (after.get(key) !== before.get(key)) {
        moved++
        expect(after.get(key)).toBe('p4')
      }
    }
    expect(moved / keys.length).toBeGreaterThan(0.15)
    expect(moved / keys.length).toBeLessThan(0.35)
  })

  it('lists every peer once in preference order, the owner first', () => {
    const ring = new HashRing(['a', 'b', 'c', 'd'])
    for (const key of keys.slice(0, 500)) {
      const order = ring.preference(key)
      expect(order[0]).toBe(ring.lookup(key))
      expect([...order].sort()).toEqual(['a', 'b', 'c', 'd'])
    }
  })
})
