import { webcrypto } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { randomPoolInstalled } from '../src/randomPool.ts'

describe('random pool', () => {
  it('is installed once core is loaded, and gives small requests distinct random bytes', () => {
    expect(randomPoolInstalled()).toBe(true)
    const seen = new Set<number>()
    for (let i = 0; i < 5000; i++) seen.add(webcrypto.getRandomValues(new Uint32Array(1))[0]!)
    // 5000 draws from 2^32: a repeat is possible but vanishingly rare; a stuck pool repeats at once.
    expect(seen.size).toBeGreaterThan(4990)
  })

  it('fills every element of a request that spans a refill', () => {
    for (let i = 0; i < 40; i++) {
      const bytes = webcrypto.getRandomValues(new Uint8Array(200))
      // 200 random bytes are all zero with probability 2^-1600: zeros mean a gap in the copy.
      expect(bytes.some((b) => b !== 0)).toBe(true)
    }
  })

  it('leaves large and non-integer requests to the platform, with its errors', () => {
    expect(webcrypto.getRandomValues(new Uint8Array(65536)).byteLength).toBe(65536)
    expect(() => webcrypto.getRandomValues(new Uint8Array(65537))).toThrow()
    expect(() => webcrypto.getRandomValues(new Float64Array(2) as unknown as Uint8Array)).toThrow()
  })

  it('gives new Y.Docs distinct client ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => new Y.Doc().clientID))
    expect(ids.size).toBe(1000)
  })
})
