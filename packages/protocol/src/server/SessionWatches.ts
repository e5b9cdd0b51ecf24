// The watches open on one connection, by the id of the request that opened
// each: the per-connection rules of docs/PROTOCOL.md (an id open once, at most
// maxWatchesPerConnection). What a watch is belongs to whoever serves it.
import { ErrorCode, WeftError } from '@weft/core'
import type { RequestId } from '../messages.ts'

export class SessionWatches<W> {
  readonly #max: number
  /** Keyed by typed id, so 1 and "1" differ. */
  readonly #byId = new Map<string, W>()

  constructor(maxWatches: number) {
    this.#max = maxWatches
  }

  get size(): number {
    return this.#byId.size
  }

  /** Checks the id and the limit, then keeps what `open` makes (nothing if it throws). */
  add(id: RequestId, open: () => W): W {
    const key = keyOf(id)
    if (this.#byId.has(key)) throw new WeftError(ErrorCode.INVALID_ARGUMENT, 'a watch with this id is already open on this connection', { field: 'id' })
    if (this.#byId.size >= this.#max) throw new WeftError(ErrorCode.TOO_MANY_REQUESTS, `at most ${this.#max} watches per connection`)
    const watch = open()
    this.#byId.set(key, watch)
    return watch
  }

  get(id: RequestId): W | undefined {
    return this.#byId.get(keyOf(id))
  }

  /** Forgets the watch under `id`; given `watch`, only if that one is still there. */
  delete(id: RequestId, watch?: W): void {
    const key = keyOf(id)
    if (watch === undefined || this.#byId.get(key) === watch) this.#byId.delete(key)
  }

  /** Hands every watch to `close` and forgets them all. */
  drain(close: (watch: W) => void): void {
    const watches = [...this.#byId.values()]
    this.#byId.clear()
    for (const watch of watches) close(watch)
  }
}

function keyOf(id: RequestId): string {
  return `${typeof id}:${id}`
}
