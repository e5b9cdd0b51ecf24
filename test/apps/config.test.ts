// The node's and the gateway's configuration: log settings from flags and
// environment, refused with a ConfigError (exit 2 and --help) when invalid.
import { describe, expect, it } from 'vitest'
import * as gateway from '../../apps/gateway/src/config.ts'
import * as node from '../../apps/node/src/config.ts'

const SWARM_KEY = `/key/swarm/psk/1.0.0/\n/base16/\n${'ab'.repeat(32)}\n`

const apps = [
  { name: 'node', parse: (argv: string[], env: NodeJS.ProcessEnv) => node.parseCommand(argv, { WEFT_SWARM_KEY: SWARM_KEY, ...env }), ConfigError: node.ConfigError },
  { name: 'gateway', parse: gateway.parseCommand, ConfigError: gateway.ConfigError },
]

describe.each(apps)('$name log settings', ({ parse, ConfigError }) => {
  function config(argv: string[], env: NodeJS.ProcessEnv = {}): { logLevel: string; logPretty: boolean } {
    const command = parse(argv, env)
    if (command.command !== 'run') throw new Error(`not a run command: ${command.command}`)
    return command.config
  }

  it('logs JSON at info by default; the flag wins over the environment', () => {
    expect(config([])).toMatchObject({ logLevel: 'info', logPretty: false })
    expect(config([], { WEFT_LOG_LEVEL: 'debug', WEFT_LOG_PRETTY: '1' })).toMatchObject({ logLevel: 'debug', logPretty: true })
    expect(config(['--log-level', 'warn', '--log-pretty'], { WEFT_LOG_LEVEL: 'debug' })).toMatchObject({ logLevel: 'warn', logPretty: true })
    for (const level of ['trace', 'error', 'fatal', 'silent']) expect(config(['--log-level', level]).logLevel).toBe(level)
  })

  it('refuses a level pino does not know instead of crashing at startup', () => {
    expect(() => config(['--log-level', 'verbose'])).toThrow(ConfigError)
    expect(() => config([], { WEFT_LOG_LEVEL: 'INFO' })).toThrow(/--log-level must be one of trace, debug, info, warn, error, fatal, silent, got "INFO"/)
  })
})
