// Exponential backoff with jitter: attempt n waits between half and all of
// min(max, initial · factor^n), so clients that lost the same server spread out.

export interface BackoffOptions {
  /** The first wait, ms (default 100). */
  readonly initialDelayMs?: number
  /** The longest wait, ms (default 5000). */
  readonly maxDelayMs?: number
  /** Growth per attempt (default 2). */
  readonly factor?: number
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialDelayMs: 100, maxDelayMs: 5000, factor: 2 }

export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const { initialDelayMs, maxDelayMs, factor } = { ...DEFAULT_BACKOFF, ...options }
  const ceiling = Math.min(maxDelayMs, initialDelayMs * factor ** Math.max(0, attempt))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}
