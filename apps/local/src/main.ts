// `npm start`: three weft nodes and a gateway as separate processes on this
// machine, data and a generated cluster secret under ./data (reused by the
// next start). Ctrl-C (or a SIGTERM to npm or to this process) stops them all.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateSwarmKey, parseSwarmKey } from '@weft/node'

const NODE_MAIN = fileURLToPath(new URL('../../node/src/main.ts', import.meta.url))
const GATEWAY_MAIN = fileURLToPath(new URL('../../gateway/src/main.ts', import.meta.url))
const GATEWAY = { host: '127.0.0.1', port: 7420 }
const dataDir = resolve(process.env.WEFT_DATA ?? 'data')
const nodes = [1, 2, 3].map((i) => ({ name: `node${i}`, p2p: 7400 + i, api: 7410 + i }))

mkdirSync(dataDir, { recursive: true })
const swarmKeyFile = join(dataDir, 'swarm.key')
if (!existsSync(swarmKeyFile)) writeFileSync(swarmKeyFile, generateSwarmKey(), { mode: 0o600 })
try {
  parseSwarmKey(readFileSync(swarmKeyFile))
} catch (err) {
  console.error(`weft: ${swarmKeyFile}: ${(err as Error).message}\n(delete it, and the next npm start makes a new one)`)
  process.exit(1)
}

const children: ChildProcess[] = []
let stopping = false
/** Every process said 'ready'. */
let started = false

function startNode(node: (typeof nodes)[number], peers: string[]): Promise<string> {
  return startProcess(node.name, [NODE_MAIN, '--name', node.name, '--data-dir', join(dataDir, node.name), '--swarm-key', swarmKeyFile, '--listen', `/ip4/127.0.0.1/tcp/${node.p2p}`, '--api', `127.0.0.1:${node.api}`, ...(peers.length ? ['--peers', peers.join(',')] : [])], (entry) =>
    entry.peerId ? `/ip4/127.0.0.1/tcp/${node.p2p}/p2p/${entry.peerId}` : undefined,
  )
}

/** Starts one process and resolves with what its 'ready' log line says. */
function startProcess(name: string, args: string[], onReady: (entry: { peerId?: string }) => string | undefined): Promise<string> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  child.on('exit', (code, signal) => {
    if (stopping) return
    // Once the cluster is up, a node may go (to watch the others carry on); the gateway may not.
    if (started && name !== 'gateway' && children.some((c) => c.exitCode === null && c.signalCode === null)) {
      console.error(`weft: ${name} exited (${code ?? signal}); the others keep running. Ctrl-C stops them; the next npm start starts all again.`)
      return
    }
    console.error(`weft: ${name} exited (${code ?? signal}); stopping the cluster`)
    stop(1)
  })
  return new Promise((resolvePeer, reject) => {
    let buffer = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk
      const lines = buffer.split('\n')
      buffer = lines.pop() ?? ''
      for (const line of lines) {
        try {
          const entry = JSON.parse(line) as { msg?: string; level?: number; peerId?: string }
          if (entry.msg === 'ready') resolvePeer(onReady(entry) ?? '')
          if ((entry.level ?? 0) >= 40 || process.env.WEFT_VERBOSE) console.log(`[${name}] ${readable(entry)}`)
        } catch {
          console.log(`[${name}] ${line}`)
        }
      }
    })
    child.once('exit', () => reject(new Error(`${name} did not start`)))
  })
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }

/** A log line for people: `WARN message {other fields}` (the processes themselves log JSON). */
function readable(entry: Record<string, unknown>): string {
  const { level, time: _time, msg, node: _node, gateway: _gateway, ...fields } = entry
  const rest = Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : ''
  return `${LEVELS[level as number] ?? String(level)} ${String(msg)}${rest}`
}

/** Stops every process, then exits with `exitCode` (1: the cluster could not start or lost its gateway). */
function stop(exitCode = 0): void {
  if (stopping) return
  stopping = true
  console.log('weft: stopping the nodes and the gateway…')
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
  setTimeout(() => process.exit(exitCode), 5000).unref()
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r))))).then(
    () => {
      console.log(`weft: stopped; the data stays in ${dataDir} for the next npm start`)
      process.exit(exitCode)
    },
    () => process.exit(1),
  )
}
process.on('SIGINT', () => stop())
process.on('SIGTERM', () => stop())
// `kill <npm's pid>` ends npm and its shell but not us: stop when our parent goes.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) stop()
}, 500).unref()

const peers: string[] = []
try {
  for (const node of nodes) peers.push(await startNode(node, [...peers]))
  await startProcess('gateway', [GATEWAY_MAIN, '--nodes', nodes.map((n) => `ws://127.0.0.1:${n.api}/v1/ws`).join(','), '--listen', `${GATEWAY.host}:${GATEWAY.port}`], () => undefined)
  started = true
} catch (err) {
  console.error(String(err))
  stop(1)
}
const gateway = `${GATEWAY.host}:${GATEWAY.port}`
if (started) console.log(`
weft: a local cluster is running: ${nodes.length} nodes and a gateway (data in ${dataDir}).

  gateway    ws://${gateway}/v1/ws   http://${gateway}/v1/...   http://${gateway}/healthz
${nodes.map((n) => `  ${n.name}      ws://127.0.0.1:${n.api}/v1/ws   http://127.0.0.1:${n.api}/healthz`).join('\n')}

Try it:
  export WEFT_URL=ws://${gateway}/v1/ws
  npx weft set deployments/api '{"image":"api:1","replicas":2}' --message "first deploy"
  npx weft history deployments/api
  npx weft status                  # the nodes, their state and the convergence lag
  curl -s http://${gateway}/v1/keys/deployments/api

The gateway has no token file here, so it is open to this machine. Ctrl-C stops everything.
`)
