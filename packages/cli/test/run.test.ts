// run() in-process: help for every command, usage errors, global options
// anywhere, and talking to a fake server (URL, token, JSON errors, exit codes).
import { afterEach, describe, expect, it } from 'vitest'
import { FakeServer } from '../../client/test/FakeServer.ts'
import { COMMANDS } from '../src/commands.ts'
import type { CliIo } from '../src/Context.ts'
import { run } from '../src/run.ts'

let server: FakeServer | undefined

afterEach(async () => {
  await server?.stop()
  server = undefined
})

interface Result {
  code: number
  stdout: string
  stderr: string
}

async function weft(args: string[], env: Record<string, string> = {}, stdin = '', signal?: AbortSignal): Promise<Result> {
  let stdout = ''
  let stderr = ''
  const io: CliIo = {
    env,
    stdout: { write: (data) => (stdout += typeof data === 'string' ? data : Buffer.from(data).toString()), isTTY: false },
    stderr: { write: (data) => (stderr += String(data)), isTTY: false },
    readStdin: async () => new TextEncoder().encode(stdin),
    readFile: async (path) => {
      throw new Error(`ENOENT: no such file, open '${path}'`)
    },
    signal,
  }
  const code = await run(args, io)
  return { code, stdout, stderr }
}

describe('weft help and usage', () => {
  it('prints help with examples and exit codes for weft and for every command', async () => {
    const main = await weft(['--help'])
    expect(main.code).toBe(0)
    for (const command of COMMANDS) expect(main.stdout).toContain(`  ${command.name} `)
    expect(main.stdout).toMatch(/Exit codes:[\s\S]*5 +unreachable/)
    for (const command of COMMANDS) {
      for (const args of [[command.name, '--help'], ['help', command.name], [command.name, '-h']]) {
        const help = await weft(args)
        expect(help.code, args.join(' ')).toBe(0)
        expect(help.stdout).toContain(`weft ${command.name}: `)
        expect(help.stdout).toContain('Examples:')
        expect(help.stdout).toContain('Exit codes:')
      }
    }
  })

  it('answers a bad command line with exit 2 and a pointer to help', async () => {
    const cases: [string[], RegExp][] = [
      [[], /Usage: weft <command>/],
      [['frob'], /no command "frob"/],
      [['get'], /missing KEY/],
      [['get', 'a', 'b'], /too many arguments/],
      [['get', 'k', '--bogus'], /Unknown option '--bogus'/],
      [['get', 'k', '--index', '1', '--at', '5m'], /at most one/],
      [['set', 'k', 'not json'], /--string/],
      [['set', 'k'], /missing the value/],
      [['set', 'k', '--file', '/nope.json'], /cannot read \/nope.json/],
      [['revert', 'k'], /which revision/],
      [['merge', 'k', 'f', '--strategy', 'coin'], /--strategy must be one of/],
      [['watch'], /KEY or --prefix/],
      [['get', 'k', '--url', 'http://x'], /ws:\/\//],
      [['get', 'k', '--timeout', 'soon'], /--timeout must be a positive integer/],
      [['help', 'frob'], /no command/],
    ]
    for (const [args, message] of cases) {
      const result = await weft(args)
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr + result.stdout, args.join(' ')).toMatch(message)
    }
  })
})

describe('weft against a server', () => {
  it('takes the URL and token from the environment, global options anywhere', async () => {
    server = await FakeServer.start()
    server.handlers.ping = () => ({ result: { node: 'n1', time: Date.now() } })
    const viaEnv = await weft(['ping'], { WEFT_URL: server.url, WEFT_TOKEN: 'tok' })
    expect(viaEnv.code).toBe(0)
    expect(viaEnv.stdout).toMatch(/^n1: [\d.]+ ms\n$/)
    expect(server.last!.request.headers.authorization).toBe('Bearer tok')
    const viaFlags = await weft(['--json', '--url', server.url, 'ping', '--token', 'other'])
    expect(viaFlags.code).toBe(0)
    expect(JSON.parse(viaFlags.stdout)).toMatchObject({ node: 'n1', rttMs: expect.any(Number) })
    expect(new URL(server.last!.request.url!, 'http://h').searchParams.get('token')).toBe('other')
  })

  it('prints server errors with their code, as JSON with --json, and exits with the mapped code', async () => {
    server = await FakeServer.start()
    server.handlers.get = () => ({ error: { code: 'KEY_NOT_FOUND', message: 'no key k' } })
    server.handlers.set = () => ({ error: { code: 'FORBIDDEN', message: 'not yours' } })
    const missing = await weft(['get', 'k', '--url', server.url])
    expect(missing.code).toBe(3)
    expect(missing.stderr).toBe('error: KEY_NOT_FOUND: no key k\n')
    const json = await weft(['set', 'k', '1', '--url', server.url, '--json'])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: 'FORBIDDEN', message: 'not yours' } })
  })

  it('exits 5 when nothing answers: no server, or no answer in time', async () => {
    server = await FakeServer.start()
    server.handlers.get = () => undefined
    const silent = await weft(['get', 'k', '--url', server.url, '--timeout', '200'])
    expect(silent.code).toBe(5)
    expect(silent.stderr).toContain('TIMEOUT')
    const url = server.url
    await server.stop()
    server = undefined
    const none = await weft(['get', 'k', '--url', url, '--timeout', '2000'])
    expect(none.code).toBe(5)
    expect(none.stderr).toContain('UNAVAILABLE')
  })

  it('gives up a command on Ctrl-C with 130', async () => {
    server = await FakeServer.start()
    server.handlers.get = () => undefined
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 100)
    const started = Date.now()
    const result = await weft(['get', 'k', '--url', server.url], {}, '', controller.signal)
    expect(result.code).toBe(130)
    expect(result.stderr).toContain('interrupted')
    expect(Date.now() - started).toBeLessThan(3000)
  })

  it('tells how to retry a write that may have been applied', async () => {
    server = await FakeServer.start()
    server.handlers.set = () => undefined
    const result = await weft(['set', 'k', '1', '--url', server.url, '--timeout', '200'])
    expect(result.code).toBe(5)
    const requestId = server.framesOf('set')[0]!.requestId as string
    expect(result.stderr).toContain(`--request-id ${requestId}`)
    server.handlers.set = (frame) => ({ result: { key: 'k', fork: 'main', revision: { id: 'r1', index: 1, ts: Date.now(), node: 'n1', kind: 'set' }, echo: frame } })
    const retried = await weft(['set', 'k', '1', '--url', server.url, '--request-id', requestId])
    expect(retried.code).toBe(0)
    expect(server.framesOf('set')[1]!.requestId).toBe(requestId)
  })
})
