// How apps/node and apps/gateway live as processes: pino's options from the
// --log-level / --log-pretty flags, and a service that is started, logged as
// fatal if it cannot start, and stopped on SIGINT / SIGTERM.
import type { Logger } from '../Logger.ts'

/** The Logger a process has: pino's, with `fatal`. */
export interface ServiceLogger extends Logger {
  fatal(fields: object, message?: string): void
}

export interface Stoppable {
  stop(): Promise<void>
}

export interface LogConfig {
  readonly logLevel: string
  readonly logPretty: boolean
}

/** Options for pino: the level, fields on every line, and readable lines with --log-pretty. */
export function loggerOptions(config: LogConfig, base: Record<string, string>): { level: string; base: Record<string, string>; transport?: { target: string } } {
  return { level: config.logLevel, base, ...(config.logPretty && { transport: { target: 'pino-pretty' } }) }
}

export interface RunServiceOptions {
  /** A service that has not stopped by then is killed: the node's store is crash-safe, a gateway holds no state. */
  readonly stopTimeoutMs?: number
  /** process.exit in a process; tests pass their own. */
  readonly exit?: (code: number) => void
  /** Where SIGINT and SIGTERM come from (process). */
  readonly signals?: Pick<NodeJS.EventEmitter, 'on'>
}

/**
 * Starts the service (`start` also logs that it is ready). If it cannot
 * start: logged as fatal, exit 1. Then the first SIGINT or SIGTERM stops it:
 * exit 0 once stopped, 1 if stopping failed or took too long.
 */
export async function runService(logger: ServiceLogger, start: () => Promise<Stoppable>, options: RunServiceOptions = {}): Promise<void> {
  const exit = options.exit ?? ((code: number) => process.exit(code))
  const signals = options.signals ?? process
  let service: Stoppable
  try {
    service = await start()
  } catch (err) {
    logger.fatal({ err: err instanceof Error ? { message: err.message, code: (err as { code?: string }).code } : String(err) }, 'failed to start')
    return exit(1)
  }
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'shutting down')
    setTimeout(() => exit(1), options.stopTimeoutMs ?? 10_000).unref()
    service.stop().then(
      () => exit(0),
      (err: unknown) => {
        logger.error({ err: String(err) }, 'unclean stop')
        exit(1)
      },
    )
  }
  signals.on('SIGINT', () => stop('SIGINT'))
  signals.on('SIGTERM', () => stop('SIGTERM'))
}
