// A throwaway network of Linux network namespaces for partition tests (root only).
//
//   root namespace ── weft<id> (198.X.Y.254/24, test traffic only)
//                         │ veth
//   weft-br-<id>:  [uplink]──── br0 ────[ p1 ] [ p2 ] [ p3 ] …   (layer 2 only, no address)
//                                          │ veth   │      │
//   weft-h<n>-<id>:                       eth0 198.X.Y.n/24 (+ lo)
//
// Every address is in one random /24 of 198.18.0.0/15 (the benchmarking range,
// never routed on the internet) not already used by the root namespace: of
// 198.18.0.0/16 by default, of 198.19.0.0/16 when asked, so that two tests that
// may run at the same time never pick the same /24. Host
// namespaces have no default route, only their /24, so nothing they send can
// leave the machine; the bridge namespace has no address and no routes; the root
// side of the test link has forwarding off, so the root namespace never routes
// for them. The test process (root namespace) reaches each host's API directly
// at 198.X.Y.n through that link.
//
// Hosts may have names: then every host's /etc/hosts lists them all (the file
// /etc/netns/<namespace>/hosts, which `ip netns exec` mounts over /etc/hosts),
// as a container network's DNS would.
//
// A partition is a pair of blackhole routes per cut host pair (iproute2 only, no
// iptables needed): each side drops whatever it would send to the other (a new
// connection fails at once with EINVAL; an established one just stalls, as on a
// cut cable), so no packet crosses in either direction, while the test link
// (.254) stays up and the cut-off node keeps serving its clients. Healing
// deletes the routes.
import { execFile, execFileSync } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'

const COMMAND_TIMEOUT_MS = 10_000
/** `ip netns exec NS` mounts each file found here over the same file in /etc. */
const NETNS_ETC = '/etc/netns'

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as root, as CI does)'
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore', timeout: COMMAND_TIMEOUT_MS })
  } catch {
    return "the 'ip' command (Debian package iproute2) is missing"
  }
  return undefined
}

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: COMMAND_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) reject(new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || error.message}`))
      else resolve(stdout)
    })
  })
}

export interface NetnsHost {
  /** Namespace name, e.g. weft-h1-a1b2c3. */
  readonly ns: string
  /** The host's address, e.g. 198.18.77.1. */
  readonly address: string
  /** Command prefix running a program inside the namespace. */
  readonly wrapper: string[]
  /** The host's name, when the lab was given names. */
  readonly name?: string
}

export interface NetnsLabOptions {
  /** One name per host: every host's /etc/hosts resolves each name to its host's address. */
  readonly names?: readonly string[]
  /** The /16 of 198.18.0.0/15 the lab's /24 is taken from (default 198.18). */
  readonly range?: '198.18' | '198.19'
}

/** Namespaces of one test; `destroy()` (call it in afterEach) removes all of them. */
export class NetnsLab {
  readonly id = randomBytes(3).toString('hex')
  readonly bridgeNs = `weft-br-${this.id}`
  readonly rootLink = `weft${this.id}`
  readonly hosts: NetnsHost[] = []
  subnet = ''
  private readonly namespaces: string[] = []
  private readonly etcDirs: string[] = []
  private readonly routes = new Set<string>()
  private readonly onExit = () => this.destroySync()

  /** Builds the network with `hostCount` hosts (at most 250). */
  static async create(hostCount: number, options: NetnsLabOptions = {}): Promise<NetnsLab> {
    if (options.names && options.names.length !== hostCount) throw new Error(`${hostCount} hosts but ${options.names.length} names`)
    const lab = new NetnsLab()
    process.once('exit', lab.onExit)
    try {
      await lab.build(hostCount, options)
      if (options.names) lab.writeHostsFiles()
    } catch (err) {
      await lab.destroy().catch(() => undefined)
      throw err
    }
    return lab
  }

  get rootAddress(): string {
    return `${this.subnet}.254`
  }

  private async build(hostCount: number, options: NetnsLabOptions): Promise<void> {
    this.subnet = await freeSubnet(options.range ?? '198.18')
    await this.addNamespace(this.bridgeNs)
    const br = ['-n', this.bridgeNs]
    await run([...br, 'link', 'add', 'br0', 'type', 'bridge'])
    await run([...br, 'link', 'set', 'dev', 'br0', 'up'])
    // The test link: root namespace <-> bridge.
    await run(['link', 'add', this.rootLink, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', this.bridgeNs])
    trySysctl(`ipv4/conf/${this.rootLink}/forwarding`, '0')
    trySysctl(`ipv6/conf/${this.rootLink}/disable_ipv6`, '1')
    await run(['addr', 'add', `${this.rootAddress}/24`, 'dev', this.rootLink])
    await run(['link', 'set', 'dev', this.rootLink, 'up'])
    await run([...br, 'link', 'set', 'dev', 'uplink', 'master', 'br0'])
    await run([...br, 'link', 'set', 'dev', 'uplink', 'up'])
    for (let n = 1; n <= hostCount; n++) {
      const ns = `weft-h${n}-${this.id}`
      const address = `${this.subnet}.${n}`
      await this.addNamespace(ns)
      await run(['-n', ns, 'link', 'set', 'dev', 'lo', 'up'])
      await run(['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${n}`, 'netns', this.bridgeNs])
      await run(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0'])
      await run(['-n', ns, 'link', 'set', 'dev', 'eth0', 'up'])
      await run([...br, 'link', 'set', 'dev', `p${n}`, 'master', 'br0'])
      await run([...br, 'link', 'set', 'dev', `p${n}`, 'up'])
      const name = options.names?.[n - 1]
      this.hosts.push({ ns, address, wrapper: ['ip', 'netns', 'exec', ns], ...(name !== undefined && { name }) })
    }
  }

  /** /etc/netns/<ns>/hosts for every host: localhost and every host's name. */
  private writeHostsFiles(): void {
    const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...this.hosts.map((h) => `${h.address}\t${h.name}`)]
    for (const host of this.hosts) {
      const dir = `${NETNS_ETC}/${host.ns}`
      mkdirSync(dir, { recursive: true })
      this.etcDirs.push(dir)
      writeFileSync(`${dir}/hosts`, `${lines.join('\n')}\n`)
    }
  }

  private async addNamespace(name: string): Promise<void> {
    await run(['netns', 'add', name])
    this.namespaces.push(name)
  }

  private host(index: number): NetnsHost {
    const host = this.hosts[index]
    if (!host) throw new Error(`no host ${index}`)
    return host
  }

  /** Cuts host `index` (0-based) off from every other host, both ways; the test link stays up. */
  async isolate(index: number): Promise<void> {
    const cut = this.host(index)
    for (const other of this.hosts) {
      if (other === cut) continue
      await this.blackhole(cut, other)
      await this.blackhole(other, cut)
    }
  }

  /** Removes every partition. */
  async heal(): Promise<void> {
    for (const route of [...this.routes]) {
      const [ns, address] = route.split(' ') as [string, string]
      await run(['-n', ns, 'route', 'del', 'blackhole', `${address}/32`])
      this.routes.delete(route)
    }
  }

  private async blackhole(from: NetnsHost, to: NetnsHost): Promise<void> {
    const route = `${from.ns} ${to.address}`
    if (this.routes.has(route)) return
    await run(['-n', from.ns, 'route', 'add', 'blackhole', `${to.address}/32`])
    this.routes.add(route)
  }

  /**
   * Deletes every namespace made (their veths go with them, and so does the
   * root end of the test link). Stop the processes inside first.
   */
  async destroy(): Promise<void> {
    process.removeListener('exit', this.onExit)
    const errors: string[] = []
    for (const name of this.namespaces.splice(0).reverse()) {
      await run(['netns', 'del', name]).catch((err: unknown) => errors.push((err as Error).message))
    }
    // Normally gone with the bridge namespace; not if a process still holds it.
    await run(['link', 'del', this.rootLink]).catch(() => undefined)
    this.removeEtcDirs()
    this.routes.clear()
    if (errors.length > 0) throw new Error(errors.join('\n'))
  }

  /** Last resort when the test process exits without `destroy()`. */
  private destroySync(): void {
    for (const name of this.namespaces.splice(0)) {
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: COMMAND_TIMEOUT_MS })
      } catch {
        // best effort
      }
    }
    this.removeEtcDirs()
  }

  private removeEtcDirs(): void {
    for (const dir of this.etcDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
    try {
      rmdirSync(NETNS_ETC) // only when empty: another lab may be using it
    } catch {
      // not empty, or not there
    }
  }
}

/** A random /24 of `range` (a /16) the root namespace has no address or route in. */
async function freeSubnet(range: string): Promise<string> {
  const used = (await run(['-4', '-o', 'addr', 'show'])) + (await run(['-4', 'route', 'show', 'table', 'all']))
  for (let attempt = 0; attempt < 100; attempt++) {
    const subnet = `${range}.${randomInt(256)}`
    if (!used.includes(`${subnet}.`)) return subnet
  }
  throw new Error(`no free /24 in ${range}.0.0/16`)
}

function trySysctl(path: string, value: string): void {
  try {
    writeFileSync(`/proc/sys/net/${path}`, value)
  } catch {
    // e.g. no IPv6 in this kernel
  }
}
