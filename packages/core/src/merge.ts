// Three-way merge of one fork's Y.Doc into another's.
//
// The CRDT merge (apply what src has that dst lacks) already gives rules 1 and
// 2 of DESIGN.md: a register only one side wrote keeps that side's entry (the
// writer deleted the entry it replaced), and both sides' insertions survive.
// What is left is to find the conflicts and settle them per strategy:
// - a register both sides wrote since their common state (two live entries,
//   one known only to src, one only to dst);
// - a container one side replaced (a new type, a removed field, a deleted key)
//   while the other side changed something inside it.
// The common ancestor is the items both docs hold, plus what dst held right
// after its last merge from src (`dstBase`): what dst took from src then, or
// decided in that merge, is not a dst change the next merge should weigh.
import './randomPool.ts'
import * as Y from 'yjs'
import {
  type Entry,
  type Register,
  ROOT_NAME,
  TreeWriter,
  elementRegister,
  groupRegisters,
  isBox,
  readEntry,
  readRegister,
  rootRegister,
  stampOf,
  winner,
} from './ValueTree.ts'
import { type Path, type Value, deepEqual } from './value.ts'

export const MergeStrategy = {
  crdt: 'crdt',
  ours: 'ours',
  theirs: 'theirs',
  fail: 'fail',
} as const
export type MergeStrategy = (typeof MergeStrategy)[keyof typeof MergeStrategy]

export interface Conflict {
  readonly path: Path
  /** dst's value (undefined: absent on that side). */
  readonly ours: Value | undefined
  /** src's value. */
  readonly theirs: Value | undefined
  readonly winner: 'ours' | 'theirs'
}

interface FoundConflict {
  path: Path
  ours: Value | undefined
  theirs: Value | undefined
  /** Who wins by last-writer-wins on HLC stamps. */
  lww: 'ours' | 'theirs'
  /** Where it lives in the merged doc (re-grouped before any repair). */
  slot: { map: Y.Map<unknown>; field: string }
}

type StateVector = Map<number, number>

/** Which items each side made since the common ancestor. */
interface Sides {
  srcOnly(id: Y.ID): boolean
  dstOnly(id: Y.ID): boolean
}

function has(sv: StateVector, id: Y.ID): boolean {
  return id.clock < (sv.get(id.client) ?? 0)
}

function itemOf(map: Y.Map<unknown>, key: string): Y.Item | undefined {
  // Y.Map keeps the current item per key; its id tells who made the entry.
  return (map as unknown as { _map: Map<string, Y.Item> })._map.get(key)
}

export interface MergeOutcome {
  /** Conflicts, each with the winner the strategy chose. */
  readonly conflicts: Conflict[]
}

/**
 * Merges `src` into `merged` (a scratch copy of dst), settles conflicts by
 * `strategy` with writes stamped `stamp`, and reports them. `dst` is the
 * untouched original. With `fail` and conflicts, returns before any repair;
 * the caller discards `merged`.
 */
export function mergeDocs(merged: Y.Doc, dst: Y.Doc, src: Y.Doc, strategy: MergeStrategy, stamp: string, dstBase?: Uint8Array): MergeOutcome {
  const svDst = Y.decodeStateVector(Y.encodeStateVector(dst))
  const svSrc = Y.decodeStateVector(Y.encodeStateVector(src))
  const base: StateVector = dstBase ? Y.decodeStateVector(dstBase) : new Map()
  const sides: Sides = {
    srcOnly: (id) => has(svSrc, id) && !has(svDst, id),
    dstOnly: (id) => has(svDst, id) && !has(svSrc, id) && !has(base, id),
  }
  Y.applyUpdate(merged, Y.encodeStateAsUpdate(src, Y.encodeStateVector(dst)))

  const found = new Map<string, FoundConflict>()
  const add = (conflict: FoundConflict) => {
    const id = JSON.stringify(conflict.path)
    if (!found.has(id)) found.set(id, conflict)
  }
  findRegisterConflicts(rootRegister(merged), [], svDst, svSrc, sides, add)
  findReplacedContainers(src, merged, sides, 'theirs', add)
  findReplacedContainers(dst, merged, sides, 'ours', add)

  const conflicts = [...found.values()]
  if (strategy === 'fail' && conflicts.length > 0) {
    return { conflicts: conflicts.map((c) => ({ path: c.path, ours: c.ours, theirs: c.theirs, winner: c.lww })) }
  }
  const result: Conflict[] = []
  Y.transact(merged, () => {
    const writer = new TreeWriter(merged, stamp)
    for (const c of conflicts) {
      const chosen = strategy === 'ours' ? 'ours' : strategy === 'theirs' ? 'theirs' : c.lww
      const want = chosen === 'ours' ? c.ours : c.theirs
      const register: Register = { map: c.slot.map, field: c.slot.field, entries: groupRegisters(c.slot.map).get(c.slot.field) ?? new Map() }
      if (!deepEqual(readRegister(register), want)) writer.replace(register, want)
      result.push({ path: c.path, ours: c.ours, theirs: c.theirs, winner: chosen })
    }
  })
  return { conflicts: result }
}

function findRegisterConflicts(register: Register, path: Path, svDst: StateVector, svSrc: StateVector, sides: Sides, add: (c: FoundConflict) => void): void {
  if (register.entries.size > 1) {
    let ours: [string, Entry] | undefined
    let theirs: [string, Entry] | undefined
    let srcOnly = false
    let dstOnly = false
    for (const pair of register.entries) {
      const item = itemOf(register.map, pair[0])
      if (!item) continue
      const inDst = has(svDst, item.id)
      const inSrc = has(svSrc, item.id)
      if (sides.srcOnly(item.id)) srcOnly = true
      if (sides.dstOnly(item.id)) dstOnly = true
      if (inDst && (!ours || stampOf(pair[1]) > stampOf(ours[1]))) ours = pair
      if (inSrc && (!theirs || stampOf(pair[1]) > stampOf(theirs[1]))) theirs = pair
    }
    if (srcOnly && dstOnly && ours && theirs) {
      const oursValue = readEntry(ours[1])
      const theirsValue = readEntry(theirs[1])
      if (!deepEqual(oursValue, theirsValue)) {
        const lww = stampOf(theirs[1]) > stampOf(ours[1]) ? 'theirs' : 'ours'
        add({ path, ours: oursValue, theirs: theirsValue, lww, slot: register })
        return
      }
    }
  }
  const best = winner(register)?.[1]
  if (best && isBox(best)) forEachChild(best, path, (child, childPath) => findRegisterConflicts(child, childPath, svDst, svSrc, sides, add))
}

function forEachChild(box: Y.Map<unknown>, path: Path, visit: (register: Register, path: Path) => void): void {
  const fields = box.get('o')
  if (fields instanceof Y.Map) {
    for (const [field, entries] of groupRegisters(fields)) visit({ map: fields, field, entries }, [...path, field])
    return
  }
  const elements = box.get('a')
  if (elements instanceof Y.Array) {
    let index = 0
    for (const element of elements as Y.Array<Y.Map<unknown>>) {
      const register = elementRegister(element)
      if (readRegister(register) === undefined) continue
      visit(register, [...path, index++])
    }
  }
}

/** The same Y.Map in another doc that holds it (items keep their ids across docs). */
function counterpart(map: Y.Map<unknown>, other: Y.Doc): Y.Map<unknown> | undefined {
  if (map._item === null) return other.getMap(ROOT_NAME)
  try {
    const item = Y.getItem(other.store, map._item.id)
    if (!(item instanceof Y.Item) || item.deleted) return undefined
    const content = item.content
    return content instanceof Y.ContentType && content.type instanceof Y.Map ? (content.type as Y.Map<unknown>) : undefined
  } catch {
    return undefined
  }
}

/**
 * Walks `side`'s visible tree. Where side's container is no longer its
 * register's winner in `merged` because the other side replaced it, and side
 * changed something inside it, that is a conflict at the container's path.
 */
function findReplacedContainers(side: Y.Doc, merged: Y.Doc, sides: Sides, who: 'ours' | 'theirs', add: (c: FoundConflict) => void): void {
  const mineIsNew = who === 'ours' ? sides.dstOnly : sides.srcOnly
  const otherIsNew = who === 'ours' ? sides.srcOnly : sides.dstOnly
  const visit = (register: Register, path: Path): void => {
    const mine = winner(register)
    if (!mine || !isBox(mine[1])) return
    const map = counterpart(register.map, merged)
    if (!map) return
    const there: Register = { map, field: register.field, entries: groupRegisters(map).get(register.field) ?? new Map() }
    const current = winner(there)
    const sameEntry = current && current[0] === mine[0] && itemOf(map, mine[0])?.id.clock === itemOf(register.map, mine[0])?.id.clock
    if (sameEntry) {
      forEachChild(mine[1], path, visit)
      return
    }
    const changedAt = newestChange(mine[1], mineIsNew)
    if (changedAt === undefined || !current) return
    const replacedBy = itemOf(map, current[0])
    if (!replacedBy || !otherIsNew(replacedBy.id)) return
    const mineValue = readEntry(mine[1])
    const otherValue = readEntry(current[1])
    if (deepEqual(mineValue, otherValue)) return
    const mineWins = changedAt > stampOf(current[1])
    add({
      path,
      ours: who === 'ours' ? mineValue : otherValue,
      theirs: who === 'theirs' ? mineValue : otherValue,
      lww: mineWins ? who : who === 'ours' ? 'theirs' : 'ours',
      slot: { map, field: register.field },
    })
  }
  visit(rootRegister(side), [])
}

/** The newest stamp of an entry inside `box` made since the common ancestor. */
function newestChange(box: Y.Map<unknown>, isNew: (id: Y.ID) => boolean): string | undefined {
  let newest: string | undefined
  const consider = (map: Y.Map<unknown>) => {
    for (const [key, entry] of map.entries()) {
      const item = itemOf(map, key)
      if (item && isNew(item.id)) {
        const stamp = stampOf(entry as Entry)
        if (newest === undefined || stamp > newest) newest = stamp
      }
      if (isBox(entry as Entry)) walkBox(entry as Y.Map<unknown>)
    }
  }
  const walkBox = (inner: Y.Map<unknown>) => {
    const fields = inner.get('o')
    if (fields instanceof Y.Map) consider(fields)
    const elements = inner.get('a')
    if (elements instanceof Y.Array) for (const element of elements as Y.Array<Y.Map<unknown>>) consider(element)
  }
  walkBox(box)
  return newest
}
