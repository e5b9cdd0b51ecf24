// An in-memory GatewayBackend for the HTTP tests: records every call, answers
// with canned results or errors, and hands out watches the test drives.
import { ErrorCode, WeftError } from '@weft/core'
import type { GatewayBackend, RequestContext, WatchCallbacks, WatchHandle } from '../../src/GatewayBackend.ts'

export interface BackendCall {
  readonly op: string
  readonly params: Record<string, unknown>
  readonly context?: RequestContext
}

type Answer = (params: Record<string, unknown>, context: RequestContext) => unknown

export class FakeWatch implements WatchHandle {
  readonly params: Record<string, unknown>
  readonly callbacks: WatchCallbacks
  readonly context: RequestContext
  closed = false
  readonly #closedWaiters: (() => void)[] = []

  constructor(params: Record<string, unknown>, callbacks: WatchCallbacks, context: RequestContext) {
    this.params = params
    this.callbacks = callbacks
    this.context = context
  }

  emit(event: Record<string, unknown>): void {
    this.callbacks.onEvent(event)
  }

  end(error: WeftError): void {
    this.callbacks.onEnd(error)
  }

  close(): void {
    this.closed = true
    for (const wake of this.#closedWaiters.splice(0)) wake()
  }

  /** Resolves once the HTTP side closed this watch. */
  async whenClosed(): Promise<void> {
    if (this.closed) return
    await new Promise<void>((resolve) => this.#closedWaiters.push(resolve))
  }
}

export class FakeBackend implements GatewayBackend {
  readonly calls: BackendCall[] = []
  readonly watches: FakeWatch[] = []
  readonly #answers = new Map<string, Answer>()
  readonly #watchWaiters: ((watch: FakeWatch) => void)[] = []
  membersList: unknown[] = [{ peerId: 'p1', name: 'n1', state: 'alive' }]
  /** Set to make watch() fail, or answer late. */
  watchStart: (watch: FakeWatch) => Promise<void> = async () => {}

  /** Canned answer for an op: a value, or a function of the params (throw to fail). */
  on(op: string, answer: unknown): this {
    this.#answers.set(op, typeof answer === 'function' ? (answer as Answer) : () => structuredClone(answer))
    return this
  }

  fail(op: string, code: ErrorCode, message = 'canned failure', details?: Record<string, unknown>): this {
    this.#answers.set(op, () => {
      throw new WeftError(code, message, details)
    })
    return this
  }

  async request(op: string, params: Record<string, unknown>, context: RequestContext): Promise<unknown> {
    this.calls.push({ op, params, context })
    const answer = this.#answers.get(op)
    if (!answer) throw new WeftError(ErrorCode.INTERNAL, `fake backend has no answer for ${op}`)
    return answer(params, context)
  }

  async watch(params: Record<string, unknown>, callbacks: WatchCallbacks, context: RequestContext): Promise<WatchHandle> {
    this.calls.push({ op: 'watch', params, context })
    const watch = new FakeWatch(params, callbacks, context)
    await this.watchStart(watch)
    this.watches.push(watch)
    for (const wake of this.#watchWaiters.splice(0)) wake(watch)
    return watch
  }

  members(): unknown[] {
    this.calls.push({ op: 'members', params: {} })
    return this.membersList
  }

  /** The next watch started (or the latest, if one already is). */
  async nextWatch(): Promise<FakeWatch> {
    const existing = this.watches.at(-1)
    if (existing && !existing.closed) return existing
    return new Promise<FakeWatch>((resolve) => this.#watchWaiters.push(resolve))
  }

  opsCalled(): string[] {
    return this.calls.map((call) => call.op)
  }
}
