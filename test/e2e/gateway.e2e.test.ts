// End to end, as users meet weft: three real node processes and one real
// gateway process with a token file, started once; then every operation
// through the gateway only, by each way in: the TypeScript client, the `weft`
// CLI spawned as a shell would, the REST API (fetch, SSE), and the
// crush-compatible routes; then auth refusals that change nothing. Each part
// reads back something another part wrote, so all four share one cluster.
// Every process is stopped by PID and every temp dir removed, even on failure.
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WeftClient, WeftClientError, type WatchEvent } from '@weft/client'
import { GatewayProcess } from '../gateway/GatewayProcess.ts'
import { eventually } from '../support/eventually.ts'
import { TestCluster, freePort } from '../support/NodeProcess.ts'

const CLI = fileURLToPath(new URL('../../packages/cli/src/main.ts', import.meta.url))
const swarmKey = () => `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`

// The token file's three callers. The admin's entry is stored as its SHA-256 (the file's other form).
const ADMIN = `admin-${randomBytes(12).toString('hex')}`
const TEAM_A = `team-a-${randomBytes(12).toString('hex')}`
const READER = `reader-${randomBytes(12).toString('hex')}`

const cluster = new TestCluster()
let scratch = ''
let gateway: GatewayProcess | undefined
let admin: WeftClient
const clients: WeftClient[] = []
const children = new Set<ChildProcess>()
const aborts = new Set<AbortController>()
const timings: Record<string, number> = {}

async function cleanup(): Promise<void> {
  for (const controller of aborts) controller.abort()
  for (const child of children) child.kill('SIGKILL')
  await Promise.allSettled(clients.splice(0).map((c) => c.close()))
  await gateway?.stop('SIGKILL')
  await cluster.cleanup()
  if (scratch) await rm(scratch, { recursive: true, force: true })
}

beforeAll(async () => {
  const started = performance.now()
  try {
    scratch = await mkdtemp(join(tmpdir(), 'weft-e2e-'))
    await cluster.init(swarmKey())
    // node1 first; node2 and node3 join through it at the same time.
    const node1 = await cluster.add('node1')
    await node1.start()
    const [node2, node3] = [await cluster.add('node2', { peers: [node1.multiaddr] }), await cluster.add('node3', { peers: [node1.multiaddr] })]
    await Promise.all([node2.start(), node3.start()])
    const tokensFile = join(scratch, 'tokens.json')
    await writeFile(
      tokensFile,
      JSON.stringify({
        tokens: {
          [`sha256:${createHash('sha256').update(ADMIN).digest('hex')}`]: { name: 'ops', grants: [{ prefix: '', access: 'admin' }] },
          [TEAM_A]: { name: 'team-a', grants: [{ prefix: 'team-a/', access: 'write' }] },
          [READER]: { name: 'dashboard', grants: [{ prefix: '', access: 'read' }] },
        },
      }),
      { mode: 0o600 },
    )
    // Told of one node: it learns the other two from the cluster's membership.
    gateway = new GatewayProcess({ nodes: [node1.wsUrl], port: await freePort(), tokensFile })
    await gateway.start()
    const gw = gateway
    await eventually(async () => expect(await gw.health()).toMatchObject({ status: 'ok', nodes: 3, auth: 'tokens' }), 20_000, 100)
    admin = await connect(ADMIN)
    // Every node sees every other alive (members goes to any node in turn: ask each).
    await eventually(async () => {
      for (let i = 0; i < 3; i++) {
        const { members } = await admin.members()
        expect(members.filter((m) => m.state === 'alive')).toHaveLength(3)
      }
    }, 20_000, 100)
  } catch (err) {
    await cleanup()
    throw err
  }
  timings.setupMs = Math.round(performance.now() - started)
}, 60_000)

afterAll(async () => {
  await cleanup()
  console.log(JSON.stringify({ timings }))
}, 30_000)

// ---- helpers --------------------------------------------------------------------------

function gw(): GatewayProcess {
  if (!gateway) throw new Error('no gateway')
  return gateway
}

async function connect(token: string | undefined): Promise<WeftClient> {
  const client = await WeftClient.connect(gw().wsUrl, { ...(token !== undefined && { token }), timeoutMs: 10_000, reconnect: false })
  clients.push(client)
  return client
}

/** Resolves with `promise`'s error (fails if it resolves). */
async function failure(promise: Promise<unknown>): Promise<WeftClientError> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(WeftClientError)
    return err as WeftClientError
  }
  throw new Error('expected a failure, got a result')
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)))])
  } finally {
    clearTimeout(timer)
  }
}

/** The next `n` events of a watch, each within `ms`. */
async function take(watch: AsyncIterator<WatchEvent>, n: number, ms = 10_000): Promise<WatchEvent[]> {
  const events: WatchEvent[] = []
  while (events.length < n) {
    const next = await withTimeout(watch.next(), ms, `watch event ${events.length + 1} of ${n}`)
    if (next.done) throw new Error(`watch ended after ${events.length} events`)
    events.push(next.value)
  }
  return events
}

/**
 * Checks `first`; while the check fails, asks again and checks the new answer
 * (on a starved machine a node can look `suspect` for a moment: 3 missed heartbeats).
 */
async function settles<T>(first: T, again: () => Promise<T>, check: (value: T) => void, timeoutMs = 10_000): Promise<void> {
  let value = first
  await eventually(async () => {
    try {
      check(value)
    } catch (err) {
      value = await again()
      throw err
    }
  }, timeoutMs, 200)
}

const ALIVE = [['node1', 'alive'], ['node2', 'alive'], ['node3', 'alive']]
const b64 = (text: string) => Buffer.from(text).toString('base64')
const enc = encodeURIComponent

interface Revision {
  id: string
  index: number
  ts: number
  node: string
  kind: string
  author?: string
  message?: string
  from?: { fork: string; revision: string }
}

// ---- HTTP ---------------------------------------------------------------------------

interface Reply<T = unknown> {
  status: number
  headers: Headers
  text: string
  json: T
}

async function http<T = Record<string, unknown>>(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Reply<T>> {
  const token = options.token === undefined ? ADMIN : options.token
  const headers: Record<string, string> = { ...(token !== null && { Authorization: `Bearer ${token}` }), ...options.headers }
  let body: string | undefined
  if (options.raw !== undefined) body = options.raw
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers['Content-Type'] ??= 'application/json'
  }
  const res = await fetch(`${gw().httpUrl}${path}`, { method, headers, ...(body !== undefined && { body }), signal: AbortSignal.timeout(15_000) })
  const text = await res.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json: json as T }
}

/** Expects a status; on a mismatch, the body says why. */
function status<T>(reply: Reply<T>, expected: number): Reply<T> {
  expect(reply.status, reply.text).toBe(expected)
  return reply
}

interface SseEvent {
  event?: string
  id?: string
  data?: string
}

/** A server-sent event stream read with fetch; each read bounded; abort() ends it. */
class SseStream {
  readonly controller = new AbortController()
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  #buffer = ''
  readonly #decoder = new TextDecoder()
  status = 0
  contentType = ''

  async open(path: string, headers: Record<string, string>): Promise<void> {
    aborts.add(this.controller)
    const timer = setTimeout(() => this.controller.abort(), 15_000)
    try {
      const res = await fetch(`${gw().httpUrl}${path}`, { headers, signal: this.controller.signal })
      this.status = res.status
      this.contentType = res.headers.get('content-type') ?? ''
      if (res.status !== 200) {
        this.#buffer = await res.text()
        return
      }
      this.#reader = res.body!.getReader()
    } finally {
      clearTimeout(timer)
    }
  }

  get errorBody(): string {
    return this.#buffer
  }

  /** The next event (comment-only blocks such as keepalives skipped). */
  async next(ms = 10_000): Promise<SseEvent> {
    const deadline = Date.now() + ms
    for (;;) {
      const end = this.#buffer.indexOf('\n\n')
      if (end !== -1) {
        const block = this.#buffer.slice(0, end)
        this.#buffer = this.#buffer.slice(end + 2)
        const event: SseEvent = {}
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue
          const colon = line.indexOf(':')
          const field = colon === -1 ? line : line.slice(0, colon)
          const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
          if (field === 'event' || field === 'id') event[field] = value
          else if (field === 'data') event.data = event.data === undefined ? value : `${event.data}\n${value}`
        }
        if (event.event === undefined && event.id === undefined && event.data === undefined) continue
        return event
      }
      if (!this.#reader) throw new Error('stream not open')
      const chunk = await withTimeout(this.#reader.read(), Math.max(1, deadline - Date.now()), 'server-sent event')
      if (chunk.done) throw new Error(`stream ended; left: ${JSON.stringify(this.#buffer)}`)
      this.#buffer += this.#decoder.decode(chunk.value, { stream: true })
    }
  }

  abort(): void {
    this.controller.abort()
    aborts.delete(this.controller)
  }
}

// ---- the CLI ----------------------------------------------------------------------------

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

interface CliOptions {
  input?: string
  /** Over WEFT_URL (the gateway), WEFT_TOKEN (admin) and NO_COLOR=1; undefined removes a variable. */
  env?: Record<string, string | undefined>
  timeoutMs?: number
}

/** Starts `weft ARGS` as its own process, as a user's shell would; killed by PID past its time limit. */
function startCli(args: string[], options: CliOptions = {}): { done: Promise<Run>; stderrSoFar: () => string } {
  const env: Record<string, string | undefined> = { ...process.env, WEFT_URL: gw().wsUrl, WEFT_TOKEN: ADMIN, NO_COLOR: '1', FORCE_COLOR: undefined, ...options.env }
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name]
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdin!.on('error', () => {})
  child.stdin!.end(options.input)
  const limit = options.timeoutMs ?? 20_000
  const done = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`weft ${args.join(' ')} did not finish in ${limit} ms; stdout: ${stdout} stderr: ${stderr}`))
    }, limit)
    child.once('close', (code) => {
      clearTimeout(timer)
      children.delete(child)
      resolve({ code, stdout, stderr })
    })
  })
  // Awaited later (a watch), maybe after it failed: that must not count as unhandled.
  done.catch(() => {})
  return { done, stderrSoFar: () => stderr }
}

function weft(args: string[], options: CliOptions = {}): Promise<Run> {
  return startCli(args, options).done
}

/** `weft ARGS --json`, expecting exit 0; its stdout parsed. */
async function weftJson<T = Record<string, unknown>>(args: string[], options: CliOptions = {}): Promise<T> {
  const run = await weft([...args, '--json'], options)
  expect(run.code, `weft ${args.join(' ')}: ${run.stderr}`).toBe(0)
  return JSON.parse(run.stdout) as T
}

// ---- the tests ----------------------------------------------------------------------------

describe('weft end to end through one gateway in front of three node processes', () => {
  it('the TypeScript client: every operation', async () => {
    const started = performance.now()
    const c = await connect(ADMIN)
    // For the CLI to read (written first, so a failure below does not cascade).
    await c.set('client/handoff', { from: 'client', list: [1, 2, 3] })
    const key = 'client/api'

    // set, and set with ifHead (compare-and-set)
    const w1 = await c.set(key, { image: 'api:1', replicas: 2, tier: 'web' }, { author: 'ana', message: 'first' })
    expect(w1).toMatchObject({ key, fork: 'main', revision: { index: 1, kind: 'set', author: 'ana', message: 'first' } })
    const w2 = await c.set(key, { image: 'api:2', replicas: 2, tier: 'web' }, { ifHead: w1.revision.id })
    expect(w2.revision.index).toBe(2)
    const stale = await failure(c.set(key, { image: 'nope' }, { ifHead: w1.revision.id }))
    expect(stale.code).toBe('HEAD_MISMATCH')
    expect(stale.head).toBe(w2.revision.id)
    expect((await failure(c.set(key, 1, { ifHead: null }))).head).toBe(w2.revision.id)
    await c.set('client/created-once', 'new', { ifHead: null })

    // get: the head, by index, by revision id, by time
    expect(await c.get(key)).toMatchObject({ key, fork: 'main', value: { image: 'api:2', replicas: 2, tier: 'web' }, deleted: false, revision: { id: w2.revision.id } })
    expect((await c.get(key, { index: 1 })).value).toEqual({ image: 'api:1', replicas: 2, tier: 'web' })
    expect((await c.get(key, { revision: w1.revision.id })).revision.index).toBe(1)
    expect((await c.get(key, { at: w2.revision.ts })).revision.id).toBe(w2.revision.id)
    expect((await failure(c.get('client/never-written'))).code).toBe('KEY_NOT_FOUND')

    // history with values and patches; info; diff
    const history = await c.history(key, { values: true, patches: true })
    expect(history.revisions.map((r) => [r.index, r.value])).toEqual([
      [2, { image: 'api:2', replicas: 2, tier: 'web' }],
      [1, { image: 'api:1', replicas: 2, tier: 'web' }],
    ])
    expect(history.revisions[0]!.patch).toEqual([{ op: 'change', path: ['image'], before: 'api:1', after: 'api:2' }])
    const paged = await c.history(key, { limit: 1 })
    expect(paged.revisions.map((r) => r.index)).toEqual([2])
    expect((await c.history(key, { limit: 1, before: paged.next! })).revisions.map((r) => r.index)).toEqual([1])
    expect(await c.info(key)).toMatchObject({ key, fork: 'main', revisionCount: 2, deleted: false, head: { id: w2.revision.id }, forks: [{ fork: 'main' }] })
    expect((await c.diff(key, { index: 1 }, {})).changes).toEqual([{ op: 'change', path: ['image'], before: 'api:1', after: 'api:2' }])

    // revert
    const reverted = await c.revert(key, { index: 1, message: 'roll back' })
    expect(reverted.revision).toMatchObject({ index: 3, kind: 'revert', message: 'roll back', from: { fork: 'main', revision: w1.revision.id } })
    expect((await c.get(key)).value).toEqual({ image: 'api:1', replicas: 2, tier: 'web' })

    // fork, then both sides change `replicas` and `tier`: main's replicas is later, staging's tier is later
    const forked = await c.fork(key, 'staging', { author: 'ana' })
    expect(forked).toMatchObject({ key, fork: 'staging', revision: { kind: 'fork' } })
    expect((await failure(c.fork(key, 'staging'))).code).toBe('FORK_EXISTS')
    await c.set(key, { image: 'api:1', replicas: 5, tier: 'web' }, { fork: 'staging' })
    const mainWrite = await c.set(key, { image: 'api:3', replicas: 3, tier: 'core' })
    await c.set(key, { image: 'api:1', replicas: 5, tier: 'edge' }, { fork: 'staging' })
    const expectedConflicts = [
      { path: ['replicas'], ours: 3, theirs: 5, winner: 'ours' },
      { path: ['tier'], ours: 'core', theirs: 'edge', winner: 'theirs' },
    ]
    const byPath = (a: { path: readonly unknown[] }, b: { path: readonly unknown[] }) => JSON.stringify(a.path).localeCompare(JSON.stringify(b.path))
    // strategy fail: MERGE_CONFLICT listing them, and nothing changes
    const refused = await failure(c.merge(key, 'staging', { strategy: 'fail' }))
    expect(refused.code).toBe('MERGE_CONFLICT')
    expect([...refused.conflicts!].sort(byPath)).toEqual(expectedConflicts)
    expect(await c.info(key)).toMatchObject({ revisionCount: 4, head: { id: mainWrite.revision.id } })
    // crdt (the default): each conflict goes to the later write, and says so
    const merged = await c.merge(key, 'staging', { message: 'merge staging' })
    expect(merged).toMatchObject({ key, fork: 'main', revision: { kind: 'merge', index: 5 } })
    expect([...merged.conflicts].sort(byPath)).toEqual(expectedConflicts)
    expect((await c.get(key)).value).toEqual({ image: 'api:3', replicas: 3, tier: 'edge' })

    // delete
    await c.set('client/doomed', { bye: true })
    const deleted = await c.delete('client/doomed', { author: 'bob' })
    expect(deleted.revision).toMatchObject({ kind: 'delete', author: 'bob', index: 2 })
    expect((await failure(c.get('client/doomed'))).code).toBe('KEY_NOT_FOUND')
    expect((await failure(c.delete('client/doomed'))).code).toBe('KEY_NOT_FOUND')
    expect(await c.get('client/doomed', { index: 1 })).toMatchObject({ value: { bye: true } })

    // keys, page by page (a prefix routes to its own node: wait for replication)
    const pageKeys = ['client/page/a', 'client/page/b', 'client/page/c', 'client/page/d', 'client/page/e']
    await Promise.all(pageKeys.map((k, i) => c.set(k, { n: i })))
    await eventually(async () => {
      const all = []
      for await (const k of c.scanKeys({ prefix: 'client/page/', limit: 2 })) all.push(k.key)
      expect(all).toEqual(pageKeys)
    }, 10_000, 100)
    const page1 = await c.keys({ prefix: 'client/page/', limit: 2 })
    expect(page1.keys.map((k) => [k.key, k.revisionCount])).toEqual([['client/page/a', 1], ['client/page/b', 1]])
    expect(page1.next).toBe('client/page/b')
    const page2 = await c.keys({ prefix: 'client/page/', limit: 2, after: page1.next! })
    expect(page2.keys.map((k) => k.key)).toEqual(['client/page/c', 'client/page/d'])
    const page3 = await c.keys({ prefix: 'client/page/', limit: 2, after: page2.next! })
    expect(page3.keys.map((k) => k.key)).toEqual(['client/page/e'])
    expect(page3.next).toBeUndefined()

    // forkPrefix / mergePrefix (they run on the prefix's node; keys on the same prefix show what it has)
    const prefixFork = await c.forkPrefix('client/page/', 'canary', { message: 'canary' })
    expect(prefixFork.results.map((r) => [r.key, r.ok])).toEqual(pageKeys.map((k) => [k, true]))
    await eventually(async () => expect((await c.info('client/page/c', { fork: 'canary' })).revisionCount).toBe(1), 10_000, 100)
    const canaryWrite = await c.set('client/page/c', { n: 2, canary: true }, { fork: 'canary' })
    await eventually(async () => {
      const { keys } = await c.keys({ prefix: 'client/page/', fork: 'canary' })
      expect(keys.find((k) => k.key === 'client/page/c')?.head).toBe(canaryWrite.revision.id)
    }, 10_000, 100)
    const prefixMerge = await c.mergePrefix('client/page/', 'canary')
    expect(prefixMerge.results.map((r) => [r.key, r.ok])).toEqual(pageKeys.map((k) => [k, true]))
    await eventually(async () => expect((await c.get('client/page/c')).value).toEqual({ n: 2, canary: true }), 10_000, 100)

    // watch: a key's and a prefix's live events, in order
    const keyWatch = await c.watch({ key: 'client/watched' })
    const prefixWatch = await c.watch({ prefix: 'client/watch' })
    const s1 = await c.set('client/watched', { n: 1 })
    const s2 = await c.set('client/watched', { n: 2 })
    const d3 = await c.delete('client/watched')
    const keyEvents = await take(keyWatch, 3)
    expect(keyEvents.map((e) => [e.key, e.fork, e.revision.id, e.value, e.deleted])).toEqual([
      ['client/watched', 'main', s1.revision.id, { n: 1 }, false],
      ['client/watched', 'main', s2.revision.id, { n: 2 }, false],
      ['client/watched', 'main', d3.revision.id, undefined, true],
    ])
    expect(keyWatch.cursor).toBe(keyEvents[2]!.cursor)
    const prefixEvents = await take(prefixWatch, 3)
    expect(prefixEvents.map((e) => e.revision.id)).toEqual([s1.revision.id, s2.revision.id, d3.revision.id])
    keyWatch.close()
    prefixWatch.close()

    // members, ping
    await settles(await c.members(), () => c.members(), (members) => {
      expect(members.members.map((m) => [m.name, m.state]).sort()).toEqual(ALIVE)
      expect(members.members.filter((m) => m.self)).toHaveLength(1)
    })
    expect(await c.ping()).toMatchObject({ node: expect.any(String), time: expect.any(Number) })

    timings.clientMs = Math.round(performance.now() - started)
  }, 40_000)

  it('the weft CLI, spawned as a user would: every command, --json, stdin, exit codes', async () => {
    const started = performance.now()
    // A watch started first (it exits by itself after --count events, written over REST at the end).
    const watching = startCli(['watch', 'cli/watched', '--count', '2', '--json'], { timeoutMs: 70_000 })

    // What the client wrote, read by the CLI (the value on stdout, the revision on stderr); a value
    // for REST to read; the first write of cli/app; not found (3); members and status.
    const [handoff, handoffJson, handoffSet, r1, human, tmp, missing, missingJson, membersJson, membersTable, statusJson, statusHuman, ping] = await Promise.all([
      weft(['get', 'client/handoff']),
      weftJson<{ value: unknown; revision: Revision }>(['get', 'client/handoff']),
      weftJson(['set', 'cli/handoff', '{"from":"cli","n":42}']),
      weftJson<{ key: string; fork: string; revision: Revision }>(['set', 'cli/app', '{"image":"cli:1","replicas":1}', '-m', 'first', '--author', 'cli']),
      weft(['set', 'cli/human', '--string', 'hello world']),
      weftJson(['set', 'cli/tmp', '1']),
      weft(['get', 'cli/missing']),
      weft(['get', 'cli/missing', '--json']),
      weftJson<{ members: { name: string; state: string }[] }>(['members']),
      weft(['members']),
      weftJson<{ nodes: { total: number; alive: number; suspect: number; dead: number }; members: unknown[] }>(['status']),
      weft(['status']),
      weftJson<{ node: string; rttMs: number }>(['ping']),
    ])
    expect(handoff.code).toBe(0)
    expect(JSON.parse(handoff.stdout)).toEqual({ from: 'client', list: [1, 2, 3] })
    expect(handoff.stderr).toMatch(/client\/handoff@main #1 /)
    expect(handoffJson).toMatchObject({ value: { from: 'client', list: [1, 2, 3] }, revision: { index: 1 } })
    expect(handoffSet).toMatchObject({ key: 'cli/handoff', revision: { index: 1 } })
    expect(r1).toMatchObject({ key: 'cli/app', fork: 'main', revision: { index: 1, kind: 'set', author: 'cli', message: 'first' } })
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toMatch(/^✓ set cli\/human@main #1 /)
    expect(tmp).toMatchObject({ revision: { index: 1 } })
    expect(missing.code, missing.stderr).toBe(3)
    expect(missing.stderr).toContain('KEY_NOT_FOUND')
    expect(missing.stdout).toBe('')
    expect(missingJson.code).toBe(3)
    expect(JSON.parse(missingJson.stderr)).toMatchObject({ error: { code: 'KEY_NOT_FOUND' } })
    await settles(membersJson, () => weftJson(['members']), (members) => expect(members.members.map((m) => [m.name, m.state]).sort()).toEqual(ALIVE))
    await settles(membersTable, () => weft(['members']), (table) => {
      expect(table.code).toBe(0)
      expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+STATE\s+LAST SEEN/)
      for (const name of ['node1', 'node2', 'node3']) expect(table.stdout).toMatch(new RegExp(`${name}( \\*)?\\s+alive`))
    })
    await settles(statusJson, () => weftJson(['status']), (summary) => expect(summary.nodes).toEqual({ total: 3, alive: 3, suspect: 0, dead: 0 }))
    await settles(statusHuman, () => weft(['status']), (human) => {
      expect(human.code).toBe(0)
      expect(human.stdout).toMatch(/cluster\s+3 nodes: 3 alive, 0 suspect, 0 dead/)
    })
    expect(ping.node).toEqual(expect.any(String))

    // set from stdin; delete
    const [piped, deleted] = await Promise.all([
      weft(['set', 'cli/app', '-', '--json'], { input: '{"image":"cli:2","replicas":1}\n' }),
      weftJson<{ revision: Revision }>(['del', 'cli/tmp', '-m', 'gone']),
    ])
    expect(piped.code, piped.stderr).toBe(0)
    const r2 = JSON.parse(piped.stdout) as { revision: Revision }
    expect(r2.revision.index).toBe(2)
    expect(deleted).toMatchObject({ revision: { kind: 'delete', message: 'gone', index: 2 } })

    // a stale --if-head is a conflict (4); deleting or reading a deleted key is not found (3)
    const [staleCas, staleCasJson, delAgain, getDeleted] = await Promise.all([
      weft(['set', 'cli/app', '{"image":"nope"}', '--if-head', r1.revision.id]),
      weft(['set', 'cli/app', '{"image":"nope"}', '--if-head', r1.revision.id, '--json']),
      weft(['del', 'cli/tmp']),
      weft(['get', 'cli/tmp']),
    ])
    expect(staleCas.code, staleCas.stderr).toBe(4)
    expect(staleCas.stderr).toContain('HEAD_MISMATCH')
    expect(staleCasJson.code).toBe(4)
    expect(JSON.parse(staleCasJson.stderr)).toMatchObject({ error: { code: 'HEAD_MISMATCH', details: { head: r2.revision.id } } })
    expect(delAgain.code, delAgain.stderr).toBe(3)
    expect(getDeleted.code, getDeleted.stderr).toBe(3)
    // --if-head with the current head writes
    const r3 = await weftJson<{ revision: Revision }>(['set', 'cli/app', '{"image":"cli:3","replicas":1}', '--if-head', r2.revision.id])
    expect(r3.revision.index).toBe(3)

    // get, history, info, diff
    const [got, gotIndex, history, info, diff, raw] = await Promise.all([
      weftJson<{ value: unknown; revision: Revision }>(['get', 'cli/app']),
      weftJson<{ value: unknown }>(['get', 'cli/app', '--index', '1']),
      weftJson<{ revisions: (Revision & { value?: unknown; patch?: unknown[] })[] }>(['history', 'cli/app', '--values', '--patches']),
      weftJson<{ revisionCount: number; head: Revision }>(['info', 'cli/app']),
      weftJson<{ changes: unknown[]; from: Revision; to: Revision }>(['diff', 'cli/app', '@1', '@3']),
      weft(['get', 'cli/human', '--raw']),
    ])
    expect(got).toMatchObject({ value: { image: 'cli:3', replicas: 1 }, revision: { id: r3.revision.id } })
    expect(gotIndex.value).toEqual({ image: 'cli:1', replicas: 1 })
    expect(history.revisions.map((r) => [r.index, r.value])).toEqual([
      [3, { image: 'cli:3', replicas: 1 }],
      [2, { image: 'cli:2', replicas: 1 }],
      [1, { image: 'cli:1', replicas: 1 }],
    ])
    expect(history.revisions[0]!.patch).toEqual([{ op: 'change', path: ['image'], before: 'cli:2', after: 'cli:3' }])
    expect(info).toMatchObject({ revisionCount: 3, head: { id: r3.revision.id } })
    expect(diff).toMatchObject({ from: { index: 1 }, to: { index: 3 }, changes: [{ op: 'change', path: ['image'], before: 'cli:1', after: 'cli:3' }] })
    expect(raw.stdout).toBe('hello world\n')

    // revert, fork (again: 4), a conflicting change on each side (main's later), merge --strategy fail (4), merge
    const reverted = await weftJson<{ revision: Revision }>(['revert', 'cli/app', '--index', '1', '-m', 'back'])
    expect(reverted.revision).toMatchObject({ index: 4, kind: 'revert', from: { revision: r1.revision.id } })
    expect(await weftJson<{ fork: string; revision: Revision }>(['fork', 'cli/app', 'staging'])).toMatchObject({ fork: 'staging', revision: { kind: 'fork' } })
    const [forkAgain] = await Promise.all([weft(['fork', 'cli/app', 'staging']), weftJson(['set', 'cli/app', '{"image":"cli:1","replicas":9}', '--fork', 'staging'])])
    expect(forkAgain.code, forkAgain.stderr).toBe(4)
    expect(forkAgain.stderr).toContain('FORK_EXISTS')
    await weftJson(['set', 'cli/app', '{"image":"cli:1","replicas":4}'])
    const [conflict, conflictJson] = await Promise.all([weft(['merge', 'cli/app', 'staging', '--strategy', 'fail']), weft(['merge', 'cli/app', 'staging', '--strategy', 'fail', '--json'])])
    expect(conflict.code, conflict.stderr).toBe(4)
    expect(conflict.stderr).toContain('MERGE_CONFLICT')
    expect(conflict.stdout).toMatch(/replicas\s+4\s+9\s+ours/)
    expect(conflictJson.code).toBe(4)
    expect(JSON.parse(conflictJson.stderr)).toMatchObject({ error: { code: 'MERGE_CONFLICT', details: { conflicts: [{ path: ['replicas'], ours: 4, theirs: 9, winner: 'ours' }] } } })
    const merged = await weftJson<{ revision: Revision; conflicts: unknown[] }>(['merge', 'cli/app', 'staging', '-m', 'merge staging'])
    // index 6: the refused merges made no revision
    expect(merged).toMatchObject({ fork: 'main', revision: { kind: 'merge', index: 6 }, conflicts: [{ path: ['replicas'], ours: 4, theirs: 9, winner: 'ours' }] })

    // keys (the prefix's node has them once replicated), then prefix fork and merge
    const cliKeys = ['cli/app', 'cli/handoff', 'cli/human']
    await eventually(async () => {
      const { keys } = await admin.keys({ prefix: 'cli/' })
      expect(keys.map((k) => [k.key, k.revisionCount])).toEqual([['cli/app', 6], ['cli/handoff', 1], ['cli/human', 1]])
    }, 10_000, 100)
    const [keysJson, keysLimited, keysTable, prefixFork] = await Promise.all([
      weftJson<{ keys: { key: string; revisionCount: number }[]; next?: string }>(['keys', 'cli/']),
      weftJson<{ keys: { key: string }[]; next?: string }>(['keys', '--prefix', 'cli/', '--limit', '1']),
      weft(['keys', 'cli/']),
      weftJson<{ results: { key: string; ok: boolean }[] }>(['fork', '--prefix', 'cli/', 'canary']),
    ])
    expect(keysJson.keys.map((k) => [k.key, k.revisionCount])).toEqual([['cli/app', 6], ['cli/handoff', 1], ['cli/human', 1]])
    expect(keysJson.next).toBeUndefined()
    expect(keysLimited).toEqual({ keys: [expect.objectContaining({ key: 'cli/app' })], next: 'cli/app' })
    expect(keysTable.stdout.split('\n')[0]).toMatch(/^KEY\s+REVISIONS\s+HEAD$/)
    expect(keysTable.stdout).toMatch(/cli\/app\s+6\s+/)
    expect(prefixFork.results.map((r) => [r.key, r.ok])).toEqual(cliKeys.map((k) => [k, true]))
    const [prefixMerge, final] = await Promise.all([
      weftJson<{ results: { key: string; ok: boolean }[] }>(['merge', '--prefix', 'cli/', 'canary']),
      weftJson<{ value: unknown }>(['get', 'cli/app']),
    ])
    expect(prefixMerge.results.map((r) => [r.key, r.ok])).toEqual(cliKeys.map((k) => [k, true]))
    expect(final.value).toEqual({ image: 'cli:1', replicas: 4 })

    // the watch: two events written over REST, then it exits 0 by itself and says where to resume
    await eventually(() => expect(watching.stderrSoFar()).toContain('watching cli/watched@main'), 15_000, 50)
    status(await http('PUT', `/v1/keys/${enc('cli/watched')}`, { body: { value: { n: 1 } } }), 200)
    status(await http('PUT', `/v1/keys/${enc('cli/watched')}`, { body: { value: { n: 2 } } }), 200)
    const watched = await watching.done
    expect(watched.code, watched.stderr).toBe(0)
    const lines = watched.stdout.trim().split('\n').map((line) => JSON.parse(line) as { key: string; value: unknown; revision: Revision; cursor: string })
    expect(lines.map((e) => [e.key, e.value, e.revision.index])).toEqual([['cli/watched', { n: 1 }, 1], ['cli/watched', { n: 2 }, 2]])
    expect(watched.stderr).toContain(`resume with: --after ${lines[1]!.cursor}`)
    timings.cliMs = Math.round(performance.now() - started)
  }, 75_000)

  it('the REST API: every /v1 route, SSE watch included', async () => {
    const started = performance.now()
    // For the crush routes to read.
    status(await http('PUT', `/v1/keys/${enc('rest/handoff')}`, { body: { value: { from: 'rest' } } }), 200)
    // What the CLI wrote, read over REST.
    const handoff = status(await http<{ value: unknown; revision: Revision }>('GET', `/v1/keys/${enc('cli/handoff')}`), 200)
    expect(handoff.json).toMatchObject({ key: 'cli/handoff', fork: 'main', value: { from: 'cli', n: 42 }, deleted: false })
    expect(handoff.headers.get('etag')).toBe(`"${handoff.json.revision.id}"`)
    expect(handoff.headers.get('content-type')).toMatch(/^application\/json/)

    // PUT, with an Idempotency-Key sent twice: applied once
    const doc = `/v1/keys/${enc('rest/doc')}`
    const idem = randomUUID()
    const p1 = status(await http<{ key: string; fork: string; revision: Revision }>('PUT', doc, { body: { value: { a: 1, list: [1, 2] }, author: 'rest', message: 'm1' }, headers: { 'Idempotency-Key': idem } }), 200)
    expect(p1.json).toMatchObject({ key: 'rest/doc', fork: 'main', revision: { index: 1, kind: 'set', author: 'rest', message: 'm1' } })
    expect(p1.headers.get('etag')).toBe(`"${p1.json.revision.id}"`)
    const again = status(await http<{ revision: Revision }>('PUT', doc, { body: { value: { a: 1, list: [1, 2] }, author: 'rest', message: 'm1' }, headers: { 'Idempotency-Key': idem } }), 200)
    expect(again.json.revision.id).toBe(p1.json.revision.id)
    // compare-and-set with If-Match; a stale one is 412 with the actual head; If-None-Match: *
    const p2 = status(await http<{ revision: Revision }>('PUT', doc, { body: { value: { a: 2, list: [1, 2] } }, headers: { 'If-Match': `"${p1.json.revision.id}"` } }), 200)
    expect(p2.json.revision.index).toBe(2)
    const stale = status(await http<{ error: { code: string; details: { head: string } } }>('PUT', doc, { body: { value: 0 }, headers: { 'If-Match': `"${p1.json.revision.id}"` } }), 412)
    expect(stale.json.error).toMatchObject({ code: 'HEAD_MISMATCH', details: { head: p2.json.revision.id } })
    status(await http('PUT', doc, { body: { value: 0 }, headers: { 'If-None-Match': '*' } }), 412)
    status(await http('PUT', `/v1/keys/${enc('rest/new')}`, { body: { value: 'fresh', ifHead: null } }), 200)
    status(await http('PUT', doc, { body: { value: 0, colour: 'red' } }), 400)

    // GET: head, by index, by revision, by time; HEAD; a missing key
    expect(status(await http('GET', doc), 200).json).toMatchObject({ value: { a: 2, list: [1, 2] }, revision: { id: p2.json.revision.id } })
    expect(status(await http('GET', `${doc}?index=1`), 200).json).toMatchObject({ value: { a: 1, list: [1, 2] } })
    expect(status(await http('GET', `${doc}?revision=${enc(p1.json.revision.id)}`), 200).json).toMatchObject({ revision: { index: 1 } })
    expect(status(await http('GET', `${doc}?at=${p2.json.revision.ts}`), 200).json).toMatchObject({ revision: { index: 2 } })
    const head = status(await http('HEAD', doc), 200)
    expect(head.text).toBe('')
    expect(head.headers.get('etag')).toBe(`"${p2.json.revision.id}"`)
    const notFound = status(await http<{ error: { code: string } }>('GET', `/v1/keys/${enc('rest/missing')}`), 404)
    expect(notFound.json.error.code).toBe('KEY_NOT_FOUND')
    expect(status(await http<{ error: { code: string } }>('GET', `${doc}?colour=red`), 400).json.error).toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'colour' } })

    // bytes as {"$bytes"}
    status(await http('PUT', `/v1/keys/${enc('rest/bin')}`, { body: { value: { cert: { $bytes: 'AAH/' }, n: 1 } } }), 200)
    expect(status(await http('GET', `/v1/keys/${enc('rest/bin')}`), 200).json).toMatchObject({ value: { cert: { $bytes: 'AAH/' }, n: 1 } })

    // history (values, patches, paging), info, diff
    const h1 = status(await http<{ revisions: (Revision & { value: unknown; patch: unknown[] })[]; next?: string }>('GET', `${doc}/-/history?limit=1&values=true&patches=true`), 200)
    expect(h1.json.revisions.map((r) => [r.index, r.value])).toEqual([[2, { a: 2, list: [1, 2] }]])
    expect(h1.json.revisions[0]!.patch).toEqual([{ op: 'change', path: ['a'], before: 1, after: 2 }])
    const h2 = status(await http<{ revisions: Revision[]; next?: string }>('GET', `${doc}/-/history?limit=1&before=${enc(h1.json.next!)}`), 200)
    expect(h2.json.revisions.map((r) => r.index)).toEqual([1])
    expect(h2.json.next).toBeUndefined()
    const info = status(await http('GET', `${doc}/-/info`), 200)
    expect(info.json).toMatchObject({ key: 'rest/doc', fork: 'main', revisionCount: 2, deleted: false, head: { id: p2.json.revision.id } })
    expect(info.headers.get('etag')).toBe(`"${p2.json.revision.id}"`)
    expect(status(await http('GET', `${doc}/-/diff?from=1&to=2`), 200).json).toMatchObject({ from: { index: 1 }, to: { index: 2 }, changes: [{ op: 'change', path: ['a'], before: 1, after: 2 }] })

    // revert, fork (twice: 409), merge with strategy fail (409) and crdt
    const rv = status(await http<{ revision: Revision }>('POST', `${doc}/-/revert`, { body: { index: 1, message: 'undo' } }), 200)
    expect(rv.json.revision).toMatchObject({ index: 3, kind: 'revert', message: 'undo' })
    expect(status(await http('GET', doc), 200).json).toMatchObject({ value: { a: 1, list: [1, 2] } })
    expect(status(await http('POST', `${doc}/-/fork`, { body: { to: 'staging' } }), 200).json).toMatchObject({ fork: 'staging', revision: { kind: 'fork' } })
    expect(status(await http<{ error: { code: string } }>('POST', `${doc}/-/fork`, { body: { to: 'staging' } }), 409).json.error.code).toBe('FORK_EXISTS')
    status(await http('PUT', `${doc}?fork=staging`, { body: { value: { a: 5, list: [1, 2, 3] } } }), 200)
    status(await http('PUT', doc, { body: { value: { a: 7, list: [1, 2] } } }), 200)
    const failed = status(await http<{ error: { code: string; details: { conflicts: unknown[] } } }>('POST', `${doc}/-/merge`, { body: { from: 'staging', strategy: 'fail' } }), 409)
    expect(failed.json.error).toMatchObject({ code: 'MERGE_CONFLICT', details: { conflicts: [{ path: ['a'], ours: 7, theirs: 5, winner: 'ours' }] } })
    expect(status(await http('GET', `${doc}/-/info`), 200).json).toMatchObject({ revisionCount: 4 })
    const merged = status(await http('POST', `${doc}/-/merge`, { body: { from: 'staging' } }), 200)
    expect(merged.json).toMatchObject({ fork: 'main', revision: { kind: 'merge' }, conflicts: [{ path: ['a'], ours: 7, theirs: 5, winner: 'ours' }] })
    expect(status(await http('GET', doc), 200).json).toMatchObject({ value: { a: 7, list: [1, 2, 3] } })

    // DELETE (query meta), then again: 404
    expect(status(await http('DELETE', `/v1/keys/${enc('rest/new')}?author=rest`), 200).json).toMatchObject({ revision: { kind: 'delete', author: 'rest' } })
    expect(status(await http<{ error: { code: string } }>('DELETE', `/v1/keys/${enc('rest/new')}`), 404).json.error.code).toBe('KEY_NOT_FOUND')

    // GET /v1/keys, paged; prefix fork and merge
    const restKeys = ['rest/bin', 'rest/doc', 'rest/handoff']
    await eventually(async () => expect(status(await http<{ keys: { key: string }[] }>('GET', `/v1/keys?prefix=${enc('rest/')}`), 200).json.keys.map((k) => k.key)).toEqual(restKeys), 10_000, 100)
    const k1 = status(await http<{ keys: { key: string; revisionCount: number }[]; next?: string }>('GET', `/v1/keys?prefix=${enc('rest/')}&limit=1`), 200)
    expect(k1.json).toMatchObject({ keys: [{ key: 'rest/bin', revisionCount: 1 }], next: 'rest/bin' })
    const k2 = status(await http<{ keys: { key: string }[]; next?: string }>('GET', `/v1/keys?prefix=${enc('rest/')}&limit=1&after=${enc(k1.json.next!)}`), 200)
    expect(k2.json.keys.map((k) => k.key)).toEqual(['rest/doc'])
    const pf = status(await http<{ results: { key: string; ok: boolean }[] }>('POST', `/v1/prefixes/${enc('rest/')}/-/fork`, { body: { to: 'canary', message: 'stage' } }), 200)
    expect(pf.json.results.map((r) => [r.key, r.ok])).toEqual(restKeys.map((k) => [k, true]))
    const pm = status(await http<{ results: { key: string; ok: boolean }[] }>('POST', `/v1/prefixes/${enc('rest/')}/-/merge`, { body: { from: 'canary' } }), 200)
    expect(pm.json.results.map((r) => [r.key, r.ok])).toEqual(restKeys.map((k) => [k, true]))

    // SSE: ready first, then each change with its cursor as id; abort ends it
    const sse = new SseStream()
    await sse.open(`/v1/watch?key=${enc('rest/watched')}`, { Authorization: `Bearer ${ADMIN}` })
    expect(sse.status, sse.errorBody).toBe(200)
    expect(sse.contentType).toMatch(/^text\/event-stream/)
    const ready = await sse.next()
    expect(ready.event).toBe('ready')
    const e1Write = status(await http<{ revision: Revision }>('PUT', `/v1/keys/${enc('rest/watched')}`, { body: { value: { n: 1 } } }), 200)
    const e2Write = status(await http<{ revision: Revision }>('PUT', `/v1/keys/${enc('rest/watched')}`, { body: { value: { bytes: { $bytes: 'AQ==' } } } }), 200)
    const events = [await sse.next(), await sse.next()]
    sse.abort()
    const parsed = events.map((e) => ({ id: e.id, event: e.event, data: JSON.parse(e.data ?? 'null') as { cursor: string; key: string; revision: Revision; value: unknown; deleted: boolean } }))
    expect(parsed.map((e) => [e.event, e.data.key, e.data.revision.id, e.data.value, e.data.deleted])).toEqual([
      [undefined, 'rest/watched', e1Write.json.revision.id, { n: 1 }, false],
      [undefined, 'rest/watched', e2Write.json.revision.id, { bytes: { $bytes: 'AQ==' } }, false],
    ])
    for (const e of parsed) expect(e.id).toBe(e.data.cursor)

    // resume with Last-Event-ID after the first event: exactly the second one comes
    const resumed = new SseStream()
    await resumed.open(`/v1/watch?key=${enc('rest/watched')}`, { Authorization: `Bearer ${ADMIN}`, 'Last-Event-ID': parsed[0]!.id! })
    expect(resumed.status, resumed.errorBody).toBe(200)
    const afterResume: SseEvent[] = []
    for (let i = 0; i < 3 && afterResume.length === 0; i++) {
      const e = await resumed.next()
      if (e.event !== 'ready') afterResume.push(e)
    }
    resumed.abort()
    expect((JSON.parse(afterResume[0]!.data!) as { revision: Revision }).revision.id).toBe(e2Write.json.revision.id)

    // members and ping
    const members = () => http<{ members: { name: string; state: string; gatewayConnected: boolean }[] }>('GET', '/v1/cluster/members')
    await settles(await members(), members, (reply) => {
      expect(status(reply, 200).json.members.map((m) => [m.name, m.state, m.gatewayConnected]).sort()).toEqual([
        ['node1', 'alive', true],
        ['node2', 'alive', true],
        ['node3', 'alive', true],
      ])
    })
    expect(status(await http('GET', '/v1/ping'), 200).json).toMatchObject({ node: expect.any(String), time: expect.any(Number) })

    // routes: an unknown one is 404, a wrong method 405 with Allow
    expect(status(await http<{ error: { code: string } }>('GET', '/v1/nope'), 404).json.error.code).toBe('UNKNOWN_OP')
    const wrongMethod = status(await http('POST', doc), 405)
    expect(wrongMethod.headers.get('allow')).toContain('PUT')

    timings.restMs = Math.round(performance.now() - started)
  }, 40_000)

  it('the crush-compatible routes', async () => {
    const started = performance.now()
    // What REST wrote, read the crush way: the base64 of its JSON text.
    const handoff = status(await http<unknown[]>('GET', `/${enc('rest/handoff')}`), 200)
    expect(handoff.json).toEqual([b64('{"from":"rest"}'), []])

    // PUT the raw body, twice; GET with ?revisions and patch
    const k = `/${enc('crush/k')}`
    const put1 = status(await http('PUT', k, { raw: 'value', headers: { 'Content-Type': 'text/plain' } }), 200)
    expect(put1.text).toBe('{"status":"ok"}')
    expect(put1.headers.get('etag')).toBe(`"${put1.headers.get('x-weft-revision')}"`)
    status(await http('PUT', k, { raw: 'value 2' }), 200)
    expect(status(await http('GET', k), 200).json).toEqual([b64('value 2'), []])
    expect(status(await http('GET', `${k}?revisions=all`), 200).json).toEqual([b64('value 2'), [[['eq', b64('value')], ['del', b64(' 2')]]]])
    expect(status(await http('GET', `${k}?revisions=all&patch=false`), 200).json).toEqual([b64('value 2'), [[['eq', b64('value')], ['del', b64(' 2')]]]])
    expect(status(await http('GET', `${k}?revisions=all&patch=true`), 200).json).toEqual([b64('value 2'), [b64('value')]])
    expect(status(await http('GET', `${k}?revisions=1&patch=true`), 200).json).toEqual([b64('value 2'), [b64('value')]])
    expect(status(await http('GET', `${k}/info`), 200).text).toBe('{"key":"crush/k","revision_count":1}')
    // the same bytes through /v1
    expect(status(await http('GET', `/v1/keys/${enc('crush/k')}`), 200).json).toMatchObject({ value: { $bytes: b64('value 2') } })

    // fork default → staging, change it, read the /:key/:fork variants, merge back into default
    expect(status(await http('POST', `${k}/default/fork/staging`), 200).text).toBe('{"status":"ok"}')
    expect(status(await http('GET', `${k}/staging`), 200).json).toEqual([b64('value 2'), []])
    status(await http('PUT', `${k}/staging`, { raw: 'value 3' }), 200)
    expect(status(await http('GET', `${k}/staging?revisions=all&patch=true`), 200).json).toEqual([b64('value 3'), [b64('value 2')]])
    expect(status(await http('GET', `${k}/staging/info`), 200).json).toEqual({ key: 'crush/k', revision_count: 1 })
    expect(status(await http('GET', `${k}/default`), 200).json).toEqual([b64('value 2'), []])
    const merge = status(await http('POST', `${k}/staging/merge/default`), 200)
    expect(merge.text).toBe('{"status":"ok"}')
    expect(merge.headers.get('x-weft-conflicts')).toBe('0')
    expect(status(await http('GET', k), 200).json).toEqual([b64('value 3'), []])
    expect(status(await http('GET', `${k}/info`), 200).json).toEqual({ key: 'crush/k', revision_count: 2 })
    expect(status(await http<{ status: string; error: string }>('POST', `/${enc('crush/none')}/default/fork/x`), 404).json).toMatchObject({ status: 'error', error: 'not_found' })

    // a JSON Content-Type stores structure: the client reads it as JSON
    status(await http('PUT', `/${enc('crush/json')}`, { raw: '{"a":1,"b":[true]}', headers: { 'Content-Type': 'application/json' } }), 200)
    expect((await admin.get('crush/json')).value).toEqual({ a: 1, b: [true] })
    expect(status(await http('GET', `/${enc('crush/json')}`), 200).json).toEqual([b64('{"a":1,"b":[true]}'), []])

    // GET /keys?prefix= (crush's <fork>:<key> names), per fork
    await eventually(async () => expect(status(await http('GET', '/keys?prefix=crush/'), 200).json).toEqual(['default:crush/json', 'default:crush/k']), 10_000, 100)
    await eventually(async () => expect(status(await http('GET', '/keys?prefix=crush/&fork=staging'), 200).json).toEqual(['staging:crush/k']), 10_000, 100)

    // DELETE: ok, also when nothing is there; a deleted key reads as [] and 0
    expect(status(await http('DELETE', `${k}/staging`), 200).text).toBe('{"status":"ok"}')
    expect(status(await http('GET', `${k}/staging`), 200).json).toEqual([])
    expect(status(await http('DELETE', k), 200).text).toBe('{"status":"ok"}')
    expect(status(await http('GET', k), 200).json).toEqual([])
    expect(status(await http('GET', `${k}?revisions=all`), 200).json).toEqual([])
    expect(status(await http('GET', `${k}/info`), 200).json).toEqual({ key: 'crush/k', revision_count: 0 })
    expect(status(await http('DELETE', k), 200).text).toBe('{"status":"ok"}')
    expect(status(await http('GET', `/${enc('crush/never')}`), 200).json).toEqual([])
    // the deletion is a tombstone: the history stays, readable by the client
    const history = await admin.history('crush/k', { values: true })
    expect(history.revisions.map((r) => [r.kind, r.value instanceof Uint8Array ? Buffer.from(r.value).toString() : r.value])).toEqual([
      ['delete', undefined],
      ['merge', 'value 3'],
      ['set', 'value 2'],
      ['set', 'value'],
    ])
    await eventually(async () => expect(status(await http('GET', '/keys?prefix=crush/'), 200).json).toEqual(['default:crush/json']), 10_000, 100)
    timings.crushMs = Math.round(performance.now() - started)
  }, 30_000)

  it('auth: no token, a wrong token, a token outside its prefix are refused and change nothing; read-only reads', async () => {
    const started = performance.now()
    const secret = await admin.set('team-b/secret', { s: 1 })
    const own = await admin.set('team-a/shared', { v: 1 })
    const secretPath = `/v1/keys/${enc('team-b/secret')}`

    // REST: 401 without a valid token, whatever the route
    for (const token of [null, 'wrong-token']) {
      const put = status(await http<{ error: { code: string } }>('PUT', secretPath, { token, body: { value: 'x' } }), 401)
      expect(put.json.error.code).toBe('UNAUTHORIZED')
      expect(put.headers.get('www-authenticate')).toBe('Bearer realm="weft"')
      status(await http('GET', secretPath, { token }), 401)
      status(await http('DELETE', secretPath, { token }), 401)
      status(await http('POST', `${secretPath}/-/fork`, { token, body: { to: 'stolen' } }), 401)
      status(await http('GET', '/v1/cluster/members', { token }), 401)
      status(await http('GET', '/v1/ping', { token }), 401)
      const crushPut = status(await http('PUT', `/${enc('team-b/secret')}`, { token, raw: 'x' }), 401)
      expect(crushPut.json).toMatchObject({ status: 'error', error: 'unauthorized', code: 'UNAUTHORIZED' })
      status(await http('GET', `/${enc('team-b/secret')}`, { token }), 401)
      status(await http('GET', '/keys?prefix=team-b/', { token }), 401)
      const sse = new SseStream()
      await sse.open(`/v1/watch?key=${enc('team-b/secret')}`, token === null ? {} : { Authorization: `Bearer ${token}` })
      sse.abort()
      expect(sse.status).toBe(401)
    }

    // REST: team-a writes team-a/ only; not team-b/, not the prefix `team-a` (it also covers team-ab…), not listing everything
    status(await http('PUT', `/v1/keys/${enc('team-a/shared')}`, { token: TEAM_A, body: { value: { v: 2 } } }), 200)
    expect(status(await http<{ error: { code: string } }>('PUT', secretPath, { token: TEAM_A, body: { value: 'x' } }), 403).json.error.code).toBe('FORBIDDEN')
    status(await http('GET', secretPath, { token: TEAM_A }), 403)
    status(await http('PUT', `/v1/keys/${enc('team-b/new')}`, { token: TEAM_A, body: { value: 'x' } }), 403)
    status(await http('POST', `/v1/prefixes/team-a/-/fork`, { token: TEAM_A, body: { to: 'stolen' } }), 403)
    status(await http('POST', `/v1/prefixes/-/fork`, { token: TEAM_A, body: { to: 'stolen' } }), 403)
    status(await http('GET', '/v1/keys', { token: TEAM_A }), 403)
    status(await http('GET', '/v1/cluster/members', { token: TEAM_A }), 403)
    expect(status(await http('PUT', `/${enc('team-b/secret')}`, { token: TEAM_A, raw: 'x' }), 403).json).toMatchObject({ status: 'error', error: 'forbidden' })
    status(await http('DELETE', `/${enc('team-b/secret')}`, { token: TEAM_A }), 403)
    status(await http('POST', `/${enc('team-b/secret')}/default/fork/stolen`, { token: TEAM_A }), 403)
    const teamSse = new SseStream()
    await teamSse.open(`/v1/watch?prefix=&access_token=${TEAM_A}`, {})
    teamSse.abort()
    expect(teamSse.status).toBe(403)

    // REST: the read-only token reads everything, writes nothing
    expect(status(await http('GET', secretPath, { token: READER }), 200).json).toMatchObject({ value: { s: 1 } })
    status(await http('GET', `/v1/keys?prefix=${enc('team-')}`, { token: READER }), 200)
    status(await http('GET', `${secretPath}/-/history`, { token: READER }), 200)
    status(await http('GET', '/v1/cluster/members', { token: READER }), 200)
    expect(status(await http('GET', `/${enc('team-b/secret')}`, { token: READER }), 200).json).toEqual([b64('{"s":1}'), []])
    status(await http('PUT', secretPath, { token: READER, body: { value: 'x' } }), 403)
    status(await http('DELETE', secretPath, { token: READER }), 403)
    status(await http('POST', `${secretPath}/-/revert`, { token: READER, body: { index: 1 } }), 403)
    status(await http('POST', `${secretPath}/-/fork`, { token: READER, body: { to: 'stolen' } }), 403)
    status(await http('POST', `${secretPath}/-/merge`, { token: READER, body: { from: 'main', into: 'x' } }), 403)
    status(await http('PUT', `/${enc('team-b/secret')}`, { token: READER, raw: 'x' }), 403)
    status(await http('DELETE', `/${enc('team-b/secret')}`, { token: READER }), 403)
    const readerSse = new SseStream()
    await readerSse.open(`/v1/watch?key=${enc('team-b/secret')}&access_token=${READER}`, {})
    expect(readerSse.status, readerSse.errorBody).toBe(200)
    expect((await readerSse.next()).event).toBe('ready')
    readerSse.abort()

    // WebSocket: no token and a wrong one are UNAUTHORIZED; nothing they send is done
    for (const token of [undefined, 'wrong-token']) {
      const refused = await failure(
        (async () => {
          const c = await connect(token)
          await c.set('team-b/secret', 'stolen', { timeoutMs: 5_000 })
        })(),
      )
      expect(refused.code).toBe('UNAUTHORIZED')
    }
    // team-a: its prefix yes; elsewhere, members, a watch of everything: FORBIDDEN
    const teamA = await connect(TEAM_A)
    expect((await teamA.set('team-a/shared', { v: 3 })).revision.index).toBe(3)
    expect((await teamA.get('team-a/shared')).value).toEqual({ v: 3 })
    const teamRefusals = await Promise.all(
      [
        teamA.set('team-b/secret', 'x'),
        teamA.set('team-b/new', 'x'),
        teamA.get('team-b/secret'),
        teamA.delete('team-b/secret'),
        teamA.fork('team-b/secret', 'stolen'),
        teamA.forkPrefix('team-a', 'stolen'),
        teamA.members(),
        teamA.watch({ prefix: '' }),
      ].map((attempt) => failure(attempt)),
    )
    expect(teamRefusals.map((err) => err.code)).toEqual(Array(teamRefusals.length).fill('FORBIDDEN'))
    // still connected and serving after the refusals; ping needs only the token
    expect((await teamA.get('team-a/shared')).value).toEqual({ v: 3 })
    expect(await teamA.ping()).toHaveProperty('node')
    // read-only: reads and watches, never writes
    const reader = await connect(READER)
    expect((await reader.get('team-b/secret')).value).toEqual({ s: 1 })
    expect((await reader.members()).members).toHaveLength(3)
    const readerWatch = await reader.watch({ key: 'team-b/secret' })
    const readerRefusals = await Promise.all(
      [
        reader.set('team-b/secret', 'x'),
        reader.set('team-a/shared', 'x'),
        reader.delete('team-b/secret'),
        reader.revert('team-b/secret', { index: 1 }),
        reader.fork('team-b/secret', 'stolen'),
        reader.merge('team-b/secret', 'main', { into: 'x' }),
        reader.forkPrefix('', 'stolen'),
        reader.mergePrefix('', 'main', { into: 'x' }),
      ].map((attempt) => failure(attempt)),
    )
    expect(readerRefusals.map((err) => err.code)).toEqual(Array(readerRefusals.length).fill('FORBIDDEN'))

    // CLI: the same refusals, exit 1 with the code printed
    const [cliNoToken, cliWrong, cliReaderSet, cliTeamASet, cliReaderGet] = await Promise.all([
      weft(['set', 'team-b/secret', '"x"'], { env: { WEFT_TOKEN: undefined } }),
      weft(['del', 'team-b/secret'], { env: { WEFT_TOKEN: 'wrong-token' } }),
      weft(['set', 'team-b/secret', '"x"'], { env: { WEFT_TOKEN: READER } }),
      weft(['set', 'team-b/secret', '"x"', '--json'], { env: { WEFT_TOKEN: TEAM_A } }),
      weft(['get', 'team-b/secret'], { env: { WEFT_TOKEN: READER } }),
    ])
    expect(cliNoToken.code, cliNoToken.stderr).toBe(1)
    expect(cliNoToken.stderr).toContain('UNAUTHORIZED')
    expect(cliWrong.code, cliWrong.stderr).toBe(1)
    expect(cliWrong.stderr).toContain('UNAUTHORIZED')
    expect(cliReaderSet.code, cliReaderSet.stderr).toBe(1)
    expect(cliReaderSet.stderr).toContain('FORBIDDEN')
    expect(cliTeamASet.code).toBe(1)
    expect(JSON.parse(cliTeamASet.stderr)).toMatchObject({ error: { code: 'FORBIDDEN' } })
    expect(cliReaderGet.code, cliReaderGet.stderr).toBe(0)
    expect(JSON.parse(cliReaderGet.stdout)).toEqual({ s: 1 })

    // Nothing changed: as the admin sees it, and the read-only watch saw no event.
    const info = await admin.info('team-b/secret')
    expect(info).toMatchObject({ revisionCount: 1, deleted: false, head: { id: secret.revision.id } })
    expect(info.forks.map((f) => f.fork)).toEqual(['main'])
    expect((await admin.get('team-b/secret')).value).toEqual({ s: 1 })
    expect((await failure(admin.get('team-b/new'))).code).toBe('KEY_NOT_FOUND')
    const shared = await admin.info('team-a/shared')
    expect(shared.forks.map((f) => f.fork)).toEqual(['main'])
    expect(shared.revisionCount).toBe(3)
    const sharedHistory = await admin.history('team-a/shared', { values: true })
    expect(sharedHistory.revisions.map((r) => [r.index, r.value])).toEqual([[3, { v: 3 }], [2, { v: 2 }], [1, { v: 1 }]])
    expect(sharedHistory.revisions[2]!.id).toBe(own.revision.id)
    for (const fork of ['stolen', 'x']) expect((await admin.keys({ prefix: 'team-', fork })).keys).toEqual([])
    const quiet = await Promise.race([readerWatch.next().then((r) => (r.done ? 'ended' : `event ${JSON.stringify(r.value)}`)), sleep(300, 'nothing')])
    expect(quiet).toBe('nothing')
    readerWatch.close()
    timings.authMs = Math.round(performance.now() - started)
  }, 40_000)
})
