// Turning command-line text into protocol values: times, selectors, diff
// sides, values. Pure functions; every refusal is a UsageError.
import type { Value } from '@weft/core'
import type { DiffSide, Selector } from '@weft/protocol'
import { UsageError } from './UsageError.ts'

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
const REVISION_ID = /^[0-9a-f]{16}\.[A-Za-z0-9_-]+$/

/**
 * A point in time, ms since the epoch: `now`, milliseconds (`1732240000000`),
 * an ISO date (`2024-11-22T10:00:00Z`), or a time ago (`90s`, `5m`, `-2h`, `1d ago`).
 */
export function parseTime(text: string, now: number = Date.now()): number {
  const input = text.trim()
  if (input === 'now') return now
  if (/^\d+$/.test(input)) return Number(input)
  const ago = /^-?(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)(?:\s+ago)?$/.exec(input)
  if (ago) return Math.round(now - Number(ago[1]) * UNITS[ago[2]!]!)
  const parsed = Date.parse(input)
  if (!Number.isNaN(parsed)) return parsed
  throw new UsageError(`cannot read ${JSON.stringify(text)} as a time: give ms since the epoch, an ISO date, or a time ago like 5m, 2h, 1d`)
}

export function parsePositiveInt(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) throw new UsageError(`${what} must be a positive integer, got ${JSON.stringify(text)}`)
  return Number(text)
}

/** `--revision`, `--index`, `--at`: at most one. */
export function parseSelector(options: { revision?: string | undefined; index?: string | undefined; at?: string | undefined }, now?: number): Selector {
  const given = (['revision', 'index', 'at'] as const).filter((name) => options[name] !== undefined)
  if (given.length > 1) throw new UsageError(`give at most one of --revision, --index, --at (got ${given.map((g) => `--${g}`).join(', ')})`)
  if (options.revision !== undefined) return { revision: options.revision }
  if (options.index !== undefined) return { index: parsePositiveInt(options.index, '--index') }
  if (options.at !== undefined) return { at: parseTime(options.at, now) }
  return {}
}

/**
 * One side of a diff: `FORK`, `FORK@N` (index), `FORK@<revision id>`,
 * `FORK@TIME` (ISO date or time ago); an empty fork means `defaultFork`.
 */
export function parseDiffSide(text: string, defaultFork: string | undefined, now?: number): DiffSide {
  const at = text.indexOf('@')
  const fork = at === -1 ? text : text.slice(0, at)
  const selector = at === -1 ? '' : text.slice(at + 1)
  const side: { fork?: string; revision?: string; index?: number; at?: number } = {}
  if (fork !== '') side.fork = fork
  else if (defaultFork !== undefined) side.fork = defaultFork
  if (at !== -1) {
    if (selector === '') throw new UsageError(`nothing after @ in ${JSON.stringify(text)}: give an index, a revision id or a time`)
    if (/^\d+$/.test(selector) && selector.length < 10) side.index = parsePositiveInt(selector, `the index in ${JSON.stringify(text)}`)
    else if (REVISION_ID.test(selector)) side.revision = selector
    else side.at = parseTime(selector, now)
  }
  return side
}

export type ValueEncoding = 'json' | 'string' | 'bytes'

/** A value from its text or bytes: JSON (default), a plain string, or raw bytes. */
export function parseValue(input: string | Uint8Array, encoding: ValueEncoding, source: string): Value {
  if (encoding === 'bytes') return typeof input === 'string' ? decodeBase64(input, source) : input
  const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: false }).decode(input)
  if (encoding === 'string') return text
  try {
    return JSON.parse(text) as Value
  } catch (err) {
    throw new UsageError(`${source} is not valid JSON (${(err as Error).message}); use --string to store it as a plain string`)
  }
}

function decodeBase64(text: string, source: string): Uint8Array {
  const clean = text.trim()
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new UsageError(`${source} is not base64 (with --bytes, an argument is base64; use --file or - for raw bytes)`)
  return new Uint8Array(Buffer.from(clean, 'base64'))
}

/** `--if-head`: a revision id, or `none` for "the fork must not exist yet". */
export function parseIfHead(text: string | undefined): string | null | undefined {
  if (text === undefined) return undefined
  return text === 'none' || text === 'null' ? null : text
}
