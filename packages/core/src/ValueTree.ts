// How a value lives inside a Y.Doc.
//
// Every place that holds a value (the root, an object field, an array element)
// is a *register*: entries in a Y.Map under keys `<field>\0<writer>`, one per
// writer (a Y.Doc clientID). A writer only ever sets its own key, so Yjs never
// resolves a conflict by clientID; the register's value is the entry with the
// greatest stamp (a revision id, which sorts by HLC then node id). A writer
// deletes the other entries it has seen, so a register holds more than one
// entry only while writes to it were concurrent.
//
// An entry is a leaf `{t, v}`, an absence `{t, x: true}` (a removed field or
// element, or a deleted key), or a box: a Y.Map with `t` and either `o` (a Y.Map
// of fields, itself registers) or `a` (a Y.Array of element registers).
import './randomPool.ts'
import * as Y from 'yjs'
import { type Leaf, type Value, deepEqual, isLeaf, isValueObject } from './value.ts'

export interface LeafEntry {
  readonly t: string
  readonly v: Leaf
}
export interface AbsentEntry {
  readonly t: string
  readonly x: true
}
export type Box = Y.Map<unknown>
export type Entry = LeafEntry | AbsentEntry | Box

/** One register: the entries of `field` in `map`, by their Y.Map key. */
export interface Register {
  readonly map: Y.Map<unknown>
  readonly field: string
  readonly entries: ReadonlyMap<string, Entry>
}

export const ROOT_NAME = 'weft'
const SEP = '\u0000'

export function rootRegister(doc: Y.Doc): Register {
  const map = doc.getMap<unknown>(ROOT_NAME)
  return { map, field: '', entries: groupRegisters(map).get('') ?? new Map() }
}

/**
 * Groups a map's keys by field, in one pass. Fields come in the order they first
 * appeared in the map, counting entries since deleted (Yjs keeps those in
 * `_map`), so a field keeps its place when a new writer replaces its entry and a
 * value reads back with the same field order, whichever doc wrote it.
 */
export function groupRegisters(map: Y.Map<unknown>): Map<string, Map<string, Entry>> {
  const groups = new Map<string, Map<string, Entry>>()
  let empty = false
  for (const [key, item] of (map as unknown as { _map: Map<string, Y.Item> })._map) {
    const cut = key.lastIndexOf(SEP)
    if (cut < 0) continue
    const field = key.slice(0, cut)
    let group = groups.get(field)
    if (!group) groups.set(field, (group = new Map()))
    if (item.deleted) {
      empty ||= group.size === 0
      continue
    }
    const content = item.content.getContent()
    group.set(key, content[content.length - 1] as Entry)
  }
  if (empty) for (const [field, group] of groups) if (group.size === 0) groups.delete(field)
  return groups
}

export function elementRegister(element: Y.Map<unknown>): Register {
  return { map: element, field: '', entries: groupRegisters(element).get('') ?? new Map() }
}

export function isBox(entry: Entry): entry is Box {
  return entry instanceof Y.Map
}

export function isAbsent(entry: Entry | undefined): boolean {
  return entry === undefined || (!isBox(entry) && 'x' in entry)
}

export function stampOf(entry: Entry): string {
  return isBox(entry) ? (entry.get('t') as string) : entry.t
}

/** The entry with the greatest stamp, and its key. */
export function winner(register: Register): [string, Entry] | undefined {
  let best: [string, Entry] | undefined
  for (const pair of register.entries) {
    if (!best || stampOf(pair[1]) > stampOf(best[1])) best = pair
  }
  return best
}

export function readRegister(register: Register): Value | undefined {
  const best = winner(register)
  return best ? readEntry(best[1]) : undefined
}

export function readEntry(entry: Entry): Value | undefined {
  if (!isBox(entry)) return 'x' in entry ? undefined : entry.v
  const fields = entry.get('o')
  if (fields instanceof Y.Map) return readObject(fields)
  const elements = entry.get('a')
  if (elements instanceof Y.Array) return readArray(elements)
  return undefined
}

function readObject(fields: Y.Map<unknown>): Value {
  const out: Record<string, Value> = {}
  for (const [field, entries] of groupRegisters(fields)) {
    const value = readRegister({ map: fields, field, entries })
    if (value === undefined) continue
    // A field named __proto__ must stay data, not become the prototype.
    if (field === '__proto__') Object.defineProperty(out, field, { value, enumerable: true, writable: true, configurable: true })
    else out[field] = value
  }
  return out
}

function readArray(elements: Y.Array<Y.Map<unknown>>): Value {
  const out: Value[] = []
  for (const element of elements) {
    const value = readRegister(elementRegister(element))
    if (value !== undefined) out.push(value)
  }
  return out
}

/** Writes made by one writer with one stamp, inside one Yjs transaction. */
export class TreeWriter {
  private readonly writer: string
  private readonly stamp: string

  constructor(doc: Y.Doc, stamp: string) {
    this.writer = String(doc.clientID)
    this.stamp = stamp
  }

  /** Makes the register hold `value`, touching only the leaves that differ. */
  write(register: Register, value: Value | undefined): void {
    const current = winner(register)?.[1]
    if (current && isBox(current) && value !== undefined && !isLeaf(value)) {
      const fields = current.get('o')
      if (fields instanceof Y.Map && isValueObject(value)) return this.writeObject(fields, value)
      const elements = current.get('a')
      if (elements instanceof Y.Array && Array.isArray(value)) return this.writeArray(elements, value)
    }
    if (value === undefined ? isAbsent(current) : current !== undefined && !isBox(current) && !('x' in current) && isLeaf(value) && deepEqual(current.v, value)) return
    this.replace(register, value)
  }

  /** Replaces whatever the register holds with a fresh entry for `value`. */
  replace(register: Register, value: Value | undefined): void {
    const own = register.field + SEP + this.writer
    for (const key of register.entries.keys()) if (key !== own) register.map.delete(key)
    if (value === undefined) {
      register.map.set(own, { t: this.stamp, x: true } satisfies AbsentEntry)
    } else if (isLeaf(value)) {
      register.map.set(own, { t: this.stamp, v: value } satisfies LeafEntry)
    } else {
      const box = register.map.set(own, new Y.Map<unknown>())
      box.set('t', this.stamp)
      if (Array.isArray(value)) {
        const elements = box.set('a', new Y.Array<Y.Map<unknown>>())
        this.insertElements(elements, 0, value)
      } else {
        const fields = box.set('o', new Y.Map<unknown>())
        for (const [field, item] of Object.entries(value as Record<string, Value>)) {
          this.replace({ map: fields, field, entries: new Map() }, item)
        }
      }
    }
  }

  private writeObject(fields: Y.Map<unknown>, value: Readonly<Record<string, Value>>): void {
    const groups = groupRegisters(fields)
    for (const [field, item] of Object.entries(value)) {
      this.write({ map: fields, field, entries: groups.get(field) ?? new Map() }, item)
    }
    for (const [field, entries] of groups) {
      if (!Object.hasOwn(value, field)) this.write({ map: fields, field, entries }, undefined)
    }
  }

  // Aligns old and new elements by common prefix and suffix, so an insertion or
  // removal in the middle does not rewrite every element after it.
  private writeArray(elements: Y.Array<Y.Map<unknown>>, value: readonly Value[]): void {
    const visible: { register: Register; raw: number; value: Value }[] = []
    elements.toArray().forEach((element, raw) => {
      const register = elementRegister(element)
      const current = readRegister(register)
      if (current !== undefined) visible.push({ register, raw, value: current })
    })
    const shortest = Math.min(visible.length, value.length)
    let prefix = 0
    while (prefix < shortest && deepEqual(visible[prefix]!.value, value[prefix])) prefix++
    let suffix = 0
    while (suffix < shortest - prefix && deepEqual(visible[visible.length - 1 - suffix]!.value, value[value.length - 1 - suffix])) suffix++
    const oldMiddle = visible.slice(prefix, visible.length - suffix)
    const newMiddle = value.slice(prefix, value.length - suffix)
    const paired = Math.min(oldMiddle.length, newMiddle.length)
    for (let i = 0; i < paired; i++) this.write(oldMiddle[i]!.register, newMiddle[i])
    for (const extra of oldMiddle.slice(paired)) this.write(extra.register, undefined)
    if (newMiddle.length > paired) {
      const after = visible[prefix + paired - 1]
      this.insertElements(elements, after ? after.raw + 1 : 0, newMiddle.slice(paired))
    }
  }

  private insertElements(elements: Y.Array<Y.Map<unknown>>, at: number, values: readonly Value[]): void {
    const registers = values.map(() => new Y.Map<unknown>())
    elements.insert(at, registers)
    registers.forEach((map, i) => this.replace({ map, field: '', entries: new Map() }, values[i]))
  }
}
