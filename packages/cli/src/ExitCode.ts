// What the `weft` command's exit status means; scripts branch on these.
import { ErrorCode } from '@weft/core'

export const ExitCode = {
  ok: 0,
  /** The server answered with an error; its code is printed. */
  error: 1,
  usage: 2,
  notFound: 3,
  /** HEAD_MISMATCH, MERGE_CONFLICT, FORK_EXISTS: the data is not in the state the command expected. */
  conflict: 4,
  /** No connection, connection lost, no answer in time, or no node available. */
  unreachable: 5,
  /** Ctrl-C (128 + SIGINT), as shells report it. */
  interrupted: 130,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

const BY_CODE: Partial<Record<ErrorCode, ExitCode>> = {
  KEY_NOT_FOUND: ExitCode.notFound,
  FORK_NOT_FOUND: ExitCode.notFound,
  REVISION_NOT_FOUND: ExitCode.notFound,
  HEAD_MISMATCH: ExitCode.conflict,
  MERGE_CONFLICT: ExitCode.conflict,
  FORK_EXISTS: ExitCode.conflict,
  UNAVAILABLE: ExitCode.unreachable,
  TIMEOUT: ExitCode.unreachable,
  CLOSED: ExitCode.unreachable,
}

export function exitCodeOf(code: string): ExitCode {
  return BY_CODE[code as ErrorCode] ?? ExitCode.error
}

export const EXIT_CODES_HELP = `Exit codes:
  0    ok
  1    the server answered with an error (its code is printed, e.g. INVALID_KEY, FORBIDDEN)
  2    usage error (unknown command or option, bad argument)
  3    not found (${ErrorCode.KEY_NOT_FOUND}, ${ErrorCode.FORK_NOT_FOUND}, ${ErrorCode.REVISION_NOT_FOUND})
  4    conflict (${ErrorCode.HEAD_MISMATCH}, ${ErrorCode.MERGE_CONFLICT}, ${ErrorCode.FORK_EXISTS})
  5    unreachable (cannot connect, connection lost, no answer in time, ${ErrorCode.UNAVAILABLE})
  130  interrupted (Ctrl-C; watch stops cleanly with 0)`
