// The node's configuration from flags and environment (flags win).
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { parseArgs } from 'node:util'
import { ConfigError, hostPort, logLevelOf } from '@weft/protocol/server'

export { ConfigError }

export const HELP = `weft node — run one node of a weft cluster

Usage:
  node apps/node/src/main.ts [options]      start a node
  node apps/node/src/main.ts keygen         print a new cluster secret (swarm key) to stdout

Options (each also read from the environment variable shown):
  --name NAME             node name shown in membership            WEFT_NODE_NAME   (hostname)
  --data-dir DIR          where the store and identity key live    WEFT_DATA_DIR    (./data/node)
  --listen MULTIADDR      libp2p listen address(es), comma-sep.    WEFT_LISTEN      (/ip4/0.0.0.0/tcp/7400)
  --api HOST:PORT         WebSocket + HTTP API (/v1/ws, /healthz,  WEFT_API         (127.0.0.1:7410)
                          /metrics)
  --advertise-api URL     the API URL gateways use to reach us     WEFT_ADVERTISE_API (ws://<api>/v1/ws)
  --peers LIST            peers to join, comma-separated           WEFT_PEERS       (none)
                          multiaddrs (/ip4 or /dns4, /p2p/<id>
                          optional) or host:port; the other
                          members are learnt from the cluster
  --swarm-key FILE        the cluster secret (libp2p private       WEFT_SWARM_KEY_FILE
                          network key, from 'keygen')              or WEFT_SWARM_KEY (the key itself)
  --anti-entropy-ms MS    time between anti-entropy rounds         WEFT_ANTI_ENTROPY_MS (5000)
  --log-level LEVEL       debug, info, warn, error                 WEFT_LOG_LEVEL   (info)
  --log-pretty            human-readable logs instead of JSON      WEFT_LOG_PRETTY=1
  --help                  this text

Test hook: WEFT_TEST_DROP_GOSSIP=0..1 ignores that share of inbound gossip
(anti-entropy must then repair); never set it in production.

Only nodes holding the same swarm key can connect. A node's identity (its
peer id) is kept in <data-dir>/identity.key, so a restarted node is the same peer.
`

export interface NodeConfig {
  readonly name: string
  readonly dataDir: string
  readonly listen: string[]
  readonly api: { host: string; port: number }
  readonly advertiseApi?: string
  readonly peers: string[]
  readonly swarmKey: Uint8Array
  readonly antiEntropyMs: number
  readonly logLevel: string
  readonly logPretty: boolean
  /** Test hook (WEFT_TEST_DROP_GOSSIP): share of inbound gossip ignored, as if lost. */
  readonly dropGossipRatio?: number
}

export type Command = { command: 'help' } | { command: 'keygen' } | { command: 'run'; config: NodeConfig }

export function parseCommand(argv: string[], env: NodeJS.ProcessEnv): Command {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        name: { type: 'string' },
        'data-dir': { type: 'string' },
        listen: { type: 'string' },
        api: { type: 'string' },
        'advertise-api': { type: 'string' },
        peers: { type: 'string' },
        'swarm-key': { type: 'string' },
        'anti-entropy-ms': { type: 'string' },
        'log-level': { type: 'string' },
        'log-pretty': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help) return { command: 'help' }
  if (positionals[0] === 'keygen') return { command: 'keygen' }
  if (positionals.length > 0) throw new ConfigError(`unknown command: ${positionals[0]}`)

  const list = (text: string | undefined) => (text ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  const api = hostPort(values.api ?? env.WEFT_API ?? '127.0.0.1:7410', '--api')
  const antiEntropyMs = Number(values['anti-entropy-ms'] ?? env.WEFT_ANTI_ENTROPY_MS ?? 5000)
  if (!Number.isFinite(antiEntropyMs) || antiEntropyMs < 100) throw new ConfigError('--anti-entropy-ms must be at least 100')
  return {
    command: 'run',
    config: {
      name: values.name ?? env.WEFT_NODE_NAME ?? hostname(),
      dataDir: values['data-dir'] ?? env.WEFT_DATA_DIR ?? './data/node',
      listen: list(values.listen ?? env.WEFT_LISTEN ?? '/ip4/0.0.0.0/tcp/7400'),
      api,
      ...((values['advertise-api'] ?? env.WEFT_ADVERTISE_API) !== undefined && { advertiseApi: values['advertise-api'] ?? env.WEFT_ADVERTISE_API }),
      peers: list(values.peers ?? env.WEFT_PEERS),
      swarmKey: readSwarmKeySetting(values['swarm-key'] ?? env.WEFT_SWARM_KEY_FILE, env.WEFT_SWARM_KEY),
      antiEntropyMs,
      logLevel: logLevelOf(values['log-level'] ?? env.WEFT_LOG_LEVEL ?? 'info'),
      logPretty: values['log-pretty'] ?? env.WEFT_LOG_PRETTY === '1',
      ...(env.WEFT_TEST_DROP_GOSSIP !== undefined && { dropGossipRatio: Number(env.WEFT_TEST_DROP_GOSSIP) }),
    },
  }
}

function readSwarmKeySetting(file: string | undefined, inline: string | undefined): Uint8Array {
  if (file) {
    try {
      return readFileSync(file)
    } catch (err) {
      throw new ConfigError(`cannot read swarm key ${file}: ${(err as Error).message}`)
    }
  }
  if (inline) return new TextEncoder().encode(inline.replace(/\\n/g, '\n'))
  throw new ConfigError('a cluster secret is required: --swarm-key FILE or WEFT_SWARM_KEY (make one with: keygen)')
}
