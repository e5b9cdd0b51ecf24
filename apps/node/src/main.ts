#!/usr/bin/env node
// Starts one weft node: read config, start, stop cleanly on SIGINT/SIGTERM.
import { pino } from 'pino'
import { WeftNode, generateSwarmKey, parseSwarmKey } from '@weft/node'
import { ConfigError, HELP, parseCommand } from './config.ts'

let command
try {
  command = parseCommand(process.argv.slice(2), process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`weft node: ${err.message}\n\n${HELP}`)
  process.exit(2)
}

if (command.command === 'help') {
  process.stdout.write(HELP)
} else if (command.command === 'keygen') {
  process.stdout.write(new TextDecoder().decode(generateSwarmKey()))
} else {
  const config = command.config
  const logger = pino({
    level: config.logLevel,
    base: { node: config.name },
    ...(config.logPretty && { transport: { target: 'pino-pretty' } }),
  })
  try {
    parseSwarmKey(config.swarmKey)
    const node = await WeftNode.start({ ...config, logger })
    const api = `http://${node.apiAddress?.host}:${node.apiAddress?.port}`
    logger.info({ peerId: node.peerId, addresses: node.addresses(), api }, 'ready')
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) return
      stopping = true
      logger.info({ signal }, 'shutting down')
      // A node that cannot stop in time is killed: its store is crash-safe.
      setTimeout(() => process.exit(1), 10_000).unref()
      node.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err: String(err) }, 'unclean stop')
          process.exit(1)
        },
      )
    }
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGTERM', () => stop('SIGTERM'))
  } catch (err) {
    logger.fatal({ err: err instanceof Error ? { message: err.message, code: (err as { code?: string }).code } : String(err) }, 'failed to start')
    process.exit(1)
  }
}
