// The seam between weft's cluster logic and the network. Replication, anti-entropy
// and membership speak only this; the libp2p implementation lives in ./libp2p/
// (the only folder that imports libp2p), and MemoryTransport stands in for tests.

export type PeerId = string & { readonly __peerId: true }

export interface TransportEvents {
  /** A gossip message on a subscribed topic (never our own). */
  message: { topic: string; from: PeerId; data: Uint8Array }
  'peer:connect': { peer: PeerId }
  'peer:disconnect': { peer: PeerId }
}

export type TransportListener<K extends keyof TransportEvents> = (event: TransportEvents[K]) => void

/** Serves one request/response protocol: one request in, one response out. */
export type RequestHandler = (from: PeerId, request: Uint8Array) => Promise<Uint8Array>

export interface ConnectionInfo {
  readonly peer: PeerId
  readonly address: string
  readonly direction: 'inbound' | 'outbound'
  readonly openedAt: number
  readonly rttMs?: number
}

export interface ClusterTransport {
  readonly peerId: PeerId
  start(): Promise<void>
  stop(): Promise<void>
  /** Addresses peers can dial us on, each ending in /p2p/<peerId>. */
  addresses(): string[]
  connectedPeers(): PeerId[]
  connections(): ConnectionInfo[]
  /** Subscribe before start, or any time after. */
  subscribe(topic: string): void
  /**
   * Publishes to every subscribed peer. Resolves once handed to the network;
   * never waits on a slow peer. Rejects only on a local error (e.g. too large).
   */
  publish(topic: string, data: Uint8Array): Promise<void>
  /**
   * A member learnt of elsewhere (its heartbeat, relayed by others): keep
   * connected to it as to a configured peer, so the cluster stays a mesh when
   * the peers each node was told of go away. `addresses` come from the wire.
   */
  learnPeer(peer: PeerId, addresses: readonly string[]): void
  handle(protocol: string, handler: RequestHandler): void
  /** One request/response exchange; rejects on timeout, refusal or a dropped stream. */
  request(peer: PeerId, protocol: string, data: Uint8Array, options?: { timeoutMs?: number }): Promise<Uint8Array>
  on<K extends keyof TransportEvents>(event: K, listener: TransportListener<K>): void
  off<K extends keyof TransportEvents>(event: K, listener: TransportListener<K>): void
}
