// `npm start`: three weft nodes as separate processes on this machine, data and
// a generated cluster secret under ./data (reused by the next start). Ctrl-C
// stops them all.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateSwarmKey } from '@weft/node'

const NODE_MAIN = fileURLToPath(new URL('../../node/src/main.ts', import.meta.url))
const dataDir = resolve(process.env.WEFT_DATA ?? 'data')
const nodes = [1, 2, 3].map((i) => ({ name: `node${i}`, p2p: 7400 + i, api: 7410 + i }))

mkdirSync(dataDir, { recursive: true })
const swarmKeyFile = join(dataDir, 'swarm.key')
if (!existsSync(swarmKeyFile)) writeFileSync(swarmKeyFile, generateSwarmKey(), { mode: 0o600 })
readFileSync(swarmKeyFile)

const children: ChildProcess[] = []
let stopping = false

function startNode(node: (typeof nodes)[number], peers: string[]): Promise<string> {
  const child = spawn(
    process.execPath,
    [NODE_MAIN, '--name', node.name, '--data-dir', join(dataDir, node.name), '--swarm-key', swarmKeyFile, '--listen', `/ip4/127.0.0.1/tcp/${node.p2p}`, '--api', `127.0.0.1:${node.api}`, ...(peers.length ? ['--peers', peers.join(',')] : [])],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  children.push(child)
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${node.name} exited (${code ?? signal}); stopping the cluster`)
      stop()
    }
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
          if (entry.msg === 'ready' && entry.peerId) resolvePeer(`/ip4/127.0.0.1/tcp/${node.p2p}/p2p/${entry.peerId}`)
          if ((entry.level ?? 0) >= 40 || process.env.WEFT_VERBOSE) console.log(`[${node.name}] ${line}`)
        } catch {
          console.log(`[${node.name}] ${line}`)
        }
      }
    })
    child.once('exit', () => reject(new Error(`${node.name} did not start`)))
  })
}

function stop(): void {
  if (stopping) return
  stopping = true
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
  setTimeout(() => process.exit(0), 5000).unref()
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r))))).then(() => process.exit(0), () => process.exit(1))
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

const peers: string[] = []
try {
  for (const node of nodes) peers.push(await startNode(node, [...peers]))
} catch (err) {
  console.error(String(err))
  stop()
}
console.log(`
weft: a local cluster of ${nodes.length} nodes is running (data in ${dataDir}).
${nodes.map((n) => `  ${n.name}: ws://127.0.0.1:${n.api}/v1/ws   http://127.0.0.1:${n.api}/healthz   /metrics`).join('\n')}
Clients speak msgpack frames over WebSocket (docs/PROTOCOL.md). Ctrl-C stops the cluster.
`)
