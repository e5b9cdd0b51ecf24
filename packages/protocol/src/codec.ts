// msgpack for every byte that crosses a process boundary or reaches disk.
//
// Plain msgpackr renames an object field called "__proto__" (to keep it from
// becoming a prototype), which would silently change a user's value. Values
// holding such a field are packed with their objects as msgpack maps and
// unpacked into Maps, then rebuilt with the field as plain data.
import { Packr } from 'msgpackr'
import { ErrorCode, WeftError } from '@weft/core'

const fast = new Packr({ useRecords: false, int64AsType: 'number' })
const exact = new Packr({ useRecords: false, int64AsType: 'number', mapsAsObjects: false })

const EXACT_TAG = 0xc1 // never emitted by msgpack ("never used"): marks the exact form

export function pack(value: unknown): Uint8Array {
  if (!hasProtoField(value)) return fast.pack(value)
  const body = exact.pack(toMaps(value))
  const out = new Uint8Array(body.length + 1)
  out[0] = EXACT_TAG
  out.set(body, 1)
  return out
}

/** Decodes bytes from anywhere untrusted; throws WeftError with `code` on garbage. */
export function unpack(bytes: Uint8Array, code: WeftError['code'] = ErrorCode.INVALID_ARGUMENT): unknown {
  try {
    if (bytes[0] === EXACT_TAG) return fromMaps(exact.unpack(bytes.subarray(1)))
    return fast.unpack(bytes)
  } catch (err) {
    throw new WeftError(code, `malformed msgpack: ${(err as Error).message}`)
  }
}

function hasProtoField(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return false
  if (Array.isArray(value)) return value.some(hasProtoField)
  return Object.hasOwn(value, '__proto__') || Object.values(value).some(hasProtoField)
}

function toMaps(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value
  if (Array.isArray(value)) return value.map(toMaps)
  return new Map(Object.entries(value).map(([k, v]) => [k, toMaps(v)]))
}

function fromMaps(value: unknown): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of value) Object.defineProperty(out, String(k), { value: fromMaps(v), enumerable: true, writable: true, configurable: true })
    return out
  }
  if (Array.isArray(value)) return value.map(fromMaps)
  return value
}
