// Where each record lives in the ordered storage. NUL separates the parts
// (keys and fork names cannot contain it), so every listing is one range.
import type { ForkName, Key, RevisionId } from '@weft/core'
import type { StorageKey } from '../storage/StorageAdapter.ts'

const S = '\u0000'

export const StoreLayout = {
  /** Materialized head of a fork: listing by fork and key prefix is one range. */
  head: (fork: ForkName, key: Key): StorageKey => `v${S}${fork}${S}${key}`,
  headPrefix: (fork: ForkName, keyPrefix: string): StorageKey => `v${S}${fork}${S}${keyPrefix}`,
  keyOfHead: (storageKey: StorageKey): Key => storageKey.slice(storageKey.indexOf(S, 2) + 1) as Key,

  /** Revisions of a fork, in history order. */
  revision: (key: Key, fork: ForkName, id: RevisionId): StorageKey => `r${S}${key}${S}${fork}${S}${id}`,
  revisionPrefix: (key: Key, fork: ForkName): StorageKey => `r${S}${key}${S}${fork}${S}`,

  /** Checkpoint state after every revision up to and including `id`. */
  checkpoint: (key: Key, fork: ForkName, id: RevisionId): StorageKey => `c${S}${key}${S}${fork}${S}${id}`,
  /** The small index entry of that checkpoint (its history position). */
  checkpointIndex: (key: Key, fork: ForkName, id: RevisionId): StorageKey => `k${S}${key}${S}${fork}${S}${id}`,
  checkpointIndexPrefix: (key: Key, fork: ForkName): StorageKey => `k${S}${key}${S}${fork}${S}`,

  /** A fork's origin; all forks of a key are one range. */
  fork: (key: Key, fork: ForkName): StorageKey => `f${S}${key}${S}${fork}`,
  forkPrefix: (key: Key): StorageKey => `f${S}${key}${S}`,

  /** The newest merge revision on `into` that merged from `from`. */
  lastMerge: (key: Key, into: ForkName, from: ForkName): StorageKey => `g${S}${key}${S}${into}${S}${from}`,

  /** This node's change feed: every revision stored here, in commit order. */
  feed: (seq: number): StorageKey => `s${S}${seq.toString(16).padStart(12, '0')}`,
  feedPrefix: `s${S}` as StorageKey,
  seqOfFeed: (storageKey: StorageKey): number => parseInt(storageKey.slice(2), 16),

  /**
   * Which revision a write's requestId made (replicated with the revision).
   * Kept beside the key's own records, so the index adds no scattered page to a commit.
   */
  request: (key: Key, fork: ForkName, requestId: string): StorageKey => `q${S}${key}${S}${fork}${S}${requestId}`,

  clock: `m${S}hlc` as StorageKey,
  /** Random id of this store's feed: a new one means its sequence numbers restarted. */
  epoch: `m${S}epoch` as StorageKey,
  /** Live keys of fork main. */
  keyCount: `m${S}keys` as StorageKey,

  /** The last part of a key built above (a revision id, a fork name). */
  lastPart: (storageKey: StorageKey): string => storageKey.slice(storageKey.lastIndexOf(S) + 1),
} as const
