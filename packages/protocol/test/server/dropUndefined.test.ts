import { describe, expect, it } from 'vitest'
import { dropUndefined } from '../../src/server/dropUndefined.ts'

describe('dropUndefined', () => {
  it('leaves out undefined fields at any depth, keeps null, bytes and array slots', () => {
    const bytes = new Uint8Array([1, 2])
    expect(dropUndefined({ a: undefined, b: null, c: [{ d: undefined, e: 1 }], f: bytes })).toEqual({ b: null, c: [{ e: 1 }], f: bytes })
    expect(dropUndefined([undefined, 1])).toEqual([undefined, 1])
  })

  it('keeps a field named __proto__ as data', () => {
    const value = { ...(JSON.parse('{"__proto__": {"x": 1}}') as object), y: undefined }
    const copy = dropUndefined(value) as Record<string, unknown>
    expect(Object.hasOwn(copy, '__proto__')).toBe(true)
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype)
    expect(Object.hasOwn(copy, 'y')).toBe(false)
  })
})
