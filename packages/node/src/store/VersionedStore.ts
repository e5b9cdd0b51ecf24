// The versioned store: every operation of DESIGN.md over one node's storage.
//
// Each fork of a key is a log of revisions (Yjs deltas) in history order, with
// checkpoints every `checkpointEvery` revisions so any revision is a short
// replay away, and a materialized head so a plain get needs no Yjs. Live docs
// are loaded on demand into a bounded cache. A mutation runs synchronously up
// to the storage commit (so no two interleave on one fork) and is acknowledged
// once the commit is durable.
import {
  type Change,
  type Conflict,
  ErrorCode,
  type ForkName,
  ForkDoc,
  HybridLogicalClock,
  type Hlc,
  type Key,
  MAIN_FORK,
  MergeStrategy,
  type NodeId,
  type Revision,
  type RevisionId,
  type RevisionInfo,
  RevisionKind,
  type RevisionRef,
  type Value,
  ValueLimits,
  WeftError,
  decodeHlc,
  describeRevision,
  diffValues,
  encodeHlc,
  parseFork,
  parseKey,
  parseKeyPrefix,
  parseMeta,
  parseRevisionId,
  parseValue,
  revisionId,
} from '@weft/core'
import { randomUUID } from 'node:crypto'
import { type StorageAdapter, type StorageWrite, prefixEnd } from '../storage/StorageAdapter.ts'
import { LruCache } from './LruCache.ts'
import { StoreLayout as L } from './StoreLayout.ts'
import {
  type HeadRecord,
  type StoredRevision,
  type FeedEntry,
  decodeCheckpoint,
  decodeFeed,
  decodeFork,
  decodeHead,
  decodeIndex,
  decodeRevision,
  encodeCheckpoint,
  encodeFeed,
  encodeFork,
  encodeHead,
  encodeIndex,
  encodeRevision,
} from './records.ts'

/** A Yjs update that changes nothing: the delta of a revision that only records intent. */
const EMPTY_DELTA = new Uint8Array([0, 0])
const MAX_PAGE = 1000
const DEFAULT_PAGE = 100

export interface VersionedStoreOptions {
  readonly storage: StorageAdapter
  readonly nodeId: NodeId
  /** Physical clock in ms (injectable for tests). */
  readonly now?: () => number
  /** Live fork docs kept in memory. */
  readonly cacheSize?: number
  readonly checkpointEvery?: number
  readonly valueLimits?: { bytes: number; depth: number }
  /** Largest delta accepted from a peer. */
  readonly maxDeltaBytes?: number
}

/** Which revision of a fork: by id, by 1-based index, or as of a time (ms); default the head. */
export interface RevisionSelector {
  readonly revision?: RevisionId | string
  readonly index?: number
  readonly at?: number
}

export interface WriteMeta {
  readonly author?: string
  readonly message?: string
  /**
   * Idempotency key (1..128 chars). A write whose requestId this node already
   * holds (made here or replicated from another node) is not applied again: it
   * answers the revision the first one made, with `replayed: true`.
   */
  readonly requestId?: string
}

export interface GetResult {
  readonly key: Key
  readonly fork: ForkName
  /** Absent when the revision read is a deletion. */
  readonly value?: Value
  readonly deleted: boolean
  readonly revision: RevisionInfo
}

export interface WriteResult {
  readonly key: Key
  readonly fork: ForkName
  readonly revision: RevisionInfo
  /** True when the requestId was seen before and nothing new was written. */
  readonly replayed?: boolean
}

export interface MergeResult extends WriteResult {
  readonly conflicts: Conflict[]
}

export interface HistoryEntry extends RevisionInfo {
  readonly value?: Value
  readonly deleted?: boolean
  readonly patch?: Change[]
}

export interface KeyInfo {
  readonly key: Key
  readonly fork: ForkName
  readonly revisionCount: number
  readonly head: RevisionInfo
  readonly deleted: boolean
  readonly forks: { fork: ForkName; from?: RevisionRef }[]
  /** The fork's ancestry, nearest first: each fork it was forked from, at which revision. */
  readonly ancestors: RevisionRef[]
  readonly sizeBytes: number
}

export interface KeyListing {
  readonly keys: { key: Key; head: RevisionId; revisionCount: number }[]
  /** Pass as `after` for the next page; absent on the last page. */
  readonly next?: string
}

export interface PrefixResult {
  readonly results: ({ key: Key; ok: true; revision: RevisionInfo; conflicts?: Conflict[] } | { key: Key; ok: false; error: { code: string; message: string } })[]
}

export type Progress = (done: number, total: number) => void

/** A revision that is now durable on this node, local or from a peer. */
export interface CommittedRevision {
  /** Position in this node's change feed. */
  readonly seq: number
  readonly revision: Revision
  readonly info: RevisionInfo
  readonly value?: Value
  readonly deleted: boolean
  readonly local: boolean
}

interface Checkpoint {
  readonly id: RevisionId
  readonly index: number
  /** False until its commit is durable: readers must not look for it on disk before. */
  durable: boolean
}

/**
 * The live state of one fork. A fork with a single revision may let go of its
 * doc (`release`): its whole state is that revision's delta, so the doc is
 * rebuilt from it when next needed, just as a reload from storage would.
 */
class ForkState {
  readonly key: Key
  readonly fork: ForkName
  head: HeadRecord
  checkpoints: Checkpoint[]
  private live: ForkDoc | undefined
  private only: Uint8Array | undefined

  constructor(key: Key, fork: ForkName, doc: ForkDoc, head: HeadRecord, checkpoints: Checkpoint[]) {
    this.key = key
    this.fork = fork
    this.live = doc
    this.head = head
    this.checkpoints = checkpoints
  }

  get doc(): ForkDoc {
    if (!this.live) {
      this.live = ForkDoc.load(this.only)
      this.only = undefined
    }
    return this.live
  }

  /** Drops the doc of a fork whose one revision is `delta`. */
  release(delta: Uint8Array): void {
    this.live = undefined
    this.only = delta
  }
}

/** Mutations waiting to be committed together, and who waits on them. */
interface Batch {
  writes: StorageWrite[]
  events: CommittedRevision[]
  onDurable: (() => void)[]
  waiters: { resolve: () => void; reject: (err: Error) => void }[]
}

export class VersionedStore {
  readonly nodeId: NodeId
  private readonly storage: StorageAdapter
  private readonly clock: HybridLogicalClock
  private readonly cache: LruCache<string, ForkState>
  private readonly checkpointEvery: number
  private readonly valueLimits: { bytes: number; depth: number }
  private readonly maxDeltaBytes: number
  private readonly listeners = new Set<(event: CommittedRevision) => void>()
  private readonly inflight = new Set<Promise<void>>()
  /** Fork states with writes not yet durable: never evicted, never reloaded from storage. */
  private readonly pinned = new Map<string, { state: ForkState; writes: number }>()
  /** Checkpoint lists of forks read but not loaded (a fork must be loaded to change). */
  private readonly checkpointLists = new LruCache<string, Checkpoint[]>(10_000)
  /** Settles when the last flush begun has emitted its events (flushes emit in commit order). */
  private emitted: Promise<void> = Promise.resolve()
  /** Storage keys of revisions recorded but not yet durable. */
  private readonly uncommitted = new Set<string>()
  /** Mutations of this event-loop turn, waiting to be committed together. */
  private batch: Batch | undefined
  private failure: Error | undefined
  private closed = false
  private seq: number
  private lastStoredAt = 0
  private readonly now: () => number
  /** The last feed position whose commit is durable. */
  private committedSeq: number
  private liveKeys: number
  /** Random id of this store's feed, so peers notice when sequence numbers restart. */
  readonly epoch: string

  constructor(options: VersionedStoreOptions) {
    this.storage = options.storage
    this.nodeId = options.nodeId
    this.cache = new LruCache(options.cacheSize ?? 2000)
    this.checkpointEvery = options.checkpointEvery ?? 128
    this.valueLimits = options.valueLimits ?? ValueLimits
    this.maxDeltaBytes = options.maxDeltaBytes ?? 4 * 1024 * 1024
    const saved = this.storage.get(L.clock)
    const start = saved ? decodeHlc(new TextDecoder().decode(saved)) : undefined
    this.now = options.now ?? Date.now
    this.clock = new HybridLogicalClock(this.now, start)
    const lastFeed = [...this.storage.range({ gte: L.feedPrefix, lt: prefixEnd(L.feedPrefix), reverse: true, limit: 1 })][0]
    this.seq = lastFeed ? L.seqOfFeed(lastFeed[0]) : 0
    this.committedSeq = this.seq
    const count = this.storage.get(L.keyCount)
    this.liveKeys = count ? decodeIndex(count) : 0
    const epoch = this.storage.get(L.epoch)
    // A store without an epoch is new (or older than the feed): its feed starts here.
    this.epoch = epoch ? new TextDecoder().decode(epoch) : randomUUID()
    if (!epoch) this.pendingEpoch = true
  }

  private pendingEpoch = false

  /** This node's feed position: revisions durably stored here, in commit order. */
  feedHead(): { epoch: string; seq: number } {
    return { epoch: this.epoch, seq: this.committedSeq }
  }

  /** Feed entries after `after`, oldest first. */
  feed(after: number, limit: number): FeedEntry[] {
    const entries: FeedEntry[] = []
    for (const [storageKey, bytes] of this.storage.range({ gte: L.feed(after + 1), lt: prefixEnd(L.feedPrefix), limit })) {
      entries.push(decodeFeed(L.seqOfFeed(storageKey), bytes))
    }
    return entries
  }

  /**
   * The first feed position stored at or after `wallMs` (binary search: storedAt
   * never decreases along the feed). Lets a watch resume on a node other than
   * the one it started on: every revision with an HLC at or after `wallMs` was
   * stored here at or after `wallMs` minus clock skew.
   */
  feedSeqAt(wallMs: number): number {
    let lo = 1
    let hi = this.committedSeq + 1
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2)
      const bytes = this.storage.get(L.feed(mid))
      if (bytes && decodeFeed(mid, bytes).storedAt < wallMs) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Live keys in fork main. */
  keyCount(): number {
    return this.liveKeys
  }

  // ---- reads ---------------------------------------------------------------

  get(keyInput: string, forkInput: string = MAIN_FORK, selector: RevisionSelector = {}): GetResult {
    const key = parseKey(keyInput)
    const fork = parseFork(forkInput)
    if (isHeadSelector(selector)) {
      const head = this.readHead(key, fork)
      if (!head || head.deleted) throw notFound(key, fork)
      return { key, fork, value: head.value as Value, deleted: false, revision: headInfo(head) }
    }
    const at = this.stateAt(key, fork, selector)
    const value = at.doc.value()
    return { key, fork, ...(value !== undefined && { value }), deleted: value === undefined, revision: at.info }
  }

  keys(options: { prefix?: string; fork?: string; limit?: number; after?: string } = {}): KeyListing {
    const prefix = parseKeyPrefix(options.prefix)
    const fork = parseFork(options.fork ?? MAIN_FORK)
    const limit = pageSize(options.limit)
    const start = L.headPrefix(fork, prefix)
    const gte = options.after === undefined ? start : L.head(fork, parseKey(options.after)) + '\u0000'
    const keys: { key: Key; head: RevisionId; revisionCount: number }[] = []
    let more = false
    for (const [storageKey, bytes] of this.storage.range({ gte: gte > start ? gte : start, lt: prefixEnd(start) })) {
      const head = decodeHead(bytes)
      if (head.deleted) continue
      if (keys.length === limit) {
        more = true
        break
      }
      keys.push({ key: L.keyOfHead(storageKey), head: head.head, revisionCount: head.count })
    }
    const last = keys.at(-1)
    return { keys, ...(more && last && { next: last.key }) }
  }

  history(keyInput: string, forkInput: string = MAIN_FORK, options: { limit?: number; before?: string; values?: boolean; patches?: boolean } = {}): { revisions: HistoryEntry[]; next?: string } {
    const key = parseKey(keyInput)
    const fork = parseFork(forkInput)
    const head = this.readHead(key, fork)
    if (!head) throw notFound(key, fork)
    const limit = pageSize(options.limit)
    const prefix = L.revisionPrefix(key, fork)
    let topIndex = head.count
    let lt = prefixEnd(prefix)
    if (options.before !== undefined) {
      const before = this.requireRevisionId(key, fork, options.before)
      topIndex = this.indexOf(key, fork, before) - 1
      lt = L.revision(key, fork, before)
    }
    const page: [RevisionId, StoredRevision][] = []
    for (const [storageKey, bytes] of this.storage.range({ gte: prefix, lt, reverse: true, limit: limit + 1 })) {
      page.push([L.lastPart(storageKey) as RevisionId, decodeRevision(bytes)])
    }
    const more = page.length > limit
    if (more) page.pop()
    const entries: HistoryEntry[] = page.map(([id, stored], i) => describeRevision(toRevision(key, fork, id, stored), topIndex - i))
    if ((options.values || options.patches) && page.length > 0) {
      const oldest = topIndex - page.length + 1
      const doc = oldest > 1 ? this.stateAt(key, fork, { index: oldest - 1 }).doc : ForkDoc.load()
      let previous = doc.value()
      for (let i = page.length - 1; i >= 0; i--) {
        doc.applyOwn(page[i]![1].delta)
        const value = doc.value()
        entries[i] = {
          ...entries[i]!,
          ...(options.values && { deleted: value === undefined, ...(value !== undefined && { value }) }),
          ...(options.patches && { patch: diffValues(previous, value) }),
        }
        previous = value
      }
    }
    const last = entries.at(-1)
    return { revisions: entries, ...(more && last && { next: last.id }) }
  }

  info(keyInput: string, forkInput: string = MAIN_FORK): KeyInfo {
    const key = parseKey(keyInput)
    const fork = parseFork(forkInput)
    const head = this.readHead(key, fork)
    if (!head) throw notFound(key, fork)
    const forks: { fork: ForkName; from?: RevisionRef }[] = []
    const prefix = L.forkPrefix(key)
    for (const [storageKey, bytes] of this.storage.range({ gte: prefix, lt: prefixEnd(prefix) })) {
      const record = decodeFork(bytes)
      forks.push({ fork: L.lastPart(storageKey) as ForkName, ...(record.from && { from: record.from }) })
    }
    const ancestors: RevisionRef[] = []
    const seen = new Set<string>([fork])
    let from = forks.find((f) => f.fork === fork)?.from
    while (from && !seen.has(from.fork)) {
      ancestors.push(from)
      seen.add(from.fork)
      const parent: ForkName = from.fork
      from = forks.find((f) => f.fork === parent)?.from
    }
    return { key, fork, revisionCount: head.count, head: headInfo(head), deleted: head.deleted, forks, ancestors, sizeBytes: head.bytes }
  }

  /** What changed from one revision (or fork) of a key to another. */
  diff(keyInput: string, from: { fork?: string } & RevisionSelector, to: { fork?: string } & RevisionSelector): { from: RevisionInfo; to: RevisionInfo; changes: Change[] } {
    const key = parseKey(keyInput)
    const a = this.stateAt(key, parseFork(from.fork ?? MAIN_FORK), from)
    const b = this.stateAt(key, parseFork(to.fork ?? MAIN_FORK), to)
    return { from: a.info, to: b.info, changes: diffValues(a.doc.value(), b.doc.value()) }
  }

  // ---- writes --------------------------------------------------------------

  async set(keyInput: string, valueInput: unknown, options: { fork?: string; ifHead?: string | null } & WriteMeta = {}): Promise<WriteResult> {
    const key = parseKey(keyInput)
    const fork = parseFork(options.fork ?? MAIN_FORK)
    const value = parseValue(valueInput, this.valueLimits)
    const meta = parseWriteMeta(options)
    const replay = this.replayRequest(meta.requestId, key, fork)
    if (replay) return replay
    this.checkWritable()
    const state = this.loadFork(key, fork)
    checkHead(state, options.ifHead)
    const id = this.nextId()
    return this.writeValue(state ?? this.newFork(key, fork), id, value, { kind: RevisionKind.set, ...meta })
  }

  async delete(keyInput: string, options: { fork?: string; ifHead?: string | null } & WriteMeta = {}): Promise<WriteResult> {
    const key = parseKey(keyInput)
    const fork = parseFork(options.fork ?? MAIN_FORK)
    const meta = parseWriteMeta(options)
    const replay = this.replayRequest(meta.requestId, key, fork)
    if (replay) return replay
    this.checkWritable()
    const state = this.loadFork(key, fork)
    checkHead(state, options.ifHead)
    if (!state || state.head.deleted) throw notFound(key, fork)
    return this.writeValue(state, this.nextId(), undefined, { kind: RevisionKind.delete, ...meta })
  }

  /** A new revision whose value is that of an earlier one; history is kept. */
  async revert(keyInput: string, to: RevisionSelector, options: { fork?: string } & WriteMeta = {}): Promise<WriteResult> {
    const key = parseKey(keyInput)
    const fork = parseFork(options.fork ?? MAIN_FORK)
    const meta = parseWriteMeta(options)
    if (isHeadSelector(to)) throw new WeftError(ErrorCode.INVALID_ARGUMENT, 'revert needs a revision, index or time')
    const replay = this.replayRequest(meta.requestId, key, fork)
    if (replay) return replay
    this.checkWritable()
    const target = this.stateAt(key, fork, to)
    const state = this.loadFork(key, fork)!
    return this.writeValue(state, this.nextId(), target.doc.value(), { kind: RevisionKind.revert, from: { fork, revision: target.info.id }, ...meta })
  }

  /** Creates fork `to` of a key from fork `from`, at its head or an earlier revision. */
  async fork(keyInput: string, options: { from?: string; to: string } & RevisionSelector & WriteMeta): Promise<WriteResult> {
    const key = parseKey(keyInput)
    const from = parseFork(options.from ?? MAIN_FORK)
    const to = parseFork(options.to)
    const meta = parseWriteMeta(options)
    if (from === to) throw new WeftError(ErrorCode.INVALID_ARGUMENT, 'a fork cannot be forked into itself')
    const replay = this.replayRequest(meta.requestId, key, to)
    if (replay) return replay
    this.checkWritable()
    if (this.loadFork(key, to)) throw new WeftError(ErrorCode.FORK_EXISTS, `fork ${to} of ${key} already exists`, { key, fork: to })
    // At the head, fork what writes see (the live doc), like every other write does.
    const live = isHeadSelector(options) ? this.loadFork(key, from) : undefined
    const origin = live ? { doc: live.doc, id: live.head.head } : (({ doc, info }) => ({ doc, id: info.id }))(this.stateAt(key, from, options))
    if (origin.doc.value() === undefined) throw new WeftError(ErrorCode.KEY_NOT_FOUND, `${key} is deleted in fork ${from} at that revision: nothing to fork`, { key, fork: from })
    const state = this.newFork(key, to)
    const ref = { fork: from, revision: origin.id }
    const delta = origin.doc.encodeState()
    state.doc.applyOwn(delta)
    const revision: Revision = { id: this.nextId(), key, fork: to, kind: RevisionKind.fork, delta, from: ref, ...meta }
    return this.commitLocal(state, revision, [{ type: 'put', key: L.fork(key, to), value: encodeFork({ from: ref }) }])
  }

  /** Three-way merge of fork `from` into fork `into`, as one revision on `into`. */
  async merge(keyInput: string, options: { from: string; into?: string; strategy?: string } & WriteMeta): Promise<MergeResult> {
    const key = parseKey(keyInput)
    const from = parseFork(options.from)
    const into = parseFork(options.into ?? MAIN_FORK)
    const strategy = parseStrategy(options.strategy)
    const meta = parseWriteMeta(options)
    if (from === into) throw new WeftError(ErrorCode.INVALID_ARGUMENT, 'a fork cannot be merged into itself')
    const replay = this.replayRequest(meta.requestId, key, into)
    if (replay) return { ...replay, conflicts: [] }
    this.checkWritable()
    const src = this.loadFork(key, from)
    if (!src) throw forkNotFound(key, from)
    const dst = this.loadFork(key, into)
    if (!dst) throw forkNotFound(key, into)
    return this.mergeForks(dst, src, strategy, meta)
  }

  /** Forks every live key under `prefix`, reporting per key. */
  async forkPrefix(prefixInput: string, options: { from?: string; to: string; at?: number } & WriteMeta, onProgress?: Progress): Promise<PrefixResult> {
    const from = options.from ?? MAIN_FORK
    const keys = this.allKeys(prefixInput, from, false)
    return this.eachKey(keys, onProgress, (key) =>
      this.fork(key, { from, to: options.to, ...(options.at !== undefined && { at: options.at }), ...pickMeta(options) }),
    )
  }

  /**
   * Merges fork `from` into `into` for every key under `prefix` that has fork
   * `from` (deleted ones too, so deletions carry over). A key that lacks fork
   * `into` gets it, made by the merge.
   */
  async mergePrefix(prefixInput: string, options: { from: string; into?: string; strategy?: string } & WriteMeta, onProgress?: Progress): Promise<PrefixResult> {
    const from = parseFork(options.from)
    const into = parseFork(options.into ?? MAIN_FORK)
    const strategy = parseStrategy(options.strategy)
    // A requestId names one revision; a prefix merge makes one per key.
    const meta = pickMeta(parseWriteMeta(options))
    if (from === into) throw new WeftError(ErrorCode.INVALID_ARGUMENT, 'a fork cannot be merged into itself')
    const keys = this.allKeys(prefixInput, from, true)
    return this.eachKey(keys, onProgress, async (key) => {
      this.checkWritable()
      const src = this.loadFork(key, from)
      if (!src) throw forkNotFound(key, from)
      return this.mergeForks(this.loadFork(key, into) ?? this.newFork(key, into), src, strategy, meta)
    })
  }

  // ---- replication ---------------------------------------------------------

  /**
   * Applies revisions made elsewhere, in any order, idempotently. Returns the
   * ones that were new here; rejects (per revision, without applying it) any
   * that fail validation.
   */
  async applyRemote(revisions: readonly unknown[]): Promise<{ applied: Revision[]; rejected: { id: unknown; code: string; message: string }[] }> {
    this.checkWritable()
    const applied: Revision[] = []
    const rejected: { id: unknown; code: string; message: string }[] = []
    const writes: StorageWrite[] = []
    const events: CommittedRevision[] = []
    const seen = new Set<string>()
    const onDurable: (() => void)[] = []
    // History order is causal order: applying by id keeps Yjs from parking
    // updates whose dependencies come later in the same batch.
    const ordered = [...revisions].sort((a, b) => {
      const x = String((a as { id?: unknown } | null)?.id ?? '')
      const y = String((b as { id?: unknown } | null)?.id ?? '')
      return x < y ? -1 : x > y ? 1 : 0
    })
    for (const input of ordered) {
      let revision: Revision
      try {
        revision = this.validateRemote(input)
      } catch (err) {
        const e = toWeftError(err)
        rejected.push({ id: (input as { id?: unknown } | null)?.id, code: e.code, message: e.message })
        continue
      }
      const storageKey = L.revision(revision.key, revision.fork, revision.id)
      // Gossip and anti-entropy often deliver the same revision at once.
      if (seen.has(storageKey) || this.uncommitted.has(storageKey) || this.storage.has(storageKey)) continue
      seen.add(storageKey)
      const existing = this.loadFork(revision.key, revision.fork)
      let state: ForkState
      try {
        if (existing) {
          state = existing
          state.doc.apply(revision.delta)
        } else {
          // A fork new here: a bad update only spoils a doc nobody else holds.
          state = this.newFork(revision.key, revision.fork, ForkDoc.fromUpdate(revision.delta))
        }
      } catch (err) {
        // A half-applied update leaves the doc suspect: reload it from storage next time.
        this.cache.delete(cacheKey(revision.key, revision.fork))
        const e = toWeftError(err)
        rejected.push({ id: revision.id, code: e.code, message: e.message })
        continue
      }
      this.clock.receive(parseRevisionId(revision.id).hlc)
      if (!existing) writes.push({ type: 'put', key: L.fork(revision.key, revision.fork), value: encodeFork(revision.kind === RevisionKind.fork && revision.from ? { from: revision.from } : {}) })
      const event = this.record(state, revision, writes, false, onDurable)
      applied.push(revision)
      events.push(event)
    }
    if (writes.length > 0) await this.commit(writes, events, onDurable)
    return { applied, rejected }
  }

  /** Revision ids this node holds for one fork, oldest first (for anti-entropy). */
  *revisionIds(key: Key, fork: ForkName, after?: RevisionId): Iterable<RevisionId> {
    const prefix = L.revisionPrefix(key, fork)
    const gte = after ? L.revision(key, fork, after) + '\u0000' : prefix
    for (const [storageKey] of this.storage.range({ gte, lt: prefixEnd(prefix) })) yield L.lastPart(storageKey) as RevisionId
  }

  hasRevision(key: string, fork: string, id: string): boolean {
    return this.storage.has(L.revision(key as Key, fork as ForkName, id as RevisionId))
  }

  /** One stored revision, whole (for anti-entropy and replication). */
  revision(key: Key, fork: ForkName, id: RevisionId): Revision | undefined {
    const bytes = this.storage.get(L.revision(key, fork, id))
    return bytes ? toRevision(key, fork, id, decodeRevision(bytes)) : undefined
  }

  subscribe(listener: (event: CommittedRevision) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The latest HLC this node has issued or seen. */
  lastClock(): Hlc {
    return this.clock.peek()
  }

  sizeBytes(): number {
    return this.storage.sizeBytes()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.flush()
    await Promise.allSettled([...this.inflight])
    await this.emitted
    this.cache.clear()
    await this.storage.close()
  }

  // ---- internals -----------------------------------------------------------

  private nextId(): RevisionId {
    return revisionId(this.clock.now(), this.nodeId)
  }

  private checkWritable(): void {
    if (this.closed) throw new WeftError(ErrorCode.CLOSED, 'store is closed')
    if (this.failure) throw new WeftError(ErrorCode.STORAGE_FAILED, `storage failed earlier: ${this.failure.message}`)
  }

  private readHead(key: Key, fork: ForkName): HeadRecord | undefined {
    const bytes = this.storage.get(L.head(fork, key))
    return bytes ? decodeHead(bytes) : undefined
  }

  private newFork(key: Key, fork: ForkName, doc: ForkDoc = ForkDoc.load()): ForkState {
    return new ForkState(key, fork, doc, { head: '' as RevisionId, count: 0, kind: RevisionKind.set, bytes: 0, deleted: true }, [])
  }

  /** The live state of a fork (cached), or undefined when it has no revisions. */
  private loadFork(key: Key, fork: ForkName): ForkState | undefined {
    const id = cacheKey(key, fork)
    const cached = this.pinned.get(id)?.state ?? this.cache.get(id)
    if (cached) return cached
    const head = this.readHead(key, fork)
    if (!head) return undefined
    const checkpoints = this.readCheckpoints(key, fork)
    const last = checkpoints.at(-1)
    const doc = this.replayAfter(key, fork, last, undefined)
    const state = new ForkState(key, fork, doc, head, checkpoints)
    // From now on the live state keeps the list; a stale copy must not outlive it.
    this.checkpointLists.delete(id)
    this.cache.set(id, state)
    return state
  }

  private readCheckpoints(key: Key, fork: ForkName): Checkpoint[] {
    const prefix = L.checkpointIndexPrefix(key, fork)
    const checkpoints: Checkpoint[] = []
    for (const [storageKey, bytes] of this.storage.range({ gte: prefix, lt: prefixEnd(prefix) })) {
      checkpoints.push({ id: L.lastPart(storageKey) as RevisionId, index: decodeIndex(bytes), durable: true })
    }
    return checkpoints
  }

  /** Checkpoint `from` (or nothing) plus the revisions after it, up to `count` of them. */
  private replayAfter(key: Key, fork: ForkName, from: Checkpoint | undefined, count: number | undefined, lt?: string): ForkDoc {
    const prefix = L.revisionPrefix(key, fork)
    const state = from ? this.readCheckpointState(key, fork, from.id) : undefined
    const gte = from ? L.revision(key, fork, from.id) + '\u0000' : prefix
    const deltas: Uint8Array[] = []
    if (count !== 0) {
      for (const [, bytes] of this.storage.range({ gte, lt: lt ?? prefixEnd(prefix), ...(count !== undefined && { limit: count }) })) {
        deltas.push(decodeRevision(bytes).delta)
      }
    }
    return ForkDoc.replay(state, deltas)
  }

  private readCheckpointState(key: Key, fork: ForkName, id: RevisionId): Uint8Array {
    const bytes = this.storage.get(L.checkpoint(key, fork, id))
    if (!bytes) throw new WeftError(ErrorCode.STORAGE_CORRUPT, `checkpoint ${id} of ${key}@${fork} is missing`)
    return decodeCheckpoint(bytes).state
  }

  private checkpointsOf(key: Key, fork: ForkName): Checkpoint[] {
    const id = cacheKey(key, fork)
    const live = (this.pinned.get(id)?.state ?? this.cache.get(id))?.checkpoints
    if (live) return live.filter((c) => c.durable)
    // Reads of forks nobody writes keep their checkpoint list, not a whole doc.
    let list = this.checkpointLists.get(id)
    if (!list) this.checkpointLists.set(id, (list = this.readCheckpoints(key, fork)))
    return list
  }

  /** The fork's state at a revision, as a fresh doc, with that revision's info. */
  private stateAt(key: Key, fork: ForkName, selector: RevisionSelector): { doc: ForkDoc; info: RevisionInfo } {
    const head = this.readHead(key, fork)
    if (!head) throw notFound(key, fork)
    if (isHeadSelector(selector)) selector = { revision: head.head }
    const checkpoints = this.checkpointsOf(key, fork)
    const prefix = L.revisionPrefix(key, fork)
    let index: number
    let bound: string // exclusive storage-key bound of the revisions to replay
    if (selector.index !== undefined) {
      index = selector.index
      if (!Number.isInteger(index) || index < 1 || index > head.count) {
        throw new WeftError(ErrorCode.REVISION_NOT_FOUND, `index ${index} is outside 1..${head.count}`, { key, fork })
      }
      const base = lastWhere(checkpoints, (c) => c.index <= index)
      const doc = this.replayAfter(key, fork, base, index - (base?.index ?? 0))
      return { doc, info: this.infoAtIndex(key, fork, base, index) }
    }
    if (selector.revision !== undefined) {
      const id = this.requireRevisionId(key, fork, selector.revision)
      bound = L.revision(key, fork, id) + '\u0000'
    } else {
      const at = selector.at!
      if (!Number.isFinite(at)) throw new WeftError(ErrorCode.INVALID_ARGUMENT, 'at must be a time in ms')
      bound = prefix + encodeHlc({ wall: Math.floor(at) + 1, counter: 0 })
    }
    const base = lastWhere(checkpoints, (c) => L.revision(key, fork, c.id) < bound)
    const gte = base ? L.revision(key, fork, base.id) + '\u0000' : prefix
    let last: [RevisionId, StoredRevision] | undefined
    const deltas: Uint8Array[] = []
    index = base?.index ?? 0
    for (const [storageKey, bytes] of this.storage.range({ gte, lt: bound })) {
      const stored = decodeRevision(bytes)
      deltas.push(stored.delta)
      last = [L.lastPart(storageKey) as RevisionId, stored]
      index++
    }
    if (!last && base) last = [base.id, decodeRevision(this.storage.get(L.revision(key, fork, base.id))!)]
    if (!last) throw new WeftError(ErrorCode.REVISION_NOT_FOUND, `${key}@${fork} has no revision at that time`, { key, fork })
    const doc = ForkDoc.replay(base ? this.readCheckpointState(key, fork, base.id) : undefined, deltas)
    return { doc, info: describeRevision(toRevision(key, fork, last[0], last[1]), index) }
  }

  private infoAtIndex(key: Key, fork: ForkName, base: Checkpoint | undefined, index: number): RevisionInfo {
    const prefix = L.revisionPrefix(key, fork)
    // Start at the checkpoint's own revision (index base.index) or the first one (index 1).
    let i = base?.index ?? 1
    const gte = base ? L.revision(key, fork, base.id) : prefix
    for (const [storageKey, bytes] of this.storage.range({ gte, lt: prefixEnd(prefix), limit: index - i + 1 })) {
      if (i === index) return describeRevision(toRevision(key, fork, L.lastPart(storageKey) as RevisionId, decodeRevision(bytes)), index)
      i++
    }
    throw new WeftError(ErrorCode.STORAGE_CORRUPT, `revision ${index} of ${key}@${fork} is missing`)
  }

  /** 1-based position of a revision in its fork's history. */
  private indexOf(key: Key, fork: ForkName, id: RevisionId): number {
    const target = L.revision(key, fork, id)
    const base = lastWhere(this.checkpointsOf(key, fork), (c) => L.revision(key, fork, c.id) <= target)
    const prefix = L.revisionPrefix(key, fork)
    let index = base?.index ?? 0
    const gte = base ? L.revision(key, fork, base.id) + '\u0000' : prefix
    for (const _ of this.storage.range({ gte, lt: target + '\u0000' })) index++
    return index
  }

  /** The earlier result of a write with this requestId, if this node holds it. */
  private replayRequest(requestId: string | undefined, key: Key, fork: ForkName): WriteResult | undefined {
    if (requestId === undefined) return undefined
    const bytes = this.storage.get(L.request(key, fork, requestId))
    if (!bytes) return undefined
    const id = new TextDecoder().decode(bytes) as RevisionId
    const revision = this.revision(key, fork, id)
    if (!revision) return undefined
    return { key, fork, revision: describeRevision(revision, this.indexOf(key, fork, id)), replayed: true }
  }

  private requireRevisionId(key: Key, fork: ForkName, input: string): RevisionId {
    parseRevisionId(input)
    const id = input as RevisionId
    if (!this.storage.has(L.revision(key, fork, id))) {
      throw new WeftError(ErrorCode.REVISION_NOT_FOUND, `${key}@${fork} has no revision ${id}`, { key, fork, revision: id })
    }
    return id
  }

  private async writeValue(state: ForkState, id: RevisionId, value: Value | undefined, meta: Omit<StoredRevision, 'delta'>): Promise<WriteResult> {
    let delta: Uint8Array | null
    try {
      delta = state.doc.write(value, id)
    } catch (err) {
      this.cache.delete(cacheKey(state.key, state.fork))
      throw err
    }
    const revision: Revision = { id, key: state.key, fork: state.fork, delta: delta ?? EMPTY_DELTA, ...meta }
    const extra: StorageWrite[] = state.head.count === 0 ? [{ type: 'put', key: L.fork(state.key, state.fork), value: encodeFork({}) }] : []
    // The newest stamp wins every register it wrote, so the doc now reads as `value`.
    return this.commitLocal(state, revision, extra, { value })
  }

  private async mergeForks(dst: ForkState, src: ForkState, strategy: MergeStrategy, meta: { author?: string; message?: string }): Promise<MergeResult> {
    // What dst held right after its last merge from src is common ground, not a dst change.
    const last = this.storage.get(L.lastMerge(dst.key, dst.fork, src.fork))
    const lastId = last ? (new TextDecoder().decode(last) as RevisionId) : undefined
    const base = lastId && this.storage.has(L.revision(dst.key, dst.fork, lastId)) ? this.stateAt(dst.key, dst.fork, { revision: lastId }).doc.stateVector() : undefined
    const id = this.nextId()
    const merged = dst.doc.merge(src.doc, strategy, id, base)
    if (merged.delta) dst.doc.applyOwn(merged.delta)
    const revision: Revision = { id, key: dst.key, fork: dst.fork, kind: RevisionKind.merge, delta: merged.delta ?? EMPTY_DELTA, from: { fork: src.fork, revision: src.head.head }, ...meta }
    const extra: StorageWrite[] = dst.head.count === 0 ? [{ type: 'put', key: L.fork(dst.key, dst.fork), value: encodeFork({}) }] : []
    const result = await this.commitLocal(dst, revision, extra)
    return { ...result, conflicts: merged.conflicts }
  }

  /** Records a revision made here (its delta already applied to `state.doc`) and waits until durable. */
  private async commitLocal(state: ForkState, revision: Revision, extra: StorageWrite[], known?: { value: Value | undefined }): Promise<WriteResult> {
    const writes = [...extra]
    const onDurable: (() => void)[] = []
    const event = this.record(state, revision, writes, true, onDurable, known)
    await this.commit(writes, [event], onDurable)
    return { key: state.key, fork: state.fork, revision: event.info }
  }

  /**
   * Adds the storage writes for one revision whose delta is already in
   * `state.doc`, and updates the in-memory state to match.
   */
  private record(state: ForkState, revision: Revision, writes: StorageWrite[], local: boolean, onDurable: (() => void)[], known?: { value: Value | undefined }): CommittedRevision {
    const { key, fork, id } = revision
    const value = known ? known.value : state.doc.value()
    if (fork === MAIN_FORK) {
      const wasLive = state.head.count > 0 && !state.head.deleted
      const isLive = value !== undefined
      if (wasLive !== isLive) this.liveKeys += isLive ? 1 : -1
    }
    this.uncommitted.add(L.revision(key, fork, id))
    const seq = ++this.seq
    this.lastStoredAt = Math.max(this.lastStoredAt, this.now())
    writes.push({ type: 'put', key: L.feed(seq), value: encodeFeed({ key, fork, id, storedAt: this.lastStoredAt }) })
    const appended = state.head.count === 0 || id > state.head.head
    const count = state.head.count + 1
    if (!appended) {
      // Landed inside the history (after a partition): later checkpoints lack it.
      const stale = state.checkpoints.filter((c) => c.id > id)
      for (const c of stale) {
        writes.push({ type: 'del', key: L.checkpoint(key, fork, c.id) }, { type: 'del', key: L.checkpointIndex(key, fork, c.id) })
      }
      state.checkpoints = state.checkpoints.filter((c) => c.id < id)
    }
    const headRevision = appended ? revision : undefined
    state.head = {
      head: appended ? id : state.head.head,
      count,
      kind: headRevision ? revision.kind : state.head.kind,
      bytes: state.head.bytes + revision.delta.byteLength,
      deleted: value === undefined,
      ...(value !== undefined && { value }),
      ...(headRevision ? pickMeta(revision) : pickMeta(state.head)),
    }
    writes.push(
      { type: 'put', key: L.revision(key, fork, id), value: encodeRevision({ kind: revision.kind, delta: revision.delta, ...(revision.from && { from: revision.from }), ...pickMeta(revision), ...(revision.requestId !== undefined && { requestId: revision.requestId }) }) },
      { type: 'put', key: L.head(fork, key), value: encodeHead(state.head) },
    )
    if (revision.requestId !== undefined) writes.push({ type: 'put', key: L.request(key, fork, revision.requestId), value: new TextEncoder().encode(id) })
    if (revision.kind === RevisionKind.merge && revision.from) {
      const lastMerge = L.lastMerge(key, fork, revision.from.fork)
      const previous = this.storage.get(lastMerge)
      if (!previous || new TextDecoder().decode(previous) < id) writes.push({ type: 'put', key: lastMerge, value: new TextEncoder().encode(id) })
    }
    const lastCheckpoint = state.checkpoints.at(-1)?.index ?? 0
    if (appended && count - lastCheckpoint >= this.checkpointEvery) {
      writes.push(
        { type: 'put', key: L.checkpoint(key, fork, id), value: encodeCheckpoint(state.doc.encodeState(), count) },
        { type: 'put', key: L.checkpointIndex(key, fork, id), value: encodeIndex(count) },
      )
      const checkpoint: Checkpoint = { id, index: count, durable: false }
      state.checkpoints.push(checkpoint)
      onDurable.push(() => (checkpoint.durable = true))
    }
    const slot = cacheKey(key, fork)
    // A fork written once stays pinned until durable, then goes: caching every
    // new key's doc would evict the docs of keys that are written again.
    if (count > 1) this.cache.set(slot, state)
    else state.release(revision.delta)
    const pin = this.pinned.get(slot)
    if (pin) pin.writes++
    else this.pinned.set(slot, { state, writes: 1 })
    const info = describeRevision(revision, appended ? count : this.indexOfPending(state, id))
    return { seq, revision, info, ...(value !== undefined && { value }), deleted: value === undefined, local }
  }

  private indexOfPending(state: ForkState, id: RevisionId): number {
    // Not yet in storage: its index is one past the revisions stored before it.
    return this.indexOf(state.key, state.fork, id) + 1
  }

  /**
   * Group commit: every mutation made in one turn of the event loop goes to disk
   * in one storage commit, and each is acknowledged when that commit is durable.
   */
  private commit(writes: StorageWrite[], events: CommittedRevision[], onDurable: (() => void)[]): Promise<void> {
    let batch = this.batch
    if (!batch) {
      batch = this.batch = { writes: [], events: [], onDurable: [], waiters: [] }
      setImmediate(() => void this.flush())
    }
    for (const write of writes) batch.writes.push(write)
    for (const event of events) batch.events.push(event)
    for (const done of onDurable) batch.onDurable.push(done)
    return new Promise((resolve, reject) => batch.waiters.push({ resolve, reject }))
  }

  private async flush(): Promise<void> {
    const batch = this.batch
    if (!batch) return
    this.batch = undefined
    const { writes, events } = batch
    writes.push(
      { type: 'put', key: L.clock, value: new TextEncoder().encode(encodeHlc(this.clock.peek())) },
      { type: 'put', key: L.keyCount, value: encodeIndex(this.liveKeys) },
    )
    if (this.pendingEpoch) {
      writes.push({ type: 'put', key: L.epoch, value: new TextEncoder().encode(this.epoch) })
      this.pendingEpoch = false
    }
    const durable = this.settle(this.storage.commit(writes), batch)
    // Storage commits may settle out of order; the feed position and the events
    // must not, or a watch past a later seq would skip an earlier batch's events.
    this.emitted = Promise.all([this.emitted, durable]).then(([, ok]) => {
      if (ok) this.emit(events)
    })
    await this.emitted
  }

  /** Waits for a batch's commit and answers its writers (at once, in any order); false if it failed. */
  private async settle(done: Promise<void>, batch: Batch): Promise<boolean> {
    const { events, waiters } = batch
    this.inflight.add(done)
    try {
      await done
    } catch (err) {
      // Memory is now ahead of disk: refuse further writes rather than diverge.
      this.failure = err as Error
      this.cache.clear()
      this.pinned.clear()
      const failure = new WeftError(ErrorCode.STORAGE_FAILED, `storage commit failed: ${(err as Error).message}`)
      for (const waiter of waiters) waiter.reject(failure)
      return false
    } finally {
      this.inflight.delete(done)
      for (const event of events) this.uncommitted.delete(L.revision(event.revision.key, event.revision.fork, event.revision.id))
    }
    for (const event of events) this.unpin(cacheKey(event.revision.key, event.revision.fork))
    for (const durable of batch.onDurable) durable()
    for (const waiter of waiters) waiter.resolve()
    return true
  }

  /** Moves the feed head past a durable batch and tells subscribers of its revisions. */
  private emit(events: readonly CommittedRevision[]): void {
    const last = events.at(-1)
    if (last) this.committedSeq = last.seq
    for (const event of events) {
      for (const listener of this.listeners) {
        try {
          listener(event)
        } catch {
          // A subscriber's failure is its own: the write is durable and acknowledged.
        }
      }
    }
  }

  private unpin(id: string): void {
    const pin = this.pinned.get(id)
    if (pin && --pin.writes === 0) this.pinned.delete(id)
  }

  private validateRemote(input: unknown): Revision {
    if (input === null || typeof input !== 'object') throw new WeftError(ErrorCode.INVALID_UPDATE, 'revision must be an object')
    const r = input as Record<string, unknown>
    parseRevisionId(r.id)
    const key = parseKey(r.key)
    const fork = parseFork(r.fork)
    if (typeof r.kind !== 'string' || !Object.hasOwn(RevisionKind, r.kind)) throw new WeftError(ErrorCode.INVALID_UPDATE, 'unknown revision kind')
    if (!(r.delta instanceof Uint8Array)) throw new WeftError(ErrorCode.INVALID_UPDATE, 'delta must be bytes')
    if (r.delta.byteLength > this.maxDeltaBytes) throw new WeftError(ErrorCode.VALUE_TOO_LARGE, `delta is larger than ${this.maxDeltaBytes} bytes`)
    const meta = parseWriteMeta(r as WriteMeta)
    let from: RevisionRef | undefined
    if (r.from !== undefined) {
      const f = r.from as Record<string, unknown> | null
      if (f === null || typeof f !== 'object') throw new WeftError(ErrorCode.INVALID_UPDATE, 'from must be an object')
      parseRevisionId(f.revision)
      from = { fork: parseFork(f.fork), revision: f.revision as RevisionId }
    }
    return { id: r.id as RevisionId, key, fork, kind: r.kind as RevisionKind, delta: r.delta, ...(from && { from }), ...meta }
  }

  private allKeys(prefixInput: string, forkInput: string, includeDeleted: boolean): Key[] {
    const prefix = parseKeyPrefix(prefixInput)
    const fork = parseFork(forkInput)
    const start = L.headPrefix(fork, prefix)
    const keys: Key[] = []
    for (const [storageKey, bytes] of this.storage.range({ gte: start, lt: prefixEnd(start) })) {
      if (includeDeleted || !decodeHead(bytes).deleted) keys.push(L.keyOfHead(storageKey))
    }
    return keys
  }

  private async eachKey(keys: Key[], onProgress: Progress | undefined, run: (key: Key) => Promise<WriteResult | MergeResult>): Promise<PrefixResult> {
    const results: PrefixResult['results'] = []
    for (const [i, key] of keys.entries()) {
      try {
        const result = await run(key)
        results.push({ key, ok: true, revision: result.revision, ...('conflicts' in result && { conflicts: result.conflicts }) })
      } catch (err) {
        const e = toWeftError(err)
        if (e.code === ErrorCode.STORAGE_FAILED || e.code === ErrorCode.CLOSED) throw e
        results.push({ key, ok: false, error: { code: e.code, message: e.message } })
      }
      onProgress?.(i + 1, keys.length)
    }
    return { results }
  }
}

function cacheKey(key: Key, fork: ForkName): string {
  return `${fork}\u0000${key}`
}

function isHeadSelector(selector: RevisionSelector): boolean {
  return selector.revision === undefined && selector.index === undefined && selector.at === undefined
}

function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new WeftError(ErrorCode.INVALID_ARGUMENT, `limit must be 1..${MAX_PAGE}`)
  return limit
}

function parseStrategy(input: string | undefined): MergeStrategy {
  if (input === undefined) return MergeStrategy.crdt
  if (!Object.hasOwn(MergeStrategy, input)) throw new WeftError(ErrorCode.INVALID_ARGUMENT, `strategy must be one of ${Object.keys(MergeStrategy).join(', ')}`)
  return input as MergeStrategy
}

function checkHead(state: ForkState | undefined, ifHead: string | null | undefined): void {
  if (ifHead === undefined) return
  const head = state && state.head.count > 0 ? state.head.head : null
  if (head !== ifHead) {
    throw new WeftError(ErrorCode.HEAD_MISMATCH, `head is ${head ?? 'absent'}, not ${ifHead ?? 'absent'}`, { head })
  }
}

const MAX_REQUEST_ID = 128

function parseWriteMeta(options: { author?: unknown; message?: unknown; requestId?: unknown }): WriteMeta {
  const meta: { author?: string; message?: string; requestId?: string } = parseMeta(options.author, options.message)
  const requestId = options.requestId
  if (requestId !== undefined) {
    if (typeof requestId !== 'string' || requestId.length < 1 || requestId.length > MAX_REQUEST_ID || requestId.includes('\u0000')) {
      throw new WeftError(ErrorCode.INVALID_ARGUMENT, `requestId must be 1..${MAX_REQUEST_ID} chars`, { field: 'requestId' })
    }
    meta.requestId = requestId
  }
  return meta
}

function pickMeta(source: { author?: string | undefined; message?: string | undefined }): WriteMeta {
  return {
    ...(source.author !== undefined && { author: source.author }),
    ...(source.message !== undefined && { message: source.message }),
  }
}

function headInfo(head: HeadRecord): RevisionInfo {
  const { hlc, node } = parseRevisionId(head.head)
  return { id: head.head, index: head.count, ts: hlc.wall, node, kind: head.kind, ...pickMeta(head) }
}

function toRevision(key: Key, fork: ForkName, id: RevisionId, stored: StoredRevision): Revision {
  return { id, key, fork, ...stored }
}

function lastWhere<T>(items: readonly T[], test: (item: T) => boolean): T | undefined {
  // Items are sorted so that `test` holds for a prefix: binary search.
  let lo = 0
  let hi = items.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (test(items[mid]!)) lo = mid + 1
    else hi = mid
  }
  return lo > 0 ? items[lo - 1] : undefined
}

function notFound(key: Key, fork: ForkName): WeftError {
  return new WeftError(ErrorCode.KEY_NOT_FOUND, `${key} not found in fork ${fork}`, { key, fork })
}

function forkNotFound(key: Key, fork: ForkName): WeftError {
  return new WeftError(ErrorCode.FORK_NOT_FOUND, `${key} has no fork ${fork}`, { key, fork })
}

function toWeftError(err: unknown): WeftError {
  return err instanceof WeftError ? err : new WeftError(ErrorCode.INTERNAL, (err as Error)?.message ?? String(err))
}
