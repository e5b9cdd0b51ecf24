// docker-compose.yml kept honest without Docker. Two parts:
//
// 1. The file as compose tools read it: `docker-compose config -q` (Debian's
//    1.29; required in CI, skipped with a warning elsewhere when missing), and
//    what a deployment needs of it (three nodes and a gateway, restarts,
//    healthchecks, a volume per node, the secret from a file, published port).
// 2. The file as it would run: every service becomes a host in a network
//    namespace of its own (test/support/Netns.ts: a /24 of 198.19.0.0/16, veths
//    to a bridge in a namespace of its own, no route out of the machine; every
//    host's /etc/hosts names all services, as a compose network's DNS does).
//    Each service runs the image's entrypoint and command (from the Dockerfile
//    and the compose file) with the repo as the image's WORKDIR and a PATH that
//    has what the image has: this repo's Node 22 as `node` and the commands of
//    Debian's Essential packages (node:22-bookworm-slim has nothing more; so a
//    healthcheck with curl fails here as it would there). Its environment is
//    the Dockerfile's ENV plus the
//    service's; volume and secret targets in arguments and environment values
//    point at temp dirs and files (the secret made by the image's `keygen`).
//    Services start in depends_on order, waiting for their dependencies'
//    healthchecks (the compose file's own test commands, run in the service's
//    namespace). A client then writes and reads through the gateway's
//    published port (REST and WebSocket), sees the write in the history and on
//    every node, and sees three alive members; SIGTERM stops every service
//    cleanly, as `docker compose down` would.
//
// What it cannot see: the image build itself (no Docker engine), uid 1000 (the
// processes run as root), port publishing on the host (the client uses the
// container port at the gateway's address).
//
// Every process is bounded in time and stopped by PID; namespaces, /etc/netns
// files and temp dirs are removed, also on failure. Needs root and `ip`.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, isAbsolute, join, posix, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { WeftClient } from '@weft/client'
import { eventually } from '../support/eventually.ts'
import { NetnsLab, netnsUnavailable } from '../support/Netns.ts'
import { WsTestClient } from '../support/WsTestClient.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** WEFT_COMPOSE_FILE checks another compose file (e.g. a deliberately broken copy). */
const COMPOSE_FILE = resolve(process.env.WEFT_COMPOSE_FILE ?? join(ROOT, 'docker-compose.yml'))
const DOCKERFILE = join(ROOT, 'Dockerfile')
const NODES = ['node1', 'node2', 'node3']
/** No process of this test lives longer, whatever happens. */
const PROCESS_LIFETIME_MS = 90_000
const HEALTHY_WITHIN_MS = 30_000
/** `docker compose down` waits this long after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 10_000

const inCi = process.env.CI === 'true'
const composeTool = spawnSync('docker-compose', ['version'], { stdio: 'ignore', timeout: 30_000 }).error === undefined
if (!composeTool && !inCi) console.warn('skipping `docker-compose config -q`: docker-compose is not installed (Debian: apt-get install docker-compose; CI installs it)')
const unavailable = netnsUnavailable()
if (unavailable) console.warn(`skipping the compose file's services in network namespaces: ${unavailable}`)

// ---- The compose file and the Dockerfile, as far as this test reads them ----

type Strings = string | string[]

interface ComposeService {
  readonly command?: Strings
  readonly entrypoint?: Strings
  readonly environment?: Record<string, string | number | boolean | null> | string[]
  readonly volumes?: (string | { type?: string; source?: string; target: string })[]
  readonly secrets?: (string | { source: string; target?: string })[]
  readonly healthcheck?: { test?: Strings; timeout?: string; disable?: boolean }
  readonly depends_on?: string[] | Record<string, { condition?: string }>
  readonly ports?: (string | number | { target: number })[]
  readonly working_dir?: string
  readonly restart?: string
}

interface ComposeFile {
  readonly services: Record<string, ComposeService>
  readonly volumes?: Record<string, unknown>
  readonly secrets?: Record<string, { file?: string } | null>
}

/** Service keys whose effect this test reproduces or that do not change how the process runs. */
const KNOWN_KEYS = new Set(['build', 'image', 'restart', 'command', 'entrypoint', 'environment', 'volumes', 'secrets', 'healthcheck', 'depends_on', 'ports', 'expose', 'hostname', 'working_dir', 'stop_grace_period', 'logging', 'labels'])

async function readCompose(): Promise<ComposeFile> {
  const compose = parse(await readFile(COMPOSE_FILE, 'utf8'), { merge: true }) as ComposeFile
  if (typeof compose?.services !== 'object' || compose.services === null) throw new Error(`${COMPOSE_FILE} has no services`)
  for (const [name, service] of Object.entries(compose.services)) {
    for (const key of Object.keys(service)) {
      if (!KNOWN_KEYS.has(key)) throw new Error(`service ${name}: this test does not know what '${key}' does; teach test/compose/compose.netns.test.ts`)
    }
  }
  return compose
}

interface Image {
  workdir: string
  env: Record<string, string>
  entrypoint: string[]
  cmd: string[]
}

/** WORKDIR, ENV, ENTRYPOINT and CMD of the Dockerfile's last stage (exec form only). */
async function readDockerfile(): Promise<Image> {
  let image: Image = { workdir: '/', env: {}, entrypoint: [], cmd: [] }
  const lines = (await readFile(DOCKERFILE, 'utf8')).replace(/\\\n/g, ' ').split('\n')
  for (const line of lines.map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
    const [, instruction = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    switch (instruction.toUpperCase()) {
      case 'FROM':
        image = { workdir: '/', env: {}, entrypoint: [], cmd: [] }
        break
      case 'WORKDIR':
        image.workdir = posix.resolve(image.workdir, rest)
        break
      case 'ENV':
        for (const pair of rest.split(/\s+/)) {
          const cut = pair.indexOf('=')
          if (cut <= 0 || /["'$]/.test(pair)) throw new Error(`Dockerfile: this test reads ENV only as KEY=value pairs without quotes or $: ${line}`)
          image.env[pair.slice(0, cut)] = pair.slice(cut + 1)
        }
        break
      case 'ENTRYPOINT':
      case 'CMD': {
        if (!rest.startsWith('[')) throw new Error(`Dockerfile: ${instruction} in exec form (a JSON array), so signals reach the process: ${line}`)
        const argv = JSON.parse(rest) as string[]
        if (instruction.toUpperCase() === 'ENTRYPOINT') image = { ...image, entrypoint: argv, cmd: [] }
        else image.cmd = argv
        break
      }
    }
  }
  return image
}

const strings = (value: Strings | undefined): string[] | undefined => (typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : value)

function environment(service: ComposeService): Record<string, string> {
  const env: Record<string, string> = {}
  if (Array.isArray(service.environment)) {
    for (const entry of service.environment) {
      const cut = entry.indexOf('=')
      if (cut > 0) env[entry.slice(0, cut)] = entry.slice(cut + 1)
      else if (process.env[entry] !== undefined) env[entry] = process.env[entry]
    }
  } else {
    for (const [key, value] of Object.entries(service.environment ?? {})) if (value !== null) env[key] = String(value)
  }
  return env
}

function dependencies(service: ComposeService): [string, string][] {
  const deps = service.depends_on ?? []
  return Array.isArray(deps) ? deps.map((d) => [d, 'service_started']) : Object.entries(deps).map(([d, o]) => [d, o.condition ?? 'service_started'])
}

/** The container path of each volume of a service, and its source (a volume name or a host path) unless anonymous. */
function volumeMounts(service: ComposeService): { target: string; source?: string }[] {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume !== 'string') return { target: volume.target, ...(volume.source !== undefined && { source: volume.source }) }
    // [SOURCE:]TARGET[:MODE]
    const [first = '', second] = volume.split(':')
    return second === undefined || !second.startsWith('/') ? { target: first } : { source: first, target: second }
  })
}

function secretMounts(service: ComposeService): { source: string; target: string }[] {
  return (service.secrets ?? []).map((secret) => {
    const { source, target = source } = typeof secret === 'string' ? { source: secret } : secret
    return { source, target: posix.resolve('/run/secrets', target) }
  })
}

function containerPort(port: string | number | { target: number }): number {
  if (typeof port === 'object') return port.target
  return Number(String(port).split('/')[0]!.split(':').pop())
}

function durationMs(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  let total = 0
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)) total += Number(amount) * { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 }[unit as 'h' | 'm' | 's' | 'ms' | 'us']
  return total
}

// ---- 1. The file as compose tools read it ----

describe('docker-compose.yml', () => {
  it.skipIf(!composeTool && !inCi)('passes `docker-compose config -q`', async () => {
    if (!composeTool) throw new Error('docker-compose is missing: CI must check the compose file with it (.ci/run installs it from Debian)')
    const result = await runCommand('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q'], { cwd: dirname(COMPOSE_FILE), timeout: 30_000 })
    expect(result.code, `docker-compose config -q:\n${result.output}`).toBe(0)
  })

  it('runs three nodes and a gateway, restarted, health-checked, each node on its own volume, sharing a secret from a file', async () => {
    const compose = await readCompose()
    expect(Object.keys(compose.services).sort()).toEqual(['gateway', ...NODES])
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.restart, name).toBe('unless-stopped')
      expect(strings(service.healthcheck?.test)?.[0], `${name} healthcheck`).toMatch(/^CMD(-SHELL)?$/)
      expect(service.healthcheck?.disable, name).not.toBe(true)
    }
    const volumes = NODES.map((name) => volumeMounts(compose.services[name]!))
    for (const [i, mounts] of volumes.entries()) {
      expect(mounts, NODES[i]).toHaveLength(1)
      expect(Object.keys(compose.volumes ?? {}), `${NODES[i]}'s volume is a named volume`).toContain(mounts[0]!.source)
    }
    expect(new Set(volumes.map((m) => m[0]!.source)).size, 'a volume per node').toBe(NODES.length)
    for (const name of NODES) {
      const secrets = secretMounts(compose.services[name]!)
      expect(secrets, name).toHaveLength(1)
      expect(compose.secrets?.[secrets[0]!.source]?.file, `${name}'s secret comes from a file`).toBeTypeOf('string')
    }
    expect(compose.services.gateway!.ports?.length, 'the gateway port is published').toBeGreaterThan(0)
  })
})

// ---- 2. The file as it would run ----

interface Running {
  readonly name: string
  readonly child: ChildProcess
  readonly ns: string
  readonly address: string
  output: string
  exit: Promise<number | null>
}

let lab: NetnsLab | undefined
let scratch = ''
const running: Running[] = []
const clients: { close(): Promise<void> }[] = []
const killAll = () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL')
}

afterEach(async (context) => {
  if (context.task.result?.state === 'fail') {
    for (const r of running) console.log(`--- ${r.name} (${r.address})\n${r.output.split('\n').slice(-30).join('\n')}`)
  }
  try {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()))
    killAll()
    await Promise.allSettled(running.map((r) => r.exit))
    running.length = 0
    process.removeListener('exit', killAll)
  } finally {
    const created = lab
    lab = undefined
    try {
      await created?.destroy()
    } finally {
      if (scratch) await rm(scratch, { recursive: true, force: true })
      scratch = ''
    }
  }
}, 30_000)

describe.skipIf(unavailable !== undefined)('docker-compose.yml run as processes in network namespaces', () => {
  it('starts in depends_on order, turns healthy, serves a client through the gateway, and stops on SIGTERM', async () => {
    const started = performance.now()
    const compose = await readCompose()
    const image = await readDockerfile()
    const names = Object.keys(compose.services)
    scratch = await mkdtemp(join(tmpdir(), 'weft-compose-'))
    process.once('exit', killAll)

    // The image's paths on this machine: WORKDIR is the repo; volumes and secrets are temp dirs and files.
    const composeDir = dirname(COMPOSE_FILE)
    const baseEnv = { PATH: await imagePath(join(scratch, 'bin')), HOME: join(scratch, 'home') }
    await mkdir(baseEnv.HOME)
    // A container path at the start of a value, or after '=' or ',' (--flag=PATH, lists), becomes its host path.
    const mapper = (mounts: [string, string][]) => {
      const paths = new Map([[image.workdir, ROOT.replace(/\/$/, '')], ...mounts])
      const pattern = new RegExp(`(^|[=,])(${[...paths.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|')})(?=$|[/,:])`, 'g')
      return (value: string): string => {
        if (value.includes('$')) throw new Error(`this test does not interpolate variables: ${value}`)
        return value.replace(pattern, (_, before: string, path: string) => `${before}${paths.get(path)}`)
      }
    }
    const imageMapper = mapper([])

    // The cluster secret, made as the compose file's comment says: the image's `keygen`.
    const secretFiles = new Map<string, string>()
    for (const [secret, definition] of Object.entries(compose.secrets ?? {})) {
      if (typeof definition?.file !== 'string') throw new Error(`secret ${secret}: this test only knows file-backed secrets`)
      if (posix.basename(definition.file) !== 'swarm.key') throw new Error(`secret ${secret}: this test knows how to make swarm.key only, not ${definition.file}`)
      const keygen = await runCommand(imageMapper(image.entrypoint[0]!), [...image.entrypoint.slice(1), 'keygen'].map(imageMapper), { cwd: ROOT, env: { ...baseEnv, ...image.env }, timeout: 20_000 })
      expect(keygen.code, `keygen: ${keygen.output}`).toBe(0)
      const file = join(scratch, 'secrets', secret)
      await mkdir(dirname(file), { recursive: true })
      await writeFile(file, keygen.stdout, { mode: 0o600 })
      secretFiles.set(secret, file)
    }

    lab = await NetnsLab.create(names.length, { names, range: '198.19' })
    // `ip` by its full path: the services' PATH (used to find the command) has no iproute2, as the image has none.
    const ip = (await runCommand('/bin/sh', ['-c', 'command -v ip'], { cwd: ROOT, timeout: 5000 })).stdout.trim()
    const hosts = new Map(lab.hosts.map((h) => [h.name!, { ...h, wrapper: [ip, ...h.wrapper.slice(1)] }]))

    const plans = new Map<string, { argv: string[]; env: Record<string, string>; cwd: string; healthcheck: string[]; healthTimeoutMs: number }>()
    for (const [name, service] of Object.entries(compose.services)) {
      const mounts: [string, string][] = []
      for (const volume of volumeMounts(service)) {
        const source = volume.source === undefined ? join(scratch, 'anonymous', name, volume.target) : volume.source.startsWith('.') || isAbsolute(volume.source) ? resolve(composeDir, volume.source) : join(scratch, 'volumes', volume.source)
        await mkdir(source, { recursive: true })
        mounts.push([volume.target, source])
      }
      for (const secret of secretMounts(service)) {
        const file = secretFiles.get(secret.source)
        if (!file) throw new Error(`service ${name}: no top-level secret ${secret.source}`)
        mounts.push([secret.target, file])
      }
      const map = mapper(mounts)
      const env = Object.fromEntries(Object.entries({ ...image.env, ...environment(service) }).map(([k, v]) => [k, map(v)]))
      const entrypoint = strings(service.entrypoint) ?? image.entrypoint
      const command = strings(service.command) ?? (service.entrypoint === undefined ? image.cmd : [])
      const test = strings(service.healthcheck?.test) ?? []
      const healthcheck = test[0] === 'CMD' ? test.slice(1) : test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', test.slice(1).join(' ')] : []
      plans.set(name, {
        argv: [...entrypoint, ...command].map(map),
        env: { ...baseEnv, ...env },
        cwd: map(service.working_dir ?? image.workdir),
        healthcheck: healthcheck.map(map),
        healthTimeoutMs: durationMs(service.healthcheck?.timeout, 30_000),
      })
    }

    // Start every service once its dependencies are started (or healthy, when the compose file says so).
    const healthy = new Map<string, Promise<void>>()
    const startedServices = new Map<string, Promise<void>>()
    const start = (name: string, path: string[] = []): Promise<void> => {
      if (path.includes(name)) throw new Error(`depends_on cycle: ${[...path, name].join(' -> ')}`)
      const existing = startedServices.get(name)
      if (existing) return existing
      const service = compose.services[name]
      if (!service) throw new Error(`${path.at(-1)} depends on ${name}, which is not a service`)
      const promise = (async () => {
        for (const [dep, condition] of dependencies(service)) {
          await start(dep, [...path, name])
          if (condition === 'service_healthy') await healthy.get(dep)
          else if (condition !== 'service_started') throw new Error(`${name}: depends_on condition ${condition} is not known to this test`)
        }
        const r = launch(name, plans.get(name)!, hosts.get(name)!)
        const health = waitHealthy(r, plans.get(name)!, ip)
        health.catch(() => undefined) // awaited below; a dependent may await it first
        healthy.set(name, health)
      })()
      startedServices.set(name, promise)
      return promise
    }
    await Promise.all(names.map((name) => start(name)))
    await Promise.all(healthy.values())
    const healthyAfter = performance.now() - started

    // A client at the gateway's published (container) port.
    const gateway = hosts.get('gateway')!
    const port = containerPort(compose.services.gateway!.ports![0]!)
    const http = `http://${gateway.address}:${port}`
    const key = 'deployments/api'
    const put = async (value: unknown, message: string): Promise<{ revision: { id: string } }> => {
      const response = await fetch(`${http}/v1/keys/${encodeURIComponent(key)}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ value, message }), signal: AbortSignal.timeout(10_000) })
      expect(response.status, await response.clone().text()).toBe(200)
      return (await response.json()) as { revision: { id: string } }
    }
    const getJson = async <T>(path: string): Promise<T> => {
      const response = await fetch(`${http}${path}`, { signal: AbortSignal.timeout(10_000) })
      expect(response.status, `${path}: ${await response.clone().text()}`).toBe(200)
      return (await response.json()) as T
    }

    const first = await put({ image: 'api:1', replicas: 2 }, 'first deploy')
    const second = await put({ image: 'api:2', replicas: 2 }, 'second deploy')
    expect((await getJson<{ value: unknown }>(`/v1/keys/${encodeURIComponent(key)}`)).value).toEqual({ image: 'api:2', replicas: 2 })
    const history = await getJson<{ revisions: { id: string; message?: string }[] }>(`/v1/keys/${encodeURIComponent(key)}/-/history`)
    expect(history.revisions.map((r) => [r.id, r.message])).toEqual([[second.revision.id, 'second deploy'], [first.revision.id, 'first deploy']])

    interface Member {
      name: string
      state: string
      api: string
    }
    const members = await eventually(async () => {
      const list = (await getJson<{ members: Member[] }>('/v1/cluster/members')).members.filter((m) => m.state === 'alive')
      expect(list.map((m) => m.name).sort()).toEqual(NODES)
      return list
    }, 20_000, 250)

    const client = await WeftClient.connect(`ws://${gateway.address}:${port}/v1/ws`)
    clients.push(client)
    expect((await client.get(key)).value).toEqual({ image: 'api:2', replicas: 2 })
    // The node this client's requests go to has its own view, which agrees within a few heartbeats.
    await eventually(async () => {
      expect((await client.members()).members.filter((m) => m.state === 'alive').map((m) => m.name).sort()).toEqual(NODES)
    }, 20_000, 250)

    // Every node has the write, at the API address it advertises (service names resolved to the lab's addresses).
    for (const member of members) {
      const url = new URL(member.api)
      const host = hosts.get(url.hostname)
      expect(host, `${member.name} advertises ${member.api}, not a service name`).toBeDefined()
      const node = await WsTestClient.connect(`ws://${host!.address}:${url.port}${url.pathname}`)
      clients.push(node)
      await eventually(async () => {
        expect((await node.request<{ value: unknown }>('get', { key }, 3000)).value).toEqual({ image: 'api:2', replicas: 2 })
        expect((await node.request<{ revisions: { id: string }[] }>('history', { key }, 3000)).revisions.map((r) => r.id)).toEqual([second.revision.id, first.revision.id])
      }, 15_000, 200)
    }
    await Promise.allSettled(clients.splice(0).map((c) => c.close()))

    // `docker compose down`: SIGTERM, then SIGKILL after the grace period; every service exits 0 before that.
    const codes = await Promise.all(
      running.map(async (r) => {
        r.child.kill('SIGTERM')
        const timer = setTimeout(() => r.child.kill('SIGKILL'), STOP_GRACE_MS)
        const code = await r.exit
        clearTimeout(timer)
        return [r.name, code] as const
      }),
    )
    expect(Object.fromEntries(codes)).toEqual(Object.fromEntries(names.map((n) => [n, 0])))
    console.info(`compose test: healthy after ${Math.round(healthyAfter)} ms, done after ${Math.round(performance.now() - started)} ms`)
  }, 90_000)
})

function launch(name: string, plan: { argv: string[]; env: Record<string, string>; cwd: string }, host: { ns: string; address: string; wrapper: string[] }): Running {
  const [command, ...args] = [...host.wrapper, ...plan.argv] as [string, ...string[]]
  const child = spawn(command, args, { cwd: plan.cwd, env: plan.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: PROCESS_LIFETIME_MS, killSignal: 'SIGKILL' })
  const r: Running = { name, child, ns: host.ns, address: host.address, output: '', exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))) }
  const append = (chunk: string) => {
    r.output += chunk
    if (r.output.length > 200_000) r.output = r.output.slice(-100_000)
  }
  child.stdout!.setEncoding('utf8').on('data', append)
  child.stderr!.setEncoding('utf8').on('data', append)
  child.once('error', (err) => append(`\nspawn failed: ${err.message}\n`))
  running.push(r)
  return r
}

/** Runs the service's healthcheck in its namespace until it passes; fails when the service exits or takes too long. */
async function waitHealthy(r: Running, plan: { env: Record<string, string>; cwd: string; healthcheck: string[]; healthTimeoutMs: number }, ip: string): Promise<void> {
  if (plan.healthcheck.length === 0) throw new Error(`${r.name} has no healthcheck`)
  const deadline = Date.now() + HEALTHY_WITHIN_MS
  let last = ''
  for (;;) {
    if (r.child.exitCode !== null || r.child.signalCode !== null) throw new Error(`${r.name} exited (${r.child.exitCode ?? r.child.signalCode}) before it was healthy:\n${r.output.slice(-3000)}`)
    const result = await runCommand(ip, ['netns', 'exec', r.ns, ...plan.healthcheck], { cwd: plan.cwd, env: plan.env, timeout: plan.healthTimeoutMs })
    if (result.code === 0) return
    last = result.output
    if (Date.now() > deadline) throw new Error(`${r.name} not healthy in ${HEALTHY_WITHIN_MS} ms (last check: ${last.trim() || `exit ${result.code}`}):\n${r.output.slice(-3000)}`)
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
}

/**
 * A PATH of one directory of links: `node` (this repo's Node 22) and the
 * commands of Debian's Essential packages, i.e. what node:22-bookworm-slim
 * offers. Without dpkg, this machine's PATH (with a warning).
 */
async function imagePath(bin: string): Promise<string> {
  const fallback = `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`
  const essential = await runCommand('dpkg-query', ['-W', '-f', '${Package} ${Essential}\\n'], { cwd: ROOT, timeout: 10_000 })
  const packages = essential.stdout.split('\n').filter((line) => line.endsWith(' yes')).map((line) => line.split(' ')[0]!)
  const files = packages.length > 0 ? await runCommand('dpkg', ['-L', ...packages], { cwd: ROOT, timeout: 10_000 }) : undefined
  if (!files || files.code !== 0) {
    console.warn(`compose test: no dpkg here, so services see this machine's PATH (${essential.output.trim()})`)
    return fallback
  }
  await mkdir(bin, { recursive: true })
  const links = new Map<string, string>()
  for (const file of files.stdout.split('\n')) if (/^\/(usr\/)?s?bin\/[^/]+$/.test(file) && existsSync(file)) links.set(basename(file), file)
  links.set('node', process.execPath)
  await Promise.all([...links].map(([name, target]) => symlink(target, join(bin, name))))
  return bin
}

function runCommand(command: string, args: string[], options: { cwd: string; env?: Record<string, string>; timeout: number }): Promise<{ code: number | null; stdout: string; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { ...options, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0
      resolve({ code, stdout, output: `${stdout}${stderr}${error && code === null ? error.message : ''}` })
    })
  })
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
