// JSON has no bytes: over HTTP a bytes leaf is `{"$bytes": "<base64>"}`, both
// ways. Results from the backend may hold Uint8Arrays anywhere a value can be
// (get, history, diffs, conflicts, watch events), so the whole tree is walked.
import { ErrorCode, WeftError } from '@weft/core'

export const BYTES_FIELD = '$bytes'

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** A result from the backend, ready for JSON.stringify: bytes become `{$bytes}`. */
export function toJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return { [BYTES_FIELD]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') }
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (Array.isArray(value)) return value.map(toJson)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [field, item] of Object.entries(value)) setOwn(out, field, toJson(item))
    return out
  }
  return value
}

/**
 * A parsed JSON body's value, with `{"$bytes": "<base64>"}` (that one field, a
 * string) turned into bytes. Bad base64 is INVALID_VALUE.
 */
export function fromJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJson)
  if (value !== null && typeof value === 'object') {
    const fields = Object.keys(value)
    const bytes = (value as Record<string, unknown>)[BYTES_FIELD]
    if (fields.length === 1 && fields[0] === BYTES_FIELD && typeof bytes === 'string') return decodeBase64(bytes)
    const out: Record<string, unknown> = {}
    for (const [field, item] of Object.entries(value)) setOwn(out, field, fromJson(item))
    return out
  }
  return value
}

export function decodeBase64(text: string): Uint8Array {
  if (!BASE64.test(text)) throw new WeftError(ErrorCode.INVALID_VALUE, `${BYTES_FIELD} must be standard base64 with padding`)
  const buffer = Buffer.from(text, 'base64')
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}

/** Assignment that keeps a field named `__proto__` as data instead of setting the prototype. */
export function setOwn(target: Record<string, unknown>, field: string, value: unknown): void {
  if (field === '__proto__') Object.defineProperty(target, field, { value, enumerable: true, writable: true, configurable: true })
  else target[field] = value
}
