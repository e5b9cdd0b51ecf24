// What the gateway's front ends (WebSocket, REST, crush routes) call: one
// request in the node protocol (docs/PROTOCOL.md), routed to a node, retried
// and failed over by the router. Front ends never talk to nodes themselves.
import type { WeftError } from '@weft/core'

export interface RequestContext {
  /** Absolute deadline (ms since epoch) for the whole request, retries included. */
  readonly deadline: number
  /** Who asks (after authentication), for logs. */
  readonly principal?: string
}

export interface WatchHandle {
  /**
   * Where the stream starts, as a gateway cursor (`<epoch>:<seq>` to clients):
   * pass it back as `after` to resume from here. Each event's `cursor` is one too.
   * (Optional so that simple fakes need not make one up; the Router always gives it.)
   */
  readonly cursor?: string
  /** Stops the watch and releases its node subscription. */
  close(): void
}

export interface WatchCallbacks {
  /** One event as the node protocol defines it (`{cursor, key, fork, revision, value?, deleted}`). */
  onEvent(event: Record<string, unknown>): void
  /** The watch cannot continue (e.g. no node reachable before the deadline). */
  onEnd(error: WeftError): void
}

export interface GatewayBackend {
  /** Runs one non-watch op (get, set, keys, …, members, ping) with params as in the node protocol. */
  request(op: string, params: Record<string, unknown>, context: RequestContext): Promise<unknown>
  /**
   * Starts a watch (key or prefix; `fork`, `after` or `since` as in the node
   * protocol) that survives node failures without gaps or duplicates. Events
   * may arrive before the promise resolves: hold them until the client has
   * the watch's answer.
   */
  watch(params: Record<string, unknown>, callbacks: WatchCallbacks, context: RequestContext): Promise<WatchHandle>
  /** The cluster's members as the gateway knows them. */
  members(): unknown[]
}
