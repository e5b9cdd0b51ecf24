// The revision ids a watch delivered recently, to drop the ones a resumed watch
// replays again. Bounded twice: ids received more than `windowMs` before the
// newest one are forgotten (a resume never replays that far back), and never
// more than `maxIds` are kept.

export interface RecentIdsOptions {
  /** How far back, before the newest id, ids are kept (ms). */
  readonly windowMs: number
  readonly maxIds: number
}

export class RecentIds {
  readonly #windowMs: number
  readonly #maxIds: number
  /** id -> when it was received; insertion order is arrival order. */
  readonly #ids = new Map<string, number>()
  #newest = 0

  constructor(options: RecentIdsOptions) {
    this.#windowMs = options.windowMs
    this.#maxIds = options.maxIds
  }

  get size(): number {
    return this.#ids.size
  }

  has(id: string): boolean {
    return this.#ids.has(id)
  }

  /** Records `id` as received at `at`; false if it was already there. */
  add(id: string, at: number): boolean {
    if (this.#ids.has(id)) return false
    this.#ids.set(id, at)
    if (at > this.#newest) this.#newest = at
    const oldest = this.#newest - this.#windowMs
    for (const [first, receivedAt] of this.#ids) {
      if (this.#ids.size <= this.#maxIds && receivedAt >= oldest) break
      this.#ids.delete(first)
    }
    return true
  }
}
