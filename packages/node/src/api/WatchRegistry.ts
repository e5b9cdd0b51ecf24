// Watches: streams of the revisions stored on this node (made here or
// replicated) that match a key or a prefix in one fork, resumable from a cursor
// into the node's change feed.
//
// Resume without gap or duplicate: a resuming watch replays the feed page by
// page and ignores live events meanwhile (they are in the feed by the time they
// are emitted, since the store emits after the commit). It turns live in the
// same synchronous step as reading a short last page; from then on it takes
// live events with a seq past the last one it replayed. Feed entries committed
// but not yet emitted at that moment have a seq it already replayed.
import { ErrorCode, type ForkName, type Key, MAIN_FORK, WeftError, isWeftError, parseFork, parseKey, parseKeyPrefix } from '@weft/core'
import { type RequestId, type ServerFrame, type WatchEvent, type WatchRequest, errorBody, formatCursor, parseCursor } from '@weft/protocol'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../Logger.ts'
import type { CommittedRevision, VersionedStore } from '../store/VersionedStore.ts'

/** Where a watch's frames go: one client connection. */
export interface WatchSink {
  send(frame: ServerFrame): void
  isOpen(): boolean
  /** Bytes queued for the client and not yet written to the network. */
  bufferedAmount(): number
  /** The client reads too slowly: end its connection. */
  overflow(): void
}

export interface WatchRegistryOptions {
  readonly store: VersionedStore
  readonly logger: Logger
  /** A live event that finds more than this queued for its connection ends the connection. */
  readonly maxBufferedBytes: number
  /** A replay waits while more than this is queued (kept well below maxBufferedBytes). */
  readonly replayHighWater?: number
  /** Feed entries read per replay step. */
  readonly replayPage?: number
  /** How far before `since` a resumed watch starts replaying: clock skew plus replication lag. */
  readonly sinceMarginMs?: number
}

/** Default margin before a watch's `since`. */
export const WATCH_SINCE_MARGIN_MS = 2000

export class Watch {
  readonly id: RequestId
  readonly sink: WatchSink
  readonly fork: ForkName
  readonly key: Key | undefined
  readonly prefix: string | undefined
  /** The cursor the watch starts after. */
  readonly cursor: string
  /** The last feed seq this watch has passed (sent, or skipped as not matching). */
  lastSeq: number
  live: boolean
  closed = false
  /** Called once if the node ends the watch (not on close()). */
  onEnd: (() => void) | undefined

  constructor(id: RequestId, sink: WatchSink, target: { fork: ForkName; key?: Key; prefix?: string }, epoch: string, after: number, live: boolean) {
    this.id = id
    this.sink = sink
    this.fork = target.fork
    this.key = target.key
    this.prefix = target.prefix
    this.lastSeq = after
    this.live = live
    this.cursor = formatCursor({ epoch, seq: after })
  }

  matches(key: string, fork: string): boolean {
    return fork === this.fork && (this.key !== undefined ? key === this.key : key.startsWith(this.prefix!))
  }
}

export class WatchRegistry {
  readonly #store: VersionedStore
  readonly #logger: Logger
  readonly #maxBufferedBytes: number
  readonly #replayHighWater: number
  readonly #replayPage: number
  readonly #sinceMarginMs: number
  readonly #watches = new Set<Watch>()
  readonly #unsubscribe: () => void
  /**
   * The last feed seq emitted: where a watch without a cursor starts. Taken from
   * the feed head at first, which assumes no write is in flight at that moment.
   */
  #emittedSeq: number

  constructor(options: WatchRegistryOptions) {
    this.#store = options.store
    this.#logger = options.logger
    this.#maxBufferedBytes = options.maxBufferedBytes
    this.#replayHighWater = options.replayHighWater ?? Math.min(1024 * 1024, options.maxBufferedBytes / 4)
    this.#replayPage = options.replayPage ?? 256
    this.#sinceMarginMs = options.sinceMarginMs ?? WATCH_SINCE_MARGIN_MS
    this.#emittedSeq = this.#store.feedHead().seq
    this.#unsubscribe = this.#store.subscribe((event) => this.#onCommitted(event))
  }

  get size(): number {
    return this.#watches.size
  }

  /**
   * Registers a watch; its live events flow at once. Throws INVALID_KEY /
   * INVALID_FORK, or CURSOR_EXPIRED for a cursor of another feed epoch or one
   * ahead of the feed. Call start() once the client has the watch's answer.
   * With `since`, it starts after the last feed entry stored before `since`
   * minus the margin.
   */
  open(sink: WatchSink, request: WatchRequest): Watch {
    const fork = parseFork(request.fork ?? MAIN_FORK)
    const target = request.key !== undefined ? { fork, key: parseKey(request.key) } : { fork, prefix: parseKeyPrefix(request.prefix) }
    const head = this.#store.feedHead()
    let watch: Watch
    if (request.since !== undefined) {
      // feedSeqAt is at most head.seq + 1: a time past the feed replays nothing, then goes live.
      const after = Math.min(head.seq, this.#store.feedSeqAt(request.since - this.#sinceMarginMs) - 1)
      watch = new Watch(request.id, sink, target, head.epoch, after, false)
    } else if (request.after === undefined) {
      watch = new Watch(request.id, sink, target, head.epoch, this.#emittedSeq, true)
    } else {
      const cursor = parseCursor(request.after)
      if (cursor.epoch !== head.epoch) {
        throw new WeftError(ErrorCode.CURSOR_EXPIRED, 'cursor is from another incarnation of this node\'s feed: read the current state, then watch without a cursor', { epoch: head.epoch })
      }
      if (cursor.seq > head.seq) throw new WeftError(ErrorCode.CURSOR_EXPIRED, `cursor is ahead of this node's feed (${head.seq})`, { epoch: head.epoch })
      watch = new Watch(request.id, sink, target, head.epoch, cursor.seq, false)
    }
    this.#watches.add(watch)
    return watch
  }

  /** Starts the replay of a watch opened with a cursor. */
  start(watch: Watch): void {
    if (!watch.live && !watch.closed) void this.#replay(watch)
  }

  close(watch: Watch): void {
    watch.closed = true
    this.#watches.delete(watch)
  }

  stop(): void {
    this.#unsubscribe()
    for (const watch of this.#watches) this.close(watch)
  }

  #onCommitted(committed: CommittedRevision): void {
    // Runs inside the store's commit: must never throw.
    try {
      if (committed.seq > this.#emittedSeq) this.#emittedSeq = committed.seq
      let event: WatchEvent | undefined
      for (const watch of this.#watches) {
        if (!watch.live || committed.seq <= watch.lastSeq || !watch.matches(committed.revision.key, committed.revision.fork)) continue
        event ??= {
          cursor: formatCursor({ epoch: this.#store.epoch, seq: committed.seq }),
          key: committed.revision.key,
          fork: committed.revision.fork,
          revision: committed.info,
          ...(committed.value !== undefined && { value: committed.value }),
          deleted: committed.deleted,
        }
        watch.lastSeq = committed.seq
        this.#deliver(watch, event)
      }
    } catch (err) {
      this.#logger.error({ err: String(err) }, 'watch dispatch failed')
    }
  }

  async #replay(watch: Watch): Promise<void> {
    try {
      for (;;) {
        if (watch.closed) return
        const entries = this.#store.feed(watch.lastSeq, this.#replayPage)
        let paused = false
        for (const entry of entries) {
          if (watch.closed) return
          if (watch.sink.bufferedAmount() > this.#replayHighWater) {
            paused = true
            break
          }
          if (watch.matches(entry.key, entry.fork)) {
            const event = this.#replayed(entry.seq, entry.key, entry.fork, entry.id)
            if (event) this.#deliver(watch, event)
          }
          watch.lastSeq = entry.seq
        }
        // Caught up, in the same synchronous step as the read: live from here.
        if (!paused && entries.length < this.#replayPage) {
          watch.live = true
          return
        }
        while (!watch.closed && watch.sink.isOpen() && watch.sink.bufferedAmount() > this.#replayHighWater) await sleep(5)
        await nextTurn()
      }
    } catch (err) {
      this.#end(watch, err)
    }
  }

  /** The event for a feed entry, with the value as of its revision; undefined if that revision is gone. */
  #replayed(seq: number, key: string, fork: string, id: string): WatchEvent | undefined {
    try {
      const at = this.#store.get(key, fork, { revision: id })
      return {
        cursor: formatCursor({ epoch: this.#store.epoch, seq }),
        key: at.key,
        fork: at.fork,
        revision: at.revision,
        ...(at.value !== undefined && { value: at.value }),
        deleted: at.deleted,
      }
    } catch (err) {
      if (isWeftError(err, ErrorCode.REVISION_NOT_FOUND) || isWeftError(err, ErrorCode.KEY_NOT_FOUND)) {
        this.#logger.warn({ key, fork, revision: id }, 'feed entry without its revision: skipped in replay')
        return undefined
      }
      throw err
    }
  }

  #deliver(watch: Watch, event: WatchEvent): void {
    if (watch.closed || !watch.sink.isOpen()) return
    if (watch.sink.bufferedAmount() > this.#maxBufferedBytes) {
      watch.sink.overflow()
      return
    }
    watch.sink.send({ id: watch.id, event })
  }

  #end(watch: Watch, err: unknown): void {
    if (watch.closed) return
    if (!(err instanceof WeftError)) this.#logger.error({ err: String(err), watch: watch.id }, 'watch replay failed')
    if (watch.sink.isOpen()) watch.sink.send({ id: watch.id, ended: errorBody(err) })
    this.close(watch)
    watch.onEnd?.()
  }
}
