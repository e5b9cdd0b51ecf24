// Gossips every revision committed here, in batches, and applies what peers gossip.
// Gossip may lose messages (a full buffer, a partition): AntiEntropy repairs.
import { type Revision } from '@weft/core'
import { Topics, pack, parseRevisionBatch, type WireRevision } from '@weft/protocol'
import type { Logger } from '../Logger.ts'
import type { VersionedStore } from '../store/VersionedStore.ts'
import type { ClusterTransport, PeerId, TransportEvents } from './ClusterTransport.ts'

export interface ReplicatorOptions {
  readonly store: VersionedStore
  readonly transport: ClusterTransport
  readonly logger: Logger
  /** Longest a committed revision waits before it is gossiped. */
  readonly flushDelayMs?: number
  /** A batch is sent as soon as it holds this many delta bytes. */
  readonly batchBytes?: number
  /** Revisions waiting to be gossiped; past it the oldest are dropped (anti-entropy carries them). */
  readonly maxQueued?: number
  /** Test hook: share of inbound gossip batches ignored, as if lost. */
  readonly dropInboundRatio?: number
}

export interface ReplicatorStats {
  published: number
  publishedBatches: number
  dropped: number
  received: number
  applied: number
  rejected: number
}

export function toWire(revision: Revision): WireRevision {
  return {
    id: revision.id,
    key: revision.key,
    fork: revision.fork,
    kind: revision.kind,
    delta: revision.delta,
    ...(revision.from && { from: revision.from }),
    ...(revision.author !== undefined && { author: revision.author }),
    ...(revision.message !== undefined && { message: revision.message }),
    ...(revision.requestId !== undefined && { requestId: revision.requestId }),
  }
}

export class Replicator {
  readonly stats: ReplicatorStats = { published: 0, publishedBatches: 0, dropped: 0, received: 0, applied: 0, rejected: 0 }
  private readonly store: VersionedStore
  private readonly transport: ClusterTransport
  private readonly logger: Logger
  private readonly flushDelayMs: number
  private readonly batchBytes: number
  private readonly maxQueued: number
  private readonly dropInboundRatio: number
  private queue: WireRevision[] = []
  private queuedBytes = 0
  private timer: NodeJS.Timeout | undefined
  private sending: Promise<void> = Promise.resolve()
  private unsubscribe: (() => void) | undefined
  private readonly onMessage = (event: TransportEvents['message']) => this.receive(event.topic, event.from, event.data)

  constructor(options: ReplicatorOptions) {
    this.store = options.store
    this.transport = options.transport
    this.logger = options.logger
    this.flushDelayMs = options.flushDelayMs ?? 2
    this.batchBytes = options.batchBytes ?? 256 * 1024
    this.maxQueued = options.maxQueued ?? 50_000
    this.dropInboundRatio = options.dropInboundRatio ?? 0
    this.transport.subscribe(Topics.revisions)
  }

  start(): void {
    this.transport.on('message', this.onMessage)
    this.unsubscribe = this.store.subscribe((event) => {
      if (event.local) this.enqueue(toWire(event.revision))
    })
  }

  async stop(): Promise<void> {
    this.unsubscribe?.()
    this.transport.off('message', this.onMessage)
    clearTimeout(this.timer)
    this.flush()
    await this.sending
  }

  private enqueue(revision: WireRevision): void {
    this.queue.push(revision)
    this.queuedBytes += revision.delta.byteLength
    if (this.queue.length > this.maxQueued) {
      const dropped = this.queue.shift()!
      this.queuedBytes -= dropped.delta.byteLength
      this.stats.dropped++
    }
    if (this.queuedBytes >= this.batchBytes) this.flush()
    else this.timer ??= setTimeout(() => this.flush(), this.flushDelayMs)
  }

  /** Sends what is queued; batches go out one after another, never in parallel. */
  private flush(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.queue.length === 0) return
    const batch = this.takeBatch()
    this.sending = this.sending.then(async () => {
      try {
        await this.transport.publish(Topics.revisions, pack({ t: 'revs', revisions: batch }))
        this.stats.published += batch.length
        this.stats.publishedBatches++
      } catch (err) {
        this.stats.dropped += batch.length
        this.logger.warn({ err: String(err), revisions: batch.length }, 'gossip publish failed; anti-entropy will repair')
      }
    })
    if (this.queue.length > 0) this.timer = setTimeout(() => this.flush(), 0)
  }

  private takeBatch(): WireRevision[] {
    let bytes = 0
    let count = 0
    while (count < this.queue.length && (count === 0 || bytes + this.queue[count]!.delta.byteLength <= this.batchBytes)) {
      bytes += this.queue[count]!.delta.byteLength
      count++
    }
    this.queuedBytes -= bytes
    return this.queue.splice(0, count)
  }

  private receive(topic: string, from: PeerId, data: Uint8Array): void {
    if (topic !== Topics.revisions) return
    if (this.dropInboundRatio > 0 && Math.random() < this.dropInboundRatio) return
    let revisions: readonly unknown[]
    try {
      revisions = parseRevisionBatch(data).revisions
    } catch (err) {
      this.stats.rejected++
      this.logger.warn({ peer: from, err: String(err) }, 'ignored malformed gossip')
      return
    }
    this.stats.received += revisions.length
    this.store.applyRemote(revisions).then(
      (result) => {
        this.stats.applied += result.applied.length
        if (result.rejected.length > 0) {
          this.stats.rejected += result.rejected.length
          this.logger.warn({ peer: from, rejected: result.rejected.slice(0, 5) }, 'rejected revisions from peer')
        }
      },
      (err: unknown) => this.logger.error({ peer: from, err: String(err) }, 'applying gossip failed'),
    )
  }
}
