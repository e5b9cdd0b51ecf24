import { describe, expect, it } from 'vitest'
import { RecentIds } from '../src/RecentIds.ts'
import { formatGatewayCursor, parseGatewayCursor } from '../src/GatewayCursor.ts'
import { fullJitter } from '../src/backoff.ts'

describe('RecentIds', () => {
  it('tells ids seen before from new ones', () => {
    const ids = new RecentIds({ windowMs: 1000, maxIds: 10 })
    expect(ids.add('a', 0)).toBe(true)
    expect(ids.add('b', 1)).toBe(true)
    expect(ids.add('a', 2)).toBe(false)
    expect(ids.has('b')).toBe(true)
  })

  it('forgets ids received more than the window before the newest', () => {
    const ids = new RecentIds({ windowMs: 1000, maxIds: 100 })
    ids.add('old', 0)
    ids.add('mid', 600)
    ids.add('new', 1500)
    expect(ids.has('old')).toBe(false)
    expect(ids.has('mid')).toBe(true)
    // Idle time alone forgets nothing: only newer ids push older ones out.
    expect(ids.size).toBe(2)
  })

  it('keeps at most maxIds', () => {
    const ids = new RecentIds({ windowMs: 1e9, maxIds: 100 })
    for (let i = 0; i < 1000; i++) ids.add(`r${i}`, i)
    expect(ids.size).toBe(100)
    expect(ids.has('r899')).toBe(false)
    expect(ids.has('r900')).toBe(true)
  })
})

describe('gateway cursors', () => {
  it('round-trip, and look like node cursors to clients', () => {
    const text = formatGatewayCursor({ node: { epoch: '6f1c0d2e-aaaa-bbbb-cccc-0123456789ab', seq: 1042 }, since: 1732240000123 })
    expect(text).toMatch(/^g\.[0-9a-z]+\.6f1c0d2e-aaaa-bbbb-cccc-0123456789ab:1042$/)
    expect(parseGatewayCursor(text)).toEqual({ node: { epoch: '6f1c0d2e-aaaa-bbbb-cccc-0123456789ab', seq: 1042 }, since: 1732240000123 })
  })

  it('are told apart from node cursors and garbage', () => {
    expect(parseGatewayCursor('6f1c0d2e:12')).toBeUndefined()
    expect(parseGatewayCursor('g.:12')).toBeUndefined()
    expect(parseGatewayCursor('g.zz!.e:1')).toBeUndefined()
    expect(parseGatewayCursor('g.1a.e:x')).toBeUndefined()
  })
})

describe('fullJitter', () => {
  it('waits between 0 and an exponential cap', () => {
    const options = { baseMs: 50, maxMs: 1000 }
    expect(fullJitter(1, options, () => 0.999)).toBe(49)
    expect(fullJitter(3, options, () => 0.999)).toBe(199)
    expect(fullJitter(10, options, () => 0.999)).toBe(999)
    expect(fullJitter(4, options, () => 0)).toBe(0)
  })
})
