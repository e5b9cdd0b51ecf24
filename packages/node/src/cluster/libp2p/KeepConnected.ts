// libp2p 2.x has no autodialer and its bootstrap dials once, so this loop keeps
// the configured peers (and peers whose connection dropped) connected: about
// once a second, with a per-peer backoff up to maxBackoffMs. It knows nothing
// of libp2p; the transport hands it dial functions.
import type { Logger } from '../../Logger.ts'
import type { PeerAddress } from './peerAddress.ts'

export interface KeepConnectedDeps {
  readonly selfId: string
  isConnected(peerId: string): boolean
  /** Dials an address (with /p2p/<id> appended when peerId is given); resolves to the remote peer id. */
  dialAddress(address: string, peerId: string | undefined, signal: AbortSignal): Promise<string>
  /** Dials a peer by id, on the addresses libp2p learnt for it. */
  dialPeer(peerId: string, signal: AbortSignal): Promise<void>
  now(): number
  readonly logger: Logger
}

export interface KeepConnectedOptions {
  readonly minBackoffMs?: number
  readonly maxBackoffMs?: number
  readonly dialTimeoutMs?: number
  /**
   * Only the smaller peer id dials at once, to avoid two connections per pair;
   * the larger one dials after the pair has stayed apart this long.
   */
  readonly yieldMs?: number
  /** How long a peer whose connection dropped keeps being re-dialled. */
  readonly rememberDroppedMs?: number
  readonly maxDroppedPeers?: number
}

interface DialState {
  failures: number
  nextAttemptAt: number
  dialing: boolean
  /** When we first saw it disconnected (for the yield rule). */
  apartSince?: number
  /** Seen connected at least once: only then may the other side be dialling us too. */
  wasConnected?: boolean
}

interface ConfiguredPeer extends DialState {
  readonly configured: PeerAddress
  peerId?: string
  self: boolean
}

interface DroppedPeer extends DialState {
  forgetAt: number
}

/** Forget a learnt (not configured) peer id after this many failed dials, in case the address now has a new identity. */
const RELEARN_AFTER_FAILURES = 3

export class KeepConnected {
  private readonly deps: KeepConnectedDeps
  private readonly minBackoffMs: number
  private readonly maxBackoffMs: number
  private readonly dialTimeoutMs: number
  private readonly yieldMs: number
  private readonly rememberDroppedMs: number
  private readonly maxDroppedPeers: number
  private readonly configured: ConfiguredPeer[]
  /** Peers not configured but kept connected: those whose connection dropped, and those learnt of from the cluster. */
  private readonly dropped = new Map<string, DroppedPeer>()
  private readonly controller = new AbortController()

  constructor(peers: readonly PeerAddress[], deps: KeepConnectedDeps, options: KeepConnectedOptions = {}) {
    this.deps = deps
    this.minBackoffMs = options.minBackoffMs ?? 1_000
    // Short: a peer back from a partition should be redialled within a couple of seconds.
    this.maxBackoffMs = options.maxBackoffMs ?? 2_000
    this.dialTimeoutMs = options.dialTimeoutMs ?? 5_000
    this.yieldMs = options.yieldMs ?? 2_000
    this.rememberDroppedMs = options.rememberDroppedMs ?? 10 * 60_000
    this.maxDroppedPeers = options.maxDroppedPeers ?? 256
    this.configured = peers.map((configured) => ({
      configured,
      ...(configured.peerId === undefined ? {} : { peerId: configured.peerId }),
      self: configured.peerId === deps.selfId,
      failures: 0,
      nextAttemptAt: 0,
      dialing: false,
    }))
  }

  /** Starts the dials that are due; never waits for them. */
  tick(): void {
    if (this.controller.signal.aborted) return
    const now = this.deps.now()
    for (const peer of this.configured) {
      if (peer.self || peer.dialing || now < peer.nextAttemptAt) continue
      if (peer.peerId !== undefined && !this.shouldDial(peer, peer.peerId, now)) continue
      void this.dialConfigured(peer)
    }
    for (const [peerId, peer] of this.dropped) {
      if (now >= peer.forgetAt || this.deps.isConnected(peerId)) {
        if (now >= peer.forgetAt) this.dropped.delete(peerId)
        continue
      }
      if (peer.dialing || now < peer.nextAttemptAt || !this.shouldDial(peer, peerId, now)) continue
      void this.dialDropped(peerId, peer)
    }
  }

  /** A peer's last connection closed: keep re-dialling it for a while if it is not configured. */
  peerDisconnected(peerId: string): void {
    if (this.controller.signal.aborted || peerId === this.deps.selfId) return
    if (this.configured.some((peer) => peer.peerId === peerId)) return
    const now = this.deps.now()
    this.remember(peerId, { failures: 0, nextAttemptAt: now, dialing: false, apartSince: now, wasConnected: true, forgetAt: now + this.rememberDroppedMs })
  }

  /**
   * A peer learnt of from the cluster (not configured): dial it, and keep
   * re-dialling it while it is heard of. It knows of us the same way, so the
   * yield rule applies from the start: only the smaller id dials at once.
   */
  learn(peerId: string): void {
    if (this.controller.signal.aborted || peerId === this.deps.selfId) return
    if (this.configured.some((peer) => peer.peerId === peerId)) return
    const now = this.deps.now()
    const known = this.dropped.get(peerId)
    if (known) {
      known.forgetAt = now + this.rememberDroppedMs
      return
    }
    // Connected already: if that connection drops, peerDisconnected takes over.
    if (this.deps.isConnected(peerId)) return
    this.remember(peerId, { failures: 0, nextAttemptAt: now, dialing: false, wasConnected: true, forgetAt: now + this.rememberDroppedMs })
  }

  stop(): void {
    this.controller.abort()
  }

  private remember(peerId: string, peer: DroppedPeer): void {
    this.dropped.delete(peerId)
    if (this.dropped.size >= this.maxDroppedPeers) {
      const oldest = this.dropped.keys().next()
      if (!oldest.done) this.dropped.delete(oldest.value)
    }
    this.dropped.set(peerId, peer)
  }

  private shouldDial(state: DialState, peerId: string, now: number): boolean {
    if (this.deps.isConnected(peerId)) {
      delete state.apartSince
      state.wasConnected = true
      return false
    }
    state.apartSince ??= now
    // A peer we never reached does not know us (a new node joining): dial at once.
    return this.deps.selfId < peerId || !state.wasConnected || now - state.apartSince >= this.yieldMs
  }

  private async dialConfigured(peer: ConfiguredPeer): Promise<void> {
    peer.dialing = true
    const { address } = peer.configured
    try {
      const remote = await this.deps.dialAddress(address, peer.peerId, this.signal())
      if (remote === this.deps.selfId) {
        peer.self = true
        this.deps.logger.info({ address }, 'configured peer address is this node; not dialling it')
        return
      }
      if (peer.peerId === undefined) this.deps.logger.info({ address, peer: remote }, 'learnt peer id by dialling')
      peer.peerId = remote
      this.succeeded(peer)
    } catch (err) {
      this.failed(peer, err, { address, peer: peer.peerId })
      if (peer.configured.peerId === undefined && peer.failures >= RELEARN_AFTER_FAILURES) delete peer.peerId
    } finally {
      peer.dialing = false
    }
  }

  private async dialDropped(peerId: string, peer: DroppedPeer): Promise<void> {
    peer.dialing = true
    try {
      await this.deps.dialPeer(peerId, this.signal())
      this.dropped.delete(peerId)
    } catch (err) {
      this.failed(peer, err, { peer: peerId })
    } finally {
      peer.dialing = false
    }
  }

  private signal(): AbortSignal {
    return AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.dialTimeoutMs)])
  }

  private succeeded(state: DialState): void {
    state.failures = 0
    state.nextAttemptAt = 0
    delete state.apartSince
  }

  private failed(state: DialState, err: unknown, fields: Record<string, unknown>): void {
    state.failures += 1
    const backoff = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** (state.failures - 1))
    state.nextAttemptAt = this.deps.now() + backoff
    if (this.controller.signal.aborted) return
    const log = state.failures === 1 || state.failures % 30 === 0 ? this.deps.logger.info : this.deps.logger.debug
    log.call(this.deps.logger, { ...fields, failures: state.failures, retryInMs: backoff, error: err instanceof Error ? err.message : String(err) }, 'dial failed')
  }
}
