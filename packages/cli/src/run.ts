// The `weft` command line: finds the command, parses its options (global ones
// anywhere), connects on first use, runs it, and turns failures into exit codes.
import { parseArgs } from 'node:util'
import { type ConnectionChange, WeftClient, WeftClientError } from '@weft/client'
import { ErrorCode } from '@weft/core'
import { COMMANDS, type Command, type OptionSpec, describeFailure, findCommand, printConflicts } from './commands.ts'
import { type CliIo, Context, type OptionValues } from './Context.ts'
import { EXIT_CODES_HELP, ExitCode } from './ExitCode.ts'
import { Output, colorFor } from './Output.ts'
import { parsePositiveInt } from './parse.ts'
import { UsageError } from './UsageError.ts'

export const DEFAULT_URL = 'ws://127.0.0.1:7411/v1/ws'
const DEFAULT_TIMEOUT_MS = 10_000

const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  url: { type: 'string', value: 'URL', help: `node or gateway WebSocket URL (env WEFT_URL; default ${DEFAULT_URL})` },
  token: { type: 'string', value: 'TOKEN', help: 'bearer token (env WEFT_TOKEN, which keeps it out of `ps`)' },
  json: { type: 'boolean', help: 'machine-readable JSON on stdout (watch: one event per line); errors as JSON on stderr' },
  timeout: { type: 'string', value: 'MS', help: `per-request timeout, and how long to try to connect (default ${DEFAULT_TIMEOUT_MS})` },
  quiet: { type: 'boolean', short: 'q', help: 'no notes on stderr (revision lines, progress)' },
  color: { type: 'boolean', help: 'force colours on (--color) or off (--no-color); NO_COLOR=1 and non-terminals turn them off' },
  help: { type: 'boolean', short: 'h', help: 'help for weft or for a command' },
}

/** Runs one command line; resolves with the exit code. Never throws. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let client: WeftClient | undefined
  let out = new Output({ stdout: io.stdout, stderr: io.stderr, json: argv.includes('--json'), color: { out: false, err: colorFor(io.stderr, io.env, undefined) } })
  let command: Command | undefined
  try {
    const at = commandIndex(argv)
    const name = at === -1 ? undefined : argv[at]!
    if (name === 'help') {
      const topic = argv[at + 1]
      const helpFor = topic === undefined ? undefined : findCommand(topic)
      if (topic !== undefined && !helpFor) throw new UsageError(`no command ${JSON.stringify(topic)}`)
      io.stdout.write(helpFor ? commandHelp(helpFor) : mainHelp())
      return ExitCode.ok
    }
    command = name === undefined ? undefined : findCommand(name)
    if (name !== undefined && !command) throw new UsageError(`no command ${JSON.stringify(name)}`)
    const rest = at === -1 ? [...argv] : [...argv.slice(0, at), ...argv.slice(at + 1)]
    const { values, positionals } = parseOptions(rest, command)
    out = new Output({
      stdout: io.stdout,
      stderr: io.stderr,
      json: values.json === true,
      quiet: values.quiet === true,
      color: { out: colorFor(io.stdout, io.env, values.color as boolean | undefined), err: colorFor(io.stderr, io.env, values.color as boolean | undefined) },
    })
    if (!command) {
      io.stdout.write(mainHelp())
      return values.help === true ? ExitCode.ok : ExitCode.usage
    }
    if (values.help === true) {
      io.stdout.write(commandHelp(command))
      return ExitCode.ok
    }
    const url = str(values.url) ?? nonEmpty(io.env.WEFT_URL) ?? DEFAULT_URL
    const token = str(values.token) ?? nonEmpty(io.env.WEFT_TOKEN)
    const timeoutMs = str(values.timeout) === undefined ? DEFAULT_TIMEOUT_MS : parsePositiveInt(str(values.timeout)!, '--timeout')
    checkUrl(url)
    const live = command.name === 'watch'
    const output = out
    let wasOpen = false
    const connect = async () => {
      client ??= await WeftClient.connect(url, {
        token,
        timeoutMs,
        // A one-shot command fails fast (exit 5); a watch rides out restarts and failovers.
        reconnect: live ? { initialDelayMs: 100, maxDelayMs: 5000 } : false,
        onConnectionChange: (change: ConnectionChange) => {
          if (change.state === 'open' && wasOpen) output.note('reconnected')
          if (change.state === 'open') wasOpen = true
          if (change.state === 'reconnecting' && wasOpen && change.delayMs !== undefined) {
            output.note(`connection lost${change.reason ? ` (${change.reason})` : ''}; reconnecting in ${change.delayMs} ms`)
          }
        },
      })
      return client
    }
    const ctx = new Context({ command: command.name, args: positionals, options: values, out, io, connect })
    const running = command.run(ctx).then((code) => code ?? ExitCode.ok)
    // watch stops by itself on Ctrl-C (exit 0); anything else is abandoned (exit 130).
    if (live || !io.signal) return await running
    running.catch(() => {})
    const signal = io.signal
    const interrupted = new Promise<number>((resolve) => {
      if (signal.aborted) resolve(ExitCode.interrupted)
      signal.addEventListener('abort', () => resolve(ExitCode.interrupted), { once: true })
    })
    const code = await Promise.race([running, interrupted])
    if (code === ExitCode.interrupted && signal.aborted) out.error('interrupted')
    return code
  } catch (err) {
    return report(out, err, command)
  } finally {
    await client?.close()
  }
}

/** Where the command name is: the first argument that is not an option or a global option's value. */
function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') return i + 1 < argv.length ? i + 1 : -1
    if (!arg.startsWith('-') || arg === '-') return i
    const name = arg.replace(/^--?/, '')
    if (!arg.includes('=') && GLOBAL_OPTIONS[name]?.type === 'string') i++
  }
  return -1
}

function parseOptions(args: string[], command: Command | undefined): { values: OptionValues; positionals: string[] } {
  const specs = { ...GLOBAL_OPTIONS, ...command?.options }
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {}
  for (const [name, spec] of Object.entries(specs)) options[name] = { type: spec.type, ...(spec.short !== undefined && { short: spec.short }) }
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true, allowNegative: true })
    for (const [name, value] of Object.entries(values)) {
      if (value === false && specs[name]?.type === 'boolean' && name !== 'color') throw new UsageError(`--no-${name} is not an option`, command?.name)
    }
    return { values: values as OptionValues, positionals }
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw new UsageError((err as Error).message.split('\n')[0]!, command?.name)
  }
}

function report(out: Output, err: unknown, command: Command | undefined): number {
  const failure = describeFailure(err)
  if (err instanceof UsageError) {
    out.error(`weft: ${failure.message}`)
    const about = err.command ?? command?.name
    out.error(`Run 'weft ${about ? `${about} ` : ''}--help' for usage.`)
    return failure.exit
  }
  if (out.json) {
    out.error(JSON.stringify({ error: { code: failure.code, message: failure.message, ...(failure.details !== undefined && { details: failure.details }) } }))
    return failure.exit
  }
  if (err instanceof WeftClientError && err.code === ErrorCode.MERGE_CONFLICT && err.conflicts) printConflicts(out, err.conflicts)
  out.error(`${out.err.paint('red', 'error:')} ${out.err.paint('bold', failure.code ?? 'ERROR')}: ${failure.message}`)
  if (err instanceof WeftClientError && err.requestId !== undefined && (err.code === ErrorCode.TIMEOUT || err.code === ErrorCode.UNAVAILABLE)) {
    out.error(`The write may or may not have been applied. To retry it so it is applied at most once, add --request-id ${err.requestId}`)
  }
  return failure.exit
}

function checkUrl(url: string): void {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UsageError(`${JSON.stringify(url)} is not a URL (expected ws://host:port/v1/ws)`)
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new UsageError(`the URL must start with ws:// or wss://, got ${JSON.stringify(url)}`)
}

function str(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

// ---- help ------------------------------------------------------------------------------

function optionLines(specs: Readonly<Record<string, OptionSpec>>): string[] {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const flag = name === 'color' ? '--[no-]color' : `--${name}`
    return [`${spec.short ? `-${spec.short}, ` : '    '}${flag}${spec.value ? ` ${spec.value}` : ''}`, spec.help] as const
  })
  const width = Math.max(...rows.map(([left]) => left.length))
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`)
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length))
  return [
    'weft: the command line of weft, a time-traveling, forkable, replicated key-value store',
    '',
    'Usage: weft <command> [arguments] [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}${c.aliases ? ` (also: ${c.aliases.join(', ')})` : ''}`),
    `  ${'help'.padEnd(width)}  help for a command: weft help <command>`,
    '',
    'Global options (anywhere on the line):',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    EXIT_CODES_HELP,
    '',
    'Examples:',
    '  export WEFT_URL=ws://10.0.0.5:7411/v1/ws',
    '  weft set deployments/api \'{"image":"api:2"}\' -m "roll out api:2"',
    '  weft history deployments/api',
    '  weft revert deployments/api --index 1',
    '  weft status',
    '',
    "Run 'weft <command> --help' for a command's options and examples.",
    '',
  ].join('\n')
}

export function commandHelp(command: Command): string {
  return [
    `weft ${command.name}: ${command.summary}`,
    '',
    'Usage:',
    ...command.usage.map((u) => `  ${u}`),
    ...(command.description ? ['', command.description] : []),
    ...(Object.keys(command.options).length > 0 ? ['', 'Options:', ...optionLines(command.options)] : []),
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Examples:',
    ...command.examples.map((e) => `  ${e}`),
    ...(command.aliases ? ['', `Also: ${command.aliases.map((a) => `weft ${a}`).join(', ')}`] : []),
    '',
    EXIT_CODES_HELP,
    '',
  ].join('\n')
}
