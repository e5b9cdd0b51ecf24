import { describe, expect, it } from 'vitest'
import { ErrorCode, WeftError } from '@weft/core'
import { pack } from '../src/codec.ts'
import { ErrorStatuses, closeCodeOf, closeReason, errorOfClose, httpStatusOf } from '../src/httpStatus.ts'
import { Op, decodeFrame, errorBody, formatCursor, parseCursor, parseRequest, requestIdOf } from '../src/messages.ts'

function codeOf(run: () => unknown): string {
  try {
    run()
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError)
    return (err as WeftError).code
  }
  return 'no error'
}

describe('parseRequest', () => {
  it('accepts every op in its documented shape, without undefined fields', () => {
    const valid: Record<string, unknown>[] = [
      { id: 1, op: 'get', key: 'k' },
      { id: 'a', op: 'get', key: 'k', fork: 'b', revision: '0000000000000001.n1' },
      { id: 2, op: 'get', key: 'k', index: 3 },
      { id: 3, op: 'get', key: 'k', at: 1.5e12 },
      { id: 4, op: 'set', key: 'k', value: { a: [1, null] }, fork: 'main', ifHead: null, author: 'ana', message: 'm', requestId: 'r' },
      { id: 5, op: 'set', key: 'k', value: null },
      { id: 6, op: 'delete', key: 'k', ifHead: '0000000000000001.n1' },
      { id: 7, op: 'keys' },
      { id: 8, op: 'keys', prefix: 'a/', fork: 'f', limit: 10, after: 'a/b' },
      { id: 9, op: 'history', key: 'k', limit: 5, before: 'x', values: true, patches: false },
      { id: 10, op: 'info', key: 'k', fork: 'f' },
      { id: 11, op: 'diff', key: 'k', from: { fork: 'a', index: 1 }, to: {} },
      { id: 12, op: 'revert', key: 'k', index: 1 },
      { id: 13, op: 'fork', key: 'k', to: 'b', from: 'main', revision: 'x' },
      { id: 14, op: 'fork', prefix: 'a/', to: 'b', at: 5 },
      { id: 15, op: 'merge', key: 'k', from: 'b', into: 'main', strategy: 'theirs' },
      { id: 16, op: 'merge', prefix: '', from: 'b' },
      { id: 17, op: 'watch', key: 'k' },
      { id: 18, op: 'watch', prefix: 'a/', fork: 'b', after: 'epoch-1:42' },
      { id: 19, op: 'unwatch', watch: 'w' },
      { id: 20, op: 'members' },
      { id: 0, op: 'ping' },
    ]
    for (const frame of valid) expect(parseRequest(frame)).toEqual(frame)
    expect(Object.keys(Op).sort()).toEqual([...new Set(valid.map((f) => f.op as string))].sort())
  })

  it('treats nil as absent for optional fields, but keeps ifHead nil and value nil', () => {
    expect(parseRequest({ id: 1, op: 'get', key: 'k', fork: null, index: null })).toEqual({ id: 1, op: 'get', key: 'k' })
    const set = parseRequest({ id: 1, op: 'set', key: 'k', value: null, ifHead: null, author: null })
    expect(set).toEqual({ id: 1, op: 'set', key: 'k', value: null, ifHead: null })
    expect(Object.values(set)).not.toContain(undefined)
  })

  const bad: [string, unknown, string][] = [
    ['nil', null, 'BAD_FRAME'],
    ['a number', 5, 'BAD_FRAME'],
    ['a string', 'get', 'BAD_FRAME'],
    ['an array', [1, 'get'], 'BAD_FRAME'],
    ['bytes', new Uint8Array([1]), 'BAD_FRAME'],
    ['a date', new Date(0), 'BAD_FRAME'],
    ['no id', { op: 'ping' }, 'BAD_FRAME'],
    ['negative id', { id: -1, op: 'ping' }, 'BAD_FRAME'],
    ['fractional id', { id: 1.5, op: 'ping' }, 'BAD_FRAME'],
    ['id too long', { id: 'x'.repeat(65), op: 'ping' }, 'BAD_FRAME'],
    ['id a map', { id: {}, op: 'ping' }, 'BAD_FRAME'],
    ['no op', { id: 1 }, 'BAD_FRAME'],
    ['op a number', { id: 1, op: 3 }, 'BAD_FRAME'],
    ['unknown op', { id: 1, op: 'drop' }, 'UNKNOWN_OP'],
    ['op from the prototype', { id: 1, op: 'toString' }, 'UNKNOWN_OP'],
    ['unknown field', { id: 1, op: 'ping', extra: 1 }, 'INVALID_ARGUMENT'],
    ['__proto__ field', JSON.parse('{"id": 1, "op": "ping", "__proto__": {"x": 1}}'), 'INVALID_ARGUMENT'],
    ['get without key', { id: 1, op: 'get' }, 'INVALID_ARGUMENT'],
    ['key a number', { id: 1, op: 'get', key: 5 }, 'INVALID_ARGUMENT'],
    ['fork a number', { id: 1, op: 'get', key: 'k', fork: 5 }, 'INVALID_ARGUMENT'],
    ['index fractional', { id: 1, op: 'get', key: 'k', index: 1.5 }, 'INVALID_ARGUMENT'],
    ['index a string', { id: 1, op: 'get', key: 'k', index: '1' }, 'INVALID_ARGUMENT'],
    ['at infinite', { id: 1, op: 'get', key: 'k', at: Infinity }, 'INVALID_ARGUMENT'],
    ['two selectors', { id: 1, op: 'get', key: 'k', index: 1, at: 5 }, 'INVALID_ARGUMENT'],
    ['set without value', { id: 1, op: 'set', key: 'k' }, 'INVALID_ARGUMENT'],
    ['ifHead a number', { id: 1, op: 'set', key: 'k', value: 1, ifHead: 3 }, 'INVALID_ARGUMENT'],
    ['author a number', { id: 1, op: 'set', key: 'k', value: 1, author: 3 }, 'INVALID_ARGUMENT'],
    ['requestId empty', { id: 1, op: 'set', key: 'k', value: 1, requestId: '' }, 'INVALID_ARGUMENT'],
    ['requestId a number', { id: 1, op: 'delete', key: 'k', requestId: 7 }, 'INVALID_ARGUMENT'],
    ['limit a string', { id: 1, op: 'keys', limit: '10' }, 'INVALID_ARGUMENT'],
    ['values a number', { id: 1, op: 'history', key: 'k', values: 1 }, 'INVALID_ARGUMENT'],
    ['diff without to', { id: 1, op: 'diff', key: 'k', from: {} }, 'INVALID_ARGUMENT'],
    ['diff side an array', { id: 1, op: 'diff', key: 'k', from: [], to: {} }, 'INVALID_ARGUMENT'],
    ['diff side unknown field', { id: 1, op: 'diff', key: 'k', from: { branch: 'x' }, to: {} }, 'INVALID_ARGUMENT'],
    ['diff side bad index', { id: 1, op: 'diff', key: 'k', from: {}, to: { index: 'x' } }, 'INVALID_ARGUMENT'],
    ['revert without selector', { id: 1, op: 'revert', key: 'k' }, 'INVALID_ARGUMENT'],
    ['fork without to', { id: 1, op: 'fork', key: 'k' }, 'INVALID_ARGUMENT'],
    ['fork with key and prefix', { id: 1, op: 'fork', key: 'k', prefix: 'p', to: 'b' }, 'INVALID_ARGUMENT'],
    ['fork with neither key nor prefix', { id: 1, op: 'fork', to: 'b' }, 'INVALID_ARGUMENT'],
    ['prefix fork by index', { id: 1, op: 'fork', prefix: 'p', to: 'b', index: 1 }, 'INVALID_ARGUMENT'],
    ['merge without from', { id: 1, op: 'merge', key: 'k' }, 'INVALID_ARGUMENT'],
    ['merge unknown strategy', { id: 1, op: 'merge', key: 'k', from: 'b', strategy: 'mine' }, 'INVALID_ARGUMENT'],
    ['watch cursor a number', { id: 1, op: 'watch', key: 'k', after: 5 }, 'INVALID_ARGUMENT'],
    ['watch cursor without seq', { id: 1, op: 'watch', key: 'k', after: 'epoch' }, 'INVALID_ARGUMENT'],
    ['watch cursor negative seq', { id: 1, op: 'watch', key: 'k', after: 'e:-1' }, 'INVALID_ARGUMENT'],
    ['unwatch a map', { id: 1, op: 'unwatch', watch: {} }, 'INVALID_ARGUMENT'],
    ['unwatch missing', { id: 1, op: 'unwatch' }, 'INVALID_ARGUMENT'],
  ]

  it.each(bad)('refuses %s with %s', (_name, frame, code) => {
    expect(codeOf(() => parseRequest(frame))).toBe(code)
  })

  it('names the bad field in the details', () => {
    const err = (() => {
      try {
        parseRequest({ id: 1, op: 'diff', key: 'k', from: {}, to: { index: 'x' } })
      } catch (e) {
        return e as WeftError
      }
    })()
    expect(err?.details).toEqual({ field: 'to.index' })
  })
})

describe('frames', () => {
  it('decodes maps and refuses garbage or other types with BAD_FRAME', () => {
    expect(decodeFrame(pack({ id: 1, op: 'ping' }))).toEqual({ id: 1, op: 'ping' })
    expect(codeOf(() => decodeFrame(new Uint8Array([0xc1, 0x00])))).toBe('BAD_FRAME')
    expect(codeOf(() => decodeFrame(new Uint8Array([])))).toBe('BAD_FRAME')
    expect(codeOf(() => decodeFrame(new Uint8Array([...pack({ id: 1 }), 0x01])))).toBe('BAD_FRAME')
    expect(codeOf(() => decodeFrame(pack([1, 2])))).toBe('BAD_FRAME')
    expect(codeOf(() => decodeFrame(pack('text')))).toBe('BAD_FRAME')
  })

  it('reads the id of a frame it cannot parse, when there is one', () => {
    expect(requestIdOf({ id: 4, op: 'nope' })).toBe(4)
    expect(requestIdOf({ id: 'x', key: 5 })).toBe('x')
    expect(requestIdOf({ id: -4 })).toBeNull()
    expect(requestIdOf([1])).toBeNull()
    expect(requestIdOf(null)).toBeNull()
  })

  it('turns any failure into an error body, unknown ones as INTERNAL without their message', () => {
    expect(errorBody(new WeftError(ErrorCode.KEY_NOT_FOUND, 'gone', { key: 'k' }))).toEqual({ code: 'KEY_NOT_FOUND', message: 'gone', details: { key: 'k' } })
    expect(errorBody(new Error('secret path /etc'))).toEqual({ code: 'INTERNAL', message: 'internal error' })
    expect(errorBody('thrown string')).toEqual({ code: 'INTERNAL', message: 'internal error' })
  })
})

describe('cursors', () => {
  it('round-trip, with colons allowed in the epoch', () => {
    expect(parseCursor(formatCursor({ epoch: 'a-b', seq: 12 }))).toEqual({ epoch: 'a-b', seq: 12 })
    expect(parseCursor('a:b:0')).toEqual({ epoch: 'a:b', seq: 0 })
    for (const bad of ['', ':1', 'e:', 'e:01', 'e:1.5', 'e:99999999999999999', 5]) expect(codeOf(() => parseCursor(bad))).toBe('INVALID_ARGUMENT')
  })
})

describe('error statuses', () => {
  it('maps every error code to an HTTP status', () => {
    for (const code of Object.values(ErrorCode)) {
      expect(ErrorStatuses[code], code).toBeDefined()
      expect(httpStatusOf(code)).toBeGreaterThanOrEqual(400)
      expect(httpStatusOf(code)).toBeLessThan(600)
    }
    expect(httpStatusOf(ErrorCode.KEY_NOT_FOUND)).toBe(404)
    expect(httpStatusOf(ErrorCode.TOO_MANY_REQUESTS)).toBe(429)
  })

  it('gives close codes in the valid ranges, each naming one error', () => {
    const closes = Object.values(ErrorStatuses).flatMap((s) => (s.close === undefined ? [] : [s.close]))
    expect(new Set(closes).size).toBe(closes.length)
    for (const close of closes) expect((close >= 1000 && close <= 1014) || (close >= 4000 && close <= 4999)).toBe(true)
    expect(closeCodeOf(ErrorCode.FRAME_TOO_LARGE)).toBe(1009)
    expect(closeCodeOf(ErrorCode.KEY_NOT_FOUND)).toBe(1011)
  })

  it('reads the error back from a close', () => {
    expect(errorOfClose(1009)).toBe('FRAME_TOO_LARGE')
    expect(errorOfClose(4429, 'TOO_MANY_REQUESTS: slow consumer')).toBe('TOO_MANY_REQUESTS')
    expect(errorOfClose(1011, 'STORAGE_FAILED: disk')).toBe('STORAGE_FAILED')
    expect(errorOfClose(1000)).toBeUndefined()
  })

  it('keeps close reasons within 123 bytes', () => {
    const reason = closeReason(ErrorCode.INTERNAL, 'é'.repeat(200))
    expect(new TextEncoder().encode(reason).length).toBeLessThanOrEqual(123)
    expect(reason.startsWith('INTERNAL: ')).toBe(true)
  })
})
