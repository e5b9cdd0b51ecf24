// What the router needs of the node pool: the nodes it may send to now, each
// able to run a request or open a watch. NodePool is the real one; tests give
// fakes.
import type { WeftError } from '@weft/core'

export interface NodeWatchEvents {
  /** One event as the node sent it (`{cursor, key, fork, revision, value?, deleted}`). */
  onEvent(event: Record<string, unknown>): void
  /** The node ended the watch or the connection was lost. */
  onEnd(error: WeftError): void
}

export interface NodeWatch {
  /** The node's cursor from its answer. */
  readonly cursor: string
  close(): void
}

export interface NodeHandle {
  /** The node's peer id (its node id in revision ids). */
  readonly peerId: string
  /** Runs one op; rejects with a WeftError (the node's, or TIMEOUT / UNAVAILABLE). */
  request(op: string, params: Record<string, unknown>, timeoutMs: number): Promise<unknown>
  /** Opens a watch; events may flow before the promise resolves. */
  watch(params: Record<string, unknown>, events: NodeWatchEvents, timeoutMs: number): Promise<NodeWatch>
}

export interface NodeDirectory {
  /** Nodes that may take requests now (connected, not known dead). */
  nodes(): readonly NodeHandle[]
  /** Changes whenever nodes() may have changed. */
  readonly version: number
  /** The cluster's members as the gateway knows them. */
  members(): unknown[]
}
