// The records VersionedStore keeps, and their checked encoding. Anything read
// back that does not decode into the expected shape is STORAGE_CORRUPT.
import { crc32 } from 'node:zlib'
import { ErrorCode, type ForkName, type Key, type RevisionId, type RevisionKind, type RevisionRef, type Value, WeftError } from '@weft/core'
import { pack, unpack } from '@weft/protocol'

/** The materialized head of a fork: what a plain get needs, without Yjs. */
export interface HeadRecord {
  readonly head: RevisionId
  readonly count: number
  readonly kind: RevisionKind
  /** Sum of the fork's delta sizes. */
  readonly bytes: number
  readonly deleted: boolean
  readonly value?: Value
  readonly author?: string
  readonly message?: string
}

export interface StoredRevision {
  readonly kind: RevisionKind
  readonly delta: Uint8Array
  readonly from?: RevisionRef
  readonly author?: string
  readonly message?: string
  readonly requestId?: string
}

export interface ForkRecord {
  readonly from?: RevisionRef
}

function corrupt(what: string): WeftError {
  return new WeftError(ErrorCode.STORAGE_CORRUPT, `stored ${what} is corrupt`)
}

function decode(bytes: Uint8Array, what: string): Record<string, unknown> {
  const record = unpack(bytes, ErrorCode.STORAGE_CORRUPT)
  if (record === null || typeof record !== 'object' || Array.isArray(record)) throw corrupt(what)
  return record as Record<string, unknown>
}

export function encodeHead(head: HeadRecord): Uint8Array {
  return pack(head)
}

export function decodeHead(bytes: Uint8Array): HeadRecord {
  const r = decode(bytes, 'head')
  if (typeof r.head !== 'string' || typeof r.count !== 'number' || typeof r.deleted !== 'boolean') throw corrupt('head')
  return r as unknown as HeadRecord
}

export function encodeRevision(revision: StoredRevision): Uint8Array {
  return pack({ ...revision, crc: crc32(revision.delta) })
}

export function decodeRevision(bytes: Uint8Array): StoredRevision {
  const r = decode(bytes, 'revision')
  if (typeof r.kind !== 'string' || !(r.delta instanceof Uint8Array) || r.crc !== crc32(r.delta)) throw corrupt('revision')
  const { crc: _crc, ...revision } = r
  return revision as unknown as StoredRevision
}

export function encodeCheckpoint(state: Uint8Array, index: number): Uint8Array {
  return pack({ state, index, crc: crc32(state) })
}

export function decodeCheckpoint(bytes: Uint8Array): { state: Uint8Array; index: number } {
  const r = decode(bytes, 'checkpoint')
  if (!(r.state instanceof Uint8Array) || typeof r.index !== 'number' || r.crc !== crc32(r.state)) throw corrupt('checkpoint')
  return { state: r.state, index: r.index }
}

export function encodeIndex(index: number): Uint8Array {
  return pack(index)
}

export function decodeIndex(bytes: Uint8Array): number {
  const index = unpack(bytes, ErrorCode.STORAGE_CORRUPT)
  if (typeof index !== 'number') throw corrupt('checkpoint index')
  return index
}

export function encodeFork(fork: ForkRecord): Uint8Array {
  return pack(fork)
}

export function decodeFork(bytes: Uint8Array): ForkRecord {
  return decode(bytes, 'fork') as ForkRecord
}

/** One entry of the change feed: which revision was stored. */
export interface FeedEntry {
  readonly seq: number
  readonly key: Key
  readonly fork: ForkName
  readonly id: RevisionId
  /** Wall-clock ms when this node stored it (never decreasing along the feed). */
  readonly storedAt: number
}

export function encodeFeed(entry: Omit<FeedEntry, 'seq'>): Uint8Array {
  return pack([entry.key, entry.fork, entry.id, entry.storedAt])
}

export function decodeFeed(seq: number, bytes: Uint8Array): FeedEntry {
  const r = unpack(bytes, ErrorCode.STORAGE_CORRUPT)
  if (!Array.isArray(r) || r.length !== 4 || !r.slice(0, 3).every((part) => typeof part === 'string') || typeof r[3] !== 'number') throw corrupt('feed entry')
  return { seq, key: r[0] as Key, fork: r[1] as ForkName, id: r[2] as RevisionId, storedAt: r[3] as number }
}
