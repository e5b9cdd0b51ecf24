// Repairs what gossip lost. Every node keeps a change feed (each revision it
// stored, in commit order, numbered). A node asks each peer for its feed head;
// if the peer's feed moved past the cursor kept for it, it pages through the
// new entries (ids only), and fetches exactly the revisions it lacks. Any
// peer's feed carries what that peer got from others, so a node that was down,
// partitioned or new catches up from whoever it can reach.
import { type ForkName, type Key, type RevisionId } from '@weft/core'
import {
  SYNC_PROTOCOL,
  SyncLimits,
  type SyncRequest,
  type SyncResponse,
  pack,
  parseSyncRequest,
  parseSyncResponse,
  type WireRevision,
} from '@weft/protocol'
import type { Logger } from '../Logger.ts'
import type { VersionedStore } from '../store/VersionedStore.ts'
import type { ClusterTransport, PeerId } from './ClusterTransport.ts'
import { toWire } from './Replicator.ts'

export interface AntiEntropyOptions {
  readonly store: VersionedStore
  readonly transport: ClusterTransport
  readonly logger: Logger
  /** Time between rounds with every connected peer. */
  readonly intervalMs?: number
  readonly requestTimeoutMs?: number
  /** Get requests kept in flight over all rounds (default FETCHES_IN_FLIGHT). */
  readonly fetchesInFlight?: number
}

export interface AntiEntropyStats {
  rounds: number
  failedRounds: number
  repaired: number
  /** Revisions received in get replies, new here or not (above `repaired`: fetched twice, or gossip was faster). */
  fetched: number
  /** Peer feed entries examined. */
  scanned: number
}

interface Cursor {
  epoch: string
  seq: number
}

/**
 * Get requests this node keeps in flight, over all its rounds: the peers serve
 * and the network carries some while this node applies others, and none waits
 * idle on a commit's sync. Bounds the replies held (each up to getBytes).
 */
const FETCHES_IN_FLIGHT = 16
/** Feed pages a round has fetches under way for (its memory is bounded by the window). */
const PAGES_IN_FLIGHT = 3

function refKey(ref: readonly [string, string, string]): string {
  return `${ref[0]}\u0000${ref[1]}\u0000${ref[2]}`
}

export class AntiEntropy {
  readonly stats: AntiEntropyStats = { rounds: 0, failedRounds: 0, repaired: 0, fetched: 0, scanned: 0 }
  private readonly store: VersionedStore
  private readonly transport: ClusterTransport
  private readonly logger: Logger
  private readonly intervalMs: number
  private readonly timeoutMs: number
  private readonly cursors = new Map<PeerId, Cursor>()
  private readonly running = new Map<PeerId, Promise<void>>()
  /** Revisions being fetched right now, by any round: key\0fork\0id → settles when done. */
  private readonly fetching = new Map<string, Promise<void>>()
  private readonly window: FetchWindow
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private readonly onConnect = ({ peer }: { peer: PeerId }) => void this.syncWith(peer)

  constructor(options: AntiEntropyOptions) {
    this.store = options.store
    this.transport = options.transport
    this.logger = options.logger
    this.intervalMs = options.intervalMs ?? 5000
    this.timeoutMs = options.requestTimeoutMs ?? 10_000
    this.window = new FetchWindow(options.fetchesInFlight ?? FETCHES_IN_FLIGHT)
    this.transport.handle(SYNC_PROTOCOL, (from, request) => this.serve(from, request))
  }

  start(): void {
    this.transport.on('peer:connect', this.onConnect)
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.syncAll().finally(() => {
          if (!this.stopped) tick()
        })
      }, this.intervalMs)
    }
    tick()
    for (const peer of this.transport.connectedPeers()) void this.syncWith(peer)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    this.transport.off('peer:connect', this.onConnect)
    await Promise.allSettled([...this.running.values()])
  }

  /** One round with every connected peer; resolves when all are done. */
  async syncAll(): Promise<void> {
    await Promise.allSettled(this.transport.connectedPeers().map((peer) => this.syncWith(peer)))
  }

  /** One round with `peer` (joins the round already running, if any). */
  syncWith(peer: PeerId): Promise<void> {
    const current = this.running.get(peer)
    if (current) return current
    const round = this.round(peer)
      .catch((err: unknown) => {
        this.stats.failedRounds++
        this.logger.debug({ peer, err: String(err) }, 'anti-entropy round failed')
      })
      .finally(() => this.running.delete(peer))
    this.running.set(peer, round)
    return round
  }

  private async round(peer: PeerId): Promise<void> {
    this.stats.rounds++
    const head = await this.ask(peer, { t: 'head' }, 'head')
    let cursor = this.cursors.get(peer)
    if (!cursor || cursor.epoch !== head.epoch) cursor = { epoch: head.epoch, seq: 0 }
    const { epoch } = cursor
    const start = cursor.seq
    let scannedTo = cursor.seq
    let lastLog = Date.now()
    // The next feed page is asked for while this one's revisions are fetched.
    const askPage = (after: number) => {
      const page = this.ask(peer, { t: 'feed', after, limit: SyncLimits.feedPage }, 'feed')
      // A page asked for ahead may never be awaited (the round stops or fails first).
      page.catch(() => {})
      return page
    }
    // Chunks of successive pages share the node's window of gets, so the pipeline
    // does not drain at each page's end. A page counts as done (and the kept cursor
    // moves past it) only once it and every page before it are applied here.
    /** Fetches of the pages still under way (at most PAGES_IN_FLIGHT). */
    const pages: Promise<unknown>[] = []
    /** True once this page and every one before it are applied here. */
    let appliedThrough = Promise.resolve(true)
    let failure: { err: unknown } | undefined
    let repaired = 0
    let nextPage = cursor.seq < head.seq ? askPage(cursor.seq) : undefined
    while (nextPage && !this.stopped && !failure) {
      const page: Extract<SyncResponse, { t: 'feed' }> = await nextPage
      nextPage = undefined
      if (page.epoch !== epoch || page.entries.length === 0) break
      const last = page.entries.at(-1)![0]
      if (last < head.seq) nextPage = askPage(last)
      this.stats.scanned += page.entries.length
      scannedTo = last
      const missing = page.entries.filter(([, key, fork, id]) => !this.store.hasRevision(key, fork, id)).map(([, key, fork, id]) => [key, fork, id] as const)
      const fetched = this.fetch(peer, missing).then(
        (n) => {
          repaired += n
          return true
        },
        (err: unknown) => {
          failure ??= { err }
          return false
        },
      )
      appliedThrough = Promise.all([appliedThrough, fetched]).then(([before, now]) => {
        if (before && now) this.cursors.set(peer, { epoch, seq: last })
        return before && now
      })
      pages.push(appliedThrough)
      if (pages.length >= PAGES_IN_FLIGHT) await pages.shift()
      if (Date.now() - lastLog > 2000) {
        lastLog = Date.now()
        this.logger.info({ peer, at: scannedTo, of: head.seq, repaired }, 'anti-entropy catching up')
      }
    }
    // Every fetch of the round ends before its error (if any) is the round's.
    await Promise.all(pages)
    if (failure) throw failure.err
    if (repaired > 0) this.logger.info({ peer, repaired, entries: (this.cursors.get(peer)?.seq ?? start) - start }, 'anti-entropy repaired revisions')
  }

  /**
   * Fetches `refs` from `peer`. Revisions another round is already fetching
   * (from another peer) are not asked for twice: this round waits for that
   * fetch, then asks only for what is still missing.
   */
  private async fetch(peer: PeerId, refs: (readonly [string, string, string])[]): Promise<number> {
    const elsewhere: Promise<void>[] = []
    const waitedFor: (readonly [string, string, string])[] = []
    const mine: (readonly [string, string, string])[] = []
    for (const ref of refs) {
      const running = this.fetching.get(refKey(ref))
      if (running) {
        elsewhere.push(running)
        waitedFor.push(ref)
      } else mine.push(ref)
    }
    let repaired = await this.fetchFrom(peer, mine)
    if (elsewhere.length > 0) {
      await Promise.allSettled(elsewhere)
      repaired += await this.fetchFrom(peer, waitedFor.filter(([key, fork, id]) => !this.store.hasRevision(key, fork, id)))
    }
    return repaired
  }

  /**
   * Fetches in chunks, each taking a place in the node's window of gets, so
   * the peer serves (and the network carries) later chunks while this node
   * applies earlier ones. A chunk's revisions count as being fetched from the
   * moment it is queued, so no other round asks for them meanwhile.
   */
  private async fetchFrom(peer: PeerId, refs: (readonly [string, string, string])[]): Promise<number> {
    const chunks: (readonly [string, string, string])[][] = []
    for (let i = 0; i < refs.length; i += SyncLimits.refsPerGet) chunks.push(refs.slice(i, i + SyncLimits.refsPerGet))
    const fetchOne = async (chunk: (readonly [string, string, string])[]): Promise<number> => {
      let done: () => void = () => {}
      const marker = new Promise<void>((resolve) => (done = resolve))
      const keys = chunk.map(refKey).filter((k) => !this.fetching.has(k))
      for (const k of keys) this.fetching.set(k, marker)
      try {
        return await this.window.run(() => this.fetchChunk(peer, chunk))
      } finally {
        for (const k of keys) if (this.fetching.get(k) === marker) this.fetching.delete(k)
        done()
      }
    }
    // Every chunk ends before the error (if any) is the round's.
    const results = await Promise.allSettled(chunks.map(fetchOne))
    let repaired = 0
    for (const result of results) {
      if (result.status === 'rejected') throw result.reason
      repaired += result.value
    }
    return repaired
  }

  private async fetchChunk(peer: PeerId, refs: (readonly [string, string, string])[]): Promise<number> {
    let repaired = 0
    let pending = refs
    while (pending.length > 0 && !this.stopped) {
      const reply = await this.ask(peer, { t: 'get', refs: pending }, 'get')
      if (reply.revisions.length === 0) throw new Error(`${peer} returned none of ${pending.length} revisions`)
      this.stats.fetched += reply.revisions.length
      const result = await this.store.applyRemote(reply.revisions)
      if (result.rejected.length > 0) this.logger.warn({ peer, rejected: result.rejected.slice(0, 5) }, 'rejected revisions from anti-entropy')
      repaired += result.applied.length
      this.stats.repaired += result.applied.length
      // A response may stop early at its byte budget: ask again for the rest.
      const got = new Set(reply.revisions.map((r) => refKey([r.key, r.fork, r.id])))
      pending = pending.filter((ref) => !got.has(refKey(ref)) && !this.store.hasRevision(ref[0], ref[1], ref[2]))
    }
    return repaired
  }

  private async ask<T extends SyncResponse['t']>(peer: PeerId, request: SyncRequest, expect: T): Promise<Extract<SyncResponse, { t: T }>> {
    const bytes = await this.transport.request(peer, SYNC_PROTOCOL, pack(request), { timeoutMs: this.timeoutMs })
    const response = parseSyncResponse(bytes)
    if (response.t === 'error') throw new Error(`${peer} refused ${request.t}: ${response.code} ${response.message}`)
    if (response.t !== expect) throw new Error(`${peer} answered ${request.t} with ${response.t}`)
    return response as Extract<SyncResponse, { t: T }>
  }

  private async serve(from: PeerId, bytes: Uint8Array): Promise<Uint8Array> {
    let request: SyncRequest
    try {
      request = parseSyncRequest(bytes)
    } catch (err) {
      this.logger.warn({ peer: from, err: String(err) }, 'malformed sync request')
      return pack({ t: 'error', code: 'BAD_FRAME', message: String(err) } satisfies SyncResponse)
    }
    switch (request.t) {
      case 'head':
        return pack({ t: 'head', ...this.store.feedHead() } satisfies SyncResponse)
      case 'feed': {
        const entries = this.store.feed(request.after, request.limit).map((e) => [e.seq, e.key, e.fork, e.id] as const)
        return pack({ t: 'feed', epoch: this.store.epoch, entries } satisfies SyncResponse)
      }
      case 'get': {
        const revisions: WireRevision[] = []
        let bytesOut = 0
        for (const [key, fork, id] of request.refs) {
          const revision = this.store.revision(key as Key, fork as ForkName, id as RevisionId)
          if (!revision) continue
          revisions.push(toWire(revision))
          bytesOut += revision.delta.byteLength
          if (bytesOut >= SyncLimits.getBytes) break
        }
        return pack({ t: 'get', revisions } satisfies SyncResponse)
      }
    }
  }
}

/** At most `size` tasks running at once; the rest wait their turn in order. */
class FetchWindow {
  private running = 0
  private readonly waiting: (() => void)[] = []
  private readonly size: number

  constructor(size: number) {
    this.size = size
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.running++
    try {
      return await task()
    } finally {
      const next = this.waiting.shift()
      // The place passes straight to the next waiter.
      if (next) next()
      else this.running--
    }
  }
}
