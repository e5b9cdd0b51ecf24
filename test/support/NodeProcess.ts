// One weft node as its own OS process, for integration tests: started from
// apps/node/src/main.ts exactly as an operator would, stopped by PID.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WsTestClient } from './WsTestClient.ts'

const MAIN = fileURLToPath(new URL('../../apps/node/src/main.ts', import.meta.url))

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, host, () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

export interface NodeProcessOptions {
  name: string
  dataDir: string
  swarmKeyFile: string
  host?: string
  p2pPort: number
  apiPort: number
  peers?: string[]
  /** Prefix for the command, e.g. ['ip', 'netns', 'exec', 'ns1']. */
  wrapper?: string[]
  env?: Record<string, string>
  extraArgs?: string[]
}

export interface ReadyInfo {
  peerId: string
  addresses: string[]
  api: string
}

export class NodeProcess {
  readonly options: NodeProcessOptions
  child: ChildProcess | undefined
  ready: ReadyInfo | undefined
  output = ''

  constructor(options: NodeProcessOptions) {
    this.options = options
  }

  get name(): string {
    return this.options.name
  }

  get host(): string {
    return this.options.host ?? '127.0.0.1'
  }

  get wsUrl(): string {
    return `ws://${this.host}:${this.options.apiPort}/v1/ws`
  }

  get httpUrl(): string {
    return `http://${this.host}:${this.options.apiPort}`
  }

  /** The address other nodes use to reach this one (fixed port, known peer id). */
  get multiaddr(): string {
    if (!this.ready) throw new Error(`${this.name} has not started`)
    return `/ip4/${this.host}/tcp/${this.options.p2pPort}/p2p/${this.ready.peerId}`
  }

  async start(timeoutMs = 20_000): Promise<ReadyInfo> {
    const o = this.options
    const args = [
      MAIN,
      '--name', o.name,
      '--data-dir', o.dataDir,
      '--swarm-key', o.swarmKeyFile,
      '--listen', `/ip4/${this.host}/tcp/${o.p2pPort}`,
      '--api', `${this.host}:${o.apiPort}`,
      ...(o.peers && o.peers.length > 0 ? ['--peers', o.peers.join(',')] : []),
      ...(o.extraArgs ?? []),
    ]
    const command = o.wrapper ? [...o.wrapper, process.execPath, ...args] : [process.execPath, ...args]
    const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_LOG_LEVEL: 'info', ...o.env } })
    this.child = child
    this.ready = undefined
    let buffer = ''
    const ready = new Promise<ReadyInfo>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${o.name} not ready in ${timeoutMs} ms:\n${this.output.slice(-3000)}`)), timeoutMs)
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        this.output += chunk
        if (this.output.length > 200_000) this.output = this.output.slice(-100_000)
        buffer += chunk
        const lines = buffer.split('\n')
        buffer = lines.pop() ?? ''
        for (const line of lines) {
          if (!line.includes('"ready"')) continue
          try {
            const entry = JSON.parse(line) as { msg?: string } & ReadyInfo
            if (entry.msg === 'ready') {
              clearTimeout(timer)
              resolve({ peerId: entry.peerId, addresses: entry.addresses, api: entry.api })
            }
          } catch {
            // not a JSON line
          }
        }
      })
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk))
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${o.name} exited (${code ?? signal}) before ready:\n${this.output.slice(-3000)}`))
      })
    })
    this.ready = await ready
    return this.ready
  }

  /** Stops the process by PID: SIGKILL for a crash, SIGTERM for a clean stop. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    await exited
    clearTimeout(timer)
  }

  client(): Promise<WsTestClient> {
    return WsTestClient.connect(this.wsUrl)
  }
}

/** Processes and temp dirs of one test, all removed by `cleanup()` (call it in afterEach). */
export class TestCluster {
  readonly nodes: NodeProcess[] = []
  readonly clients: WsTestClient[] = []
  root = ''
  swarmKeyFile = ''

  async init(swarmKey: string): Promise<void> {
    this.root = await mkdtemp(join(tmpdir(), 'weft-cluster-'))
    this.swarmKeyFile = join(this.root, 'swarm.key')
    await writeFile(this.swarmKeyFile, swarmKey, { mode: 0o600 })
  }

  async add(name: string, options: Partial<NodeProcessOptions> = {}): Promise<NodeProcess> {
    const node = new NodeProcess({
      name,
      dataDir: join(this.root, name),
      swarmKeyFile: this.swarmKeyFile,
      p2pPort: await freePort(),
      apiPort: await freePort(),
      ...options,
    })
    this.nodes.push(node)
    return node
  }

  /** Starts n nodes, each told of the ones before it. */
  async startNodes(n: number, prefix = 'node'): Promise<NodeProcess[]> {
    const started: NodeProcess[] = []
    for (let i = 0; i < n; i++) {
      const node = await this.add(`${prefix}${i + 1}`, { peers: started.map((s) => s.multiaddr) })
      await node.start()
      started.push(node)
    }
    return started
  }

  async client(node: NodeProcess): Promise<WsTestClient> {
    const client = await node.client()
    this.clients.push(client)
    return client
  }

  async cleanup(): Promise<void> {
    await Promise.allSettled(this.clients.splice(0).map((c) => c.close()))
    await Promise.allSettled(this.nodes.map((n) => n.stop('SIGKILL')))
    if (this.root) await rm(this.root, { recursive: true, force: true })
  }
}
