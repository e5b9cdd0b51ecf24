// ClusterTransport over libp2p 2.x: TCP + noise + yamux inside a private
// network (pnet swarm key), gossipsub 14 for gossip, one libp2p stream per
// request/response. This folder is the only place in weft that imports libp2p.
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from 'it-length-prefixed-stream'
import { createLibp2p } from 'libp2p'
import type { GossipsubEvents } from '@chainsafe/libp2p-gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Connection, Libp2p, PrivateKey, PubSub, Stream } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import { silentLogger, type Logger } from '../../Logger.ts'
import type { ClusterTransport, ConnectionInfo, PeerId, RequestHandler, TransportEvents, TransportListener } from '../ClusterTransport.ts'
import { GossipWatchdog } from './GossipWatchdog.ts'
import { peerIdOf } from './identity.ts'
import { KeepConnected } from './KeepConnected.ts'
import { parsePeerAddress, type PeerAddress } from './peerAddress.ts'
import { parseSwarmKey } from './swarmKey.ts'

const isLoopback = (address: string): boolean => address.startsWith('/ip4/127.') || address.startsWith('/ip6/::1/')

/** Learnt peers whose addresses are kept; beyond this, strangers' heartbeats are ignored. */
const MAX_LEARNT_PEERS = 256

export interface Libp2pTransportOptions {
  /** The node's persisted identity (see loadOrCreateIdentity). */
  readonly privateKey: PrivateKey
  /** Multiaddrs to listen on, e.g. /ip4/0.0.0.0/tcp/7400. */
  readonly listen: readonly string[]
  /** Peers to stay connected to: multiaddrs (with or without /p2p/<id>, /dns4/ too) or plain host:port. */
  readonly peers?: readonly string[]
  /** The private network key file's bytes (see generateSwarmKey / readSwarmKey). */
  readonly swarmKey: Uint8Array
  /** The only gossip topics this node accepts or publishes. */
  readonly topics: readonly string[]
  readonly logger?: Logger
  /** A human name for logs and the identify agent string. */
  readonly name?: string
  /** Largest gossip message payload (default 1 MiB). */
  readonly maxMessageBytes?: number
  /** Largest request or response payload (default 16 MiB). */
  readonly maxRequestBytes?: number
  /** Default timeout of request() (default 10 s). */
  readonly requestTimeoutMs?: number
  /** How long a served request may take, reading included (default 30 s). */
  readonly handlerTimeoutMs?: number
  /** Concurrent inbound streams per connection and protocol (default 64). */
  readonly maxInboundStreams?: number
  /** Watchdog: hang up a connected peer that has not subscribed to our topics for this long (default 10 s). */
  readonly subscriberGraceMs?: number
  /** The gossipsub 14.1.2 watchdog; only tests turn it off. */
  readonly watchdog?: boolean
  readonly now?: () => number
}

type Services = { pubsub: PubSub<GossipsubEvents>; identify: Identify; ping: Ping }
type Node = Libp2p<Services>

/** Error of a request/response exchange; `code` tells timeouts from refusals and remote failures. */
export class TransportRequestError extends Error {
  readonly code: 'timeout' | 'remote-error' | 'too-large' | 'failed'
  constructor(code: TransportRequestError['code'], message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'TransportRequestError'
    this.code = code
  }
}

const TICK_MS = 1_000
const GOSSIP_FRAME_MARGIN = 64 * 1024
/**
 * A cheap id for gossipsub's duplicate check: origin + sequence number, as
 * its StrictSign message ids are. Without one, gossipsub checks the signature
 * of every copy (each message reaches a node once per mesh neighbour) before
 * it finds out the message is a duplicate.
 */
let unnamedMessages = 0
function fastMessageId(message: { from?: Uint8Array; seqno?: Uint8Array }): string {
  const { from, seqno } = message
  // Unsigned messages fail validation anyway: never let them share an id.
  if (!from || !seqno) return `unnamed:${unnamedMessages++}`
  return Buffer.from(from.buffer, from.byteOffset, from.byteLength).toString('base64') + ':' + Buffer.from(seqno.buffer, seqno.byteOffset, seqno.byteLength).toString('base64')
}

const RESPONSE_OK = 0
const RESPONSE_ERROR = 1
const MAX_ERROR_TEXT = 1_000
/** Errors gossipsub throws when nobody listens yet: not an error for us, anti-entropy repairs. */
const NO_PEERS = /NoPeersSubscribedToTopic|InsufficientPeers/
const SELF_DIAL = /Can not dial self/

export class Libp2pTransport implements ClusterTransport {
  readonly peerId: PeerId
  private readonly options: Libp2pTransportOptions
  private readonly logger: Logger
  private readonly now: () => number
  private readonly swarmKey: Uint8Array
  private readonly peerAddresses: PeerAddress[]
  private readonly allowedTopics: Set<string>
  private readonly maxMessageBytes: number
  private readonly maxRequestBytes: number
  private readonly subscribed = new Set<string>()
  private readonly handlers = new Map<string, RequestHandler>()
  private readonly listeners = new Map<keyof TransportEvents, Set<(event: never) => void>>()
  /** Peers we announced peer:connect for, so connect/disconnect fire once per peer. */
  private readonly connected = new Set<string>()
  private readonly gossipPeers = new Set<string>()
  private readonly rttByPeer = new Map<string, number>()
  private readonly hangingUp = new Set<string>()
  /** Addresses last put in the peer store for each learnt peer (to skip repeats). */
  private readonly learntAddresses = new Map<string, string>()
  private node: Node | undefined
  private keepConnected: KeepConnected | undefined
  private watchdog: GossipWatchdog | undefined
  private timer: NodeJS.Timeout | undefined
  private stopping = false

  constructor(options: Libp2pTransportOptions) {
    this.options = options
    this.peerId = peerIdOf(options.privateKey)
    this.logger = options.logger ?? silentLogger
    this.now = options.now ?? Date.now
    // Fail at construction, with the reason, rather than deep inside libp2p.
    this.swarmKey = parseSwarmKey(options.swarmKey)
    this.peerAddresses = (options.peers ?? []).map(parsePeerAddress)
    this.allowedTopics = new Set(options.topics)
    this.maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024
    this.maxRequestBytes = options.maxRequestBytes ?? 16 * 1024 * 1024
  }

  async start(): Promise<void> {
    if (this.node) return
    this.stopping = false
    const node = await createLibp2p<Services>({
      privateKey: this.options.privateKey,
      start: false,
      nodeInfo: { userAgent: `weft/${this.options.name ?? this.peerId}` },
      addresses: { listen: [...this.options.listen] },
      transports: [tcp()],
      connectionProtector: preSharedKey({ psk: this.swarmKey }),
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: {
        // The default gives up within ~40 ms; Infinity allocates an array that long and hangs.
        reconnectRetries: 50,
        reconnectRetryInterval: 1_000,
        reconnectBackoffFactor: 1,
        // All peers share one host in tests and behind NAT; pnet already keeps strangers out.
        inboundConnectionThreshold: 50,
      },
      services: {
        identify: identify(),
        ping: ping(),
        pubsub: gossipsub({
          globalSignaturePolicy: 'StrictSign',
          floodPublish: true,
          allowPublishToZeroTopicPeers: true,
          allowedTopics: [...this.allowedTopics],
          fallbackToFloodsub: false,
          doPX: false,
          emitSelf: false,
          fastMsgIdFn: fastMessageId,
          // Outbound queue per peer, in bytes: a slow peer loses messages instead of stalling us.
          maxOutboundBufferSize: Math.max(8 * 1024 * 1024, 8 * this.maxMessageBytes),
          maxInboundDataLength: this.maxMessageBytes + GOSSIP_FRAME_MARGIN,
          ...(this.options.name === undefined ? {} : { debugName: this.options.name }),
        }),
      },
    })
    this.node = node
    node.addEventListener('connection:open', (event) => this.onConnectionOpen(event.detail))
    node.addEventListener('connection:close', (event) => this.onConnectionClose(event.detail))
    node.addEventListener('peer:connect', (event) => this.syncPeer(event.detail.toString()))
    node.addEventListener('peer:disconnect', (event) => this.syncPeer(event.detail.toString()))
    node.addEventListener('peer:identify', (event) => {
      if (event.detail.protocols.some((protocol) => protocol.startsWith('/meshsub/'))) this.gossipPeers.add(event.detail.peerId.toString())
    })
    node.services.pubsub.addEventListener('message', (event) => {
      const message = event.detail
      if (message.type !== 'signed' || message.from.equals(node.peerId)) return
      this.emit('message', { topic: message.topic, from: message.from.toString() as PeerId, data: message.data })
    })
    this.keepConnected = new KeepConnected(this.peerAddresses, {
      selfId: this.peerId,
      isConnected: (peerId) => this.connected.has(peerId),
      dialAddress: async (address, peerId, signal) => {
        if (peerId === undefined) {
          // A peer that dialled us first already told us (identify) that it listens there.
          const known = await this.connectedPeerListeningOn(node, address)
          if (known !== undefined) return known
        }
        const target = multiaddr(peerId === undefined ? address : `${address}/p2p/${peerId}`)
        try {
          const connection = await node.dial(target, { signal })
          return connection.remotePeer.toString()
        } catch (err) {
          // A shared peer list names this node too; libp2p finds out after the handshake.
          if (err instanceof Error && SELF_DIAL.test(err.message)) return this.peerId
          throw err
        }
      },
      dialPeer: async (peerId, signal) => {
        await node.dial(peerIdFromString(peerId), { signal })
      },
      now: this.now,
      logger: this.logger,
    })
    this.watchdog = this.options.watchdog === false ? undefined : new GossipWatchdog({
      openConnections: (peerId) => this.openConnections(peerId).map((connection) => connection.id),
      subscribedTopics: () => [...this.subscribed],
      subscribers: (topic) => node.services.pubsub.getSubscribers(topic).map(String),
      speaksGossip: (peerId) => this.gossipPeers.has(peerId),
      hangUp: (peerId) => this.hangUp(peerId),
      now: this.now,
      logger: this.logger,
    }, this.options.subscriberGraceMs)
    try {
      for (const protocol of this.handlers.keys()) await this.register(node, protocol)
      await node.start()
      for (const topic of this.subscribed) node.services.pubsub.subscribe(topic)
    } catch (err) {
      this.node = undefined
      this.keepConnected = undefined
      this.watchdog = undefined
      await Promise.resolve(node.stop()).catch(() => {})
      throw err
    }
    this.timer = setInterval(() => this.tick(), TICK_MS)
    this.timer.unref()
    this.logger.info({ peer: this.peerId, addresses: this.addresses() }, 'libp2p transport started')
    this.tick()
  }

  async stop(): Promise<void> {
    const node = this.node
    if (!node) return
    this.stopping = true
    clearInterval(this.timer)
    this.timer = undefined
    this.keepConnected?.stop()
    this.keepConnected = undefined
    this.watchdog = undefined
    try {
      await node.stop()
    } finally {
      this.node = undefined
      for (const peer of [...this.connected]) {
        this.connected.delete(peer)
        this.emit('peer:disconnect', { peer: peer as PeerId })
      }
      this.gossipPeers.clear()
      this.rttByPeer.clear()
      this.hangingUp.clear()
      this.learntAddresses.clear()
    }
  }

  addresses(): string[] {
    return this.node?.getMultiaddrs().map(String) ?? []
  }

  learnPeer(peer: PeerId, addresses: readonly string[]): void {
    const node = this.node
    if (!node || this.stopping || peer === this.peerId) return
    const joined = addresses.join(' ')
    if (this.learntAddresses.get(peer) !== joined) {
      if (this.learntAddresses.size >= MAX_LEARNT_PEERS && !this.learntAddresses.has(peer)) return
      this.learntAddresses.set(peer, joined)
      // Only TCP addresses that name this very peer (they come from the wire),
      // and loopback ones only when this node itself is reachable on loopback
      // alone (one host): elsewhere they would reach this host, not the peer.
      const loopbackHere = this.addresses().every(isLoopback)
      const usable = addresses.flatMap((address) => {
        try {
          const parsed = parsePeerAddress(address)
          return parsed.peerId === peer && (loopbackHere || !isLoopback(parsed.address)) ? [multiaddr(parsed.address)] : []
        } catch {
          return []
        }
      })
      if (usable.length === 0) return
      node.peerStore.merge(peerIdFromString(peer), { multiaddrs: usable }).catch((err: unknown) => this.logger.debug({ peer, error: errorText(err) }, 'peer store merge failed'))
    }
    this.keepConnected?.learn(peer)
  }

  connectedPeers(): PeerId[] {
    return [...this.connected] as PeerId[]
  }

  connections(): ConnectionInfo[] {
    return (this.node?.getConnections() ?? [])
      .filter((connection) => connection.status === 'open')
      .map((connection) => {
        const peer = connection.remotePeer.toString()
        const rttMs = connection.rtt ?? this.rttByPeer.get(peer)
        return {
          peer: peer as PeerId,
          address: connection.remoteAddr.toString(),
          direction: connection.direction,
          openedAt: connection.timeline.open,
          ...(rttMs === undefined ? {} : { rttMs }),
        }
      })
  }

  subscribe(topic: string): void {
    if (!this.allowedTopics.has(topic)) throw new Error(`topic ${JSON.stringify(topic)} is not in the transport's topics`)
    if (this.subscribed.has(topic)) return
    this.subscribed.add(topic)
    this.node?.services.pubsub.subscribe(topic)
  }

  async publish(topic: string, data: Uint8Array): Promise<void> {
    const node = this.node
    if (!node) throw new Error('transport is not started')
    if (!this.allowedTopics.has(topic)) throw new Error(`topic ${JSON.stringify(topic)} is not in the transport's topics`)
    if (data.byteLength > this.maxMessageBytes) throw new Error(`gossip message of ${data.byteLength} bytes exceeds maxMessageBytes (${this.maxMessageBytes})`)
    try {
      // Signs and queues on each peer's outbound stream; never waits for a peer.
      await node.services.pubsub.publish(topic, data)
    } catch (err) {
      if (err instanceof Error && NO_PEERS.test(err.message)) return
      throw err
    }
  }

  handle(protocol: string, handler: RequestHandler): void {
    this.handlers.set(protocol, handler)
    const node = this.node
    if (node) {
      this.register(node, protocol).catch((err: unknown) => {
        this.logger.error({ protocol, error: errorText(err) }, 'cannot register protocol handler')
      })
    }
  }

  async request(peer: PeerId, protocol: string, data: Uint8Array, options: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    const node = this.node
    if (!node) throw new TransportRequestError('failed', 'transport is not started')
    if (data.byteLength > this.maxRequestBytes) {
      throw new TransportRequestError('too-large', `request of ${data.byteLength} bytes exceeds maxRequestBytes (${this.maxRequestBytes})`)
    }
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 10_000
    const signal = AbortSignal.timeout(timeoutMs)
    let stream: Stream | undefined
    try {
      stream = await node.dialProtocol(peerIdFromString(peer), protocol, { signal })
      const framed = lpStream(stream, { maxDataLength: this.maxRequestBytes + 1 })
      await framed.write(data, { signal })
      const response = (await framed.read({ signal })).subarray()
      closeQuietly(stream)
      return decodeResponse(response, peer, protocol)
    } catch (err) {
      stream?.abort(err instanceof Error ? err : new Error(String(err)))
      if (err instanceof TransportRequestError) throw err
      if (signal.aborted) throw new TransportRequestError('timeout', `request ${protocol} to ${peer} timed out after ${timeoutMs} ms`, err)
      throw new TransportRequestError('failed', `request ${protocol} to ${peer} failed: ${errorText(err)}`, err)
    }
  }

  on<K extends keyof TransportEvents>(event: K, listener: TransportListener<K>): void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(listener as (event: never) => void)
  }

  off<K extends keyof TransportEvents>(event: K, listener: TransportListener<K>): void {
    this.listeners.get(event)?.delete(listener as (event: never) => void)
  }

  private emit<K extends keyof TransportEvents>(event: K, payload: TransportEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      const typed = listener as TransportListener<K>
      try {
        typed(payload)
      } catch (err) {
        this.logger.error({ event, error: errorText(err) }, 'transport listener threw')
      }
    }
  }

  private tick(): void {
    if (this.stopping) return
    const peers = new Set(this.connected)
    for (const connection of this.node?.getConnections() ?? []) peers.add(connection.remotePeer.toString())
    for (const peer of peers) this.syncPeer(peer)
    this.keepConnected?.tick()
    this.watchdog?.tick()
  }

  private onConnectionOpen(connection: Connection): void {
    const peer = connection.remotePeer.toString()
    this.syncPeer(peer)
    this.logger.debug({ peer, address: connection.remoteAddr.toString(), direction: connection.direction }, 'connection opened')
  }

  private onConnectionClose(connection: Connection): void {
    const peer = connection.remotePeer.toString()
    this.logger.debug({ peer, address: connection.remoteAddr.toString() }, 'connection closed')
    if (!this.stopping) this.watchdog?.connectionClosed(peer)
    this.syncPeer(peer)
  }

  /** Fires peer:connect on the first open connection to a peer and peer:disconnect when the last one closes. */
  private syncPeer(peer: string): void {
    const isConnected = this.openConnections(peer).length > 0
    if (isConnected && !this.connected.has(peer)) {
      this.connected.add(peer)
      this.watchdog?.peerConnected(peer)
      this.measureRtt(peer)
      this.logger.info({ peer }, 'peer connected')
      this.emit('peer:connect', { peer: peer as PeerId })
    } else if (!isConnected && this.connected.has(peer)) {
      this.connected.delete(peer)
      this.rttByPeer.delete(peer)
      this.watchdog?.peerDisconnected(peer)
      this.keepConnected?.peerDisconnected(peer)
      this.logger.info({ peer }, 'peer disconnected')
      this.emit('peer:disconnect', { peer: peer as PeerId })
    }
  }

  private async connectedPeerListeningOn(node: Node, address: string): Promise<string | undefined> {
    for (const peer of this.connected) {
      const info = await node.peerStore.get(peerIdFromString(peer)).catch(() => undefined)
      if (info?.addresses.some(({ multiaddr }) => multiaddr.toString() === address)) return peer
    }
    return undefined
  }

  private openConnections(peer: string): Connection[] {
    if (!this.node) return []
    return this.node.getConnections(peerIdFromString(peer)).filter((connection) => connection.status === 'open')
  }

  /** The connection monitor fills in connection.rtt only every 10 s; one ping gives a value at once. */
  private measureRtt(peer: string): void {
    const node = this.node
    if (!node) return
    node.services.ping.ping(peerIdFromString(peer), { signal: AbortSignal.timeout(5_000) }).then(
      (rtt) => {
        if (this.connected.has(peer)) this.rttByPeer.set(peer, rtt)
      },
      (err: unknown) => this.logger.debug({ peer, error: errorText(err) }, 'ping failed'),
    )
  }

  private hangUp(peer: string): void {
    const node = this.node
    if (!node || this.stopping || this.hangingUp.has(peer)) return
    this.hangingUp.add(peer)
    node.hangUp(peerIdFromString(peer))
      .catch((err: unknown) => this.logger.warn({ peer, error: errorText(err) }, 'hang up failed'))
      .finally(() => this.hangingUp.delete(peer))
  }

  private async register(node: Node, protocol: string): Promise<void> {
    const maxStreams = this.options.maxInboundStreams ?? 64
    await node.handle(protocol, ({ stream, connection }) => {
      void this.serve(protocol, stream, connection.remotePeer.toString() as PeerId)
    }, { maxInboundStreams: maxStreams, maxOutboundStreams: maxStreams, force: true })
  }

  /** One request in, one response out; never rejects: a failure resets the stream, which the requester sees. */
  private async serve(protocol: string, stream: Stream, from: PeerId): Promise<void> {
    const handlerTimeoutMs = this.options.handlerTimeoutMs ?? 30_000
    const signal = AbortSignal.timeout(handlerTimeoutMs)
    try {
      const framed = lpStream(stream, { maxDataLength: this.maxRequestBytes })
      const request = (await framed.read({ signal })).subarray()
      const handler = this.handlers.get(protocol)
      let response: Uint8Array
      try {
        if (!handler) throw new Error(`no handler for ${protocol}`)
        const result = await abortable(Promise.resolve().then(() => handler(from, request)), signal)
        response = result.byteLength > this.maxRequestBytes
          ? errorResponse(`response of ${result.byteLength} bytes exceeds maxRequestBytes`)
          : okResponse(result)
      } catch (err) {
        if (signal.aborted) throw err
        this.logger.warn({ protocol, peer: from, error: errorText(err) }, 'request handler failed')
        response = errorResponse(errorText(err))
      }
      await framed.write(response, { signal })
      await stream.close({ signal })
    } catch (err) {
      this.logger.debug({ protocol, peer: from, error: errorText(err) }, 'serving request failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

function okResponse(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(payload.byteLength + 1)
  frame[0] = RESPONSE_OK
  frame.set(payload, 1)
  return frame
}

function errorResponse(message: string): Uint8Array {
  const text = new TextEncoder().encode(message.slice(0, MAX_ERROR_TEXT))
  const frame = new Uint8Array(text.byteLength + 1)
  frame[0] = RESPONSE_ERROR
  frame.set(text, 1)
  return frame
}

function decodeResponse(frame: Uint8Array, peer: PeerId, protocol: string): Uint8Array {
  if (frame[0] === RESPONSE_OK) return frame.subarray(1)
  if (frame[0] === RESPONSE_ERROR) {
    throw new TransportRequestError('remote-error', `${peer} failed ${protocol}: ${new TextDecoder().decode(frame.subarray(1))}`)
  }
  throw new TransportRequestError('failed', `${peer} sent a malformed ${protocol} response`)
}

/** Settles with the promise, or rejects when the signal aborts (the promise's later outcome is ignored). */
async function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  const { promise: aborted, reject } = Promise.withResolvers<never>()
  const onAbort = (): void => reject(signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

function closeQuietly(stream: Stream): void {
  stream.close({ signal: AbortSignal.timeout(5_000) }).catch((err: unknown) => {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  })
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
