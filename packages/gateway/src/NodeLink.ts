// The gateway's link to one node: a connection kept open (reconnecting with
// backoff while the link is wanted), requests queued when the node's
// in-flight limit is reached, and more connections when one carries all the
// watches a node allows per connection. Requests all go over one connection,
// in order, so a client's pipelined requests reach the node in the order sent.
import { ErrorCode, WeftError } from '@weft/core'
import { type BackoffOptions, fullJitter } from './backoff.ts'
import { type Logger, silentLogger } from './Logger.ts'
import { NodeConnection, type NodeConnectionOptions } from './NodeConnection.ts'
import type { NodeHandle, NodeWatch, NodeWatchEvents } from './NodeDirectory.ts'

export interface NodeLinkOptions {
  readonly connection?: NodeConnectionOptions
  readonly reconnect?: BackoffOptions
  /** Requests sent on the connection at once; more wait here (the node's limit is 256). */
  readonly maxInflight?: number
  /** Watches per connection (the node's limit is 64). */
  readonly maxWatchesPerConnection?: number
  /** Connections for watches beyond the first one's share. */
  readonly maxWatchConnections?: number
  readonly logger?: Logger
  /** Opens a connection (tests replace it). */
  readonly connect?: (url: string, options: NodeConnectionOptions) => Promise<NodeConnection>
}

interface Queued {
  readonly run: () => void
  readonly fail: (error: WeftError) => void
  readonly timer: NodeJS.Timeout
}

const DEFAULT_RECONNECT: BackoffOptions = { baseMs: 200, maxMs: 5000 }

export class NodeLink implements NodeHandle {
  readonly url: string
  /** Seeds are dialled for ever; other links only while the cluster lists their node alive. */
  readonly seed: boolean
  #peerId: string | undefined
  readonly #options: NodeLinkOptions
  readonly #logger: Logger
  readonly #maxInflight: number
  readonly #maxWatches: number
  readonly #onChange: () => void
  #main: NodeConnection | undefined
  readonly #watchConnections = new Set<NodeConnection>()
  readonly #queue: Queued[] = []
  #failures = 0
  #timer: NodeJS.Timeout | undefined
  #connecting = false
  #opening: Promise<void> | undefined
  #retired = false

  constructor(url: string, options: NodeLinkOptions & { seed?: boolean; peerId?: string; onChange?: () => void } = {}) {
    this.url = url
    this.seed = options.seed ?? false
    this.#peerId = options.peerId
    this.#options = options
    this.#logger = options.logger ?? silentLogger
    this.#maxInflight = options.maxInflight ?? 240
    this.#maxWatches = options.maxWatchesPerConnection ?? 64
    this.#onChange = options.onChange ?? (() => {})
  }

  /** Known once connected (or from the membership list). */
  get peerId(): string {
    return this.#peerId ?? ''
  }

  get knownPeerId(): string | undefined {
    return this.#peerId
  }

  get connected(): boolean {
    return this.#main?.isOpen === true && this.#peerId !== undefined
  }

  get retired(): boolean {
    return this.#retired
  }

  /** Failed connection attempts since the last success. */
  get failures(): number {
    return this.#failures
  }

  start(): void {
    void this.#connect()
  }

  /** Stops dialling and closes every connection; queued and pending requests fail. */
  retire(): void {
    if (this.#retired) return
    this.#retired = true
    clearTimeout(this.#timer)
    this.#failQueue(new WeftError(ErrorCode.UNAVAILABLE, `node ${this.url} left the pool`))
    this.#main?.close()
    for (const c of this.#watchConnections) c.close()
  }

  request(op: string, params: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    const conn = this.#main
    if (!conn?.isOpen) return Promise.reject(new WeftError(ErrorCode.UNAVAILABLE, `no connection to ${this.url}`))
    if (conn.inflight < this.#maxInflight && this.#queue.length === 0) return this.#run(conn, op, params, timeoutMs)
    const deadline = Date.now() + timeoutMs
    return new Promise((resolve, reject) => {
      const entry: Queued = {
        run: () => {
          const current = this.#main
          if (!current?.isOpen) return reject(new WeftError(ErrorCode.UNAVAILABLE, `no connection to ${this.url}`))
          this.#run(current, op, params, Math.max(1, deadline - Date.now())).then(resolve, reject)
        },
        fail: reject,
        timer: setTimeout(() => {
          const at = this.#queue.indexOf(entry)
          if (at >= 0) this.#queue.splice(at, 1)
          reject(new WeftError(ErrorCode.TIMEOUT, `${op}: ${this.url} was busy for ${timeoutMs} ms`))
        }, timeoutMs),
      }
      this.#queue.push(entry)
      this.#drain()
    })
  }

  async watch(params: Record<string, unknown>, events: NodeWatchEvents, timeoutMs: number): Promise<NodeWatch> {
    let conn = this.#connectionWithRoom()
    while (!conn) {
      await this.#openWatchConnection(timeoutMs)
      conn = this.#connectionWithRoom()
    }
    // openWatch counts the watch on its connection at once, before any await.
    const opening = conn.openWatch(params, events, timeoutMs)
    const chosen = conn
    const { id, cursor } = await opening
    return {
      cursor,
      close: () => {
        chosen.closeWatch(id)
        this.#releaseWatchConnection(chosen)
      },
    }
  }

  async #run(conn: NodeConnection, op: string, params: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    try {
      return await conn.request(op, params, timeoutMs)
    } finally {
      this.#drain()
    }
  }

  #drain(): void {
    const conn = this.#main
    while (this.#queue.length > 0 && conn?.isOpen && conn.inflight < this.#maxInflight) {
      const entry = this.#queue.shift()!
      clearTimeout(entry.timer)
      entry.run()
    }
  }

  #failQueue(error: WeftError): void {
    for (const entry of this.#queue.splice(0)) {
      clearTimeout(entry.timer)
      entry.fail(error)
    }
  }

  /** A connection that can take one more watch now, if there is one. */
  #connectionWithRoom(): NodeConnection | undefined {
    const main = this.#main
    if (!main?.isOpen) throw new WeftError(ErrorCode.UNAVAILABLE, `no connection to ${this.url}`)
    if (main.watchCount < this.#maxWatches) return main
    for (const c of this.#watchConnections) if (c.isOpen && c.watchCount < this.#maxWatches) return c
    return undefined
  }

  /** One more connection for watches (callers that find none with room share one opening). */
  #openWatchConnection(timeoutMs: number): Promise<void> {
    if (this.#watchConnections.size >= (this.#options.maxWatchConnections ?? 64)) {
      return Promise.reject(new WeftError(ErrorCode.TOO_MANY_REQUESTS, `the gateway holds too many watches on ${this.url}`))
    }
    this.#opening ??= this.#open(timeoutMs).then(
      (conn) => {
        this.#opening = undefined
        if (this.#retired) {
          conn.close()
          throw new WeftError(ErrorCode.UNAVAILABLE, `node ${this.url} left the pool`)
        }
        this.#watchConnections.add(conn)
        void conn.closed.then(() => this.#watchConnections.delete(conn))
      },
      (err: unknown) => {
        this.#opening = undefined
        throw err
      },
    )
    return this.#opening
  }

  #releaseWatchConnection(conn: NodeConnection): void {
    if (conn !== this.#main && conn.watchCount === 0 && this.#watchConnections.delete(conn)) conn.close()
  }

  #open(timeoutMs?: number): Promise<NodeConnection> {
    const options = { ...this.#options.connection, ...(timeoutMs !== undefined && { connectTimeoutMs: timeoutMs }), logger: this.#logger }
    return (this.#options.connect ?? NodeConnection.connect)(this.url, options)
  }

  async #connect(): Promise<void> {
    if (this.#retired || this.#connecting) return
    this.#connecting = true
    let conn: NodeConnection | undefined
    try {
      conn = await this.#open()
      const pong = (await conn.request('ping', {}, this.#options.connection?.connectTimeoutMs ?? 5000)) as { node?: unknown }
      if (typeof pong?.node !== 'string') throw new WeftError(ErrorCode.INTERNAL, 'ping answered without a node id')
      if (this.#retired) {
        conn.close()
        return
      }
      if (this.#peerId !== undefined && this.#peerId !== pong.node) {
        this.#logger.warn({ url: this.url, was: this.#peerId, now: pong.node }, 'another node answers at this address')
      }
      this.#peerId = pong.node
      this.#main = conn
      if (this.#failures > 0) this.#logger.info({ url: this.url, peerId: pong.node, failures: this.#failures }, 'node reconnected')
      else this.#logger.info({ url: this.url, peerId: pong.node }, 'node connected')
      this.#failures = 0
      void conn.closed.then(() => this.#onClosed(conn!))
      this.#onChange()
      this.#drain()
    } catch (err) {
      conn?.terminate()
      this.#failures++
      if (this.#failures === 1 || this.#failures % 10 === 0) this.#logger.warn({ url: this.url, failures: this.#failures, err: String(err) }, 'cannot reach node')
      this.#schedule()
    } finally {
      this.#connecting = false
    }
  }

  #onClosed(conn: NodeConnection): void {
    if (this.#main !== conn) return
    this.#main = undefined
    this.#failQueue(new WeftError(ErrorCode.UNAVAILABLE, `connection to ${this.url} closed`))
    if (!this.#retired) this.#logger.warn({ url: this.url, peerId: this.#peerId }, 'lost connection to node')
    this.#onChange()
    this.#failures++
    this.#schedule()
  }

  #schedule(): void {
    if (this.#retired) return
    clearTimeout(this.#timer)
    const reconnect = this.#options.reconnect ?? DEFAULT_RECONNECT
    // At least a base wait: a node that accepts then drops at once is not hammered.
    const wait = reconnect.baseMs / 2 + fullJitter(this.#failures, reconnect)
    this.#timer = setTimeout(() => void this.#connect(), wait)
    this.#timer.unref()
  }
}
