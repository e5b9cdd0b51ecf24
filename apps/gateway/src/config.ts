// The gateway's configuration from flags and environment (flags win).
import { parseArgs } from 'node:util'
import { ConfigError, hostPort, logLevelOf } from '@weft/protocol/server'

export { ConfigError }

export const HELP = `weft gateway — one address for clients of a weft cluster

Routes each request to a node (the same node for the same key), fails over
when a node dies, retries writes idempotently, and keeps watches going.
Serves the node WebSocket protocol at /v1/ws, the REST and crush-compatible
HTTP APIs, /healthz, /metrics and /v1/cluster/members.

Usage:
  node apps/gateway/src/main.ts [options]

Options (each also read from the environment variable shown):
  --nodes LIST              node API URLs to start from, comma-separated  WEFT_NODES
                            (ws://host:port/v1/ws, or host:port); the      (ws://127.0.0.1:7410/v1/ws)
                            rest of the cluster is learnt from them
  --listen HOST:PORT        where clients connect (WebSocket + HTTP)       WEFT_GATEWAY_LISTEN (127.0.0.1:7420)
  --tokens FILE             token file: bearer tokens and their grants     WEFT_TOKENS_FILE
                            (docs/HTTP.md); SIGHUP re-reads it; without
                            one the gateway is OPEN to anyone who can
                            reach it
  --request-timeout-ms MS   deadline of a request, retries included        WEFT_REQUEST_TIMEOUT_MS (10000)
  --log-level LEVEL         debug, info, warn, error                       WEFT_LOG_LEVEL (info)
  --log-pretty              human-readable logs instead of JSON            WEFT_LOG_PRETTY=1
  --help                    this text

Examples:
  node apps/gateway/src/main.ts --nodes 10.0.0.1:7410,10.0.0.2:7410 --listen 0.0.0.0:7420
  WEFT_NODES=ws://node1:7410/v1/ws node apps/gateway/src/main.ts --tokens /etc/weft/tokens.json
`

export interface GatewayConfig {
  readonly nodes: string[]
  readonly listen: { host: string; port: number }
  readonly tokensFile?: string
  readonly requestTimeoutMs: number
  readonly logLevel: string
  readonly logPretty: boolean
}

export type Command = { command: 'help' } | { command: 'run'; config: GatewayConfig }

export function parseCommand(argv: string[], env: NodeJS.ProcessEnv): Command {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        nodes: { type: 'string' },
        listen: { type: 'string' },
        tokens: { type: 'string' },
        'request-timeout-ms': { type: 'string' },
        'log-level': { type: 'string' },
        'log-pretty': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  const { values } = parsed
  if (values.help) return { command: 'help' }
  const nodes = (values.nodes ?? env.WEFT_NODES ?? 'ws://127.0.0.1:7410/v1/ws')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(nodeUrl)
  if (nodes.length === 0) throw new ConfigError('--nodes needs at least one node URL')
  const requestTimeoutMs = Number(values['request-timeout-ms'] ?? env.WEFT_REQUEST_TIMEOUT_MS ?? 10_000)
  if (!Number.isFinite(requestTimeoutMs) || requestTimeoutMs < 100) throw new ConfigError('--request-timeout-ms must be at least 100')
  const tokensFile = values.tokens ?? env.WEFT_TOKENS_FILE
  return {
    command: 'run',
    config: {
      nodes,
      listen: hostPort(values.listen ?? env.WEFT_GATEWAY_LISTEN ?? '127.0.0.1:7420', '--listen'),
      ...(tokensFile !== undefined && tokensFile !== '' && { tokensFile }),
      requestTimeoutMs,
      logLevel: logLevelOf(values['log-level'] ?? env.WEFT_LOG_LEVEL ?? 'info'),
      logPretty: values['log-pretty'] ?? env.WEFT_LOG_PRETTY === '1',
    },
  }
}

/** `ws://host:port/v1/ws` as given, or built from `host:port`. */
function nodeUrl(text: string): string {
  let url = text
  if (!/^wss?:\/\//.test(text)) {
    const { host, port } = hostPort(text, '--nodes')
    url = `ws://${host.includes(':') ? `[${host}]` : host}:${port}/v1/ws`
  }
  try {
    new URL(url)
  } catch {
    throw new ConfigError(`--nodes: not a URL: ${text}`)
  }
  return url
}

