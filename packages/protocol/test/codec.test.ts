import { describe, expect, it } from 'vitest'
import { pack, unpack } from '../src/codec.ts'

describe('codec', () => {
  it('round-trips values, including bytes and a field named __proto__', () => {
    const tricky = JSON.parse('{"__proto__": {"x": [1, {"__proto__": 2}]}, "y": 2}') as unknown
    for (const value of [1, 'x', null, true, [1, 'a'], { a: { b: [1.5] } }, new Uint8Array([1, 2]), tricky]) {
      const back = unpack(pack(value))
      // Bytes come back as Buffer, a Uint8Array subclass.
      expect(back).toEqual(value instanceof Uint8Array ? Buffer.from(value) : value)
    }
    const back = unpack(pack(tricky)) as Record<string, unknown>
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
    expect(Object.keys(back)).toEqual(['__proto__', 'y'])
  })

  it('throws a coded error on garbage', () => {
    expect(() => unpack(new Uint8Array([0xc1]))).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }) as Error)
    expect(() => unpack(new Uint8Array([0xdc, 0xff]))).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }) as Error)
  })
})
