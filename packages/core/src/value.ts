// Values are JSON, or raw bytes. Objects and arrays are structure; everything
// else is a leaf that one write replaces as a whole.
import { ErrorCode, WeftError } from './errors.ts'

export type Leaf = string | number | boolean | null | Uint8Array
export type Value = Leaf | readonly Value[] | { readonly [field: string]: Value }
export type ValueObject = { readonly [field: string]: Value }
export type Path = readonly (string | number)[]

export const ValueLimits = {
  /** Approximate encoded size of a whole value. */
  bytes: 1024 * 1024,
  depth: 64,
} as const

export function isLeaf(value: Value): value is Leaf {
  return value === null || typeof value !== 'object' || value instanceof Uint8Array
}

export function isValueObject(value: Value): value is ValueObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)
}

/**
 * Checks that `input` is a storable value within the limits and returns it.
 * Throws INVALID_VALUE or VALUE_TOO_LARGE; never anything else.
 */
export function parseValue(input: unknown, limits: { bytes: number; depth: number } = ValueLimits): Value {
  let size = 0
  const visit = (node: unknown, depth: number): void => {
    if (depth > limits.depth) throw new WeftError(ErrorCode.INVALID_VALUE, `value nests deeper than ${limits.depth}`)
    if (size > limits.bytes) throw new WeftError(ErrorCode.VALUE_TOO_LARGE, `value is larger than ${limits.bytes} bytes`)
    if (node === null || typeof node === 'boolean') {
      size += 1
    } else if (typeof node === 'number') {
      if (!Number.isFinite(node)) throw new WeftError(ErrorCode.INVALID_VALUE, 'numbers must be finite')
      size += 9
    } else if (typeof node === 'string') {
      size += node.length * 3 + 5
    } else if (node instanceof Uint8Array) {
      size += node.byteLength + 5
    } else if (Array.isArray(node)) {
      size += 5
      for (const item of node) visit(item, depth + 1)
    } else if (typeof node === 'object' && isPlainObject(node)) {
      size += 5
      for (const [field, item] of Object.entries(node)) {
        size += field.length * 3 + 5
        visit(item, depth + 1)
      }
    } else {
      throw new WeftError(ErrorCode.INVALID_VALUE, `unsupported value type: ${describe(node)}`)
    }
  }
  visit(input, 0)
  if (size > limits.bytes) throw new WeftError(ErrorCode.VALUE_TOO_LARGE, `value is larger than ${limits.bytes} bytes`)
  return input as Value
}

function isPlainObject(node: object): boolean {
  const proto = Object.getPrototypeOf(node)
  return proto === Object.prototype || proto === null
}

function describe(node: unknown): string {
  if (node === undefined) return 'undefined'
  if (typeof node === 'object' && node !== null) return node.constructor?.name ?? 'object'
  return typeof node
}

export function deepEqual(a: Value | undefined, b: Value | undefined): boolean {
  if (a === b) return true
  if (a === undefined || b === undefined || a === null || b === null) return false
  if (typeof a !== 'object' || typeof b !== 'object') return false
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && bytesEqual(a, b)
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    return a.every((item, i) => deepEqual(item, b[i]))
  }
  const aObj = a as ValueObject
  const bObj = b as ValueObject
  const aKeys = Object.keys(aObj)
  if (aKeys.length !== Object.keys(bObj).length) return false
  return aKeys.every((k) => Object.hasOwn(bObj, k) && deepEqual(aObj[k], bObj[k]))
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

export type Change =
  | { readonly op: 'add'; readonly path: Path; readonly after: Value }
  | { readonly op: 'remove'; readonly path: Path; readonly before: Value }
  | { readonly op: 'change'; readonly path: Path; readonly before: Value; readonly after: Value }

/** What changed from `before` to `after`, field by field (arrays index by index). */
export function diffValues(before: Value | undefined, after: Value | undefined, path: Path = []): Change[] {
  if (deepEqual(before, after)) return []
  if (before === undefined) return [{ op: 'add', path, after: after as Value }]
  if (after === undefined) return [{ op: 'remove', path, before }]
  if (isValueObject(before) && isValueObject(after)) {
    const changes: Change[] = []
    for (const field of Object.keys(before)) changes.push(...diffValues(before[field], Object.hasOwn(after, field) ? after[field] : undefined, [...path, field]))
    for (const field of Object.keys(after)) if (!Object.hasOwn(before, field)) changes.push({ op: 'add', path: [...path, field], after: after[field] as Value })
    return changes
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const changes: Change[] = []
    const length = Math.max(before.length, after.length)
    for (let i = 0; i < length; i++) changes.push(...diffValues(before[i], after[i], [...path, i]))
    return changes
  }
  return [{ op: 'change', path, before, after }]
}

/** The value at `path`, or undefined when the path does not exist. */
export function valueAt(value: Value | undefined, path: Path): Value | undefined {
  let node = value
  for (const segment of path) {
    if (node === undefined || node === null || typeof node !== 'object' || node instanceof Uint8Array) return undefined
    if (Array.isArray(node)) {
      node = typeof segment === 'number' ? node[segment] : undefined
    } else {
      const obj = node as ValueObject
      node = typeof segment === 'string' && Object.hasOwn(obj, segment) ? obj[segment] : undefined
    }
  }
  return node
}
