// The nodes a gateway talks to. Starts from a few seed URLs, learns the rest
// of the cluster from `members` (each member advertises its API URL), keeps a
// NodeLink to every node the cluster lists alive, and drops the links of nodes
// that are gone. Membership is refreshed every couple of seconds; a link's own
// connection state is the fast signal (a killed node's socket closes at once).
import { type Logger, silentLogger } from './Logger.ts'
import type { NodeDirectory, NodeHandle } from './NodeDirectory.ts'
import { NodeLink, type NodeLinkOptions } from './NodeLink.ts'

export interface NodePoolOptions {
  /** Node API URLs to start from (ws://host:port/v1/ws). */
  readonly seeds: readonly string[]
  /** Time between membership refreshes. */
  readonly refreshMs?: number
  readonly link?: NodeLinkOptions
  readonly logger?: Logger
}

/** A member as nodes report it; only these fields matter to the gateway. */
interface MemberReport {
  readonly peerId: string
  readonly name?: string
  readonly api?: string
  readonly state?: string
  readonly lastSeen?: number
  readonly self?: boolean
  readonly [field: string]: unknown
}

export class NodePool implements NodeDirectory {
  readonly #seeds: readonly string[]
  readonly #refreshMs: number
  readonly #linkOptions: NodeLinkOptions
  readonly #logger: Logger
  /** By URL. */
  readonly #links = new Map<string, NodeLink>()
  /** By peer id: the freshest report of each member from any node. */
  #members = new Map<string, MemberReport>()
  readonly #listeners = new Set<() => void>()
  #version = 0
  #timer: NodeJS.Timeout | undefined
  #refreshing = false
  #stopped = false

  constructor(options: NodePoolOptions) {
    if (options.seeds.length === 0) throw new Error('the node pool needs at least one node URL')
    this.#seeds = [...new Set(options.seeds)]
    this.#refreshMs = options.refreshMs ?? 2000
    this.#linkOptions = options.link ?? {}
    this.#logger = options.logger ?? silentLogger
  }

  get version(): number {
    return this.#version
  }

  start(): void {
    for (const url of this.#seeds) this.#addLink(url, { seed: true })
    this.#timer = setInterval(() => void this.refresh(), this.#refreshMs)
    this.#timer.unref()
  }

  stop(): void {
    this.#stopped = true
    clearInterval(this.#timer)
    for (const link of this.#links.values()) link.retire()
    this.#links.clear()
    this.#changed()
  }

  /** Calls `listener` whenever nodes() may have changed; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Connected nodes, one per peer id. */
  nodes(): NodeLink[] {
    const byPeer = new Map<string, NodeLink>()
    for (const link of this.#links.values()) {
      if (link.connected && !byPeer.has(link.peerId)) byPeer.set(link.peerId, link)
    }
    return [...byPeer.values()]
  }

  get(peerId: string): NodeHandle | undefined {
    return this.nodes().find((n) => n.peerId === peerId)
  }

  /** Every link, connected or not (for health and logs). */
  links(): { url: string; peerId?: string; connected: boolean; seed: boolean; failures: number }[] {
    return [...this.#links.values()].map((l) => ({ url: l.url, ...(l.knownPeerId !== undefined && { peerId: l.knownPeerId }), connected: l.connected, seed: l.seed, failures: l.failures }))
  }

  /** The cluster's members as the nodes report them, with whether this gateway is connected to each. */
  members(): unknown[] {
    const connected = new Set(this.nodes().map((n) => n.peerId))
    return [...this.#members.values()]
      .map(({ self: _self, ...member }) => ({ ...member, gatewayConnected: connected.has(member.peerId) }))
      .sort((a, b) => String(a.name ?? '').localeCompare(String(b.name ?? '')) || a.peerId.localeCompare(b.peerId))
  }

  /** Resolves once at least one node is connected, or after `timeoutMs` (false then). */
  async ready(timeoutMs: number): Promise<boolean> {
    if (this.nodes().length > 0) return true
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        off()
        resolve(false)
      }, timeoutMs)
      const off = this.onChange(() => {
        if (this.nodes().length === 0) return
        clearTimeout(timer)
        off()
        resolve(true)
      })
    })
  }

  /** Asks every connected node for its member list, then adds and drops links to match. */
  async refresh(): Promise<void> {
    if (this.#refreshing || this.#stopped) return
    this.#refreshing = true
    try {
      const connected = this.nodes()
      const reports = await Promise.allSettled(connected.map((n) => n.request('members', {}, Math.max(500, this.#refreshMs))))
      if (this.#stopped) return
      const merged = new Map<string, MemberReport>()
      for (const report of reports) {
        if (report.status !== 'fulfilled') continue
        const members = (report.value as { members?: unknown })?.members
        if (!Array.isArray(members)) continue
        for (const raw of members) {
          const member = asMember(raw)
          if (!member) continue
          const known = merged.get(member.peerId)
          // A node speaks for itself most reliably; otherwise the freshest report wins.
          if (!known || (member.self && !known.self) || (!known.self && (member.lastSeen ?? 0) > (known.lastSeen ?? 0))) merged.set(member.peerId, member)
        }
      }
      if (merged.size > 0 || connected.length === 0) this.#members = merged
      this.#reconcile()
    } finally {
      this.#refreshing = false
    }
  }

  #reconcile(): void {
    const linkFor = (peerId: string) => [...this.#links.values()].find((l) => l.knownPeerId === peerId)
    for (const member of this.#members.values()) {
      if (member.state !== 'alive' || typeof member.api !== 'string' || member.api === '') continue
      if (linkFor(member.peerId) || this.#links.has(member.api)) continue
      this.#logger.info({ url: member.api, peerId: member.peerId, name: member.name }, 'learnt a node from the cluster')
      this.#addLink(member.api, { peerId: member.peerId })
    }
    for (const link of [...this.#links.values()]) {
      if (link.seed) continue
      const member = link.knownPeerId !== undefined ? this.#members.get(link.knownPeerId) : undefined
      // A node the cluster no longer lists alive, that we cannot reach either, is gone.
      if (!link.connected && member?.state !== 'alive') {
        this.#logger.info({ url: link.url, peerId: link.knownPeerId, state: member?.state ?? 'unknown' }, 'dropped a node the cluster no longer lists alive')
        link.retire()
        this.#links.delete(link.url)
        this.#changed()
      }
    }
  }

  #addLink(url: string, options: { seed?: boolean; peerId?: string }): void {
    const link = new NodeLink(url, {
      ...this.#linkOptions,
      logger: this.#logger,
      ...options,
      onChange: () => {
        this.#changed()
        // A node that just connected may know members we have not met yet.
        if (link.connected) void this.refresh()
      },
    })
    this.#links.set(url, link)
    link.start()
  }

  #changed(): void {
    this.#version++
    for (const listener of this.#listeners) {
      try {
        listener()
      } catch (err) {
        this.#logger.error({ err: String(err) }, 'node pool listener failed')
      }
    }
  }
}

function asMember(raw: unknown): MemberReport | undefined {
  if (raw === null || typeof raw !== 'object') return undefined
  const m = raw as Record<string, unknown>
  if (typeof m.peerId !== 'string' || m.peerId === '') return undefined
  return m as MemberReport
}
