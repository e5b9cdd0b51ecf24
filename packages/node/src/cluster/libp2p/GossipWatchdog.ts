// Works around a gossipsub 14.1.2 bug: when a peer reconnects before its old
// connection is cleaned up (a restart, a new container IP), gossipsub keeps
// writing to the old connection's stream and gossip with that peer stops for
// good while the connection looks healthy. The cure is to hang up the peer, so
// gossipsub forgets it, and let KeepConnected dial a fresh connection. Signs:
//  - one of its connections closed while another, open at that moment, stayed
//    open (a connection opened after the close does not count: that is the
//    peer redialling, e.g. after our own hang-up, which otherwise repeats
//    every tick for as long as the peer keeps redialling);
//  - it speaks gossipsub but has not been a subscriber of any of our topics
//    for graceMs while connected (it never got our subscriptions, or we its).
import type { Logger } from '../../Logger.ts'

export interface GossipWatchdogDeps {
  /** Ids of the peer's connections that are open (not closing). */
  openConnections(peerId: string): readonly string[]
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
  /** Peers that lost a connection: when, and which of their connections were open then. */
  private readonly closed = new Map<string, { at: number; openThen: Set<string> }>()

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
    const openThen = this.deps.openConnections(peerId)
    if (openThen.length === 0) return
    const known = this.closed.get(peerId)
    if (known) for (const id of openThen) known.openThen.add(id)
    else this.closed.set(peerId, { at: this.deps.now(), openThen: new Set(openThen) })
  }

  tick(): void {
    const now = this.deps.now()
    for (const [peerId, { at, openThen }] of this.closed) {
      if (now - at < SETTLE_MS) continue
      this.closed.delete(peerId)
      if (this.deps.openConnections(peerId).some((id) => openThen.has(id))) this.hangUp(peerId, 'a connection closed while another stayed open')
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
