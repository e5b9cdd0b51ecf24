import { describe, expect, it } from 'vitest'
import { ErrorCode, WeftError } from '@weft/core'
import { SessionWatches } from '../../src/server/SessionWatches.ts'

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof WeftError ? err.code : 'not a WeftError'
  }
  return undefined
}

describe('SessionWatches', () => {
  it('keys watches by typed id: 1 and "1" are two watches', () => {
    const watches = new SessionWatches<string>(4)
    watches.add(1, () => 'number')
    watches.add('1', () => 'string')
    expect(watches.get(1)).toBe('number')
    expect(watches.get('1')).toBe('string')
    expect(watches.size).toBe(2)
  })

  it('refuses an id already open with INVALID_ARGUMENT naming the field, without calling open', () => {
    const watches = new SessionWatches<string>(4)
    watches.add('w', () => 'first')
    let opened = false
    expect(() => watches.add('w', () => ((opened = true), 'second'))).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT, details: { field: 'id' } }))
    expect(opened).toBe(false)
    expect(watches.get('w')).toBe('first')
  })

  it('refuses a watch past the limit with TOO_MANY_REQUESTS', () => {
    const watches = new SessionWatches<number>(2)
    watches.add(1, () => 1)
    watches.add(2, () => 2)
    expect(codeOf(() => watches.add(3, () => 3))).toBe(ErrorCode.TOO_MANY_REQUESTS)
    watches.delete(1)
    expect(codeOf(() => watches.add(3, () => 3))).toBeUndefined()
  })

  it('keeps nothing when open throws', () => {
    const watches = new SessionWatches<number>(2)
    expect(() =>
      watches.add(1, () => {
        throw new WeftError(ErrorCode.INVALID_KEY, 'bad key')
      }),
    ).toThrow('bad key')
    expect(watches.size).toBe(0)
  })

  it('deletes a given watch only while it is the one under its id', () => {
    const watches = new SessionWatches<{ n: number }>(4)
    const old = { n: 1 }
    watches.add('w', () => old)
    watches.delete('w')
    const current = watches.add('w', () => ({ n: 2 }))
    watches.delete('w', old)
    expect(watches.get('w')).toBe(current)
    watches.delete('w', current)
    expect(watches.get('w')).toBeUndefined()
  })

  it('drain hands over every watch once and leaves the table empty', () => {
    const watches = new SessionWatches<string>(4)
    watches.add(1, () => 'a')
    watches.add(2, () => 'b')
    const closed: string[] = []
    watches.drain((w) => {
      expect(watches.size).toBe(0)
      closed.push(w)
    })
    expect(closed.sort()).toEqual(['a', 'b'])
    watches.drain((w) => closed.push(w))
    expect(closed).toHaveLength(2)
  })
})
