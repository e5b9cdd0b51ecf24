// What apps/node and apps/gateway share in reading their flags and
// environment: one error type (the process exits 2 and prints its --help),
// the log level check, HOST:PORT, and the parse-or-exit step of main.

/** A flag or environment value that cannot be used; the process exits 2 with its help. */
export class ConfigError extends Error {}

/** pino's levels: anything else would make pino throw at startup. */
export const LOG_LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

export function logLevelOf(text: string): string {
  if (!LOG_LEVELS.includes(text)) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(text)}`)
  return text
}

/** `host:port` or `[v6]:port`; `flag` names the setting in the error. */
export function hostPort(text: string, flag: string): { host: string; port: number } {
  const cut = text.lastIndexOf(':')
  const port = Number(text.slice(cut + 1))
  if (cut < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`${flag} must be HOST:PORT, got ${text}`)
  return { host: text.slice(0, cut).replace(/^\[|\]$/g, ''), port }
}

/**
 * Runs `parse`; on a ConfigError writes `<program>: <message>` and the help
 * to stderr and exits 2. Other errors are bugs and propagate.
 */
export function parseOrExit<T>(program: string, help: string, parse: () => T, exit: (code: number) => never = process.exit): T {
  try {
    return parse()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`${program}: ${err.message}\n\n${help}`)
    return exit(2)
  }
}
