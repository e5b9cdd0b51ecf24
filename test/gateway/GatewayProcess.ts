// A gateway as its own OS process, for end-to-end tests: started from
// apps/gateway/src/main.ts as an operator would, stopped by PID.
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { WsTestClient } from '../support/WsTestClient.ts'

const MAIN = fileURLToPath(new URL('../../apps/gateway/src/main.ts', import.meta.url))

export interface GatewayProcessOptions {
  readonly nodes: string[]
  readonly port: number
  readonly host?: string
  readonly tokensFile?: string
  readonly extraArgs?: string[]
  readonly env?: Record<string, string>
}

export class GatewayProcess {
  readonly options: GatewayProcessOptions
  child: ChildProcess | undefined
  output = ''

  constructor(options: GatewayProcessOptions) {
    this.options = options
  }

  get host(): string {
    return this.options.host ?? '127.0.0.1'
  }

  get wsUrl(): string {
    return `ws://${this.host}:${this.options.port}/v1/ws`
  }

  get httpUrl(): string {
    return `http://${this.host}:${this.options.port}`
  }

  /** Starts the process and resolves at its 'ready' log line. */
  async start(timeoutMs = 15_000): Promise<void> {
    const o = this.options
    const args = [
      MAIN,
      '--nodes', o.nodes.join(','),
      '--listen', `${this.host}:${o.port}`,
      ...(o.tokensFile ? ['--tokens', o.tokensFile] : []),
      ...(o.extraArgs ?? []),
    ]
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_LOG_LEVEL: 'info', ...o.env } })
    this.child = child
    let buffer = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gateway not ready in ${timeoutMs} ms:\n${this.output.slice(-3000)}`)), timeoutMs)
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        this.output += chunk
        if (this.output.length > 400_000) this.output = this.output.slice(-200_000)
        buffer += chunk
        const lines = buffer.split('\n')
        buffer = lines.pop() ?? ''
        for (const line of lines) {
          if (!line.includes('"ready"')) continue
          try {
            if ((JSON.parse(line) as { msg?: string }).msg === 'ready') {
              clearTimeout(timer)
              resolve()
            }
          } catch {
            // not a JSON line
          }
        }
      })
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk))
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`gateway exited (${code ?? signal}) before ready:\n${this.output.slice(-3000)}`))
      })
    })
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    const code = await exited
    clearTimeout(timer)
    return code
  }

  client(): Promise<WsTestClient> {
    return WsTestClient.connect(this.wsUrl)
  }

  async health(): Promise<{ status: string; nodes: number; [field: string]: unknown }> {
    return (await (await fetch(`${this.httpUrl}/healthz`)).json()) as { status: string; nodes: number }
  }
}
