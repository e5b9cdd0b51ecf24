// The `weft` command as a user runs it (`node packages/cli/src/main.ts ...`
// with WEFT_URL) against one real node process: every command, --json output,
// values from arguments, files and stdin, and the exit codes.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type NodeProcess, TestCluster, freePort } from '../support/NodeProcess.ts'

const MAIN = fileURLToPath(new URL('../../packages/cli/src/main.ts', import.meta.url))
const swarmKey = () => `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`

let cluster: TestCluster
let node: NodeProcess
let scratch = ''
const children = new Set<ChildProcess>()

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'weft-cli-'))
  cluster = new TestCluster()
  await cluster.init(swarmKey())
  ;[node] = (await cluster.startNodes(1)) as [NodeProcess]
}, 30_000)

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await cluster.cleanup()
  if (scratch) await rm(scratch, { recursive: true, force: true })
}, 30_000)

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  bytes: Buffer
}

interface SpawnOptions {
  input?: string | Buffer
  /** Over the defaults (WEFT_URL, NO_COLOR=1); undefined removes a variable. */
  env?: Record<string, string | undefined>
  timeoutMs?: number
}

/** Starts `weft ARGS` as its own process; `done` resolves when it exits (killed by PID past its time limit). */
function start(args: string[], options: SpawnOptions = {}): { child: ChildProcess; done: Promise<Run>; stdoutSoFar: () => string; stderrSoFar: () => string } {
  const env: Record<string, string | undefined> = { ...process.env, WEFT_URL: node.wsUrl, NO_COLOR: '1', FORCE_COLOR: undefined, ...options.env }
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name]
  const child = spawn(process.execPath, [MAIN, ...args], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  children.add(child)
  const out: Buffer[] = []
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdin!.on('error', () => {})
  if (options.input !== undefined) child.stdin!.end(options.input)
  else child.stdin!.end()
  const done = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`weft ${args.join(' ')} did not finish in ${options.timeoutMs ?? 15_000} ms; stderr: ${stderr}`))
    }, options.timeoutMs ?? 15_000)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      children.delete(child)
      // 'exit' can come before the pipes drain.
      const finish = () => {
        const bytes = Buffer.concat(out)
        resolve({ code, signal, stdout: bytes.toString('utf8'), stderr, bytes })
      }
      if (child.stdout!.readableEnded) finish()
      else child.stdout!.once('end', finish)
    })
  })
  return { child, done, stdoutSoFar: () => Buffer.concat(out).toString('utf8'), stderrSoFar: () => stderr }
}

function weft(args: string[], options: SpawnOptions = {}): Promise<Run> {
  return start(args, options).done
}

async function json<T = Record<string, unknown>>(args: string[], options: SpawnOptions = {}): Promise<T> {
  const result = await weft([...args, '--json'], options)
  expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0)
  return JSON.parse(result.stdout) as T
}

interface Revision {
  id: string
  index: number
  kind: string
  author?: string
  message?: string
}

describe('weft CLI against a real node', () => {
  it('writes and reads: set from an argument, a file and stdin; get at revisions; keys; history; info; diff', async () => {
    const first = await json<{ revision: Revision }>(['set', 'cfg/api', '{"image":"api:1","replicas":2}', '-m', 'first', '--author', 'ana'])
    expect(first.revision).toMatchObject({ index: 1, kind: 'set', author: 'ana', message: 'first' })

    const file = join(scratch, 'api.json')
    await writeFile(file, JSON.stringify({ image: 'api:2', replicas: 2 }))
    const human = await weft(['set', 'cfg/api', '--file', file])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/^✓ set cfg\/api@main #2 \S+ set /)

    const piped = await weft(['set', 'cfg/web', '-'], { input: '{"image":"web:1"}\n' })
    expect(piped.code).toBe(0)
    const text = await weft(['set', 'motd', '-', '--string'], { input: 'hello\nworld' })
    expect(text.code).toBe(0)
    const blob = await weft(['set', 'blob', '-', '--bytes'], { input: Buffer.from([0, 1, 255]) })
    expect(blob.code).toBe(0)

    // get: the value on stdout (pipe-clean), the revision on stderr
    const got = await weft(['get', 'cfg/api'])
    expect(got.code).toBe(0)
    expect(JSON.parse(got.stdout)).toEqual({ image: 'api:2', replicas: 2 })
    expect(got.stderr).toMatch(/cfg\/api@main #2 /)
    expect((await json<{ value: unknown }>(['get', 'cfg/api', '--index', '1'])).value).toEqual({ image: 'api:1', replicas: 2 })
    expect((await json<{ value: unknown }>(['get', 'cfg/api', '--revision', first.revision.id])).value).toEqual({ image: 'api:1', replicas: 2 })
    expect((await json<{ revision: Revision }>(['get', 'cfg/api', '--at', 'now'])).revision.index).toBe(2)
    expect((await json<{ value: unknown }>(['get', 'cfg/web'])).value).toEqual({ image: 'web:1' })
    expect((await weft(['get', 'motd', '--raw'])).stdout).toBe('hello\nworld\n')
    expect((await json<{ value: unknown }>(['get', 'blob'])).value).toEqual({ $bytes: 'AAH/' })
    expect((await weft(['get', 'blob', '--raw'])).bytes).toEqual(Buffer.from([0, 1, 255]))

    // keys, paged by --limit
    const keys = await json<{ keys: { key: string; revisionCount: number }[]; next?: string }>(['keys', 'cfg/'])
    expect(keys.keys.map((k) => [k.key, k.revisionCount])).toEqual([
      ['cfg/api', 2],
      ['cfg/web', 1],
    ])
    expect(keys.next).toBeUndefined()
    const limited = await json<{ keys: { key: string }[]; next?: string }>(['keys', '--limit', '1'])
    expect(limited.keys).toHaveLength(1)
    expect(limited.next).toBe(limited.keys[0]!.key)
    const table = await weft(['keys', 'cfg/'])
    expect(table.stdout.split('\n')[0]).toMatch(/^KEY\s+REVISIONS\s+HEAD$/)
    expect(table.stdout).toMatch(/cfg\/api\s+2\s+/)

    // history with patches; info; diff (default: the last change)
    const history = await json<{ revisions: (Revision & { patch?: unknown[] })[] }>(['history', 'cfg/api', '--patches'])
    expect(history.revisions.map((r) => r.index)).toEqual([2, 1])
    expect(history.revisions[0]!.patch).toEqual([{ op: 'change', path: ['image'], before: 'api:1', after: 'api:2' }])
    const log = await weft(['history', 'cfg/api', '--values'])
    expect(log.stdout).toMatch(/#2 .* set .*\n {4}\{"image": "api:2", "replicas": 2\}\n#1 .* by ana: first/)
    const info = await json<{ revisionCount: number; forks: { fork: string }[] }>(['info', 'cfg/api'])
    expect(info).toMatchObject({ revisionCount: 2, forks: [{ fork: 'main' }] })
    expect((await weft(['info', 'cfg/api'])).stdout).toMatch(/revisions\s+2/)
    const diff = await weft(['diff', 'cfg/api'])
    expect(diff.code).toBe(0)
    expect(diff.stdout).toBe('~ image: "api:1" → "api:2"\n')
    const diffJson = await json<{ changes: unknown[] }>(['diff', 'cfg/api', '@1', '@2'])
    expect(diffJson.changes).toEqual([{ op: 'change', path: ['image'], before: 'api:1', after: 'api:2' }])
  }, 90_000)

  it('forks, merges (with --strategy), reverts and deletes, for keys and prefixes', async () => {
    await json(['set', 'app/api', '{"image":"api:1","replicas":2}'])
    await json(['set', 'app/web', '{"image":"web:1"}'])
    const forked = await json<{ fork: string; revision: Revision }>(['fork', 'app/api', 'staging'])
    expect(forked).toMatchObject({ fork: 'staging', revision: { kind: 'fork' } })
    await json(['set', 'app/api', '{"image":"api:2","replicas":2}', '--fork', 'staging'])
    await json(['set', 'app/api', '{"image":"api:3","replicas":4}'])

    const diff = await json<{ changes: unknown[] }>(['diff', 'app/api', 'main', 'staging'])
    expect(diff.changes).toHaveLength(2)

    // strategy fail: exit 4, conflicts listed, nothing changed
    const refused = await weft(['merge', 'app/api', 'staging', '--strategy', 'fail'])
    expect(refused.code).toBe(4)
    expect(refused.stdout).toMatch(/PATH\s+OURS\s+THEIRS\s+WINNER\nimage\s+"api:3"\s+"api:2"/)
    expect(refused.stderr).toContain('error: MERGE_CONFLICT: ')
    const refusedJson = await weft(['merge', 'app/api', 'staging', '--strategy', 'fail', '--json'])
    expect(refusedJson.code).toBe(4)
    expect(JSON.parse(refusedJson.stderr)).toMatchObject({ error: { code: 'MERGE_CONFLICT', details: { conflicts: [{ path: ['image'] }] } } })
    expect((await json<{ value: unknown }>(['get', 'app/api'])).value).toEqual({ image: 'api:3', replicas: 4 })

    const merged = await json<{ revision: Revision; conflicts: unknown[] }>(['merge', 'app/api', 'staging', '--strategy', 'theirs', '-m', 'promote'])
    expect(merged.revision).toMatchObject({ kind: 'merge', message: 'promote' })
    expect(merged.conflicts).toHaveLength(1)
    expect((await json<{ value: unknown }>(['get', 'app/api'])).value).toEqual({ image: 'api:2', replicas: 4 })

    // prefix variants
    const forkAll = await json<{ results: { key: string; ok: boolean }[] }>(['fork', '--prefix', 'app/', 'canary'])
    expect(forkAll.results.map((r) => [r.key, r.ok])).toEqual([
      ['app/api', true],
      ['app/web', true],
    ])
    const again = await weft(['fork', '--prefix', 'app/', 'canary'])
    expect(again.code).toBe(4)
    expect(again.stdout).toMatch(/app\/api\s+FORK_EXISTS/)
    await json(['set', 'app/web', '{"image":"web:2"}', '--fork', 'canary'])
    const mergeAll = await weft(['merge', '--prefix', 'app/', 'canary'])
    expect(mergeAll.code).toBe(0)
    expect(mergeAll.stdout).toMatch(/app\/web\s+merged canary/)
    expect((await json<{ value: unknown }>(['get', 'app/web'])).value).toEqual({ image: 'web:2' })

    // revert and delete
    const reverted = await weft(['revert', 'app/web', '--index', '1', '-m', 'rollback'])
    expect(reverted.code).toBe(0)
    expect(reverted.stdout).toMatch(/^✓ reverted app\/web@main #\d+ .* revert .*: rollback\n$/)
    expect((await json<{ value: unknown }>(['get', 'app/web'])).value).toEqual({ image: 'web:1' })
    const deleted = await json<{ revision: Revision }>(['del', 'app/web', '-m', 'retired'])
    expect(deleted.revision.kind).toBe('delete')
    expect((await weft(['get', 'app/web'])).code).toBe(3)
    expect((await json<{ deleted: boolean }>(['get', 'app/web', '--index', '1'])).deleted).toBe(false)
  }, 90_000)

  it('exits with codes that mean something', async () => {
    const head = (await json<{ revision: Revision }>(['set', 'codes/k', '1'])).revision.id
    const cases: [string[], number, RegExp][] = [
      [['get', 'codes/k'], 0, /^codes\/k@main #1 /],
      [['get', 'codes/nothing'], 3, /KEY_NOT_FOUND/],
      [['get', 'codes/k', '--fork', 'nope'], 3, /(KEY|FORK)_NOT_FOUND/],
      [['get', 'codes/k', '--index', '99'], 3, /REVISION_NOT_FOUND/],
      [['set', 'codes/k', '2', '--if-head', 'none'], 4, /HEAD_MISMATCH/],
      [['set', 'codes/k', '2', '--if-head', `${head}x`], 4, /HEAD_MISMATCH/],
      [['set', 'codes/k', '2', '--fork', 'bad fork!'], 1, /INVALID_FORK/],
      [['set', 'codes/k', '{'], 2, /not valid JSON/],
      [['frob'], 2, /no command/],
      [['get', 'codes/k', '--url', `ws://127.0.0.1:${await freePort()}/v1/ws`], 5, /UNAVAILABLE/],
    ]
    for (const [args, code, stderr] of cases) {
      const result = await weft(args)
      expect(result.code, `weft ${args.join(' ')}: ${result.stderr}`).toBe(code)
      expect(result.stderr).toMatch(stderr)
    }
    const cas = await weft(['set', 'codes/k', '3', '--if-head', head])
    expect(cas.code).toBe(0)
  }, 90_000)

  it('watches a prefix: one JSON event per line, --count, and a clean stop on Ctrl-C with the cursor to resume from', async () => {
    const counted = start(['watch', '--prefix', 'live/', '--json', '--count', '3'])
    await waitFor(() => counted.stderrSoFar().includes('watching'), 10_000)
    for (let i = 1; i <= 4; i++) await json(['set', `live/${i}`, String(i)])
    const result = await counted.done
    expect(result.code).toBe(0)
    const events = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { key: string; value: unknown; cursor: string })
    expect(events.map((e) => [e.key, e.value])).toEqual([
      ['live/1', 1],
      ['live/2', 2],
      ['live/3', 3],
    ])
    expect(result.stderr).toContain(`resume with: --after ${events[2]!.cursor}`)

    // Resume from that cursor: the fourth write, then Ctrl-C.
    const resumed = start(['watch', '--prefix', 'live/', '--after', events[2]!.cursor])
    await waitFor(() => resumed.stderrSoFar().includes('watching'), 10_000)
    await waitFor(() => resumed.stdoutSoFar().includes('live/4'), 10_000)
    resumed.child.kill('SIGINT')
    const stopped = await resumed.done
    expect(stopped.code).toBe(0)
    expect(stopped.stdout).toMatch(/^\S+ \S+ {2}live\/4@main {2}#1 set {2}4\n$/)
    expect(stopped.stderr).toMatch(/resume with: --after \S+:\d+/)
  }, 60_000)

  it('shows members and a status summary of the cluster', async () => {
    const members = await json<{ node: string; members: { name: string; state: string; self: boolean }[] }>(['members'])
    expect(members.members).toEqual([expect.objectContaining({ name: node.name, state: 'alive', self: true })])
    const table = await weft(['members'])
    expect(table.stdout).toMatch(/^NAME\s+STATE\s+LAST SEEN\s+UPTIME\s+VERSION\s+KEYS\s+FEED\s+LAG\s+LOAD\n/)
    expect(table.stdout).toMatch(/\nNAME\s+PEER ID\s+API\s+ADDRESSES\n/)
    expect(table.stdout).toContain(node.wsUrl)

    const status = await json<{ nodes: Record<string, number>; convergence: { spread: number }; keys: { max: number } }>(['status'])
    expect(status.nodes).toEqual({ total: 1, alive: 1, suspect: 0, dead: 0 })
    expect(status.convergence.spread).toBe(0)
    expect(status.keys.max).toBeGreaterThan(0)
    const human = await weft(['status'])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/cluster\s+1 node: 1 alive, 0 suspect, 0 dead/)
    expect(human.stdout).toMatch(/convergence\s+converged/)
    const ping = await weft(['ping'])
    expect(ping.stdout).toMatch(/: [\d.]+ ms\n$/)
  }, 60_000)

  it('colours a terminal-bound output only when asked and never with NO_COLOR', async () => {
    await json(['set', 'colour', '{"a":1}'])
    expect((await weft(['get', 'colour'])).stdout).not.toContain('\u001b[')
    expect((await weft(['get', 'colour'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } })).stdout).toContain('\u001b[')
    expect((await weft(['get', 'colour', '--color'], { env: { NO_COLOR: '1' } })).stdout).not.toContain('\u001b[')
    expect((await weft(['get', 'colour', '--json'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } })).stdout).not.toContain('\u001b[')
  }, 60_000)
})

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 20))
  }
}
