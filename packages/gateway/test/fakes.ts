// Fakes for router tests: nodes whose answers a test scripts, a directory that
// lists them, and a clock that moves only when the router sleeps.
import { ErrorCode, WeftError } from '@weft/core'
import type { NodeDirectory, NodeHandle, NodeWatch, NodeWatchEvents } from '../src/NodeDirectory.ts'

export interface Call {
  readonly op: string
  readonly params: Record<string, unknown>
  readonly timeoutMs: number
}

export class FakeWatchOnNode {
  readonly params: Record<string, unknown>
  readonly events: NodeWatchEvents
  closed = false

  constructor(params: Record<string, unknown>, events: NodeWatchEvents) {
    this.params = params
    this.events = events
  }

  emit(event: Record<string, unknown>): void {
    if (!this.closed) this.events.onEvent(event)
  }

  end(error: WeftError = new WeftError(ErrorCode.UNAVAILABLE, 'connection closed')): void {
    if (!this.closed) this.events.onEnd(error)
  }
}

export class FakeNode implements NodeHandle {
  readonly peerId: string
  readonly calls: Call[] = []
  readonly watches: FakeWatchOnNode[] = []
  /** Answers a request; throw a WeftError to fail it. */
  answer: (op: string, params: Record<string, unknown>) => unknown = (op) => ({ op, node: this.peerId })
  /** Answers a watch with this cursor, or fails it. */
  watchAnswer: (params: Record<string, unknown>) => string = () => `${this.peerId}-epoch:0`

  constructor(peerId: string) {
    this.peerId = peerId
  }

  async request(op: string, params: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    this.calls.push({ op, params, timeoutMs })
    return this.answer(op, params)
  }

  async watch(params: Record<string, unknown>, events: NodeWatchEvents): Promise<NodeWatch> {
    const watch = new FakeWatchOnNode(params, events)
    this.watches.push(watch)
    const cursor = this.watchAnswer(params)
    return {
      cursor,
      close: () => {
        watch.closed = true
      },
    }
  }

  lastWatch(): FakeWatchOnNode {
    const watch = this.watches.at(-1)
    if (!watch) throw new Error(`${this.peerId} has no watch`)
    return watch
  }
}

export class FakeDirectory implements NodeDirectory {
  version = 0
  #nodes: FakeNode[]

  constructor(nodes: FakeNode[]) {
    this.#nodes = nodes
  }

  nodes(): FakeNode[] {
    return this.#nodes
  }

  set(nodes: FakeNode[]): void {
    this.#nodes = nodes
    this.version++
  }

  remove(node: FakeNode): void {
    this.set(this.#nodes.filter((n) => n !== node))
  }

  members(): unknown[] {
    return this.#nodes.map((n) => ({ peerId: n.peerId, state: 'alive' }))
  }
}

/** Time that moves only when someone sleeps (or a test says so). */
export class FakeClock {
  time = 1_000_000
  readonly waits: number[] = []
  readonly now = () => this.time
  readonly sleep = async (ms: number) => {
    this.waits.push(ms)
    this.time += ms
  }
}

export const unavailable = () => new WeftError(ErrorCode.UNAVAILABLE, 'connection closed')
