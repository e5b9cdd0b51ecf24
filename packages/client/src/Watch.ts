// One watch as an async iterator of events. The client (its host) subscribes it
// on every connection, each time from the last cursor received, so a reconnect
// neither skips nor repeats an event; events the consumer has not read yet wait
// here. Past `maxBuffered` unread events it unsubscribes until half are read,
// then resubscribes from where it stopped: a slow reader never loses events.
//
// A cursor belongs to one node's feed. When a resubscription lands on another
// node (CURSOR_EXPIRED), the watch resumes by time instead (`since`: the time of
// the last revision received), and drops the replayed revisions it already has
// by revision id, as docs/PROTOCOL.md describes; so does a gateway's replay.
import { ErrorCode } from '@weft/core'
import { type WatchEvent, type WatchResult, parseCursor } from '@weft/protocol'
import { WeftClientError } from './WeftClientError.ts'

interface WatchFrom {
  readonly fork?: string
  /** Resume right after this cursor (of the node or gateway that issued it). */
  readonly after?: string
  /** Resume from a time, ms (replays a little before it; repeats are dropped by revision id). */
  readonly since?: number
}

export type WatchTarget =
  | (WatchFrom & { readonly key: string; readonly prefix?: undefined })
  | (WatchFrom & { readonly prefix: string; readonly key?: undefined })

/** Revision ids remembered per watch to drop repeats of a replay by time. */
const SEEN_IDS = 65_536

/** What a Watch needs from the client that carries it. */
export interface WatchHost {
  /** Sends the watch request on the current connection (when there is one). */
  subscribe(watch: Watch): void
  /** Stops the current subscription (if any). */
  unsubscribe(watch: Watch): void
  /** The watch ended for good: drop it. */
  forget(watch: Watch): void
}

export class Watch implements AsyncIterableIterator<WatchEvent> {
  readonly target: WatchTarget
  /** The id of the watch request on the current connection, while subscribed. */
  subscription: number | undefined
  readonly #host: WatchHost
  readonly #maxBuffered: number
  #buffer: WatchEvent[] = []
  #head = 0
  #waiters: { resolve: (result: IteratorResult<WatchEvent>) => void; reject: (err: unknown) => void }[] = []
  /** The last cursor received (or the start cursor): where a new subscription resumes. */
  #received: string | undefined
  /** The last cursor handed to the consumer (or the start cursor). */
  #delivered: string | undefined
  #error: WeftClientError | undefined
  #ended = false
  #paused = false
  #started = false
  /** Set after CURSOR_EXPIRED: the next subscription resumes by time. */
  #bySince = false
  /** The time to resume from by `since`: the last revision received (or when the watch started). */
  #since: number | undefined
  readonly #seen = new Set<string>()
  #seenOrder: string[] = []
  #onStarted: { resolve: () => void; reject: (err: WeftClientError) => void } | undefined
  readonly started: Promise<void>

  constructor(host: WatchHost, target: WatchTarget, maxBuffered: number) {
    this.#host = host
    this.target = target
    this.#maxBuffered = Math.max(2, maxBuffered)
    this.#received = target.after
    this.#delivered = target.after
    this.#since = target.since
    this.#bySince = target.after === undefined && target.since !== undefined
    this.started = new Promise((resolve, reject) => (this.#onStarted = { resolve, reject }))
    // A watch whose start nobody awaits must not become an unhandled rejection.
    this.started.catch(() => undefined)
  }

  /**
   * Resume from here: the cursor of the last event read from this iterator (or
   * where the watch started). Store it to continue in another process.
   */
  get cursor(): string | undefined {
    return this.#delivered
  }

  /** Where a new subscription starts: `after` the last cursor received, or `since` a time. */
  get resumeFrom(): { readonly after?: string; readonly since?: number } {
    if (this.#bySince && this.#since !== undefined) return { since: this.#since }
    return this.#received === undefined ? {} : { after: this.#received }
  }

  /** Subscribed (or waiting for a connection to subscribe on), not paused and not ended. */
  get wantsSubscription(): boolean {
    return !this.#ended && !this.#paused
  }

  get ended(): boolean {
    return this.#ended
  }

  /** Whether the first subscription was acknowledged (later errors are retried, the first one's are not). */
  get hasStarted(): boolean {
    return this.#started
  }

  /** Unread events held here. */
  get buffered(): number {
    return this.#buffer.length - this.#head
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    if (this.buffered > 0) return Promise.resolve({ value: this.#take(), done: false })
    if (this.#error) {
      const error = this.#error
      this.#error = undefined
      return Promise.reject(error)
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  return(): Promise<IteratorResult<WatchEvent>> {
    this.close()
    return Promise.resolve({ value: undefined, done: true })
  }

  /** Stops the watch: the iterator ends once the events already received are read. */
  close(): void {
    if (this.#ended) return
    this.#finish(undefined)
    this.#onStarted?.reject(new WeftClientError(ErrorCode.CLOSED, 'watch closed before it started', { op: 'watch', local: true }))
  }

  // ---- called by the host ----------------------------------------------------

  onAck(result: WatchResult): void {
    if (this.#bySince) {
      // A new feed: its cursors replace the old node's from here on.
      this.#bySince = false
      this.#received = result.cursor
    }
    this.#received ??= result.cursor
    this.#delivered ??= result.cursor
    this.#since ??= Date.now()
    if (!this.#started) {
      this.#started = true
      this.#onStarted?.resolve()
    }
  }

  /**
   * The subscription's cursor is not valid where it landed (another node): resume
   * by time. False if it already was resuming by time (nothing more to try).
   */
  resumeBySince(): boolean {
    if (this.#bySince || this.#since === undefined) return false
    this.#bySince = true
    return true
  }

  onEvent(event: WatchEvent): void {
    if (this.#ended || this.#isRepeat(event.cursor)) return
    this.#received = event.cursor
    const ts = Math.min(event.revision.ts, Date.now())
    this.#since = Math.max(this.#since ?? ts, ts)
    if (this.#remember(`${event.key}\u0000${event.fork}\u0000${event.revision.id}`)) return
    const waiter = this.#waiters.shift()
    if (waiter) {
      this.#delivered = event.cursor
      waiter.resolve({ value: event, done: false })
      return
    }
    this.#buffer.push(event)
    if (!this.#paused && this.buffered >= this.#maxBuffered) {
      this.#paused = true
      this.#host.unsubscribe(this)
    }
  }

  /** Ends the iterator with an error (after the events already received). */
  fail(error: WeftClientError): void {
    if (this.#ended) return
    this.#onStarted?.reject(error)
    if (!this.#started) {
      // Nobody iterates a watch whose start failed: the caller got the error from watch().
      this.#finish(undefined)
      return
    }
    this.#finish(error)
  }

  /** Ends the iterator without error (the client closed). */
  end(): void {
    if (this.#ended) return
    this.#finish(undefined)
    this.#onStarted?.reject(new WeftClientError(ErrorCode.CLOSED, 'client closed', { op: 'watch', local: true }))
  }

  // ---- inside ------------------------------------------------------------------

  #take(): WatchEvent {
    const event = this.#buffer[this.#head]!
    this.#head++
    if (this.#head > 1024 && this.#head * 2 > this.#buffer.length) {
      this.#buffer = this.#buffer.slice(this.#head)
      this.#head = 0
    }
    this.#delivered = event.cursor
    if (this.#paused && !this.#ended && this.buffered <= this.#maxBuffered / 2) {
      this.#paused = false
      this.#host.subscribe(this)
    }
    return event
  }

  /** Remembers a revision; true if it was already there (a replay by time repeating it). */
  #remember(id: string): boolean {
    if (this.#seen.has(id)) return true
    this.#seen.add(id)
    this.#seenOrder.push(id)
    if (this.#seenOrder.length > SEEN_IDS * 2) {
      const dropped = this.#seenOrder.slice(0, this.#seenOrder.length - SEEN_IDS)
      for (const old of dropped) this.#seen.delete(old)
      this.#seenOrder = this.#seenOrder.slice(-SEEN_IDS)
    }
    return false
  }

  /** An event at or before the last one received from the same feed (a replay overlapping what came live). */
  #isRepeat(cursor: string): boolean {
    if (this.#received === undefined) return false
    try {
      const last = parseCursor(this.#received)
      const next = parseCursor(cursor)
      return next.epoch === last.epoch && next.seq <= last.seq
    } catch {
      return false
    }
  }

  #finish(error: WeftClientError | undefined): void {
    this.#ended = true
    this.#host.unsubscribe(this)
    this.#host.forget(this)
    const waiters = this.#waiters.splice(0)
    if (error && waiters.length > 0) {
      for (const waiter of waiters) waiter.reject(error)
    } else {
      this.#error = error
      for (const waiter of waiters) waiter.resolve({ value: undefined, done: true })
    }
  }
}
