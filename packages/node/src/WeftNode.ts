// A whole node as a library: storage, the versioned store, the cluster
// (libp2p transport, replication, anti-entropy, membership) and the client API.
// apps/node only reads config and calls WeftNode.start.
import { mkdir } from 'node:fs/promises'
import { hostname, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseNodeId } from '@weft/core'
import { Topics } from '@weft/protocol'
import { Counter, Gauge, Registry } from 'prom-client'
import { ApiServer, type ApiAddress } from './api/ApiServer.ts'
import { AntiEntropy } from './cluster/AntiEntropy.ts'
import type { ClusterTransport } from './cluster/ClusterTransport.ts'
import { Libp2pTransport, loadOrCreateIdentity, peerIdOf } from './cluster/libp2p/index.ts'
import { Membership } from './cluster/Membership.ts'
import { Replicator } from './cluster/Replicator.ts'
import { type Logger, silentLogger } from './Logger.ts'
import { LmdbStorage } from './storage/LmdbStorage.ts'
import { VersionedStore } from './store/VersionedStore.ts'

export const WEFT_VERSION = '0.1.0'

export interface WeftNodeConfig {
  readonly name: string
  readonly dataDir: string
  readonly listen: readonly string[]
  readonly api: { readonly host: string; readonly port: number }
  /** The API URL other processes (gateways) should use; default from `api` (ws://host:port/v1/ws). */
  readonly advertiseApi?: string
  readonly peers: readonly string[]
  readonly swarmKey: Uint8Array
  readonly antiEntropyMs?: number
  readonly heartbeatMs?: number
  readonly logger?: Logger
  /** Test hook: share of inbound gossip batches ignored, as if lost. */
  readonly dropGossipRatio?: number
}

function advertised(api: { host: string; port: number }): string {
  // A wildcard listen address says nothing about where to connect: use the host name.
  const host = api.host === '0.0.0.0' || api.host === '::' || api.host === '' ? hostname() : api.host
  return `ws://${host.includes(':') ? `[${host}]` : host}:${api.port}/v1/ws`
}

export class WeftNode {
  readonly store: VersionedStore
  readonly transport: ClusterTransport
  readonly replicator: Replicator
  readonly antiEntropy: AntiEntropy
  readonly membership: Membership
  readonly api: ApiServer
  readonly registry: Registry
  apiAddress: ApiAddress | undefined
  private readonly logger: Logger

  private constructor(parts: { store: VersionedStore; transport: ClusterTransport; replicator: Replicator; antiEntropy: AntiEntropy; membership: Membership; api: ApiServer; registry: Registry; logger: Logger }) {
    this.store = parts.store
    this.transport = parts.transport
    this.replicator = parts.replicator
    this.antiEntropy = parts.antiEntropy
    this.membership = parts.membership
    this.api = parts.api
    this.registry = parts.registry
    this.logger = parts.logger
  }

  static async start(config: WeftNodeConfig): Promise<WeftNode> {
    const logger = config.logger ?? silentLogger
    const startedAt = Date.now()
    await mkdir(config.dataDir, { recursive: true })
    const privateKey = await loadOrCreateIdentity(config.dataDir)
    const peerId = peerIdOf(privateKey)
    const storage = await LmdbStorage.open(join(config.dataDir, 'store'))
    // The peer id is the node id in revision ids: unique, stable across restarts.
    const store = new VersionedStore({ storage, nodeId: parseNodeId(peerId) })
    const transport = new Libp2pTransport({
      privateKey,
      listen: config.listen,
      peers: config.peers,
      swarmKey: config.swarmKey,
      topics: Object.values(Topics),
      logger,
      name: config.name,
    })
    const replicator = new Replicator({ store, transport, logger, ...(config.dropGossipRatio !== undefined && { dropInboundRatio: config.dropGossipRatio }) })
    const antiEntropy = new AntiEntropy({ store, transport, logger, ...(config.antiEntropyMs !== undefined && { intervalMs: config.antiEntropyMs }) })
    const membership = new Membership({
      transport,
      logger,
      ...(config.heartbeatMs !== undefined && { intervalMs: config.heartbeatMs }),
      self: { name: config.name, api: config.advertiseApi ?? advertised(config.api), version: WEFT_VERSION, startedAt, keys: () => store.keyCount(), load: () => loadavg()[0] ?? 0, feed: () => store.feedHead() },
    })
    const registry = new Registry()
    const api = new ApiServer({
      store,
      host: config.api.host,
      port: config.api.port,
      members: () => membership.view(),
      health: () => ({ name: config.name, peerId, peers: transport.connectedPeers().length, version: WEFT_VERSION }),
      registry,
      logger,
    })
    const node = new WeftNode({ store, transport, replicator, antiEntropy, membership, api, registry, logger })
    node.registerMetrics()
    await transport.start()
    replicator.start()
    antiEntropy.start()
    membership.start()
    node.apiAddress = await api.start()
    return node
  }

  private registerMetrics(): void {
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers: [this.registry], collect() { this.set(read()) } })
    // Cumulative stats kept by the cluster parts, exposed as Prometheus counters.
    const counter = (name: string, help: string, read: () => number) => {
      let exposed = 0
      return new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          const value = read()
          if (value > exposed) this.inc(value - exposed)
          exposed = value
        },
      })
    }
    const r = this.replicator.stats
    const a = this.antiEntropy.stats
    counter('weft_gossip_published_revisions_total', 'Revisions gossiped by this node', () => r.published)
    counter('weft_gossip_published_batches_total', 'Gossip messages sent', () => r.publishedBatches)
    counter('weft_gossip_dropped_revisions_total', 'Revisions not gossiped (queue full or publish failed)', () => r.dropped)
    counter('weft_gossip_received_revisions_total', 'Revisions received by gossip', () => r.received)
    counter('weft_gossip_applied_revisions_total', 'Gossiped revisions that were new here', () => r.applied)
    counter('weft_gossip_rejected_revisions_total', 'Gossiped revisions or messages rejected', () => r.rejected)
    counter('weft_anti_entropy_rounds_total', 'Anti-entropy rounds started', () => a.rounds)
    counter('weft_anti_entropy_failed_rounds_total', 'Anti-entropy rounds that failed', () => a.failedRounds)
    counter('weft_anti_entropy_repaired_revisions_total', 'Revisions repaired by anti-entropy', () => a.repaired)
    counter('weft_anti_entropy_fetched_revisions_total', 'Revisions received in anti-entropy replies, new here or not', () => a.fetched)
    gauge('weft_peers_connected', 'Peers with an open connection', () => this.transport.connectedPeers().length)
    gauge('weft_members_alive', 'Members seen alive (not counting this node)', () => this.membership.alivePeers().length)
  }

  get peerId(): string {
    return this.transport.peerId
  }

  addresses(): string[] {
    return this.transport.addresses()
  }

  async stop(): Promise<void> {
    this.logger.info({}, 'stopping')
    await this.api.stop()
    this.membership.stop()
    await this.antiEntropy.stop()
    await this.replicator.stop()
    await this.transport.stop()
    await this.store.close()
  }
}
