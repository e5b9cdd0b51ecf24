// The TypeScript client: one WebSocket to a node or a gateway (docs/PROTOCOL.md),
// a typed method per operation, watches as async iterators.
//
// The connection heals itself: when it drops, the client reconnects with
// exponential backoff and jitter, sends again every request that had no answer
// (in the order they were made, writes with the same requestId so the server
// applies them once), and resubscribes every watch from the last cursor it
// received. A request waits for a connection up to its own timeout.
import { type Change, ErrorCode, type MergeStrategy, type RevisionInfo, type RevisionRef, type Value } from '@weft/core'
import {
  type DeleteRequest,
  type DiffResult,
  type DiffSide,
  type GetRequest,
  type GetResult,
  type HistoryEntry,
  type HistoryRequest,
  type HistoryResult,
  type InfoResult,
  type KeysRequest,
  type KeysResult,
  type MembersResult,
  type MergeResult,
  Op,
  type PingResult,
  type PrefixResult,
  type Results,
  type RevertRequest,
  type Selector,
  type SetRequest,
  WRITE_OPS,
  type WatchEvent,
  type WatchResult,
  type WriteMeta,
  type WriteResult,
  errorOfClose,
  pack,
  unpack,
} from '@weft/protocol'
import { type BackoffOptions, backoffDelay } from './backoff.ts'
import { newRequestId } from './newRequestId.ts'
import { type SocketLike, SocketState, type WebSocketFactory, isNode, openSocket } from './openSocket.ts'
import { Watch, type WatchHost, type WatchTarget } from './Watch.ts'
import { WeftClientError } from './WeftClientError.ts'

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface ConnectionChange {
  readonly state: ConnectionState
  /** Why the last connection ended or the last attempt failed. */
  readonly reason?: string
  /** reconnecting: the wait before the next attempt, ms. */
  readonly delayMs?: number
  /** reconnecting: attempts since the last good connection. */
  readonly attempt?: number
}

export interface ReconnectOptions extends BackoffOptions {}

export interface WeftClientOptions {
  /** Sent as `?token=` and, in Node, as `Authorization: Bearer`. */
  readonly token?: string | undefined
  /** Default per-request timeout, ms; also how long connect() waits (default 10 000). */
  readonly timeoutMs?: number | undefined
  /** How long one attempt to open a socket may take, ms (default: timeoutMs). */
  readonly connectTimeoutMs?: number | undefined
  /** Reconnect after the connection drops (default true); false closes the client instead. */
  readonly reconnect?: boolean | ReconnectOptions | undefined
  /** Requests sent without an answer yet; more wait in the client (default 256, the node's limit). */
  readonly maxInflight?: number | undefined
  /** Larger frames are refused here with FRAME_TOO_LARGE instead of costing the connection (default 2 MiB). */
  readonly maxFrameBytes?: number | undefined
  /** Unread events a watch holds before it pauses its subscription (default 10 000). */
  readonly watchBuffer?: number | undefined
  /** Opens sockets (default: the global WebSocket, else `ws`). */
  readonly webSocket?: WebSocketFactory | undefined
  /** Told when the connection opens, drops, or the client closes. */
  readonly onConnectionChange?: ((change: ConnectionChange) => void) | undefined
  /** Randomness for backoff jitter (tests inject it). */
  readonly random?: (() => number) | undefined
}

export interface CallOptions {
  /** This request's timeout, ms (default: the client's timeoutMs). */
  readonly timeoutMs?: number | undefined
}

type Params<R> = Omit<R, 'id' | 'op'>
export type GetOptions = Omit<Params<GetRequest>, 'key'> & CallOptions
export type SetOptions = Omit<Params<SetRequest>, 'key' | 'value'> & CallOptions
export type DeleteOptions = Omit<Params<DeleteRequest>, 'key'> & CallOptions
export type KeysOptions = Params<KeysRequest> & CallOptions
export type HistoryOptions = Omit<Params<HistoryRequest>, 'key'> & CallOptions
export type InfoOptions = { readonly fork?: string } & CallOptions
export type RevertOptions = Omit<Params<RevertRequest>, 'key'> & CallOptions
export type ForkOptions = Selector & WriteMeta & { readonly from?: string } & CallOptions
/** A prefix fork selects its revision by time only (ids and indexes are per key). */
export type ForkPrefixOptions = WriteMeta & { readonly from?: string; readonly at?: number } & CallOptions
export type MergeOptions = WriteMeta & { readonly into?: string; readonly strategy?: MergeStrategy } & CallOptions
export type WatchOptions = CallOptions & {
  /** Unread events held before the subscription pauses (default: the client's watchBuffer). */
  readonly buffer?: number
}

/** A cluster member as nodes report it today (docs/PROTOCOL.md, `members`). */
export interface MemberInfo {
  readonly peerId: string
  readonly name: string
  readonly addresses: readonly string[]
  readonly api: string
  readonly state: 'alive' | 'suspect' | 'dead'
  readonly lastSeen: number
  readonly version: string
  readonly startedAt: number
  readonly uptimeMs: number
  readonly keys: number
  readonly load: number
  readonly feedSeq: number
  readonly connected: boolean
  readonly self: boolean
}

export interface Members extends MembersResult {
  readonly members: readonly MemberInfo[]
}

export type { Change, DiffResult, DiffSide, GetResult, HistoryEntry, HistoryResult, InfoResult, KeysResult, MergeResult, PingResult, PrefixResult }
export type { RevisionInfo, RevisionRef, Value, WatchEvent, WatchResult, WatchTarget, WriteResult }

interface Pending {
  readonly id: number
  readonly op: Op
  readonly bytes: Uint8Array
  readonly requestId: string | undefined
  readonly resolve: (result: unknown) => void
  readonly reject: (err: WeftClientError) => void
  timer: ReturnType<typeof setTimeout> | undefined
  sent: boolean
  done: boolean
}

const CALL_OPTIONS = new Set(['timeoutMs'])
/** A connection that lived this long was a good one: the next drop starts backoff afresh. */
const HEALTHY_MS = 1000

export class WeftClient {
  readonly url: string
  readonly #options: WeftClientOptions
  readonly #timeoutMs: number
  readonly #connectTimeoutMs: number
  readonly #reconnect: ReconnectOptions | undefined
  readonly #maxInflight: number
  readonly #maxFrameBytes: number
  readonly #factory: WebSocketFactory
  readonly #random: () => number
  readonly #host: WatchHost

  #socket: SocketLike | undefined
  #open = false
  #closed = false
  /** Why the client stopped for good (a refused token, a lost connection without reconnect). */
  #fatal: WeftClientError | undefined
  #state: ConnectionState = 'connecting'
  #nextId = 1
  readonly #pending = new Map<number, Pending>()
  /** Not yet sent on the current connection, in the order they were made, from #queueHead on. */
  #queue: Pending[] = []
  #queueHead = 0
  /** Entries in #queue that timed out before they were sent (dropped when they pile up). */
  #queueDead = 0
  #inflight = 0
  readonly #watches = new Set<Watch>()
  readonly #subscriptions = new Map<number, Watch>()
  readonly #resubscribeTimers = new Map<Watch, ReturnType<typeof setTimeout>>()
  /** Failed resubscriptions in a row, per watch: their backoff. */
  readonly #watchRetries = new Map<Watch, number>()
  #attempt = 0
  #lastError = ''
  #openedAt = 0
  #heardBack = false
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined
  #openWaiters: { resolve: () => void; reject: (err: WeftClientError) => void }[] = []
  #socketClosed: Promise<void> = Promise.resolve()
  /** Gives up the current socket at once (one still opening sends no close event we could wait for). */
  #dropSocket: () => void = () => {}

  /** Starts connecting at once; requests made before the connection opens wait for it. */
  constructor(url: string, options: WeftClientOptions = {}) {
    this.url = url
    this.#options = options
    this.#timeoutMs = options.timeoutMs ?? 10_000
    this.#connectTimeoutMs = options.connectTimeoutMs ?? this.#timeoutMs
    this.#reconnect = options.reconnect === false ? undefined : options.reconnect === true || options.reconnect === undefined ? {} : options.reconnect
    this.#maxInflight = Math.max(1, options.maxInflight ?? 256)
    this.#maxFrameBytes = options.maxFrameBytes ?? 2 * 1024 * 1024
    this.#factory = options.webSocket ?? openSocket
    this.#random = options.random ?? Math.random
    this.#host = {
      subscribe: (watch) => this.#subscribe(watch),
      unsubscribe: (watch) => this.#unsubscribe(watch),
      forget: (watch) => {
        this.#watches.delete(watch)
        clearTimeout(this.#resubscribeTimers.get(watch))
        this.#resubscribeTimers.delete(watch)
        this.#watchRetries.delete(watch)
      },
    }
    this.#connect()
  }

  /**
   * Connects and waits for the connection (up to `timeoutMs`, retrying with
   * backoff unless `reconnect: false`), then pings once: a server that
   * refuses the token closes the connection right after it opens, and that
   * rejects here (UNAUTHORIZED) rather than at the first request. Unreachable:
   * UNAVAILABLE.
   */
  static async connect(url: string, options: WeftClientOptions = {}): Promise<WeftClient> {
    const client = new WeftClient(url, options)
    const timeoutMs = options.timeoutMs ?? 10_000
    try {
      await client.#whenOpen(timeoutMs)
      await client.ping({ timeoutMs })
    } catch (err) {
      await client.close()
      throw err
    }
    return client
  }

  get state(): ConnectionState {
    return this.#state
  }

  // ---- operations ----------------------------------------------------------

  /** The fork's current value, or the value at a revision (`revision`, `index`) or a time (`at`). */
  get(key: string, options: GetOptions = {}): Promise<GetResult> {
    return this.#call(Op.get, { key, ...options }, options)
  }

  /** Writes a value; `ifHead` makes it a compare-and-set (null: the fork must not exist). */
  set(key: string, value: Value, options: SetOptions = {}): Promise<WriteResult> {
    return this.#call(Op.set, { key, value, ...options }, options)
  }

  /** A tombstone revision; KEY_NOT_FOUND if the key is absent or already deleted. */
  delete(key: string, options: DeleteOptions = {}): Promise<WriteResult> {
    return this.#call(Op.delete, { key, ...options }, options)
  }

  /** One page of live keys; pass `next` as `after` for the next page. */
  keys(options: KeysOptions = {}): Promise<KeysResult> {
    return this.#call(Op.keys, { ...options }, options)
  }

  /** Every live key (of a prefix, a fork), page by page. */
  async *scanKeys(options: Omit<KeysOptions, 'after'> = {}): AsyncGenerator<KeysResult['keys'][number]> {
    let after: string | undefined
    do {
      const page = await this.keys({ ...options, ...(after !== undefined && { after }) })
      yield* page.keys
      after = page.next
    } while (after !== undefined)
  }

  /** One page of revisions, newest first; pass `next` as `before` for the next page. */
  history(key: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    return this.#call(Op.history, { key, ...options }, options)
  }

  /** Every revision of a fork, newest first, page by page. */
  async *scanHistory(key: string, options: Omit<HistoryOptions, 'before'> = {}): AsyncGenerator<HistoryEntry> {
    let before: string | undefined
    do {
      const page = await this.history(key, { ...options, ...(before !== undefined && { before }) })
      yield* page.revisions
      before = page.next
    } while (before !== undefined)
  }

  /** Revision count, forks, ancestors, size. */
  info(key: string, options: InfoOptions = {}): Promise<InfoResult> {
    return this.#call(Op.info, { key, ...options }, options)
  }

  /** What changed between two revisions of any two forks (`{}`: main's head). */
  diff(key: string, from: DiffSide = {}, to: DiffSide = {}, options: CallOptions = {}): Promise<DiffResult> {
    return this.#call(Op.diff, { key, from: compact(from), to: compact(to) }, options)
  }

  /** A new revision whose value is the selected revision's (one of `revision`, `index`, `at`). */
  revert(key: string, options: RevertOptions): Promise<WriteResult> {
    return this.#call(Op.revert, { key, ...options }, options)
  }

  /** Creates fork `to` of a key from fork `from` (default main), at its head or a selected revision. */
  fork(key: string, to: string, options: ForkOptions = {}): Promise<WriteResult> {
    return this.#call(Op.fork, { key, to, ...options }, options) as Promise<WriteResult>
  }

  /** Forks every live key under a prefix (`""`: every key); each key is reported on its own. */
  forkPrefix(prefix: string, to: string, options: ForkPrefixOptions = {}): Promise<PrefixResult> {
    return this.#call(Op.fork, { prefix, to, ...options }, options) as Promise<PrefixResult>
  }

  /** Three-way merge of fork `from` into `into` (default main); strategy `fail` makes conflicts MERGE_CONFLICT. */
  merge(key: string, from: string, options: MergeOptions = {}): Promise<MergeResult> {
    return this.#call(Op.merge, { key, from, ...options }, options) as Promise<MergeResult>
  }

  /** Merges fork `from` into `into` for every key under a prefix; each key is reported on its own. */
  mergePrefix(prefix: string, from: string, options: MergeOptions = {}): Promise<PrefixResult> {
    return this.#call(Op.merge, { prefix, from, ...options }, options) as Promise<PrefixResult>
  }

  /** The cluster's members as the answering node sees them. */
  members(options: CallOptions = {}): Promise<Members> {
    return this.#call(Op.members, {}, options) as Promise<Members>
  }

  ping(options: CallOptions = {}): Promise<PingResult> {
    return this.#call(Op.ping, {}, options)
  }

  /**
   * A live stream of the revisions of a key, or of every key under a prefix,
   * resumable from a cursor (`after`). Resolves once the server has accepted it;
   * iterate it with `for await`, end it with `close()` or `break`. It survives
   * reconnects: no event is skipped or repeated. It ends with an error only for
   * errors that retrying cannot fix (e.g. CURSOR_EXPIRED, FORBIDDEN).
   */
  async watch(target: WatchTarget, options: WatchOptions = {}): Promise<Watch> {
    this.#throwIfClosed(Op.watch)
    const watch = new Watch(this.#host, target, options.buffer ?? this.#options.watchBuffer ?? 10_000)
    this.#watches.add(watch)
    this.#subscribe(watch)
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.#timeoutError(Op.watch, timeoutMs, undefined)), timeoutMs)
    })
    try {
      await Promise.race([watch.started, timedOut])
    } catch (err) {
      watch.close()
      throw err
    } finally {
      clearTimeout(timer)
    }
    return watch
  }

  /** Any op by name, for what the typed methods do not cover. */
  request<O extends Exclude<Op, 'watch' | 'unwatch'>>(op: O, params: Record<string, unknown> = {}, options: CallOptions = {}): Promise<Results[O]> {
    return this.#call(op, params, options)
  }

  /** Ends every request (CLOSED) and watch (iterators finish), closes the connection; no reconnect. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#stop(new WeftClientError(ErrorCode.CLOSED, 'client closed', { local: true }), false)
    }
    // A server that never finishes the close handshake does not hold the caller up.
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([this.#socketClosed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))])
    clearTimeout(timer)
  }

  // ---- requests --------------------------------------------------------------

  #call<O extends Op>(op: O, params: Record<string, unknown>, options: CallOptions): Promise<Results[O]> {
    try {
      this.#throwIfClosed(op)
    } catch (err) {
      return Promise.reject(err)
    }
    const id = this.#nextId++
    const frame: Record<string, unknown> = { id, op }
    for (const [name, value] of Object.entries(params)) if (value !== undefined && !CALL_OPTIONS.has(name)) frame[name] = value
    if (WRITE_OPS.has(op) && frame.requestId === undefined) frame.requestId = newRequestId()
    const requestId = typeof frame.requestId === 'string' ? frame.requestId : undefined
    let bytes: Uint8Array
    try {
      bytes = pack(frame)
    } catch (err) {
      return Promise.reject(new WeftClientError(ErrorCode.INVALID_VALUE, `cannot encode the request: ${(err as Error).message}`, { op, requestId, local: true }))
    }
    if (bytes.length > this.#maxFrameBytes) {
      return Promise.reject(
        new WeftClientError(ErrorCode.FRAME_TOO_LARGE, `the request is ${bytes.length} bytes, over the ${this.#maxFrameBytes} allowed`, { op, requestId, local: true }),
      )
    }
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs
    return new Promise<Results[O]>((resolve, reject) => {
      const pending: Pending = { id, op, bytes, requestId, resolve: resolve as (result: unknown) => void, reject, timer: undefined, sent: false, done: false }
      pending.timer = setTimeout(() => {
        this.#settle(pending)
        reject(this.#timeoutError(op, timeoutMs, requestId))
      }, timeoutMs)
      this.#pending.set(id, pending)
      this.#queue.push(pending)
      this.#pump()
    })
  }

  #timeoutError(op: Op, timeoutMs: number, requestId: string | undefined): WeftClientError {
    const where = this.#open ? `no answer from ${this.url}` : `no connection to ${this.url}${this.#lastError ? ` (${this.#lastError})` : ''}`
    return new WeftClientError(ErrorCode.TIMEOUT, `${op}: ${where} within ${timeoutMs} ms`, {
      op,
      requestId,
      local: true,
      details: { connected: this.#open, ...(requestId !== undefined && { requestId }) },
    })
  }

  /** Removes a request that is answered, timed out or failed. */
  #settle(pending: Pending): void {
    if (pending.done) return
    pending.done = true
    clearTimeout(pending.timer)
    this.#pending.delete(pending.id)
    if (!pending.sent && ++this.#queueDead > 1024 && this.#queueDead * 2 > this.#queue.length - this.#queueHead) {
      // A long outage with many timed-out requests: do not keep them until the next connection.
      this.#requeue(this.#queue.slice(this.#queueHead).filter((p) => !p.done))
    }
    if (pending.sent) {
      this.#inflight--
      this.#pump()
    }
  }

  /** Sends queued requests while the connection is open and below the in-flight limit. */
  #pump(): void {
    const socket = this.#socket
    if (!this.#open || !socket) return
    while (this.#queueHead < this.#queue.length && this.#inflight < this.#maxInflight) {
      const pending = this.#queue[this.#queueHead]!
      if (!pending.done) {
        if (!this.#send(socket, pending.bytes)) break
        pending.sent = true
        this.#inflight++
      }
      this.#queueHead++
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) this.#requeue(this.#queue.slice(this.#queueHead))
  }

  #requeue(queue: Pending[]): void {
    this.#queue = queue
    this.#queueHead = 0
    this.#queueDead = queue.reduce((n, p) => n + (p.done ? 1 : 0), 0)
  }

  #send(socket: SocketLike, bytes: Uint8Array): boolean {
    try {
      socket.send(bytes)
      return true
    } catch (err) {
      // Closing under our feet: the close handler queues everything again.
      this.#lastError = `send failed: ${describeError(err)}`
      return false
    }
  }

  #throwIfClosed(op: Op): void {
    if (!this.#closed) return
    const fatal = this.#fatal
    throw new WeftClientError(fatal?.code ?? ErrorCode.CLOSED, fatal?.message ?? 'client closed', { op, local: fatal?.local ?? true, details: fatal?.details })
  }

  // ---- watches ---------------------------------------------------------------

  #subscribe(watch: Watch): void {
    const socket = this.#socket
    if (!this.#open || !socket || !watch.wantsSubscription || watch.subscription !== undefined) return
    const id = this.#nextId++
    const target = watch.target
    const frame = compact({
      id,
      op: Op.watch,
      ...(target.key !== undefined ? { key: target.key } : { prefix: target.prefix }),
      fork: target.fork,
      ...watch.resumeFrom,
    })
    watch.subscription = id
    this.#subscriptions.set(id, watch)
    this.#send(socket, pack(frame))
  }

  #unsubscribe(watch: Watch): void {
    const id = watch.subscription
    if (id === undefined) return
    watch.subscription = undefined
    this.#subscriptions.delete(id)
    // Fire and forget: its answer finds no request and is dropped; events still
    // in flight for the old id are dropped too, and replayed by the next subscription.
    if (this.#open && this.#socket) this.#send(this.#socket, pack({ id: this.#nextId++, op: Op.unwatch, watch: id }))
  }

  /** A subscription failed or the server ended it: resubscribe if that can help, else end the watch. */
  #onWatchError(watch: Watch, error: WeftClientError): void {
    if (watch.hasStarted && error.code === ErrorCode.CURSOR_EXPIRED && watch.resumeBySince()) {
      // Landed on another node (or its feed was wiped): resume by time instead.
      this.#subscribe(watch)
      return
    }
    if (!watch.hasStarted || !error.retryable || !this.#reconnect) {
      watch.fail(error)
      return
    }
    const attempt = this.#watchRetries.get(watch) ?? 0
    this.#watchRetries.set(watch, attempt + 1)
    const timer = setTimeout(() => {
      this.#resubscribeTimers.delete(watch)
      this.#subscribe(watch)
    }, backoffDelay(attempt, this.#reconnect, this.#random))
    this.#resubscribeTimers.set(watch, timer)
  }

  // ---- the connection ----------------------------------------------------------

  #connect(): void {
    if (this.#closed || this.#socket) return
    if (this.#state !== 'reconnecting') this.#setState(this.#openedAt === 0 ? 'connecting' : 'reconnecting')
    const url = withToken(this.url, this.#options.token)
    const headers: Record<string, string> = this.#options.token !== undefined && isNode() ? { authorization: `Bearer ${this.#options.token}` } : {}
    const placeholder = {} as SocketLike
    let socket: SocketLike | undefined
    let opened = false
    let gone = false
    let errorTimer: ReturnType<typeof setTimeout> | undefined
    let closedResolve = () => {}
    this.#socketClosed = new Promise<void>((resolve) => (closedResolve = resolve))
    const connectTimer = setTimeout(() => {
      this.#lastError = `no connection within ${this.#connectTimeoutMs} ms`
      socket?.close()
      lost(4408, '')
    }, this.#connectTimeoutMs)
    // Ends this socket's part, once, however it ends: close event, failed open, timeout, our close().
    const lost = (code: number, reason: string) => {
      if (gone) return
      gone = true
      clearTimeout(connectTimer)
      clearTimeout(errorTimer)
      closedResolve()
      if (socket) detach(socket)
      this.#onLost(code, reason)
    }
    this.#socket = placeholder
    this.#dropSocket = () => lost(1000, '')
    Promise.resolve()
      .then(() => this.#factory({ url, headers }))
      .then(
        (created) => {
          socket = created
          if (gone || this.#closed || this.#socket !== placeholder) {
            detach(created)
            created.close()
            lost(1000, '')
            return
          }
          this.#socket = created
          created.binaryType = 'arraybuffer'
          created.onopen = () => {
            clearTimeout(connectTimer)
            opened = true
            if (!gone) this.#onOpen(created)
          }
          created.onmessage = (event) => {
            if (!gone) this.#onMessage(event.data)
          }
          created.onerror = (event) => {
            this.#lastError = describeError(event)
            // Some implementations (Node 22's undici) report a failed open with 'error' and no 'close'.
            if (!opened) lost(1006, '')
            else errorTimer ??= setTimeout(() => lost(1006, ''), 1000)
          }
          created.onclose = (event) => {
            if (event.reason) this.#lastError = event.reason
            else if (!opened) this.#lastError ||= `closed with ${event.code}`
            lost(event.code, event.reason)
          }
        },
        (err: unknown) => {
          this.#lastError = describeError(err)
          lost(1006, '')
        },
      )
  }

  #onOpen(socket: SocketLike): void {
    if (this.#socket !== socket || this.#closed) return
    this.#open = true
    this.#openedAt = Date.now()
    this.#heardBack = false
    this.#lastError = ''
    this.#setState('open')
    for (const waiter of this.#openWaiters.splice(0)) waiter.resolve()
    this.#pump()
    for (const watch of this.#watches) this.#subscribe(watch)
  }

  #onMessage(data: unknown): void {
    const bytes = toBytes(data)
    if (!bytes) return
    this.#heardBack = true
    let frame: Record<string, unknown>
    try {
      const decoded = unpack(bytes, ErrorCode.BAD_FRAME)
      if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) return
      frame = decoded as Record<string, unknown>
    } catch {
      return
    }
    const id = frame.id
    if (typeof id !== 'number') return
    const watch = this.#subscriptions.get(id)
    if (watch) {
      if (frame.event !== undefined) watch.onEvent(frame.event as WatchEvent)
      else if (frame.ended !== undefined) {
        this.#subscriptions.delete(id)
        watch.subscription = undefined
        this.#onWatchError(watch, WeftClientError.fromBody(frame.ended, { op: Op.watch }))
      } else if (frame.ok === true) {
        this.#watchRetries.delete(watch)
        watch.onAck(frame.result as WatchResult)
      }
      else if (frame.ok === false) {
        this.#subscriptions.delete(id)
        watch.subscription = undefined
        this.#onWatchError(watch, WeftClientError.fromBody(frame.error, { op: Op.watch }))
      }
      return
    }
    const pending = this.#pending.get(id)
    if (!pending || frame.ok === undefined) return
    this.#settle(pending)
    if (frame.ok === true) pending.resolve(frame.result)
    else pending.reject(WeftClientError.fromBody(frame.error, { op: pending.op, requestId: pending.requestId }))
  }

  /** The socket is gone (closed, failed to open, timed out): queue everything again, then reconnect or stop. */
  #onLost(closeCode: number, reason: string): void {
    const wasOpen = this.#open
    const sent = [...this.#pending.values()].filter((p) => p.sent)
    this.#socket = undefined
    this.#open = false
    this.#inflight = 0
    for (const pending of this.#pending.values()) pending.sent = false
    this.#requeue([...this.#pending.values()])
    for (const watch of this.#subscriptions.values()) watch.subscription = undefined
    this.#subscriptions.clear()
    if (this.#closed) return

    const code = errorOfClose(closeCode, reason)
    if (code === ErrorCode.UNAUTHORIZED || code === ErrorCode.FORBIDDEN) {
      this.#stop(new WeftClientError(code, reasonText(reason) || `the server refused the connection (${closeCode})`), true)
      return
    }
    if (code === ErrorCode.FRAME_TOO_LARGE) {
      // The server cannot say which frame it refused: the largest sent is the likeliest; the rest go again.
      const largest = sent.reduce<Pending | undefined>((a, p) => (a === undefined || p.bytes.length > a.bytes.length ? p : a), undefined)
      if (largest) {
        this.#settle(largest)
        largest.reject(new WeftClientError(ErrorCode.FRAME_TOO_LARGE, `the server refused a ${largest.bytes.length}-byte frame`, { op: largest.op, requestId: largest.requestId }))
      }
    }
    if (!this.#reconnect) {
      // Without reconnects a lost connection ends the client; CLOSED would read as "you closed it".
      const lostCode = code === undefined || code === ErrorCode.CLOSED ? ErrorCode.UNAVAILABLE : code
      const message = `connection to ${this.url} lost${this.#lastError ? `: ${this.#lastError}` : ''}`
      this.#stop(wasOpen ? new WeftClientError(lostCode, message, { local: true, details: { closeCode, ...(reason && { reason }) } }) : this.#unreachable(), true)
      return
    }
    if (wasOpen && (this.#heardBack || Date.now() - this.#openedAt >= HEALTHY_MS)) this.#attempt = 0
    const delayMs = backoffDelay(this.#attempt, this.#reconnect, this.#random)
    this.#attempt++
    this.#setState('reconnecting', { reason: this.#lastError, delayMs, attempt: this.#attempt })
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined
      this.#connect()
    }, delayMs)
  }

  #whenOpen(timeoutMs: number): Promise<void> {
    if (this.#open) return Promise.resolve()
    if (this.#closed) return Promise.reject(this.#fatal ?? new WeftClientError(ErrorCode.CLOSED, 'client closed', { local: true }))
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
        reject: (err: WeftClientError) => {
          clearTimeout(timer)
          reject(err)
        },
      }
      const timer = setTimeout(() => {
        this.#openWaiters = this.#openWaiters.filter((w) => w !== waiter)
        reject(this.#unreachable(timeoutMs))
      }, timeoutMs)
      this.#openWaiters.push(waiter)
    })
  }

  #unreachable(timeoutMs?: number): WeftClientError {
    const within = timeoutMs === undefined ? '' : ` within ${timeoutMs} ms`
    return new WeftClientError(ErrorCode.UNAVAILABLE, `cannot connect to ${this.url}${within}${this.#lastError ? `: ${this.#lastError}` : ''}`, {
      local: true,
      details: { url: this.url },
    })
  }

  /** Stops for good: every request and watch ends, no more reconnects. */
  #stop(error: WeftClientError, fatal: boolean): void {
    if (this.#closed) return
    this.#closed = true
    if (fatal) this.#fatal = error
    clearTimeout(this.#reconnectTimer)
    for (const timer of this.#resubscribeTimers.values()) clearTimeout(timer)
    this.#resubscribeTimers.clear()
    for (const waiter of this.#openWaiters.splice(0)) waiter.reject(error)
    for (const pending of [...this.#pending.values()]) {
      this.#settle(pending)
      pending.reject(new WeftClientError(error.code, error.message, { op: pending.op, requestId: pending.requestId, local: error.local, details: error.details }))
    }
    this.#requeue([])
    for (const watch of [...this.#watches]) {
      if (fatal) watch.fail(new WeftClientError(error.code, error.message, { op: Op.watch, local: error.local, details: error.details }))
      else watch.end()
    }
    const socket = this.#socket
    if (socket && socket.readyState === SocketState.OPEN) socket.close(1000, 'client closed')
    else {
      if (socket?.readyState === SocketState.CONNECTING) socket.close()
      this.#dropSocket()
    }
    this.#setState('closed', fatal ? { reason: error.message } : {})
  }

  #setState(state: ConnectionState, change: Omit<ConnectionChange, 'state'> = {}): void {
    if (state === this.#state && state !== 'reconnecting') return
    this.#state = state
    try {
      this.#options.onConnectionChange?.({ state, ...change })
    } catch {
      // A listener's bug must not break the connection.
    }
  }
}

function detach(socket: SocketLike): void {
  socket.onopen = null
  socket.onmessage = null
  socket.onclose = null
  // `ws` throws an 'error' event nobody listens to: keep a listener.
  socket.onerror = () => {}
}

function withToken(url: string, token: string | undefined): string {
  if (token === undefined) return url
  const parsed = new URL(url)
  parsed.searchParams.set('token', token)
  return parsed.toString()
}

function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (Array.isArray(data) && data.every((part) => part instanceof Uint8Array)) {
    const parts = data as Uint8Array[]
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
    let offset = 0
    for (const part of parts) {
      out.set(part, offset)
      offset += part.length
    }
    return out
  }
  return undefined
}

function reasonText(reason: string): string {
  return reason.replace(/^[A-Z_]+:\s*/, '')
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message
  if (typeof err === 'object' && err !== null) {
    const e = err as { message?: unknown; error?: { message?: unknown } }
    if (typeof e.error?.message === 'string') return e.error.message
    if (typeof e.message === 'string') return e.message
  }
  return 'connection error'
}

function compact<T extends object>(value: T): T {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = v
  return out as T
}
