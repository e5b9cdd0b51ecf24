// Idempotent writes: a write retried with the same requestId (by a client or a
// gateway, on any connection) is applied once and answered with the first
// attempt's result. Bounded in entries and time, so it cannot grow without end.
import { ErrorCode, WeftError } from '@weft/core'

export interface RequestDedupOptions {
  readonly maxEntries?: number
  readonly ttlMs?: number
  readonly now?: () => number
}

interface Entry {
  /** What the request was (op and params), so a reused requestId is caught. */
  readonly fingerprint: string
  readonly result: Promise<unknown>
  readonly expires: number
}

export class RequestDedup {
  readonly #entries = new Map<string, Entry>()
  readonly #maxEntries: number
  readonly #ttlMs: number
  readonly #now: () => number

  constructor(options: RequestDedupOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000
    this.#ttlMs = options.ttlMs ?? 10 * 60_000
    this.#now = options.now ?? Date.now
  }

  get size(): number {
    return this.#entries.size
  }

  /**
   * Runs `write` once per requestId: while it runs and after it succeeded, the
   * same requestId gets the same promise. A failed write is forgotten, so a retry
   * runs again (nothing was applied; the failure may have been passing).
   */
  run<T>(requestId: string, fingerprint: string, write: () => Promise<T>): Promise<T> {
    const now = this.#now()
    this.#expire(now)
    const existing = this.#entries.get(requestId)
    if (existing) {
      if (existing.fingerprint !== fingerprint) {
        return Promise.reject(new WeftError(ErrorCode.INVALID_ARGUMENT, 'requestId was already used for a different request', { field: 'requestId' }))
      }
      return existing.result as Promise<T>
    }
    let result: Promise<T>
    try {
      result = write()
    } catch (err) {
      return Promise.reject(err as Error)
    }
    const entry: Entry = { fingerprint, result, expires: now + this.#ttlMs }
    this.#entries.set(requestId, entry)
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!)
    result.then(undefined, () => {
      if (this.#entries.get(requestId) === entry) this.#entries.delete(requestId)
    })
    return result
  }

  clear(): void {
    this.#entries.clear()
  }

  /** Entries are in insertion order, which is expiry order: drop from the front. */
  #expire(now: number): void {
    for (const [requestId, entry] of this.#entries) {
      if (entry.expires > now) return
      this.#entries.delete(requestId)
    }
  }
}
