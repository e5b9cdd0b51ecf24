// One key's fork as a Y.Doc: its current value, and the deltas that change it.
import './randomPool.ts'
import * as Y from 'yjs'
import { ErrorCode, WeftError } from './errors.ts'
import { type Conflict, type MergeStrategy, mergeDocs } from './merge.ts'
import { TreeWriter, readRegister, rootRegister } from './ValueTree.ts'
import type { Value } from './value.ts'

export interface MergeResult {
  /** The delta to record as the merge revision, or null when dst already has everything. */
  readonly delta: Uint8Array | null
  readonly conflicts: Conflict[]
}

export class ForkDoc {
  readonly doc: Y.Doc

  private constructor(doc: Y.Doc) {
    this.doc = doc
  }

  /**
   * A doc from a full state (or empty) that this node made or stored (CRC-checked):
   * applied without the decode pre-check that bytes from a peer get. A guid
   * avoids uuid generation per doc.
   */
  static load(state?: Uint8Array, options: { gc?: boolean } = {}): ForkDoc {
    const doc = new Y.Doc({ guid: 'weft', gc: options.gc ?? true })
    if (state) applyUnchecked(doc, state)
    return new ForkDoc(doc)
  }

  /**
   * A new doc holding one update of any origin (a peer's first revision of a
   * fork). Without the decode pre-check: if the update is bad this throws
   * INVALID_UPDATE and the half-built doc is simply dropped.
   */
  static fromUpdate(update: Uint8Array): ForkDoc {
    return ForkDoc.load(update)
  }

  /** Replays stored deltas (in history order) on top of an optional checkpoint. */
  static replay(checkpoint: Uint8Array | undefined, deltas: Iterable<Uint8Array>): ForkDoc {
    const fork = ForkDoc.load(checkpoint)
    Y.transact(fork.doc, () => {
      for (const delta of deltas) applyUnchecked(fork.doc, delta)
    })
    return fork
  }

  /** The current value; undefined when the key never existed or is deleted. */
  value(): Value | undefined {
    return readRegister(rootRegister(this.doc))
  }

  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.doc)
  }

  encodeState(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc)
  }

  /** Writes `value` (undefined deletes), stamped `stamp`. Null when nothing changed. */
  write(value: Value | undefined, stamp: string): Uint8Array | null {
    return capture(this.doc, () => {
      Y.transact(this.doc, () => new TreeWriter(this.doc, stamp).write(rootRegister(this.doc), value))
    })
  }

  /**
   * Applies a delta from a peer. Decoding it first rejects most bad bytes before
   * anything is integrated; still throws INVALID_UPDATE, after which the doc may
   * be partly changed.
   */
  apply(delta: Uint8Array): void {
    applyChecked(this.doc, delta)
  }

  /** Applies a delta this node made or stored (CRC-checked), without the pre-check. */
  applyOwn(delta: Uint8Array): void {
    applyUnchecked(this.doc, delta)
  }

  /** A new doc with the same state and a fresh writer id. */
  clone(options: { gc?: boolean } = {}): ForkDoc {
    return ForkDoc.load(this.encodeState(), options)
  }

  /**
   * Merges `src` into this fork by `strategy`. Leaves this doc untouched: the
   * caller applies the returned delta like any revision. With `fail`, throws
   * MERGE_CONFLICT (carrying the conflicts) and changes nothing. `base` is
   * this fork's state vector right after its last merge from `src`, if any.
   */
  merge(src: ForkDoc, strategy: MergeStrategy, stamp: string, base?: Uint8Array): MergeResult {
    // gc off: a container one side deleted keeps its content for the conflict walk.
    const scratch = this.clone({ gc: false })
    let conflicts: Conflict[] = []
    const delta = capture(scratch.doc, () => {
      conflicts = mergeDocs(scratch.doc, this.doc, src.doc, strategy, stamp, base).conflicts
      if (strategy === 'fail' && conflicts.length > 0) {
        throw new WeftError(ErrorCode.MERGE_CONFLICT, `merge has ${conflicts.length} conflict(s) and strategy is fail`, { conflicts })
      }
    })
    return { delta, conflicts }
  }
}

function applyChecked(doc: Y.Doc, update: Uint8Array): void {
  try {
    // Decoding first rejects most garbage before anything is integrated.
    Y.decodeUpdate(update)
  } catch (err) {
    throw new WeftError(ErrorCode.INVALID_UPDATE, `malformed update: ${(err as Error).message}`)
  }
  applyUnchecked(doc, update)
}

function applyUnchecked(doc: Y.Doc, update: Uint8Array): void {
  try {
    Y.applyUpdate(doc, update)
  } catch (err) {
    throw new WeftError(ErrorCode.INVALID_UPDATE, `malformed update: ${(err as Error).message}`)
  }
}

/** The update that `fn` produces on `doc` (one Yjs update, or null). */
function capture(doc: Y.Doc, fn: () => void): Uint8Array | null {
  const updates: Uint8Array[] = []
  const collect = (update: Uint8Array) => updates.push(update)
  doc.on('update', collect)
  try {
    fn()
  } finally {
    doc.off('update', collect)
  }
  if (updates.length === 0) return null
  return updates.length === 1 ? updates[0]! : Y.mergeUpdates(updates)
}
