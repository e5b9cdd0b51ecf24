// A minimal RESP2 client over node:net for bench:compare: commands as arrays of
// bulk strings, replies matched in order (pipelining allowed), nothing else.
import { Socket, connect } from 'node:net'

export type RespReply = string | number | Buffer | null | RespReply[] | Error

interface Waiter {
  readonly resolve: (reply: RespReply) => void
  readonly reject: (err: Error) => void
}

const CRLF = Buffer.from('\r\n')

/** Encodes a command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, CRLF)
  }
  return Buffer.concat(parts)
}

/**
 * Parses one reply starting at `at`; returns it and the offset after it, or
 * undefined when the buffer does not hold a whole reply yet.
 */
export function parseReply(buf: Buffer, at: number): { reply: RespReply; next: number } | undefined {
  if (at >= buf.length) return undefined
  const lineEnd = buf.indexOf(CRLF, at)
  if (lineEnd === -1) return undefined
  const type = buf[at]
  const line = buf.toString('latin1', at + 1, lineEnd)
  const after = lineEnd + 2
  switch (type) {
    case 0x2b: // +
      return { reply: line, next: after }
    case 0x2d: // -
      return { reply: new Error(line), next: after }
    case 0x3a: // :
      return { reply: Number(line), next: after }
    case 0x24: {
      // $
      const length = Number(line)
      if (length < 0) return { reply: null, next: after }
      if (buf.length < after + length + 2) return undefined
      return { reply: buf.subarray(after, after + length), next: after + length + 2 }
    }
    case 0x2a: {
      // *
      const count = Number(line)
      if (count < 0) return { reply: null, next: after }
      const items: RespReply[] = []
      let next = after
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, next)
        if (item === undefined) return undefined
        items.push(item.reply)
        next = item.next
      }
      return { reply: items, next }
    }
    default:
      throw new Error(`RESP: unexpected reply type byte ${type}`)
  }
}

export class RespClient {
  readonly #socket: Socket
  readonly #waiters: Waiter[] = []
  #head = 0
  #buffer: Buffer = Buffer.alloc(0)
  #error: Error | undefined

  private constructor(socket: Socket) {
    this.#socket = socket
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('error', (err) => this.#fail(err))
    socket.on('close', () => this.#fail(new Error('RESP: connection closed')))
  }

  static connect(port: number, host = '127.0.0.1', timeoutMs = 5000): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`RESP: no connection to ${host}:${port} in ${timeoutMs} ms`))
      }, timeoutMs)
      socket.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.removeAllListeners('error')
        resolve(new RespClient(socket))
      })
    })
  }

  /** Sends a command; resolves with its reply (an error reply rejects). */
  command(args: readonly (string | Buffer)[]): Promise<RespReply> {
    if (this.#error) return Promise.reject(this.#error)
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject })
      this.#socket.write(encodeCommand(args))
    })
  }

  close(): void {
    this.#socket.destroy()
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    let at = 0
    for (;;) {
      const parsed = parseReply(this.#buffer, at)
      if (parsed === undefined) break
      at = parsed.next
      const waiter = this.#waiters[this.#head++]
      if (this.#head > 1024 && this.#head * 2 > this.#waiters.length) {
        this.#waiters.splice(0, this.#head)
        this.#head = 0
      }
      if (waiter === undefined) continue
      if (parsed.reply instanceof Error) waiter.reject(parsed.reply)
      else waiter.resolve(parsed.reply)
    }
    // Copy the unparsed tail so the chunk it came from can be freed.
    this.#buffer = at >= this.#buffer.length ? Buffer.alloc(0) : Buffer.from(this.#buffer.subarray(at))
  }

  #fail(err: Error): void {
    if (this.#error) return
    this.#error = err
    for (let i = this.#head; i < this.#waiters.length; i++) this.#waiters[i]!.reject(err)
    this.#waiters.length = 0
    this.#head = 0
  }
}
