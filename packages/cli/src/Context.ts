// What a command gets to work with: its arguments and options, the output, the
// process's streams and environment, and a client connected on first use.
import type { WeftClient } from '@weft/client'
import type { Output, Stream } from './Output.ts'
import { UsageError } from './UsageError.ts'

export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdout: Stream
  readonly stderr: Stream
  readStdin(): Promise<Uint8Array>
  readFile(path: string): Promise<Uint8Array>
  /** Aborted on Ctrl-C / SIGTERM: long commands (watch) stop and exit 0. */
  readonly signal?: AbortSignal | undefined
}

export type OptionValues = Readonly<Record<string, string | boolean | undefined>>

export class Context {
  readonly command: string
  readonly args: readonly string[]
  readonly options: OptionValues
  readonly out: Output
  readonly io: CliIo
  readonly now: number
  readonly #connect: () => Promise<WeftClient>

  constructor(init: { command: string; args: readonly string[]; options: OptionValues; out: Output; io: CliIo; connect: () => Promise<WeftClient> }) {
    this.command = init.command
    this.args = init.args
    this.options = init.options
    this.out = init.out
    this.io = init.io
    this.now = Date.now()
    this.#connect = init.connect
  }

  client(): Promise<WeftClient> {
    return this.#connect()
  }

  string(name: string): string | undefined {
    const value = this.options[name]
    return typeof value === 'string' ? value : undefined
  }

  flag(name: string): boolean {
    return this.options[name] === true
  }

  /** The positional arguments, checked against how many the command takes. */
  positionals(min: number, max: number, names: string): string[] {
    if (this.args.length < min) throw new UsageError(`missing ${names}`, this.command)
    if (this.args.length > max) throw new UsageError(`too many arguments: ${this.args.slice(max).map((a) => JSON.stringify(a)).join(' ')}`, this.command)
    return [...this.args]
  }

  /** The write meta options: --author, --message, --request-id. */
  meta(): { author?: string; message?: string; requestId?: string } {
    return {
      ...(this.string('author') !== undefined && { author: this.string('author')! }),
      ...(this.string('message') !== undefined && { message: this.string('message')! }),
      ...(this.string('request-id') !== undefined && { requestId: this.string('request-id')! }),
    }
  }
}
