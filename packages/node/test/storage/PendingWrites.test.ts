import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PendingWrites, type Entry } from '../../src/storage/PendingWrites.ts'
import type { StorageRange, StorageWrite } from '../../src/storage/StorageAdapter.ts'

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
const text = (value: Uint8Array): string => new TextDecoder().decode(value)
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** The store below: a map read in UTF-8 order, as LMDB would. */
function rangeOf(map: Map<string, Uint8Array>, { gte, lt, reverse = false, limit = Infinity }: StorageRange): Entry[] {
  const keys = [...map.keys()].filter((k) => (gte === undefined || byUtf8(k, gte) >= 0) && (lt === undefined || byUtf8(k, lt) < 0)).sort(byUtf8)
  if (reverse) keys.reverse()
  return keys.slice(0, limit).map((k) => [k, map.get(k)!] as const)
}

function* storedOf(map: Map<string, Uint8Array>, range: StorageRange): Generator<Entry, void, undefined> {
  yield* rangeOf(map, range)
}

const apply = (map: Map<string, Uint8Array>, writes: readonly StorageWrite[]): void => {
  for (const w of writes) {
    if (w.type === 'put') map.set(w.key, w.value)
    else map.delete(w.key)
  }
}

describe('PendingWrites', () => {
  it('lays held puts and deletions over the store, newest commit winning', () => {
    const below = new Map([['a', bytes('old a')], ['b', bytes('old b')], ['c', bytes('old c')]])
    const pending = new PendingWrites()
    const first: StorageWrite[] = [{ type: 'put', key: 'b', value: bytes('new b') }, { type: 'del', key: 'c' }]
    const second: StorageWrite[] = [{ type: 'put', key: 'c', value: bytes('revived c') }, { type: 'put', key: 'd', value: bytes('d') }]
    pending.hold(first, 1)
    pending.hold(second, 2)
    const read = (range: StorageRange) => [...pending.merge(range, (r) => storedOf(below, r))].map(([k, v]) => `${k}=${text(v)}`)
    expect(read({})).toEqual(['a=old a', 'b=new b', 'c=revived c', 'd=d'])
    expect(read({ reverse: true, limit: 2 })).toEqual(['d=d', 'c=revived c'])
    // Commit 1 reaches the store; its write to c was replaced by commit 2, which still holds c.
    apply(below, first)
    pending.release(first, 1)
    expect(pending.get('b')).toBeUndefined()
    expect(text(pending.get('c')!.value!)).toBe('revived c')
    expect(read({ gte: 'b', lt: 'd' })).toEqual(['b=new b', 'c=revived c'])
  })

  it('gives out copies, so a reader cannot change a held value', () => {
    const pending = new PendingWrites()
    pending.hold([{ type: 'put', key: 'k', value: Buffer.from('held') }], 1)
    for (const [, value] of pending.merge({}, () => storedOf(new Map(), {}))) value.fill(0)
    expect(text(pending.get('k')!.value!)).toBe('held')
  })

  it('reads like the store with every commit applied, whatever is flushed (property)', () => {
    const key = fc.constantFrom('a', 'b', 'b\u0000x', 'c', '\u{1F600}', '\uE000', 'k/1', 'k/2', 'k/10')
    const write = fc.oneof(
      fc.record({ type: fc.constant('put' as const), key, value: fc.string({ maxLength: 4 }).map(bytes) }),
      fc.record({ type: fc.constant('del' as const), key }),
    )
    const step = fc.oneof(
      fc.record({ op: fc.constant('commit' as const), writes: fc.array(write, { minLength: 1, maxLength: 4 }) }),
      fc.record({ op: fc.constant('flush' as const) }),
      fc.record({
        op: fc.constant('range' as const),
        gte: fc.option(key, { nil: undefined }),
        lt: fc.option(key, { nil: undefined }),
        reverse: fc.boolean(),
        limit: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
      }),
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const below = new Map<string, Uint8Array>()
        const model = new Map<string, Uint8Array>()
        const pending = new PendingWrites()
        const unflushed: { seq: number; writes: StorageWrite[] }[] = []
        let seq = 0
        for (const s of steps) {
          if (s.op === 'commit') {
            pending.hold(s.writes, ++seq)
            unflushed.push({ seq, writes: s.writes })
            apply(model, s.writes)
          } else if (s.op === 'flush') {
            const commit = unflushed.shift()
            if (!commit) continue
            apply(below, commit.writes)
            pending.release(commit.writes, commit.seq)
          } else {
            const range: StorageRange = { ...(s.gte !== undefined && { gte: s.gte }), ...(s.lt !== undefined && { lt: s.lt }), reverse: s.reverse, ...(s.limit !== undefined && { limit: s.limit }) }
            const got = [...pending.merge(range, (r) => storedOf(below, r))].map(([k, v]) => [k, text(v)])
            const want = rangeOf(model, range).map(([k, v]) => [k, text(v)])
            expect(got).toEqual(want)
            for (const k of ['a', 'b', 'c', '\u{1F600}']) {
              const held = pending.get(k)
              const value = held ? (held.value ?? undefined) : below.get(k)
              expect(value && text(value)).toEqual(model.get(k) && text(model.get(k)!))
            }
          }
        }
        while (unflushed.length > 0) {
          const commit = unflushed.shift()!
          apply(below, commit.writes)
          pending.release(commit.writes, commit.seq)
        }
        expect(pending.size).toBe(0)
      }),
      { numRuns: 300, seed: 20261122 },
    )
  })
})
