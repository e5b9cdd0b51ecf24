// Helpers shared by the benchmark scripts: timing, formatting, child processes that
// are always reaped (by PID), temp dirs that are always removed, and the docs table.
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, rmSync, writeFileSync, existsSync, mkdtempSync } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// ---- CPU accounting (Linux /proc) ----------------------------------------------

/** Clock ticks per second in /proc (USER_HZ: 100 on Linux). */
const USER_HZ = 100

/** CPU seconds (user + system) process `pid` has used so far; NaN where /proc cannot tell. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // After the command name in parentheses: field 3 (state) first, utime is field 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ
  } catch {
    return NaN
  }
}

/** CPU seconds the whole machine has been busy (user, nice, system, irq, softirq) and stolen by the hypervisor; NaN where /proc cannot tell. */
export function machineCpuSeconds(): { busy: number; steal: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields
    return { busy: (user + nice + system + irq + softirq) / USER_HZ, steal: steal / USER_HZ }
  } catch {
    return { busy: NaN, steal: NaN }
  }
}

// ---- arguments, time, what was measured ---------------------------------------

/** The value after flag `name` in `args`, if any. */
export function argValue(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export const loadText = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ')

/** Rejects after `ms` (the work itself is stopped by the cleanup that follows). */
export async function bounded<T>(label: string, ms: number, run: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      run(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${label}: gave up after ${fmtInt(ms / 1000)} s`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The commit measured, and whether the sources under `paths` differed from it. */
export function codeVersion(...paths: string[]): string {
  try {
    const git = (...a: string[]) => execFileSync('git', a, { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8' }).trim()
    const dirty = git('status', '--porcelain', '--', ...paths).length > 0
    return `commit ${git('rev-parse', '--short', 'HEAD')}${dirty ? ` plus uncommitted changes under ${paths.map((p) => `${p}/`).join(' or ')}` : ''}`
  } catch {
    return 'unknown commit'
  }
}

// ---- logging and formatting -------------------------------------------------

const started = performance.now()

/** A line on stderr, stamped with seconds since the script started. */
export function log(message: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}\n`)
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

export function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3)
}

export function fmtBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`
}

/** The p-th percentile (0..100) of samples, nearest rank. Sorts a copy. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) return NaN
  const sorted = Float64Array.from(samples).sort()
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** Calls `report` at most every `everyMs`, when `maybe` is called (for synchronous loops). */
export function throttled(everyMs: number, report: () => void): { maybe: () => void } {
  let next = performance.now() + everyMs
  return {
    maybe: () => {
      const now = performance.now()
      if (now >= next) {
        next = now + everyMs
        report()
      }
    },
  }
}

/** Calls `report` every `everyMs` while `run` is pending (for asynchronous phases). */
export async function withProgress<T>(everyMs: number, report: () => void, run: () => Promise<T>): Promise<T> {
  const timer = setInterval(report, everyMs)
  try {
    return await run()
  } finally {
    clearInterval(timer)
  }
}

// ---- the machine -----------------------------------------------------------

export interface Machine {
  readonly nproc: number
  readonly cpu: string
  readonly memory: string
  readonly node: string
  readonly os: string
}

export function machine(): Machine {
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    memory: fmtBytes(os.totalmem()),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
  }
}

export function describeMachine(m: Machine): string {
  return `nproc ${m.nproc} (${m.cpu}), ${m.memory} RAM, node ${m.node}`
}

// ---- temp dirs and child processes, cleaned up whatever happens ------------

const tempDirs = new Set<string>()
const children = new Map<number, ChildProcess>()

export function makeTempDir(base: string, prefix: string): string {
  const dir = mkdtempSync(join(base, prefix))
  tempDirs.add(dir)
  return dir
}

export function removeTempDirs(): void {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

/** SIGKILLs every child still running, each by its own PID. */
export function killChildren(): void {
  for (const [pid, child] of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
  }
  children.clear()
}

const cleanupHooks = new Set<() => void>()

/**
 * A synchronous cleanup step (e.g. SIGKILL processes started elsewhere, by PID) run by
 * installCleanup's handlers on Ctrl-C, SIGTERM or exit, before temp dirs are removed.
 * Returns a function that unregisters it (call that once the step is done normally).
 */
export function addCleanupHook(hook: () => void): () => void {
  cleanupHooks.add(hook)
  return () => cleanupHooks.delete(hook)
}

function runCleanupHooks(): void {
  for (const hook of [...cleanupHooks]) {
    cleanupHooks.delete(hook)
    try {
      hook()
    } catch {
      // Best effort: the other hooks still run.
    }
  }
}

/** On Ctrl-C, SIGTERM or a crash: kill our children, remove our temp dirs, exit. */
export function installCleanup(): void {
  const bail = (code: number) => () => {
    runCleanupHooks()
    killChildren()
    removeTempDirs()
    process.exit(code)
  }
  process.once('SIGINT', bail(130))
  process.once('SIGTERM', bail(143))
  process.once('SIGHUP', bail(129))
  process.on('exit', () => {
    runCleanupHooks()
    killChildren()
    removeTempDirs()
  })
}

/** For child processes: exit if the parent is gone, and at a hard deadline. */
export function childWatchdog(deadlineMs: number): void {
  const parent = process.ppid
  setInterval(() => {
    if (process.ppid !== parent) process.exit(4)
  }, 1000).unref()
  setTimeout(() => {
    process.stderr.write(`child gave up after ${deadlineMs} ms\n`)
    process.exit(3)
  }, deadlineMs).unref()
}

/** A child's answer: one `RESULT <json>` line on its stdout. */
export function sendResult(result: object): void {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
}

/**
 * Runs `node [execArgv] script ...args` as a fresh process (stderr passed through),
 * kills it by PID after `timeoutMs`, and returns the JSON of its RESULT line.
 */
export async function runChild(script: string, args: string[], options: { execArgv?: string[]; timeoutMs: number; label: string }): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [...(options.execArgv ?? []), script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>
  const pid = child.pid
  if (pid === undefined) {
    await closed // rejects with the spawn error
    throw new Error(`${options.label}: could not start`)
  }
  children.set(pid, child)
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }, options.timeoutMs)
  try {
    const [code, signal] = await closed
    if (timedOut) throw new Error(`${options.label}: killed after ${options.timeoutMs} ms`)
    if (code !== 0) throw new Error(`${options.label}: exited with ${code ?? signal}`)
  } finally {
    clearTimeout(timer)
    children.delete(pid)
  }
  const line = out.split('\n').findLast((l) => l.startsWith('RESULT '))
  if (line === undefined) throw new Error(`${options.label}: no RESULT line in its output`)
  return JSON.parse(line.slice('RESULT '.length)) as Record<string, unknown>
}

/** Bytes of the files under `dir`: as listed (apparent) and as allocated on disk. */
export async function dirBytes(dir: string): Promise<{ apparent: number; allocated: number }> {
  let apparent = 0
  let allocated = 0
  for (const entry of await readdir(dir, { recursive: true })) {
    const stat = await lstat(join(dir, entry))
    if (!stat.isFile()) continue
    apparent += stat.size
    allocated += stat.blocks * 512
  }
  return { apparent, allocated }
}

/** This process's resident memory split from /proc (Linux): anonymous vs file-backed (mmap). */
export function rssBreakdown(): { rssAnon?: number; rssFile?: number } {
  try {
    const status = readFileSync('/proc/self/status', 'utf8')
    const kb = (field: string): number | undefined => {
      const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
      return match ? Number(match[1]) * 1024 : undefined
    }
    const rssAnon = kb('RssAnon')
    const rssFile = kb('RssFile')
    return { ...(rssAnon !== undefined && { rssAnon }), ...(rssFile !== undefined && { rssFile }) }
  } catch {
    return {}
  }
}

// ---- docs/benchmarks.md ------------------------------------------------------

export interface Figure {
  readonly figure: string
  readonly result: string
  readonly target: string
  /** Whether the target is met; undefined when there is no target. */
  readonly met?: boolean
}

/** The figures as a markdown table; with `command`, a last column names the command that measured them. */
export function markdownTable(figures: readonly Figure[], date: string, machineText: string, command?: string): string {
  const cell = (text: string) => text.replaceAll('|', '\\|')
  const extra = command === undefined ? '' : ` ${cell(command)} |`
  const rows = figures.map((f) => `| ${cell(f.figure)} | ${cell(f.result)} | ${cell(f.target)} | ${f.met === undefined ? '' : f.met ? 'yes' : '**no**'} | ${date} | ${cell(machineText)} |${extra}`)
  const head = command === undefined ? ['| Figure | Result | Target | Met | Date | Machine |', '|---|---|---|---|---|---|'] : ['| Figure | Result | Target | Met | Date | Machine | Command |', '|---|---|---|---|---|---|---|']
  return [...head, ...rows].join('\n')
}

/** Replaces the `## heading` section of a markdown file (up to the next `## `), or appends it. */
export function writeDocSection(file: string, heading: string, body: string): void {
  const title = `## ${heading}`
  const section = `${title}\n\n${body.trim()}\n`
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n'
  const lines = text.split('\n')
  const start = lines.findIndex((line) => line.trim() === title)
  if (start === -1) {
    text = `${text.trimEnd()}\n\n${section}`
  } else {
    let end = lines.findIndex((line, i) => i > start && /^## /.test(line))
    if (end === -1) end = lines.length
    const after = lines.slice(end).join('\n')
    text = `${lines.slice(0, start).join('\n')}${start > 0 ? '\n' : ''}${section}${after ? `\n${after}` : ''}`
  }
  writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`)
}
