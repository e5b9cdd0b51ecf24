// Exponential backoff with full jitter (a random wait between 0 and the
// exponential cap): clients that failed together do not retry together.

export interface BackoffOptions {
  /** The cap of the first retry's wait. */
  readonly baseMs: number
  /** No wait is longer than this. */
  readonly maxMs: number
}

/** The wait before retry number `attempt` (1 for the first retry). */
export function fullJitter(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)))
  return Math.floor(random() * cap)
}
