// A revision: one change to one key's fork, as every replica stores it.
import type { ForkName, Key, NodeId, RevisionId } from './ids.ts'
import { parseRevisionId } from './ids.ts'

export const RevisionKind = {
  set: 'set',
  delete: 'delete',
  fork: 'fork',
  merge: 'merge',
  revert: 'revert',
} as const
export type RevisionKind = (typeof RevisionKind)[keyof typeof RevisionKind]

/** The other revision a fork, merge or revert was made from. */
export interface RevisionRef {
  readonly fork: ForkName
  readonly revision: RevisionId
}

export interface Revision {
  readonly id: RevisionId
  readonly key: Key
  readonly fork: ForkName
  readonly kind: RevisionKind
  /** The Yjs update (V1) this revision applies. */
  readonly delta: Uint8Array
  readonly from?: RevisionRef
  readonly author?: string
  readonly message?: string
  /** The client's idempotency key: a retried write finds this revision instead of writing again. */
  readonly requestId?: string
}

/** What a client sees of a revision: its delta stays inside. */
export interface RevisionInfo {
  readonly id: RevisionId
  /** 1-based position in the fork's history, as of now. */
  readonly index: number
  /** Wall-clock milliseconds of its HLC timestamp. */
  readonly ts: number
  readonly node: NodeId
  readonly kind: RevisionKind
  readonly from?: RevisionRef
  readonly author?: string
  readonly message?: string
}

export function describeRevision(revision: Revision, index: number): RevisionInfo {
  const { hlc, node } = parseRevisionId(revision.id)
  return {
    id: revision.id,
    index,
    ts: hlc.wall,
    node,
    kind: revision.kind,
    ...(revision.from && { from: revision.from }),
    ...(revision.author !== undefined && { author: revision.author }),
    ...(revision.message !== undefined && { message: revision.message }),
  }
}
