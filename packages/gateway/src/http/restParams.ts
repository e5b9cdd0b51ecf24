// Reading request parameters strictly: a misspelled or repeated query
// parameter, or an unknown body field, is INVALID_ARGUMENT naming it, so an
// option never silently does nothing (the node protocol's rule too).
import { ErrorCode, WeftError } from '@weft/core'
import type { HttpExchange } from './HttpExchange.ts'
import { fromJson, setOwn } from './jsonValue.ts'

export const QueryKind = {
  string: 'string',
  integer: 'integer',
  boolean: 'boolean',
  /** ms since the epoch, or an ISO 8601 date. */
  time: 'time',
  /** A revision: `<n>` (index), `@<time>` (at), or a revision id. */
  selector: 'selector',
} as const
export type QueryKind = (typeof QueryKind)[keyof typeof QueryKind]

export type QuerySpec = Readonly<Record<string, QueryKind>>

/** Query parameters as typed values; `ignore` names ones read elsewhere (e.g. access_token). */
export function readQuery(exchange: HttpExchange, spec: QuerySpec, ignore: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const seen = new Set<string>()
  for (const [name, raw] of exchange.query) {
    if (ignore.includes(name)) continue
    if (!Object.hasOwn(spec, name)) throw invalid(name, `unknown query parameter ${JSON.stringify(name.slice(0, 64))}`)
    if (seen.has(name)) throw invalid(name, `query parameter ${name} given more than once`)
    seen.add(name)
    setOwn(out, name, convert(name, raw, spec[name]!))
  }
  return out
}

function convert(name: string, raw: string, kind: QueryKind): unknown {
  switch (kind) {
    case QueryKind.string:
      return raw
    case QueryKind.integer:
      if (!/^-?[0-9]{1,15}$/.test(raw)) throw invalid(name, `${name} must be an integer`)
      return Number(raw)
    case QueryKind.boolean:
      if (raw === '' || raw === 'true' || raw === '1') return true
      if (raw === 'false' || raw === '0') return false
      throw invalid(name, `${name} must be true or false`)
    case QueryKind.time:
      return parseTime(name, raw)
    case QueryKind.selector:
      return parseSelector(name, raw)
  }
}

/** ms since the epoch from a number or an ISO 8601 date string. */
export function parseTime(name: string, raw: unknown): number {
  if (typeof raw === 'number') return raw
  if (typeof raw !== 'string') throw invalid(name, `${name} must be ms since the epoch or an ISO 8601 date`)
  if (/^-?[0-9]+(\.[0-9]+)?$/.test(raw)) return Number(raw)
  const ms = /^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(raw) ? Date.parse(raw) : Number.NaN
  if (!Number.isFinite(ms)) throw invalid(name, `${name} must be ms since the epoch or an ISO 8601 date`)
  return ms
}

/** `3` → index 3; `@<time>` → at; anything else → a revision id. */
export function parseSelector(name: string, raw: string): { revision?: string; index?: number; at?: number } {
  if (raw === '') throw invalid(name, `${name} must be a revision id, an index or @<time>`)
  if (/^[0-9]{1,15}$/.test(raw)) return { index: Number(raw) }
  if (raw.startsWith('@')) return { at: parseTime(name, raw.slice(1)) }
  return { revision: raw }
}

/**
 * The JSON body's fields, only those `allowed`; `value` has its `{$bytes}`
 * leaves decoded and a string `at` is read as a date.
 */
export async function readBodyFields(exchange: HttpExchange, allowed: readonly string[]): Promise<Record<string, unknown>> {
  const body = await exchange.readJsonObject()
  const out: Record<string, unknown> = {}
  for (const [field, item] of Object.entries(body)) {
    if (!allowed.includes(field)) throw invalid(field, `unknown field ${JSON.stringify(field.slice(0, 64))} in the request body`)
    if (field === 'value') setOwn(out, field, fromJson(item))
    else if (field === 'at' && typeof item === 'string') setOwn(out, field, parseTime('at', item))
    else setOwn(out, field, item)
  }
  return out
}

/** Adds `fields` to `params`; the same field from two places must agree. */
export function mergeParams(params: Record<string, unknown>, fields: Record<string, unknown>, from: string): void {
  for (const [field, item] of Object.entries(fields)) {
    if (item === undefined) continue
    if (Object.hasOwn(params, field) && params[field] !== item) throw invalid(field, `${field} given twice with different values (${from})`)
    setOwn(params, field, item)
  }
}

/** `If-Match: "<revision id>"` → ifHead; `If-None-Match: *` → ifHead null (the fork must not exist yet). */
export function ifHeadFromHeaders(exchange: HttpExchange): { ifHead?: string | null } {
  const ifMatch = exchange.header('if-match')
  const ifNoneMatch = exchange.header('if-none-match')
  if (ifMatch !== undefined && ifNoneMatch !== undefined) throw invalid('ifHead', 'give If-Match or If-None-Match, not both')
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*') throw invalid('ifHead', 'If-None-Match takes only * (the fork must not exist yet)')
    return { ifHead: null }
  }
  if (ifMatch === undefined) return {}
  const tag = ifMatch.trim().replace(/^W\//, '')
  if (tag === '*') throw invalid('ifHead', 'If-Match: * is not supported: give the head revision id')
  if (tag.includes(',')) throw invalid('ifHead', 'If-Match takes one revision id')
  const unquoted = /^"(.*)"$/.exec(tag)?.[1] ?? tag
  if (unquoted === '') throw invalid('ifHead', 'If-Match needs a revision id')
  return { ifHead: unquoted }
}

/** `Idempotency-Key` → requestId. */
export function requestIdFromHeaders(exchange: HttpExchange): { requestId?: string } {
  const key = exchange.header('idempotency-key')
  return key === undefined ? {} : { requestId: key }
}

export function invalid(field: string, message: string): WeftError {
  return new WeftError(ErrorCode.INVALID_ARGUMENT, message, { field })
}
