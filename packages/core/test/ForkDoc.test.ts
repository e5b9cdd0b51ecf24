import { describe, expect, it } from 'vitest'
import { ForkDoc } from '../src/ForkDoc.ts'
import { isWeftError } from '../src/errors.ts'
import type { Value } from '../src/value.ts'

// Stamps only need to sort in write order for these tests.
let clock = 0
const stamp = () => `${String(++clock).padStart(16, '0')}.n`

function forkOf(doc: ForkDoc): ForkDoc {
  return ForkDoc.load(doc.encodeState())
}

function setOn(doc: ForkDoc, value: Value | undefined): Uint8Array | null {
  return doc.write(value, stamp())
}

describe('ForkDoc values', () => {
  it('round-trips every kind of value', () => {
    const doc = ForkDoc.load()
    const values: Value[] = [1, 'x', true, null, new Uint8Array([1, 2]), [], {}, { a: [1, { b: null }], c: 'd' }, [[1], [2, [3]]]]
    for (const value of values) {
      setOn(doc, value)
      expect(doc.value()).toEqual(value)
    }
  })

  it('writes nothing when the value is unchanged', () => {
    const doc = ForkDoc.load()
    setOn(doc, { a: 1, b: [1, 2] })
    expect(setOn(doc, { a: 1, b: [1, 2] })).toBeNull()
  })

  it('keeps field order when another writer (a reloaded doc) changes a field', () => {
    const first = ForkDoc.load()
    setOn(first, { image: 'api:1', replicas: 2, zone: 'a' })
    const reloaded = forkOf(first)
    setOn(reloaded, { image: 'api:2', replicas: 2, zone: 'a' })
    expect(Object.keys(reloaded.value() as object)).toEqual(['image', 'replicas', 'zone'])
    // And on a replica that got both revisions as deltas.
    const replica = forkOf(reloaded)
    expect(Object.keys(replica.value() as object)).toEqual(['image', 'replicas', 'zone'])
    // A field removed and added again by yet another writer keeps its first place too.
    const third = forkOf(replica)
    setOn(third, { image: 'api:2', zone: 'a' })
    setOn(forkOf(third), { image: 'api:2', replicas: 3, zone: 'a' })
    expect(third.value()).toEqual({ image: 'api:2', zone: 'a' })
  })

  it('deletes and revives', () => {
    const doc = ForkDoc.load()
    setOn(doc, { a: 1 })
    setOn(doc, undefined)
    expect(doc.value()).toBeUndefined()
    setOn(doc, { b: 2 })
    expect(doc.value()).toEqual({ b: 2 })
  })

  it('keeps a field named __proto__ as data', () => {
    const doc = ForkDoc.load()
    const value = JSON.parse('{"__proto__": {"x": 1}, "y": 2}') as Value
    setOn(doc, value)
    const read = doc.value() as Record<string, unknown>
    expect(Object.getPrototypeOf(read)).toBe(Object.prototype)
    expect(Object.keys(read).sort()).toEqual(['__proto__', 'y'])
  })

  it('changes only the middle of an array when an element is inserted', () => {
    const doc = ForkDoc.load()
    setOn(doc, [1, 2, 3])
    const a = forkOf(doc)
    const b = forkOf(doc)
    setOn(a, [1, 9, 2, 3])
    setOn(b, [1, 2, 3, 4])
    const merged = a.merge(b, 'crdt', stamp())
    a.apply(merged.delta!)
    expect(a.value()).toEqual([1, 9, 2, 3, 4])
    expect(merged.conflicts).toEqual([])
  })
})

describe('ForkDoc merge', () => {
  const base = () => {
    const doc = ForkDoc.load()
    setOn(doc, { replicas: 1, image: 'v1', env: { LOG: 'info' }, tags: ['a'] })
    return doc
  }

  it('keeps both sides when they changed different fields', () => {
    const dst = base()
    const src = forkOf(dst)
    setOn(src, { replicas: 3, image: 'v1', env: { LOG: 'info' }, tags: ['a'] })
    setOn(dst, { replicas: 1, image: 'v2', env: { LOG: 'info', X: '1' }, tags: ['a'] })
    const result = dst.merge(src, 'crdt', stamp())
    dst.apply(result.delta!)
    expect(result.conflicts).toEqual([])
    expect(dst.value()).toEqual({ replicas: 3, image: 'v2', env: { LOG: 'info', X: '1' }, tags: ['a'] })
  })

  it('resolves the same leaf changed on both sides last-writer-wins and reports it', () => {
    for (const srcFirst of [true, false]) {
      const dst = base()
      const src = forkOf(dst)
      if (srcFirst) {
        setOn(src, { replicas: 5, image: 'v1', env: { LOG: 'info' }, tags: ['a'] })
        setOn(dst, { replicas: 7, image: 'v1', env: { LOG: 'info' }, tags: ['a'] })
      } else {
        setOn(dst, { replicas: 7, image: 'v1', env: { LOG: 'info' }, tags: ['a'] })
        setOn(src, { replicas: 5, image: 'v1', env: { LOG: 'info' }, tags: ['a'] })
      }
      const result = dst.merge(src, 'crdt', stamp())
      dst.apply(result.delta!)
      const later = srcFirst ? 7 : 5
      expect(result.conflicts).toEqual([{ path: ['replicas'], ours: 7, theirs: 5, winner: srcFirst ? 'ours' : 'theirs' }])
      expect((dst.value() as { replicas: number }).replicas).toBe(later)
    }
  })

  it.each(['ours', 'theirs'] as const)('strategy %s picks that side on conflicts only', (strategy) => {
    const dst = base()
    const src = forkOf(dst)
    setOn(dst, { replicas: 7, image: 'v1', env: { LOG: 'debug' }, tags: ['a'] })
    setOn(src, { replicas: 5, image: 'v9', env: { LOG: 'info' }, tags: ['a'] })
    const result = dst.merge(src, strategy, stamp())
    dst.apply(result.delta!)
    expect(result.conflicts.map((c) => [c.path, c.winner])).toEqual([[['replicas'], strategy]])
    expect(dst.value()).toEqual({ replicas: strategy === 'ours' ? 7 : 5, image: 'v9', env: { LOG: 'debug' }, tags: ['a'] })
  })

  it('strategy fail changes nothing and reports the conflicts', () => {
    const dst = base()
    const src = forkOf(dst)
    setOn(dst, { replicas: 7, image: 'v1', env: { LOG: 'info' }, tags: ['a'] })
    setOn(src, { replicas: 5, image: 'v1', env: { LOG: 'info' }, tags: ['a'] })
    const before = dst.value()
    try {
      dst.merge(src, 'fail', stamp())
      expect.unreachable()
    } catch (err) {
      expect(isWeftError(err, 'MERGE_CONFLICT')).toBe(true)
      expect((err as { details: { conflicts: unknown[] } }).details.conflicts).toHaveLength(1)
    }
    expect(dst.value()).toEqual(before)
  })

  it('reports a removed section that the other side edited', () => {
    const dst = base()
    const src = forkOf(dst)
    setOn(dst, { replicas: 1, image: 'v1', tags: ['a'] })
    setOn(src, { replicas: 1, image: 'v1', env: { LOG: 'debug' }, tags: ['a'] })
    const result = dst.merge(src, 'crdt', stamp())
    dst.apply(result.delta!)
    expect(result.conflicts).toEqual([{ path: ['env'], ours: undefined, theirs: { LOG: 'debug' }, winner: 'theirs' }])
    expect(dst.value()).toEqual({ replicas: 1, image: 'v1', env: { LOG: 'debug' }, tags: ['a'] })
  })

  it('keeps both insertions into a list', () => {
    const dst = base()
    const src = forkOf(dst)
    setOn(dst, { replicas: 1, image: 'v1', env: { LOG: 'info' }, tags: ['a', 'd'] })
    setOn(src, { replicas: 1, image: 'v1', env: { LOG: 'info' }, tags: ['s', 'a'] })
    const result = dst.merge(src, 'crdt', stamp())
    dst.apply(result.delta!)
    expect((dst.value() as { tags: string[] }).tags).toEqual(['s', 'a', 'd'])
  })

  it('returns no delta when dst already has everything', () => {
    const dst = base()
    const src = forkOf(dst)
    expect(dst.merge(src, 'crdt', stamp()).delta).toBeNull()
  })
})

describe('ForkDoc replication', () => {
  it('converges concurrent writes of one leaf to the later stamp whatever the apply order', () => {
    const origin = ForkDoc.load()
    setOn(origin, { a: 1, b: 1 })
    const x = forkOf(origin)
    const y = forkOf(origin)
    const early = x.write({ a: 2, b: 1 }, '0000000000000001.z')
    const late = y.write({ a: 3, b: 1 }, '0000000000000002.a')
    x.apply(late!)
    y.apply(early!)
    expect(x.value()).toEqual({ a: 3, b: 1 })
    expect(y.value()).toEqual({ a: 3, b: 1 })
  })

  it('rejects garbage bytes with INVALID_UPDATE', () => {
    const doc = ForkDoc.load()
    expect(() => doc.apply(new Uint8Array([255, 255, 255, 1, 2]))).toThrowError(expect.objectContaining({ code: 'INVALID_UPDATE' }) as Error)
  })
})

describe('ForkDoc array merges', () => {
  it('an element removed on one side and edited on the other is a conflict settled by time', () => {
    const dst = ForkDoc.load()
    setOn(dst, { hosts: ['a', 'b', 'c'] })
    const src = forkOf(dst)
    setOn(dst, { hosts: ['a', 'c'] })
    setOn(src, { hosts: ['a', 'B', 'c'] })
    const result = dst.merge(src, 'crdt', stamp())
    dst.apply(result.delta!)
    expect(result.conflicts).toEqual([{ path: ['hosts', 1], ours: undefined, theirs: 'B', winner: 'theirs' }])
    expect(dst.value()).toEqual({ hosts: ['a', 'B', 'c'] })
  })

  it('removals on both sides both apply', () => {
    const dst = ForkDoc.load()
    setOn(dst, { hosts: ['a', 'b', 'c', 'd'] })
    const src = forkOf(dst)
    setOn(dst, { hosts: ['a', 'c', 'd'] })
    setOn(src, { hosts: ['a', 'b', 'c'] })
    const result = dst.merge(src, 'crdt', stamp())
    dst.apply(result.delta!)
    expect(result.conflicts).toEqual([])
    expect(dst.value()).toEqual({ hosts: ['a', 'c'] })
  })
})
