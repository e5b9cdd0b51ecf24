// Works around a gossipsub 14.1.2 bug: when a peer reconnects before its old
// connection is cleaned up (a restart, a new container IP), gossipsub keeps
// writing to the old connection's stream and gossip with that peer stops for
// good while the connection looks healthy. The cure is to hang up the peer, so
// gossipsub forgets it, and let KeepConnected dial a fresh connection. Signs:
//  - one of its connections closed while another stayed open;
//  - it speaks gossipsub but has not been a subscriber of any of our topics
//    for graceMs while connected (it never got our subscriptions, or we its).
import type { Logger } from '../../Logger.ts'

export interface GossipWatchdogDeps {
  openConnections(peerId: string): number
  /** Topics we subscribe to; with none there is nothing to check. */
  subscribedTopics(): readonly string[]
  /** Peers that told us they subscribe to the topic. */
  subscribers(topic: string): readonly string[]
  /** True once identify showed the peer runs gossipsub. */
  speaksGossip(peerId: string): boolean
  hangUp(peerId: string, reason: string): void
  now(): number
  readonly logger: Logger
}

const SETTLE_MS = 300

export class GossipWatchdog {
  private readonly deps: GossipWatchdogDeps
  private readonly graceMs: number
  /** Connected peers and since when we have been waiting for them to be subscribers. */
  private readonly waitingSince = new Map<string, number>()
  /** Peers that lost a connection, and when. */
  private readonly closedAt = new Map<string, number>()

  constructor(deps: GossipWatchdogDeps, graceMs = 10_000) {
    this.deps = deps
    this.graceMs = graceMs
  }

  peerConnected(peerId: string): void {
    this.waitingSince.set(peerId, this.deps.now())
  }

  peerDisconnected(peerId: string): void {
    this.waitingSince.delete(peerId)
  }

  /**
   * A connection to the peer closed. Judged a moment later, at a tick: when a
   * peer shuts down, all its connections close within milliseconds.
   */
  connectionClosed(peerId: string): void {
    if (!this.closedAt.has(peerId)) this.closedAt.set(peerId, this.deps.now())
  }

  tick(): void {
    const now = this.deps.now()
    for (const [peerId, closedAt] of this.closedAt) {
      if (now - closedAt < SETTLE_MS) continue
      this.closedAt.delete(peerId)
      if (this.deps.openConnections(peerId) > 0) this.hangUp(peerId, 'a connection closed while another stayed open')
    }
    const topics = this.deps.subscribedTopics()
    if (topics.length === 0) return
    const subscribers = new Set(topics.flatMap((topic) => this.deps.subscribers(topic)))
    for (const [peerId, since] of this.waitingSince) {
      if (subscribers.has(peerId)) {
        this.waitingSince.set(peerId, now)
        continue
      }
      if (now - since < this.graceMs || !this.deps.speaksGossip(peerId)) continue
      this.hangUp(peerId, `not a subscriber of our topics for ${Math.round((now - since) / 1000)} s`)
    }
  }

  private hangUp(peerId: string, reason: string): void {
    // Wait a full grace period again before the next verdict on this peer.
    if (this.waitingSince.has(peerId)) this.waitingSince.set(peerId, this.deps.now())
    this.deps.logger.warn({ peer: peerId, reason }, 'hanging up peer to reset its gossip streams')
    this.deps.hangUp(peerId, reason)
  }
}
