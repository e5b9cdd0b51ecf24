// An in-process network for tests: every transport on one MemoryNetwork is
// connected to every other unless a link is cut. Delivery is asynchronous and
// can drop messages, so tests exercise the same paths a real network does.
import type { ClusterTransport, ConnectionInfo, PeerId, RequestHandler, TransportEvents, TransportListener } from './ClusterTransport.ts'

export class MemoryNetwork {
  readonly transports = new Map<PeerId, MemoryTransport>()
  private readonly cut = new Set<string>()
  /** Share of gossip messages lost in flight (0..1), with an injectable random source. */
  dropRatio = 0
  random: () => number = Math.random

  transport(peerId: string): MemoryTransport {
    return new MemoryTransport(this, peerId as PeerId)
  }

  linked(a: PeerId, b: PeerId): boolean {
    const x = this.transports.get(a)
    const y = this.transports.get(b)
    return a !== b && !!x?.running && !!y?.running && !this.cut.has(linkId(a, b))
  }

  /** Cuts the links between the two groups (both directions). */
  partition(left: readonly PeerId[], right: readonly PeerId[]): void {
    for (const a of left) for (const b of right) {
      const wasLinked = this.linked(a, b)
      this.cut.add(linkId(a, b))
      if (wasLinked) this.announce(a, b, 'peer:disconnect')
    }
  }

  heal(): void {
    const cut = [...this.cut]
    this.cut.clear()
    for (const link of cut) {
      const [a, b] = link.split('|') as [PeerId, PeerId]
      if (this.linked(a, b)) this.announce(a, b, 'peer:connect')
    }
  }

  announce(a: PeerId, b: PeerId, event: 'peer:connect' | 'peer:disconnect'): void {
    this.transports.get(a)?.emit(event, { peer: b })
    this.transports.get(b)?.emit(event, { peer: a })
  }
}

function linkId(a: PeerId, b: PeerId): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`
}

export class MemoryTransport implements ClusterTransport {
  readonly peerId: PeerId
  running = false
  private readonly network: MemoryNetwork
  private readonly topics = new Set<string>()
  private readonly handlers = new Map<string, RequestHandler>()
  private readonly listeners = new Map<string, Set<(event: never) => void>>()

  constructor(network: MemoryNetwork, peerId: PeerId) {
    this.network = network
    this.peerId = peerId
  }

  async start(): Promise<void> {
    this.running = true
    this.network.transports.set(this.peerId, this)
    for (const peer of this.connectedPeers()) this.network.announce(this.peerId, peer, 'peer:connect')
  }

  async stop(): Promise<void> {
    const peers = this.connectedPeers()
    for (const peer of peers) this.network.announce(this.peerId, peer, 'peer:disconnect')
    this.running = false
    this.network.transports.delete(this.peerId)
  }

  addresses(): string[] {
    return [`/memory/${this.peerId}`]
  }

  connectedPeers(): PeerId[] {
    return [...this.network.transports.keys()].filter((peer) => this.network.linked(this.peerId, peer))
  }

  connections(): ConnectionInfo[] {
    return this.connectedPeers().map((peer) => ({ peer, address: `/memory/${peer}`, direction: 'outbound', openedAt: 0 }))
  }

  subscribe(topic: string): void {
    this.topics.add(topic)
  }

  async publish(topic: string, data: Uint8Array): Promise<void> {
    for (const peer of this.connectedPeers()) {
      const target = this.network.transports.get(peer)!
      if (!target.topics.has(topic) || this.network.random() < this.network.dropRatio) continue
      const copy = data.slice()
      setTimeout(() => {
        if (this.network.linked(this.peerId, peer)) target.emit('message', { topic, from: this.peerId, data: copy })
      }, 0)
    }
  }

  /** The memory network links every pair unless a test cuts it: nothing to dial. */
  learnPeer(): void {}

  handle(protocol: string, handler: RequestHandler): void {
    this.handlers.set(protocol, handler)
  }

  async request(peer: PeerId, protocol: string, data: Uint8Array): Promise<Uint8Array> {
    if (!this.network.linked(this.peerId, peer)) throw new Error(`not connected to ${peer}`)
    const handler = this.network.transports.get(peer)?.handlers.get(protocol)
    if (!handler) throw new Error(`${peer} does not speak ${protocol}`)
    await new Promise((resolve) => setTimeout(resolve, 0))
    const response = await handler(this.peerId, data.slice())
    if (!this.network.linked(this.peerId, peer)) throw new Error(`connection to ${peer} lost`)
    return response.slice()
  }

  on<K extends keyof TransportEvents>(event: K, listener: TransportListener<K>): void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(listener as (event: never) => void)
  }

  off<K extends keyof TransportEvents>(event: K, listener: TransportListener<K>): void {
    this.listeners.get(event)?.delete(listener as (event: never) => void)
  }

  emit<K extends keyof TransportEvents>(event: K, payload: TransportEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) (listener as TransportListener<K>)(payload)
  }
}
