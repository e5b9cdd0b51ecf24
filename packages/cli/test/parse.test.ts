// The CLI's pure parts: times, selectors, diff sides, values, exit codes, colours, JSON.
import { describe, expect, it } from 'vitest'
import { ExitCode, exitCodeOf } from '../src/ExitCode.ts'
import { Output, colorFor, jsonReplacer, visibleLength } from '../src/Output.ts'
import { parseDiffSide, parseIfHead, parseSelector, parseTime, parseValue } from '../src/parse.ts'
import { UsageError } from '../src/UsageError.ts'

const NOW = Date.parse('2025-01-01T12:00:00Z')

describe('parseTime', () => {
  it('reads now, ms, ISO dates and times ago', () => {
    expect(parseTime('now', NOW)).toBe(NOW)
    expect(parseTime('1732240000000', NOW)).toBe(1732240000000)
    expect(parseTime('2024-11-22T10:00:00Z', NOW)).toBe(Date.parse('2024-11-22T10:00:00Z'))
    expect(parseTime('5m', NOW)).toBe(NOW - 300_000)
    expect(parseTime('-2h', NOW)).toBe(NOW - 7_200_000)
    expect(parseTime('1d ago', NOW)).toBe(NOW - 86_400_000)
    expect(parseTime('1.5s', NOW)).toBe(NOW - 1500)
  })

  it('refuses what is not a time with a usage error', () => {
    expect(() => parseTime('yesterday-ish', NOW)).toThrow(UsageError)
    expect(() => parseTime('5 parsecs', NOW)).toThrow(/time ago/)
  })
})

describe('parseSelector', () => {
  it('takes at most one of revision, index, at', () => {
    expect(parseSelector({})).toEqual({})
    expect(parseSelector({ revision: 'r1' })).toEqual({ revision: 'r1' })
    expect(parseSelector({ index: '3' })).toEqual({ index: 3 })
    expect(parseSelector({ at: '1m' }, NOW)).toEqual({ at: NOW - 60_000 })
    expect(() => parseSelector({ index: '3', at: '1m' })).toThrow(/at most one/)
    expect(() => parseSelector({ index: '0' })).toThrow(/positive integer/)
    expect(() => parseSelector({ index: 'x' })).toThrow(UsageError)
  })
})

describe('parseDiffSide', () => {
  const id = '0193f1c2a4b50000.n1'
  it('reads FORK, FORK@index, FORK@revision, FORK@time, and @... with the default fork', () => {
    expect(parseDiffSide('staging', undefined)).toEqual({ fork: 'staging' })
    expect(parseDiffSide('main@3', undefined)).toEqual({ fork: 'main', index: 3 })
    expect(parseDiffSide(`main@${id}`, undefined)).toEqual({ fork: 'main', revision: id })
    expect(parseDiffSide('main@1h', undefined, NOW)).toEqual({ fork: 'main', at: NOW - 3_600_000 })
    expect(parseDiffSide('@2', 'prod')).toEqual({ fork: 'prod', index: 2 })
    expect(parseDiffSide('@2', undefined)).toEqual({ index: 2 })
    expect(parseDiffSide('main@2024-11-22T10:00:00Z', undefined)).toEqual({ fork: 'main', at: Date.parse('2024-11-22T10:00:00Z') })
    expect(() => parseDiffSide('main@', undefined)).toThrow(UsageError)
  })
})

describe('parseValue', () => {
  it('reads JSON by default, strings with --string, bytes with --bytes', () => {
    expect(parseValue('{"a":[1,true,null]}', 'json', 'VALUE')).toEqual({ a: [1, true, null] })
    expect(parseValue('42', 'json', 'VALUE')).toBe(42)
    expect(parseValue('hello', 'string', 'VALUE')).toBe('hello')
    expect(parseValue(new TextEncoder().encode('"x"\n'), 'json', 'stdin')).toBe('x')
    expect(parseValue('AAH/', 'bytes', 'VALUE')).toEqual(new Uint8Array([0, 1, 255]))
    expect(parseValue(new Uint8Array([9, 8]), 'bytes', 'stdin')).toEqual(new Uint8Array([9, 8]))
  })

  it('refuses text that is not JSON, pointing at --string', () => {
    expect(() => parseValue('hello', 'json', 'VALUE')).toThrow(/--string/)
    expect(() => parseValue('not base64!', 'bytes', 'VALUE')).toThrow(/base64/)
  })

  it('reads --if-head none as "the fork must not exist"', () => {
    expect(parseIfHead(undefined)).toBeUndefined()
    expect(parseIfHead('none')).toBeNull()
    expect(parseIfHead('r1')).toBe('r1')
  })
})

describe('exit codes', () => {
  it('maps error codes to the documented exit codes', () => {
    expect(exitCodeOf('KEY_NOT_FOUND')).toBe(ExitCode.notFound)
    expect(exitCodeOf('FORK_NOT_FOUND')).toBe(3)
    expect(exitCodeOf('REVISION_NOT_FOUND')).toBe(3)
    expect(exitCodeOf('HEAD_MISMATCH')).toBe(ExitCode.conflict)
    expect(exitCodeOf('MERGE_CONFLICT')).toBe(4)
    expect(exitCodeOf('FORK_EXISTS')).toBe(4)
    expect(exitCodeOf('UNAVAILABLE')).toBe(ExitCode.unreachable)
    expect(exitCodeOf('TIMEOUT')).toBe(5)
    expect(exitCodeOf('INVALID_KEY')).toBe(ExitCode.error)
    expect(exitCodeOf('FORBIDDEN')).toBe(1)
  })
})

describe('output', () => {
  it('colours only terminals, never with NO_COLOR, as forced otherwise', () => {
    const tty = { write: () => true, isTTY: true }
    const pipe = { write: () => true, isTTY: false }
    expect(colorFor(tty, {}, undefined)).toBe(true)
    expect(colorFor(pipe, {}, undefined)).toBe(false)
    expect(colorFor(tty, { NO_COLOR: '1' }, true)).toBe(false)
    expect(colorFor(tty, { TERM: 'dumb' }, undefined)).toBe(false)
    expect(colorFor(pipe, { FORCE_COLOR: '1' }, undefined)).toBe(true)
    expect(colorFor(pipe, {}, true)).toBe(true)
    expect(colorFor(tty, {}, false)).toBe(false)
  })

  it('writes bytes in JSON as {"$bytes": base64}, Buffers included', () => {
    expect(JSON.stringify({ v: new Uint8Array([0, 1, 255]) }, jsonReplacer)).toBe('{"v":{"$bytes":"AAH/"}}')
    expect(JSON.stringify({ v: Buffer.from([0, 1, 255]) }, jsonReplacer)).toBe('{"v":{"$bytes":"AAH/"}}')
  })

  it('pads table columns by visible width, colours ignored', () => {
    let text = ''
    const out = new Output({ stdout: { write: (t) => (text += String(t)) }, stderr: { write: () => true }, json: false, color: { out: true, err: false } })
    out.table(['A', 'B'], [[out.out.paint('red', 'xx'), '1'], ['y', '2']])
    const lines = text.trimEnd().split('\n')
    expect(lines.map(visibleLength)).toEqual([5, 5, 5])
    expect(out.value({ a: [1, 'two'], b: null })).toContain('\u001b[')
  })
})
