#!/usr/bin/env node
// Starts a weft gateway: read config, start, stop cleanly on SIGINT/SIGTERM.
import { pino } from 'pino'
import { type Authorizer, Gateway, OpenAuthorizer, ReloadingAuthorizer, createHttpHandler } from '@weft/gateway'
import { loggerOptions, parseOrExit, runService } from '@weft/protocol/server'
import { HELP, parseCommand } from './config.ts'

const command = parseOrExit('weft gateway', HELP, () => parseCommand(process.argv.slice(2), process.env))

if (command.command === 'help') {
  process.stdout.write(HELP)
} else {
  const config = command.config
  const logger = pino(loggerOptions(config, { gateway: `${config.listen.host}:${config.listen.port}` }))
  await runService(logger, async () => {
    let authorizer: Authorizer
    if (config.tokensFile !== undefined) {
      const tokens = await ReloadingAuthorizer.load(config.tokensFile)
      authorizer = tokens
      logger.info({ tokens: config.tokensFile }, 'auth: bearer tokens from the token file (SIGHUP re-reads it)')
      process.on('SIGHUP', () => {
        tokens.reload().then(
          () => logger.info({ tokens: tokens.path }, 'token file reloaded'),
          (err: unknown) => logger.error({ tokens: tokens.path, err: (err as Error).message }, 'token file reload failed: the previous tokens stay in force'),
        )
      })
    } else {
      process.on('SIGHUP', () => logger.info('SIGHUP: no token file to reload'))
      authorizer = new OpenAuthorizer()
      logger.warn({ auth: 'open' }, 'NO TOKEN FILE: this gateway is OPEN, anyone who can reach it may read and write every key (start it with --tokens FILE)')
    }
    const gateway = await Gateway.start({
      nodes: config.nodes,
      host: config.listen.host,
      port: config.listen.port,
      authorizer,
      mountHttp: (backend, observe) => createHttpHandler({ backend, authorizer, logger, observe }),
      requestTimeoutMs: config.requestTimeoutMs,
      logger,
    })
    const { host, port } = gateway.address!
    const shown = host.includes(':') ? `[${host}]` : host
    logger.info({ http: `http://${shown}:${port}`, ws: `ws://${shown}:${port}/v1/ws`, nodes: config.nodes, auth: authorizer.open ? 'open' : 'tokens' }, 'ready')
    void gateway.pool.ready(10_000).then((ok) => {
      if (!ok) logger.warn({ nodes: config.nodes }, 'no node reachable yet: requests wait and retry within their deadline')
    })
    return gateway
  })
}
