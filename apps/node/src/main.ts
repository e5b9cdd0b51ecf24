#!/usr/bin/env node
// Starts one weft node: read config, start, stop cleanly on SIGINT/SIGTERM.
import { pino } from 'pino'
import { WeftNode, generateSwarmKey, parseSwarmKey } from '@weft/node'
import { loggerOptions, runService } from '@weft/protocol/server'
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
  const logger = pino(loggerOptions(config, { node: config.name }))
  await runService(logger, async () => {
    parseSwarmKey(config.swarmKey)
    const node = await WeftNode.start({ ...config, logger })
    const api = `http://${node.apiAddress?.host}:${node.apiAddress?.port}`
    logger.info({ peerId: node.peerId, addresses: node.addresses(), api }, 'ready')
    return node
  })
}
