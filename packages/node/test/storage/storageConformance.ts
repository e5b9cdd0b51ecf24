// The contract every StorageAdapter keeps, run against each implementation (like
// automerge-repo's runStorageAdapterTests), so the in-memory one can stand in for disk.
import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MAX_KEY_BYTES, prefixEnd } from '../../src/storage/StorageAdapter.ts'
import type { StorageAdapter, StorageRange, StorageWrite } from '../../src/storage/StorageAdapter.ts'

export interface StorageFixture {
  readonly adapter: StorageAdapter
  /** Closes `adapter` and opens the same store again; absent when nothing persists. */
  readonly reopen?: () => Promise<StorageAdapter>
  /** Closes whichever adapter is open and removes what the store left behind. */
  readonly teardown: () => Promise<void>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const bytes = (text: string): Uint8Array => encoder.encode(text)
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : decoder.decode(value))
const put = (key: string, value: string | Uint8Array = key): StorageWrite => ({
  type: 'put',
  key,
  value: typeof value === 'string' ? bytes(value) : value,
})
const del = (key: string): StorageWrite => ({ type: 'del', key })

const keysOf = (adapter: StorageAdapter, range: StorageRange = {}): string[] =>
  Array.from(adapter.range(range), ([key]) => key)

const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

export function runStorageAdapterTests(name: string, setup: () => Promise<StorageFixture>, options: { persistent: boolean }): void {
  describe(`${name} (StorageAdapter conformance)`, () => {
    let fixture: StorageFixture
    let adapter: StorageAdapter

    beforeEach(async () => {
      fixture = await setup()
      adapter = fixture.adapter
    })
    afterEach(async () => {
      await fixture.teardown()
    })

    describe('get, put, del', () => {
      it('returns undefined for a key never written', () => {
        expect(adapter.get('missing')).toBeUndefined()
        expect(adapter.get('')).toBeUndefined()
        expect(adapter.has('missing')).toBe(false)
        expect(adapter.has('')).toBe(false)
        expect(adapter.has('x'.repeat(5000))).toBe(false)
      })

      it('tells whether a key holds a value, empty ones included', async () => {
        await adapter.commit([put('a', 'one'), put('empty', ''), put('gone')])
        await adapter.commit([del('gone')])
        expect([adapter.has('a'), adapter.has('empty'), adapter.has('gone'), adapter.has('b')]).toEqual([true, true, false, false])
      })

      it('reads back a put, and a later put replaces it', async () => {
        await adapter.commit([put('k', 'one')])
        expect(text(adapter.get('k'))).toBe('one')
        await adapter.commit([put('k', 'two')])
        expect(text(adapter.get('k'))).toBe('two')
      })

      it('removes a key with del, and ignores del of a missing key', async () => {
        await adapter.commit([put('a'), put('b')])
        await adapter.commit([del('a'), del('never')])
        expect(adapter.get('a')).toBeUndefined()
        expect(keysOf(adapter)).toEqual(['b'])
      })

      it('keeps its own copy of values, in and out', async () => {
        const value = bytes('original')
        const pending = adapter.commit([put('k', value)])
        value.fill(0)
        await pending
        adapter.get('k')?.fill(0)
        for (const [, stored] of adapter.range({})) stored.fill(0)
        expect(text(adapter.get('k'))).toBe('original')
      })

      it('stores empty values as empty, not missing', async () => {
        await adapter.commit([put('empty', new Uint8Array(0))])
        expect(adapter.get('empty')).toHaveLength(0)
        expect(Array.from(adapter.range({}), ([key, value]) => [key, value.length])).toEqual([['empty', 0]])
      })

      it('stores a 1 MiB value byte for byte', async () => {
        const big = randomBytes(1 << 20)
        await adapter.commit([put('big', big), put('small', 'x')])
        expect(Buffer.from(adapter.get('big') ?? []).equals(big)).toBe(true)
        const [first] = Array.from(adapter.range({ limit: 1 }))
        expect(first?.[0]).toBe('big')
        expect(Buffer.from(first?.[1] ?? []).equals(big)).toBe(true)
        expect(adapter.sizeBytes()).toBeGreaterThanOrEqual(1 << 20)
      })
    })

    describe('commit', () => {
      it('applies every write of a commit, in order', async () => {
        const writes = Array.from({ length: 200 }, (_, i) => put(`key/${String(i).padStart(3, '0')}`))
        await adapter.commit([...writes, del('key/000'), put('key/001', 'last wins')])
        expect(keysOf(adapter)).toHaveLength(199)
        expect(adapter.get('key/000')).toBeUndefined()
        expect(text(adapter.get('key/001'))).toBe('last wins')
      })

      it('applies nothing of a commit that holds an unstorable key', async () => {
        await adapter.commit([put('kept', 'before')])
        for (const key of ['', '\uD800', 'a\uDC00b', 'a\u{10FFFF}', 'x'.repeat(MAX_KEY_BYTES + 1)]) {
          await expect(adapter.commit([put('kept', 'after'), put('new'), put(key)])).rejects.toThrow(RangeError)
        }
        expect(text(adapter.get('kept'))).toBe('before')
        expect(keysOf(adapter)).toEqual(['kept'])
      })

      it('accepts the longest storable key', async () => {
        const longest = 'é'.repeat(MAX_KEY_BYTES / 2)
        await adapter.commit([put(longest, 'v')])
        expect(text(adapter.get(longest))).toBe('v')
        expect(keysOf(adapter, { lt: prefixEnd(longest) })).toEqual([longest])
      })

      it('resolves a burst of 1000 concurrent commits, all visible', async () => {
        const keys = Array.from({ length: 1000 }, (_, i) => `burst/${String(i).padStart(4, '0')}`)
        await Promise.all(keys.map((key) => adapter.commit([put(key, `value of ${key}`)])))
        for (const key of keys) expect(text(adapter.get(key))).toBe(`value of ${key}`)
        expect(keysOf(adapter, { gte: 'burst/', lt: prefixEnd('burst/') })).toEqual(keys)
      })

      it('applies concurrent commits to one key in call order', async () => {
        await Promise.all(Array.from({ length: 50 }, (_, i) => adapter.commit([put('k', `v${i}`)])))
        expect(text(adapter.get('k'))).toBe('v49')
      })
    })

    describe('range', () => {
      const keys = ['a', 'b', 'c', 'd', 'e']
      beforeEach(async () => {
        await adapter.commit(keys.map((key) => put(key)))
      })

      it('yields entries in key order with their values', () => {
        expect(Array.from(adapter.range({}), ([key, value]) => [key, text(value)])).toEqual(keys.map((k) => [k, k]))
      })

      it('includes gte and excludes lt', () => {
        expect(keysOf(adapter, { gte: 'b', lt: 'd' })).toEqual(['b', 'c'])
        expect(keysOf(adapter, { gte: 'bb', lt: 'dd' })).toEqual(['c', 'd'])
        expect(keysOf(adapter, { gte: 'c' })).toEqual(['c', 'd', 'e'])
        expect(keysOf(adapter, { lt: 'c' })).toEqual(['a', 'b'])
        expect(keysOf(adapter, { gte: '' })).toEqual(keys)
      })

      it('runs backwards with reverse, with the same bounds', () => {
        expect(keysOf(adapter, { reverse: true })).toEqual(['e', 'd', 'c', 'b', 'a'])
        expect(keysOf(adapter, { gte: 'b', lt: 'd', reverse: true })).toEqual(['c', 'b'])
        expect(keysOf(adapter, { gte: 'bb', lt: 'dd', reverse: true })).toEqual(['d', 'c'])
        expect(keysOf(adapter, { lt: 'c', reverse: true })).toEqual(['b', 'a'])
        expect(keysOf(adapter, { gte: 'd', reverse: true })).toEqual(['e', 'd'])
      })

      it('stops after limit entries, from either end', () => {
        expect(keysOf(adapter, { limit: 2 })).toEqual(['a', 'b'])
        expect(keysOf(adapter, { limit: 2, reverse: true })).toEqual(['e', 'd'])
        expect(keysOf(adapter, { gte: 'b', lt: 'e', limit: 2, reverse: true })).toEqual(['d', 'c'])
        expect(keysOf(adapter, { limit: 0 })).toEqual([])
        expect(keysOf(adapter, { limit: 99 })).toEqual(keys)
      })

      it('is empty when the bounds leave nothing', () => {
        for (const reverse of [false, true]) {
          expect(keysOf(adapter, { gte: 'c', lt: 'c', reverse })).toEqual([])
          expect(keysOf(adapter, { gte: 'd', lt: 'b', reverse })).toEqual([])
          expect(keysOf(adapter, { lt: '', reverse })).toEqual([])
          expect(keysOf(adapter, { gte: 'f', reverse })).toEqual([])
        }
      })

      it('can be iterated again, seeing the state at each start', async () => {
        const range = adapter.range({ gte: 'd' })
        expect(Array.from(range, ([key]) => key)).toEqual(['d', 'e'])
        await adapter.commit([put('f')])
        expect(Array.from(range, ([key]) => key)).toEqual(['d', 'e', 'f'])
      })

      it('keeps to the state it started from while commits land', async () => {
        const iterator = adapter.range({})[Symbol.iterator]()
        expect(iterator.next().value?.[0]).toBe('a')
        await adapter.commit([del('b'), put('c', 'changed'), put('bb'), put('z')])
        const rest = Array.from({ [Symbol.iterator]: () => iterator }, ([key, value]) => [key, text(value)])
        expect(rest).toEqual(['b', 'c', 'd', 'e'].map((k) => [k, k]))
        expect(keysOf(adapter)).toEqual(['a', 'bb', 'c', 'd', 'e', 'z'])
      })
    })

    describe('key order', () => {
      it('orders by code point, not by UTF-16 unit', async () => {
        // JS compares UTF-16 units, where the surrogate pair of U+1F600 sorts below U+FFFD.
        expect('\u{1F600}' < '\uFFFD').toBe(true)
        const keys = ['\uFFFD', '\u{1F600}', '\uE000', '\u{10000}', '\uD7FF', 'z', 'é', '\u{10FFFD}', 'a\u{1F600}', 'a\uFFFF']
        await adapter.commit(keys.map((key) => put(key)))
        const expected = [...keys].sort(byUtf8)
        expect(expected.indexOf('\uFFFD')).toBeLessThan(expected.indexOf('\u{1F600}'))
        expect(keysOf(adapter)).toEqual(expected)
        expect(keysOf(adapter, { reverse: true })).toEqual([...expected].reverse())
        expect(keysOf(adapter, { gte: '\uFFFD', lt: '\u{10000}' })).toEqual(['\uFFFD'])
        expect(keysOf(adapter, { gte: '\uE000', lt: '\u{1F600}' })).toEqual(['\uE000', '\uFFFD', '\u{10000}'])
      })

      it('sorts and round-trips keys holding U+0000 separators and control characters', async () => {
        const long = 'x'.repeat(80) // long keys took a different encoding path in lmdb's default
        const keys = [
          '\u0000',
          '\u0001',
          '\u001f',
          'a',
          'a\u0000',
          'a\u0000\u0000',
          'a\u0000b',
          `a\u0000${long}`,
          `a\u0001${long}`,
          'a\u0004',
          'a\u0005',
          `a\u0000b\u0000${long}`,
          `${long}\u0000`,
          `${long}\u0000\u0001`,
          ' ',
          'ab',
        ]
        await adapter.commit(keys.map((key) => put(key)))
        const expected = [...keys].sort(byUtf8)
        expect(keysOf(adapter)).toEqual(expected)
        expect(keysOf(adapter, { reverse: true })).toEqual([...expected].reverse())
        expect(Array.from(adapter.range({}), ([key, value]) => text(value) === key)).not.toContain(false)
        for (const key of keys) expect(text(adapter.get(key))).toBe(key)
      })

      it('finds exactly the keys of a prefix with prefixEnd()', async () => {
        const inside = ['doc\u0000', 'doc\u0000\u0000', 'doc\u0000a', 'doc\u0000\uFFFD', 'doc\u0000\u{1F600}', 'doc\u0000\u{10FFFD}']
        const outside = ['doc', 'doc\u0001', 'doc0', 'doca', 'do', 'dod', '\u0000']
        await adapter.commit([...outside, ...inside].map((key) => put(key)))
        const expected = [...inside].sort(byUtf8)
        expect(keysOf(adapter, { gte: 'doc\u0000', lt: prefixEnd('doc\u0000') })).toEqual(expected)
        expect(keysOf(adapter, { gte: 'doc\u0000', lt: prefixEnd('doc\u0000'), reverse: true })).toEqual(
          [...expected].reverse(),
        )
        expect(keysOf(adapter, { gte: 'doc\u0000', lt: prefixEnd('doc\u0000'), reverse: true, limit: 1 })).toEqual([
          'doc\u0000\u{10FFFD}',
        ])
      })
    })

    // Only stores that persist have a reopen to test.
    if (!options.persistent) return
    it('keeps every commit across close and reopen', async () => {
      if (fixture.reopen === undefined) throw new Error(`${name} claims to persist but its fixture has no reopen`)
      await adapter.commit([put('a', 'one'), put('b', 'two'), put('gone'), put('\u{1F600}', new Uint8Array(0))])
      await adapter.commit([del('gone'), put('a', 'three')])
      const reopened = await fixture.reopen()
      expect(Array.from(reopened.range({}), ([key, value]) => [key, text(value)])).toEqual([
        ['a', 'three'],
        ['b', 'two'],
        ['\u{1F600}', ''],
      ])
      await reopened.commit([put('c', 'four')])
      expect(text(reopened.get('c'))).toBe('four')
    })
  })
}
