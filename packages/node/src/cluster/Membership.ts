// Who is in the cluster, as this node sees it. Every node gossips a heartbeat
// each interval; a member is alive while heartbeats keep coming, suspect after
// `suspectAfter` heartbeats are missed, dead after `deadAfter`, and forgotten
// (gone from the view) after `forgetAfterMs` of silence: a node removed for
// good leaves every view by itself. All nodes apply the same thresholds to the
// same heartbeats, so their views agree within a few heartbeats.
import { type Heartbeat, Topics, pack, parseHeartbeat } from '@weft/protocol'
import type { Logger } from '../Logger.ts'
import type { ClusterTransport, PeerId, TransportEvents } from './ClusterTransport.ts'

export const MemberState = {
  alive: 'alive',
  suspect: 'suspect',
  dead: 'dead',
} as const
export type MemberState = (typeof MemberState)[keyof typeof MemberState]

export interface Member {
  readonly peerId: string
  readonly name: string
  readonly addresses: readonly string[]
  /** The node's client API (ws://host:port/v1/ws). */
  readonly api: string
  readonly state: MemberState
  /** Wall-clock ms of the last heartbeat (or contact) from it. */
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

/** What this node says about itself in each heartbeat. */
export interface SelfReport {
  readonly name: string
  readonly api: string
  readonly version: string
  readonly startedAt: number
  keys(): number
  load(): number
  feed(): { epoch: string; seq: number }
}

export interface MembershipOptions {
  readonly transport: ClusterTransport
  readonly self: SelfReport
  readonly logger: Logger
  readonly intervalMs?: number
  readonly suspectAfter?: number
  readonly deadAfter?: number
  /** Silence after which a dead member leaves the view (default 10 minutes). */
  readonly forgetAfterMs?: number
  readonly now?: () => number
}

interface Entry {
  heartbeat: Heartbeat
  lastSeen: number
}

export class Membership {
  private readonly transport: ClusterTransport
  private readonly self: SelfReport
  private readonly logger: Logger
  private readonly intervalMs: number
  private readonly suspectMs: number
  private readonly deadMs: number
  private readonly forgetMs: number
  private readonly now: () => number
  private readonly members = new Map<string, Entry>()
  private readonly states = new Map<string, MemberState>()
  private timer: NodeJS.Timeout | undefined
  private readonly onMessage = (event: TransportEvents['message']) => this.receive(event.topic, event.from, event.data)
  private readonly onConnect = () => void this.beat()

  constructor(options: MembershipOptions) {
    this.transport = options.transport
    this.self = options.self
    this.logger = options.logger
    this.intervalMs = options.intervalMs ?? 1000
    this.suspectMs = this.intervalMs * (options.suspectAfter ?? 3)
    this.deadMs = this.intervalMs * (options.deadAfter ?? 10)
    this.forgetMs = Math.max(this.deadMs, options.forgetAfterMs ?? 10 * 60_000)
    this.now = options.now ?? Date.now
    this.transport.subscribe(Topics.members)
  }

  start(): void {
    this.transport.on('message', this.onMessage)
    // A new connection hears from us at once rather than at the next tick.
    this.transport.on('peer:connect', this.onConnect)
    this.timer = setInterval(() => void this.beat(), this.intervalMs)
    void this.beat()
  }

  stop(): void {
    clearInterval(this.timer)
    this.transport.off('message', this.onMessage)
    this.transport.off('peer:connect', this.onConnect)
  }

  /** Every member this node has heard of, itself first, then by name. */
  view(): Member[] {
    const now = this.now()
    const connected = new Set<string>(this.transport.connectedPeers())
    const selfHeartbeat = this.heartbeat()
    const members: Member[] = [toMember(selfHeartbeat, now, MemberState.alive, true, true)]
    for (const [peer, entry] of this.members) {
      if (peer === this.transport.peerId) continue
      members.push(toMember(entry.heartbeat, entry.lastSeen, this.stateOf(entry, now), connected.has(peer), false, now))
    }
    return members.sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name) || a.peerId.localeCompare(b.peerId))
  }

  /** Peers currently alive (not us). */
  alivePeers(): string[] {
    const now = this.now()
    return [...this.members].filter(([peer, entry]) => peer !== this.transport.peerId && this.stateOf(entry, now) === MemberState.alive).map(([peer]) => peer)
  }

  /** Forgets a member (an operator removed the node for good). */
  remove(peerId: string): boolean {
    this.states.delete(peerId)
    return this.members.delete(peerId)
  }

  private stateOf(entry: Entry, now: number): MemberState {
    const silent = now - entry.lastSeen
    return silent <= this.suspectMs ? MemberState.alive : silent <= this.deadMs ? MemberState.suspect : MemberState.dead
  }

  private heartbeat(): Heartbeat {
    return {
      t: 'hb',
      peer: this.transport.peerId,
      name: this.self.name,
      addresses: this.transport.addresses().slice(0, 32),
      api: this.self.api,
      version: this.self.version,
      startedAt: this.self.startedAt,
      keys: this.self.keys(),
      load: this.self.load(),
      feed: this.self.feed(),
      sentAt: this.now(),
    }
  }

  private async beat(): Promise<void> {
    this.logTransitions()
    try {
      await this.transport.publish(Topics.members, pack(this.heartbeat()))
    } catch (err) {
      this.logger.debug({ err: String(err) }, 'heartbeat not sent')
    }
  }

  private receive(topic: string, from: PeerId, data: Uint8Array): void {
    if (topic !== Topics.members) return
    let heartbeat: Heartbeat
    try {
      heartbeat = parseHeartbeat(data)
    } catch (err) {
      this.logger.warn({ peer: from, err: String(err) }, 'ignored malformed heartbeat')
      return
    }
    // `from` is the signed origin of the message: a node speaks only for itself.
    if (heartbeat.peer !== from) {
      this.logger.warn({ peer: from, claimed: heartbeat.peer }, 'ignored heartbeat for another peer')
      return
    }
    const known = this.members.get(heartbeat.peer)
    if (known && known.heartbeat.sentAt > heartbeat.sentAt && known.heartbeat.startedAt === heartbeat.startedAt) return
    this.members.set(heartbeat.peer, { heartbeat, lastSeen: this.now() })
    // A member we hear of only through others is one we should also reach directly.
    this.transport.learnPeer(from, heartbeat.addresses)
  }

  private logTransitions(): void {
    const now = this.now()
    for (const [peer, entry] of this.members) {
      if (now - entry.lastSeen > this.forgetMs) {
        this.members.delete(peer)
        this.states.delete(peer)
        this.logger.info({ peer, name: entry.heartbeat.name, silentMs: now - entry.lastSeen }, 'member forgotten')
        continue
      }
      const state = this.stateOf(entry, now)
      if (this.states.get(peer) !== state) {
        this.states.set(peer, state)
        this.logger.info({ peer, name: entry.heartbeat.name, state }, 'member state changed')
      }
    }
  }
}

function toMember(heartbeat: Heartbeat, lastSeen: number, state: MemberState, connected: boolean, self: boolean, now = lastSeen): Member {
  return {
    peerId: heartbeat.peer,
    name: heartbeat.name,
    addresses: heartbeat.addresses,
    api: heartbeat.api,
    state,
    lastSeen,
    version: heartbeat.version,
    startedAt: heartbeat.startedAt,
    uptimeMs: Math.max(0, (self ? now : heartbeat.sentAt) - heartbeat.startedAt),
    keys: heartbeat.keys,
    load: heartbeat.load,
    feedSeq: heartbeat.feed.seq,
    connected,
    self,
  }
}
