// weft side by side with Redis and etcd, in one run, with one load generator
// (test/bench/compare-load.ts): 100-byte values, 1 and 50 requests in flight
// (one connection per request in flight), writes and reads of 1,000 keys, and
// reads at a past revision (etcd, weft). Systems run one at a time, each
// stopped (by PID) before the next starts:
//   - Redis 7 (Debian redis-server): appendfsync always (durable), then
//     appendfsync everysec (writes only); minimal RESP client (compare-resp.ts);
//   - etcd 3.4 (Debian etcd-server), one member, through its v3 HTTP/JSON gateway;
//   - weft direct to one node (apps/node, LMDB, durable writes);
//   - weft through its gateway (apps/gateway) on a 3-node cluster.
// Installs redis-server / etcd-server with apt-get when missing (as root).
// Prints the figures and writes the "Compare" section of docs/benchmarks.md.
//
//   npm run bench:compare                   the real run (writes docs/benchmarks.md)
//   node test/bench/compare.ts --quick      smoke run, 1 s windows (writes nothing)
//   ... --only redis,etcd,direct,gateway    a subset (never writes the docs)
//
// Every process started here is stopped by PID and every temp dir removed,
// also on failure or Ctrl-C; each phase has a time limit and so has the run.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { WeftClient } from '@weft/client'
import { GatewayProcess } from '../gateway/GatewayProcess.ts'
import { type NodeProcess, TestCluster, freePort } from '../support/NodeProcess.ts'
import { type Measurement, type Op, measure, waitForQuiet } from './compare-load.ts'
import { RespClient } from './compare-resp.ts'
import {
  type Figure,
  addCleanupHook,
  describeMachine,
  fmtInt,
  fmtMs,
  installCleanup,
  log,
  machine,
  makeTempDir,
  markdownTable,
  writeDocSection,
  argValue,
  bounded,
  codeVersion,
  sleep,
} from './lib.ts'

const DOCS = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url))
const HEADING = 'Compare (npm run bench:compare)'
const NOTES_MARKER = '<!-- Hand-written notes below this line are kept when bench:compare rewrites this section. -->'
const COMMAND = 'npm run bench:compare'

const args = process.argv.slice(2)
const QUICK = args.includes('--quick')
const ONLY = argValue(args, '--only')?.split(',')
const runs = (system: 'redis' | 'etcd' | 'direct' | 'gateway') => !ONLY || ONLY.includes(system)

const WINDOW = QUICK ? { warmupMs: 300, runMs: 1000 } : { warmupMs: 1000, runMs: 5000 }
const IN_FLIGHT = [1, 50] as const
const MAX_IN_FLIGHT = 50
const KEYS = 1000
const VALUE = 'v'.repeat(100)
/** Hard time limits (ms) per phase, and for the whole run. */
const LIMITS = { install: 300_000, start: 60_000, prefill: 60_000, measure: WINDOW.warmupMs + WINDOW.runMs + 30_000, stop: 15_000, run: 9 * 60_000 }
/** Other processes' CPU (cores) under which the machine counts as quiet; each row waits for that a while. */
const QUIET = { cores: 0.25, waitMs: QUICK ? 2000 : 20_000, budgetMs: QUICK ? 5000 : 150_000 }
let quietBudgetMs = QUIET.budgetMs
const TARGETS = { gatewayWrites: 20_000, gatewayReads: 80_000, directWrites: 50_000, directOverEtcd: 5 }

const keyName = (i: number) => `bench/k${i}`
const randomKey = () => Math.floor(Math.random() * KEYS)

function uptime(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim()
  } catch {
    return `load average: ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`
  }
}

// ---- installing Redis and etcd ----------------------------------------------

const REDIS_BIN = '/usr/bin/redis-server'
const ETCD_BIN = '/usr/bin/etcd'

function binaryVersion(bin: string, flag: string): string {
  try {
    return execFileSync(bin, [flag], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]!.trim()
  } catch {
    return 'unknown version'
  }
}

/** apt-get install -y the Debian packages whose binaries are missing (as root). */
function ensureInstalled(): void {
  const missing = [...(runs('redis') && !existsSync(REDIS_BIN) ? ['redis-server'] : []), ...(runs('etcd') && !existsSync(ETCD_BIN) ? ['etcd-server'] : [])]
  if (missing.length === 0) {
    log(`redis-server and etcd already installed (${REDIS_BIN}, ${ETCD_BIN}); not installing`)
    return
  }
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')}: run \`sudo apt-get install -y ${missing.join(' ')}\` first`)
  // Debian's postinst may try to start the system service; policy-rc.d (if present) refuses that.
  const policy = existsSync('/usr/sbin/policy-rc.d') ? '/usr/sbin/policy-rc.d present: package scripts do not start services' : 'no /usr/sbin/policy-rc.d: the packages may start their system service; this script never uses or stops it'
  const install = () => {
    log(`running: apt-get install -y ${missing.join(' ')}  (${policy})`)
    execFileSync('apt-get', ['install', '-y', ...missing], { stdio: ['ignore', 'inherit', 'inherit'], timeout: LIMITS.install, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  }
  try {
    install()
  } catch {
    log('install failed; running: apt-get update, then the install again')
    execFileSync('apt-get', ['update'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: LIMITS.install })
    install()
  }
}

// ---- server processes, stopped by PID ------------------------------------------

interface Server {
  readonly child: ChildProcess
  readonly pid: number
  output: string
  readonly unhook: () => void
}

function startServer(label: string, bin: string, argv: string[]): Server {
  log(`  starting ${label}: ${bin} ${argv.join(' ')}`)
  const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  const pid = child.pid
  if (pid === undefined) throw new Error(`${label}: could not start ${bin}`)
  const server: Server = {
    child,
    pid,
    output: '',
    unhook: addCleanupHook(() => {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }),
  }
  const keep = (chunk: Buffer) => {
    server.output += chunk.toString('utf8')
    if (server.output.length > 50_000) server.output = server.output.slice(-20_000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  return server
}

/** SIGTERM by PID, SIGKILL after a while. */
async function stopServer(server: Server, timeoutMs = 5000): Promise<void> {
  const { child, pid } = server
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    process.kill(pid, 'SIGTERM')
    const timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }, timeoutMs)
    await exited
    clearTimeout(timer)
  }
  server.unhook()
}

async function waitFor(label: string, timeoutMs: number, check: () => Promise<boolean>, output?: () => string): Promise<void> {
  const deadline = performance.now() + timeoutMs
  let lastError = ''
  for (;;) {
    try {
      if (await check()) return
    } catch (err) {
      lastError = (err as Error).message
    }
    if (performance.now() > deadline) throw new Error(`${label}: not ready after ${fmtInt(timeoutMs / 1000)} s (${lastError})${output ? `\n${output().slice(-3000)}` : ''}`)
    await sleep(100)
  }
}

// ---- the systems, behind one interface -------------------------------------------

interface System {
  readonly name: string
  readonly pids: readonly number[]
  /** Writes every key twice (50 in flight); past reads select the first of the two. */
  prefill(): Promise<void>
  readonly write: Op
  readonly read: Op
  readonly pastRead?: Op
  close(): Promise<void>
}

/** Runs `op` for every key, `inFlight` at a time. */
async function forEachKey(inFlight: number, op: (key: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < KEYS) await op(next++)
    }),
  )
}

async function startRedis(fsync: 'always' | 'everysec'): Promise<System> {
  const dir = makeTempDir(os.tmpdir(), 'weft-compare-redis-')
  const port = await freePort()
  // No config file: Redis's built-in defaults plus these (daemonize no, no RDB snapshots).
  const server = startServer(`redis (appendfsync ${fsync})`, REDIS_BIN, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', fsync,
  ])
  const clients: RespClient[] = []
  try {
    await waitFor('redis', LIMITS.start, async () => {
      const probe = await RespClient.connect(port, '127.0.0.1', 1000)
      try {
        return (await probe.command(['PING'])) === 'PONG'
      } finally {
        probe.close()
      }
    }, () => server.output)
    for (let i = 0; i < MAX_IN_FLIGHT; i++) clients.push(await RespClient.connect(port))
  } catch (err) {
    for (const c of clients) c.close()
    await stopServer(server)
    throw err
  }
  const value = Buffer.from(VALUE)
  const keys = Array.from({ length: KEYS }, (_, i) => Buffer.from(keyName(i)))
  const client = (w: number) => clients[w % clients.length]!
  const write: Op = async (w) => {
    const reply = await client(w).command(['SET', keys[randomKey()]!, value])
    if (reply !== 'OK') throw new Error(`redis SET: ${String(reply)}`)
  }
  return {
    name: `Redis (appendfsync ${fsync})`,
    pids: [server.pid],
    prefill: () => forEachKey(MAX_IN_FLIGHT, async (k) => void (await client(k).command(['SET', keys[k]!, value]))),
    write,
    read: async (w) => {
      const reply = await client(w).command(['GET', keys[randomKey()]!])
      if (!Buffer.isBuffer(reply) || reply.length !== value.length) throw new Error('redis GET: no value')
    },
    close: async () => {
      for (const c of clients) c.close()
      await stopServer(server)
    },
  }
}

async function startEtcd(): Promise<System> {
  const dir = makeTempDir(os.tmpdir(), 'weft-compare-etcd-')
  const clientPort = await freePort()
  const peerPort = await freePort()
  const clientUrl = `http://127.0.0.1:${clientPort}`
  const peerUrl = `http://127.0.0.1:${peerPort}`
  const server = startServer('etcd', ETCD_BIN, [
    '--name', 'bench', '--data-dir', `${dir}/data`,
    '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `bench=${peerUrl}`, '--initial-cluster-state', 'new',
  ])
  const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT, maxFreeSockets: MAX_IN_FLIGHT })
  const post = (path: string, body: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { agent, host: '127.0.0.1', port: clientPort, method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => (text += chunk))
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`etcd ${path}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`))
            else {
              try {
                resolve(JSON.parse(text) as Record<string, unknown>)
              } catch (err) {
                reject(err as Error)
              }
            }
          })
          res.on('error', reject)
        },
      )
      req.setTimeout(10_000, () => req.destroy(new Error(`etcd ${path}: no answer in 10 s`)))
      req.on('error', reject)
      req.end(body)
    })
  try {
    await waitFor('etcd', LIMITS.start, async () => {
      await post('/v3/kv/range', JSON.stringify({ key: Buffer.from('probe').toString('base64') }))
      return true
    }, () => server.output)
  } catch (err) {
    agent.destroy()
    await stopServer(server)
    throw err
  }
  const keys = Array.from({ length: KEYS }, (_, i) => Buffer.from(keyName(i)).toString('base64'))
  const value = Buffer.from(VALUE).toString('base64')
  const putBody = (k: number) => `{"key":"${keys[k]}","value":"${value}"}`
  const revisionOf = (reply: Record<string, unknown>) => Number((reply.header as { revision?: string } | undefined)?.revision)
  const checkRange = (reply: Record<string, unknown>) => {
    const kvs = reply.kvs as { value?: string }[] | undefined
    if (kvs?.[0]?.value !== value) throw new Error('etcd range: no value')
  }
  let pastRevision = 0
  return {
    name: 'etcd (1 member)',
    pids: [server.pid],
    prefill: async () => {
      await forEachKey(MAX_IN_FLIGHT, async (k) => void (await post('/v3/kv/put', putBody(k))))
      // The store's revision now: every key has its first value here.
      pastRevision = revisionOf(await post('/v3/kv/range', JSON.stringify({ key: keys[0] })))
      await forEachKey(MAX_IN_FLIGHT, async (k) => void (await post('/v3/kv/put', putBody(k))))
      log(`  past reads select revision ${pastRevision} (the store is at ${revisionOf(await post('/v3/kv/range', JSON.stringify({ key: keys[0] })))})`)
    },
    write: async () => void (await post('/v3/kv/put', putBody(randomKey()))),
    read: async () => checkRange(await post('/v3/kv/range', `{"key":"${keys[randomKey()]}"}`)),
    pastRead: async () => checkRange(await post('/v3/kv/range', `{"key":"${keys[randomKey()]}","revision":"${pastRevision}"}`)),
    close: async () => {
      agent.destroy()
      await stopServer(server)
    },
  }
}

/** A TestCluster whose processes are SIGKILLed by PID, and dir removed, even on Ctrl-C. */
async function newCluster(): Promise<{ cluster: TestCluster; unhook: () => void }> {
  const cluster = new TestCluster()
  await cluster.init(`/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`)
  const unhook = addCleanupHook(() => {
    for (const node of cluster.nodes) {
      const pid = node.child?.pid
      if (pid !== undefined && node.child?.exitCode === null && node.child.signalCode === null) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // Already gone.
        }
      }
    }
    if (cluster.root) rmSync(cluster.root, { recursive: true, force: true })
  })
  return { cluster, unhook }
}

async function weftSystem(name: string, url: string, pids: number[], close: () => Promise<void>): Promise<System> {
  const clients: WeftClient[] = []
  try {
    for (let i = 0; i < MAX_IN_FLIGHT; i++) clients.push(await WeftClient.connect(url, { reconnect: false, timeoutMs: 10_000 }))
  } catch (err) {
    await Promise.allSettled(clients.map((c) => c.close()))
    await close()
    throw err
  }
  const client = (w: number) => clients[w % clients.length]!
  return {
    name,
    pids,
    prefill: async () => {
      for (let round = 0; round < 2; round++) await forEachKey(MAX_IN_FLIGHT, async (k) => void (await client(k).set(keyName(k), VALUE)))
    },
    write: async (w) => void (await client(w).set(keyName(randomKey()), VALUE)),
    read: async (w) => {
      const got = await client(w).get(keyName(randomKey()))
      if (got.value !== VALUE) throw new Error('weft get: no value')
    },
    pastRead: async (w) => {
      const got = await client(w).get(keyName(randomKey()), { index: 1 })
      if (got.value !== VALUE || got.revision.index !== 1) throw new Error('weft get index 1: wrong revision')
    },
    close: async () => {
      await Promise.allSettled(clients.map((c) => c.close()))
      await close()
    },
  }
}

async function startWeftDirect(): Promise<System> {
  const { cluster, unhook } = await newCluster()
  const close = async () => {
    await cluster.cleanup()
    unhook()
  }
  let node: NodeProcess
  try {
    log('  starting 1 weft node (apps/node/src/main.ts)')
    node = (await bounded('start weft node', LIMITS.start, () => cluster.startNodes(1)))[0]!
  } catch (err) {
    await close()
    throw err
  }
  return weftSystem('weft, direct to 1 node', node.wsUrl, [node.child!.pid!], close)
}

async function startWeftGateway(): Promise<System> {
  const { cluster, unhook } = await newCluster()
  let gateway: GatewayProcess | undefined
  let unhookGateway = () => {}
  const close = async () => {
    await gateway?.stop('SIGTERM', 5000)
    unhookGateway()
    await cluster.cleanup()
    unhook()
  }
  try {
    log('  starting 3 weft nodes (apps/node/src/main.ts) and a gateway (apps/gateway/src/main.ts)')
    const nodes = await bounded('start weft nodes', LIMITS.start, () => cluster.startNodes(3))
    gateway = new GatewayProcess({ nodes: nodes.map((n) => n.wsUrl), port: await freePort() })
    const g = gateway
    unhookGateway = addCleanupHook(() => {
      const pid = g.child?.pid
      if (pid !== undefined && g.child?.exitCode === null && g.child.signalCode === null) process.kill(pid, 'SIGKILL')
    })
    await bounded('start gateway', LIMITS.start, () => g.start())
    await waitFor('gateway sees 3 nodes', LIMITS.start, async () => (await g.health()).nodes === 3)
    // Every node has both peers before the load starts (writes replicate by gossip).
    await waitFor('nodes see their peers', LIMITS.start, async () => {
      for (const n of nodes) {
        const h = (await (await fetch(`${n.httpUrl}/healthz`, { signal: AbortSignal.timeout(2000) })).json()) as { peers?: number }
        if ((h.peers ?? 0) < 2) return false
      }
      return true
    })
    return await weftSystem('weft, gateway on 3 nodes', g.wsUrl, [...nodes.map((n) => n.child!.pid!), g.child!.pid!], close)
  } catch (err) {
    await close()
    throw err
  }
}

// ---- the run --------------------------------------------------------------------------

type Kind = 'write' | 'read' | 'pastRead'
const KIND_TEXT: Record<Kind, string> = { write: 'write', read: 'read', pastRead: 'read at a past revision' }

interface Row {
  readonly system: string
  readonly kind: Kind
  readonly inFlight: number
  readonly m: Measurement
}

async function runSystem(rows: Row[], label: string, start: () => Promise<System>, kinds: readonly Kind[]): Promise<void> {
  log(`${label}:`)
  const system = await bounded(`start ${label}`, LIMITS.start * 3, start)
  try {
    const t0 = performance.now()
    await bounded(`${label}: prefill`, LIMITS.prefill, () => system.prefill())
    log(`  prefill: ${KEYS} keys written twice in ${fmtInt(performance.now() - t0)} ms`)
    for (const kind of kinds) {
      const op = system[kind]
      if (op === undefined) continue
      for (const inFlight of IN_FLIGHT) {
        const t1 = performance.now()
        await waitForQuiet(system.pids, QUIET.cores, Math.min(QUIET.waitMs, Math.max(0, quietBudgetMs)))
        quietBudgetMs -= performance.now() - t1
        const m = await bounded(`${label}: ${kind} ×${inFlight}`, LIMITS.measure, () =>
          measure(`${system.name}, ${KIND_TEXT[kind]}, ${inFlight} in flight`, inFlight, op, { ...WINDOW, pids: system.pids }),
        )
        rows.push({ system: system.name, kind, inFlight, m })
      }
    }
  } finally {
    log(`  stopping ${label}`)
    await bounded(`stop ${label}`, LIMITS.stop, () => system.close())
  }
}

const find = (rows: readonly Row[], system: string, kind: Kind, inFlight: number) => rows.find((r) => r.system.startsWith(system) && r.kind === kind && r.inFlight === inFlight)?.m

function resultsTable(rows: readonly Row[]): string {
  const lines = [
    '| System | Operation | In flight | ops/s | p50 ms | p99 ms | Server CPU (cores) | Load generator CPU (cores) | Other processes CPU (cores) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.system} | ${KIND_TEXT[r.kind]} | ${r.inFlight} | ${fmtInt(r.m.opsPerSec)} | ${fmtMs(r.m.p50Ms)} | ${fmtMs(r.m.p99Ms)} | ${r.m.serverCores.toFixed(2)}${r.m.serverCoresEach.length > 1 ? ` (${r.m.serverCoresEach.map((c) => c.toFixed(2)).join(' + ')})` : ''} | ${r.m.benchCores.toFixed(2)} | ${r.m.otherCores.toFixed(2)} |`,
    ),
  ]
  return lines.join('\n')
}

function ratiosTable(rows: readonly Row[]): string {
  const ratio = (a: Measurement | undefined, b: Measurement | undefined) => (a && b ? `${(a.opsPerSec / b.opsPerSec).toFixed(2)}×` : '—')
  const lines = ['| Operation | In flight | gateway / etcd | direct / etcd | gateway / Redis (always) | direct / Redis (always) |', '|---|---|---|---|---|---|']
  for (const kind of ['write', 'read', 'pastRead'] as const) {
    for (const inFlight of IN_FLIGHT) {
      const gateway = find(rows, 'weft, gateway', kind, inFlight)
      const direct = find(rows, 'weft, direct', kind, inFlight)
      const etcd = find(rows, 'etcd', kind, inFlight)
      const redis = find(rows, 'Redis (appendfsync always)', kind, inFlight)
      lines.push(`| ${KIND_TEXT[kind]} | ${inFlight} | ${ratio(gateway, etcd)} | ${ratio(direct, etcd)} | ${ratio(gateway, redis)} | ${ratio(direct, redis)} |`)
    }
  }
  return lines.join('\n')
}

function targetFigures(rows: readonly Row[]): Figure[] {
  const figures: Figure[] = []
  const ops = (m: Measurement | undefined) => (m ? `${fmtInt(m.opsPerSec)}/s (p50 ${fmtMs(m.p50Ms)} ms, p99 ${fmtMs(m.p99Ms)} ms)` : 'not measured')
  const gw = find(rows, 'weft, gateway', 'write', 50)
  figures.push({ figure: 'weft through its gateway, 3 nodes: writes/s, 50 in flight (acked after the owner node’s durable commit, replicated to the other 2 by gossip)', result: ops(gw), target: `≥ ${fmtInt(TARGETS.gatewayWrites)}/s`, ...(gw && { met: gw.opsPerSec >= TARGETS.gatewayWrites }) })
  const gr = find(rows, 'weft, gateway', 'read', 50)
  figures.push({ figure: 'weft through its gateway, 3 nodes: reads/s, 50 in flight', result: ops(gr), target: `≥ ${fmtInt(TARGETS.gatewayReads)}/s`, ...(gr && { met: gr.opsPerSec >= TARGETS.gatewayReads }) })
  const dw = find(rows, 'weft, direct', 'write', 50)
  figures.push({ figure: 'weft direct to 1 node: durable writes/s, 50 in flight', result: ops(dw), target: `≥ ${fmtInt(TARGETS.directWrites)}/s`, ...(dw && { met: dw.opsPerSec >= TARGETS.directWrites }) })
  const ew = find(rows, 'etcd', 'write', 50)
  figures.push({
    figure: 'weft direct to 1 node vs etcd: writes/s, 50 in flight',
    result: dw && ew ? `${(dw.opsPerSec / ew.opsPerSec).toFixed(2)}× (${fmtInt(dw.opsPerSec)} vs ${fmtInt(ew.opsPerSec)}/s)` : 'not measured',
    target: `≥ ${TARGETS.directOverEtcd}×`,
    ...(dw && ew && { met: dw.opsPerSec >= TARGETS.directOverEtcd * ew.opsPerSec }),
  })
  return figures
}

function writeDocs(body: string): void {
  let kept = ''
  try {
    const text = readFileSync(DOCS, 'utf8')
    const start = text.indexOf(`## ${HEADING}`)
    if (start >= 0) {
      const nextHeading = text.indexOf('\n## ', start + 3)
      const section = text.slice(start, nextHeading === -1 ? undefined : nextHeading)
      const at = section.indexOf(NOTES_MARKER)
      if (at >= 0) kept = section.slice(at + NOTES_MARKER.length).trim()
    }
  } catch {
    // no docs file yet
  }
  writeDocSection(DOCS, HEADING, [body, '', NOTES_MARKER, ...(kept ? ['', kept] : [])].join('\n'))
  log(`wrote the "${HEADING}" section of docs/benchmarks.md`)
}

async function main(): Promise<void> {
  installCleanup()
  const deadline = setTimeout(() => {
    log(`FAILED: the run took over ${LIMITS.run / 60_000} min; stopping everything`)
    process.exit(1) // the exit handler kills every process by PID and removes the temp dirs
  }, LIMITS.run)
  deadline.unref()
  const m = machine()
  const date = new Date().toISOString().slice(0, 10)
  const code = codeVersion('packages', 'apps')
  const uptimeBefore = uptime()
  log(`bench:compare${QUICK ? ' --quick' : ''}: ${describeMachine(m)}; ${m.os}; code: ${code}`)
  log(`uptime before: ${uptimeBefore}`)
  ensureInstalled()
  const versions = [
    ...(runs('redis') ? [binaryVersion(REDIS_BIN, '--version')] : []),
    ...(runs('etcd') ? [binaryVersion(ETCD_BIN, '--version')] : []),
  ]
  for (const v of versions) log(`  ${v}`)
  const rows: Row[] = []
  if (runs('redis')) {
    await runSystem(rows, 'Redis, appendfsync always', () => startRedis('always'), ['write', 'read'])
    await runSystem(rows, 'Redis, appendfsync everysec', () => startRedis('everysec'), ['write'])
  }
  if (runs('etcd')) await runSystem(rows, 'etcd', startEtcd, ['write', 'read', 'pastRead'])
  if (runs('direct')) await runSystem(rows, 'weft direct to 1 node', startWeftDirect, ['write', 'read', 'pastRead'])
  if (runs('gateway')) await runSystem(rows, 'weft gateway on 3 nodes', startWeftGateway, ['write', 'read', 'pastRead'])
  const uptimeAfter = uptime()
  log(`uptime after: ${uptimeAfter}`)

  const machineText = describeMachine(m)
  const results = resultsTable(rows)
  const ratios = ratiosTable(rows)
  const targets = markdownTable(targetFigures(rows), date, machineText, `\`${COMMAND}\``)
  process.stdout.write(`\n${results}\n\nRatios of ops/s:\n\n${ratios}\n\nTargets:\n\n${targets}\n\n`)

  if (ONLY) {
    log('--only: docs/benchmarks.md left alone')
  } else if (!QUICK || args.includes('--write-docs')) {
    const body = [
      `Measured ${date} on ${machineText}, ${m.os}; ${code}${QUICK ? ' (--quick run)' : ''}. Versions: ${versions.join('; ')}.`,
      '',
      `- \`uptime\` before: \`${uptimeBefore}\``,
      `- \`uptime\` after: \`${uptimeAfter}\``,
      '',
      `Setup: every server on 127.0.0.1 with its data in a fresh temp dir, started by this script as a child process and stopped by PID before the next system starts; the load generator is one node process on the same machine. ` +
        `Values are ${VALUE.length} bytes; keys are ${KEYS} keys (\`${keyName(0)}\`…), each written twice before the measurements (past reads select the first of the two). ` +
        `Each request goes to a key picked at random; "in flight" is the number of closed-loop workers, each with its own connection and one request outstanding. ` +
        `Each row runs ${WINDOW.runMs / 1000} s after a ${WINDOW.warmupMs / 1000} s warm-up. CPU columns: the server processes (summed; for weft via the gateway also per process: node1 + node2 + node3 + gateway) the load generator, and everything else on the machine (busy time in /proc/stat minus those two), in the measured window; with 2 cores, "other" above ~0.2 means the figures were taken on a busy machine. Before each row the script waits (up to ${QUIET.waitMs / 1000} s, ${QUIET.budgetMs / 1000} s in all) for other processes to use under ${QUIET.cores} cores, then measures anyway.`,
      '',
      `- Redis: \`redis-server --port P --bind 127.0.0.1 --dir TMP --save '' --appendonly yes --appendfsync always|everysec\`, no config file; a minimal RESP client over node:net (SET/GET).`,
      `- etcd: one member, \`etcd --data-dir TMP --listen-client-urls/--advertise-client-urls http://127.0.0.1:P --listen-peer-urls http://127.0.0.1:Q\` (defaults otherwise: every put fsyncs its WAL), through its v3 HTTP/JSON gateway (POST /v3/kv/put and /v3/kv/range, base64 keys/values, range with \`revision\` for past reads) over a keep-alive node:http agent.`,
      `- weft direct: one node (\`apps/node/src/main.ts\`, LMDB; a set is answered after its commit is fsync'ed), WeftClient over WebSocket (set, get, get with \`index: 1\` for past reads).`,
      `- weft gateway: 3 nodes on loopback (libp2p) and \`apps/gateway/src/main.ts\`; WeftClient to the gateway, which routes each key to its owner node on a hash ring. A write is answered after the owner's durable commit and reaches the other two nodes by gossip (asynchronously).`,
      '',
      results,
      '',
      'Ratios of ops/s (weft / etcd and weft / Redis with appendfsync always; above 1 means weft is faster):',
      '',
      ratios,
      '',
      'Targets:',
      '',
      targets,
    ].join('\n')
    writeDocs(body)
  }
}

try {
  await main()
} catch (err) {
  log(`FAILED: ${(err as Error).stack ?? String(err)}`)
  process.exitCode = 1
} finally {
  // Anything still open (sockets, timers) must not keep the process alive.
  setTimeout(() => process.exit(), 500).unref()
}
