#!/usr/bin/env node
// Starts one weft node: read config, start, stop cleanly on SIGINT/SIGTERM.
import { pino } from 'pino'
import { WeftNode, generateSwarmKey, parseSwarmKey } from '@weft/node'
import { loggerOptions, parseOrExit, runService } from '@weft/protocol/server'
import { HELP, parseCommand } from './config.ts'

const command = parseOrExit('weft node', HELP, () => parseCommand(process.argv.slice(2), process.env))

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
